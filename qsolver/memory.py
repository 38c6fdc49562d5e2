"""Peak memory of a run, estimated from its settings before anything is allocated, and the refusal of runs that
cannot fit (bytes; L trained networks of width W over F inputs, B samples per step, D = particles·d coordinates).

A training step passes through phases whose tensors are freed before the next, so its peak is the largest phase:
- the forward-Laplacian pass (:func:`qsolver.networks.mlp.mlp_jet`): the input jets' gradients (L, n, D, F), held
  throughout, a layer's output gradients, their activated copy and its square, 3 L n D W, and JET_VALUES
  value-sized (L, n, W) tensors per MLP row: (D (3W + F) + 9W R) L n numbers for n = copies·B samples (two-particle
  states pass each sample twice; determinant networks pass each of N electrons as its own row, R = N); finite
  differences and the Hessian trace, the cross-checks, in :func:`estimate`;
- the natural step's kernels (:func:`qsolver.natural.kernel`): J Jᵀ and the factors Z Zᵀ and G Gᵀ multiplied into
  it, 3 L n² numbers (folded to (L, B, B) for two particles), then J Jᵀ beside the ε I added to it, the damped
  copy and its Cholesky factor, 4 L B²; data-parallel ranks build ⌈L/ranks⌉ states' kernels over the whole batch;
- the backward pass of the Jacobian factors (or of the first-order loss): about (3 (layers + 1) W + F) L n numbers.
Evaluation runs in chunks of at most EVAL_CHUNK samples (the same jets, in the evaluation dtype), so eval_samples
sets its time, not its memory; the jackknife keeps two (eval_blocks, L, L) float64 arrays, and the transition dipoles
three (eval_blocks, L, L, d) ones (block sums, replicates, their deviations). The parameters are held
about PARAMETER_COPIES times in the training dtype (weights, their average, the rewind snapshot, the update; Adam's
two moments and their snapshot) and twice in float64 (construction, evaluation).
The Hessian-trace term is fitted (HESSIAN_FACTOR); the estimate's measured accuracy against peak RSS is in
results/bench/README.md ("Memory estimate") and tests/test_hostile.py repeats one case.
"""
from __future__ import annotations

import math
import os
from dataclasses import replace

import torch

from .config import SolverConfig
from .errors import InputError
from .io import GRID_POINTS
from .training import Problem

EVAL_CHUNK = 4096                               # samples per evaluation chunk (qsolver.estimation.evaluate)
PLOT_POINTS = 160**2          # the plane of qsolver.plots.wavefunction_gallery (a layer above: not importable here)
OBSERVABLE_CHUNK = 20000                        # configurations per chunk of the two-particle observables
PARAMETER_COPIES = {"natural": 5, "adam": 8, "rmsprop": 8}
DEFAULTS = SolverConfig()
# value-sized (L, n, W) tensors of the forward Laplacian beside its gradients: about six by count, nine measured
# (the evaluation's float64 jets: 1.10-1.15 times the estimate with six; results/bench/memory_*.md)
JET_VALUES = 9.0
# bytes beyond the phases' tensors once full-size evaluation chunks run (allocator caches, BLAS and thread
# workspace): 80 MB measured with 8 states, where the tensors are 230 MB (results/bench/memory_*.md)
WORKSPACE = 128 * 2**20
HESSIAN_FACTOR = 120.0      # Hessian-trace Laplacian: peak RSS / (L² n D W doubles), fitted (results/bench/README.md)


def estimate(problem: Problem) -> dict[str, float]:
    """Bytes of each phase of a run of ``problem``, without allocating: the
    parameters (held throughout) and the largest phases of a training step and of the evaluation."""
    cfg, system, world = problem.cfg, problem.system, problem.comm.world
    # the layout of one state's network; it does not depend on the length scales, and a fixed one skips the
    # coarse grid that fits the envelopes of formula potentials (training does that once)
    kind = problem.network
    layout = kind.layout(kind.configure(system, replace(problem.network_cfg, states=1, scale=1.0)))
    states, width, inputs, copies = cfg.states + cfg.extra_states, cfg.hidden, layout.input_width, layout.copies
    coords = system.dimension * system.particles
    train, evaluation = problem.train_dtype.itemsize, problem.eval_dtype.itemsize
    local, whole = copies * (cfg.batch // world), copies * cfg.batch

    def laplacian(n: int, size: int) -> float:
        """The Laplacian pass over n sample passes: forward jets; finite differences' 1 + 2D forward passes, each
        keeping every layer's input and output; or the torch.func Hessian, whose per-sample Jacobians of all L
        outputs by D inputs hold about HESSIAN_FACTOR·L·D·W numbers per sample and state (fitted)."""
        if cfg.laplacian == "fd":
            return ((2 * cfg.layers + 1.0) * width + inputs) * states * (1 + 2 * coords) * n * size
        if cfg.laplacian == "hessian":
            return HESSIAN_FACTOR * states**2 * n * coords * max(width, inputs) * size
        pair = layout.pair_rows * (2 * system.dimension * 3.0 + JET_VALUES) * layout.pair_width
        spread = layout.rows if layout.coupled else 1      # backflow: every row's jets run over all coordinates
        return (spread * coords * (3.0 * width + inputs) + JET_VALUES * width * layout.rows + pair) * states * n * size

    parameters = states * (inputs * width + (cfg.layers - 1) * width**2 + (cfg.layers + 1) * width + 1)
    phases = {"parameters": parameters * (PARAMETER_COPIES[cfg.optimizer] * train + 2 * 8),
              "training Laplacians": laplacian(local, train),
              "backward pass": (3.0 * (cfg.layers + 1) * width + inputs) * states * local * train}
    if cfg.optimizer == "natural":
        per_rank = math.ceil(states / world)
        folded = per_rank * cfg.batch**2 * (copies > 1)
        phases["natural-step kernels"] = max(3.0 * per_rank * whole**2 + folded, 4.0 * per_rank * cfg.batch**2) * train
    chunk = min(EVAL_CHUNK, max(1, cfg.eval_samples // cfg.eval_blocks // world))
    phases["evaluation Laplacians"] = laplacian(copies * chunk, evaluation)
    # the result's states on the grid it stores and on the gallery's plane, as (points, states) float64 arrays: the
    # network's chunks, their concatenation, the Ritz combination and its transposed copy; the forward passes run
    # in chunks of WAVEFUNCTION_CHUNK points, below the evaluation's jets
    points = max(GRID_POINTS.get(system.dimension, 0) ** system.dimension, PLOT_POINTS)
    phases["wavefunction grids"] = 4.0 * points * states * 8
    phases["jackknife blocks"] = (2.0 + 3.0 * system.dimension) * cfg.eval_blocks * states**2 * 8
    if copies > 1:                  # densities: forward passes keeping every layer's input and output
        configurations = min(OBSERVABLE_CHUNK, max(cfg.eval_samples // 2, 1000))
        phases["observables"] = ((2 * cfg.layers + 1) * width + inputs) * states * 2 * configurations * 8.0
    return phases


def peak(phases: dict[str, float]) -> float:
    """Parameters, plus WORKSPACE, plus the largest other phase (phases run one after the other)."""
    return phases["parameters"] + WORKSPACE + max(v for k, v in phases.items() if k != "parameters")


def available(device: torch.device, world: int = 1) -> float:
    """Bytes this process may use: free memory of a CUDA device, else MemAvailable of /proc/meminfo (the
    physical memory where that is missing) shared by the ranks on this host."""
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable:"))
        total = kib * 1024.0
    except (OSError, StopIteration, ValueError):
        total = float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return total / world


# the settings that make each phase large, for the message, and the one named as the field
_KNOBS = {"parameters": ("states", "hidden"), "training Laplacians": ("states", "batch", "hidden"),
          "backward pass": ("states", "batch", "hidden"), "natural-step kernels": ("states", "batch"),
          "evaluation Laplacians": ("states", "hidden"), "jackknife blocks": ("eval_blocks", "states"),
          "wavefunction grids": ("states",),
          "observables": ("states", "hidden")}


def check_memory(problem: Problem) -> None:
    """Raise InputError, naming the setting to lower and the estimated GiB, when the run's peak (:func:`peak`)
    exceeds the memory available to it; nothing is allocated."""
    phases = estimate(problem)
    need, free = peak(phases), available(problem.device, problem.comm.world)
    if need <= free:
        return
    cfg = problem.cfg
    largest = max(phases, key=phases.get)
    knobs = _KNOBS[largest]
    field = max(knobs, key=lambda k: getattr(cfg, k) / getattr(DEFAULTS, k))   # the one farthest above its default

    def size(key: str) -> str:
        """A knob's value; the states with the buffer trained above them (the networks the memory holds)."""
        extra = f" (+{cfg.extra_states} buffer)" if key == "states" and cfg.extra_states else ""
        return f"{key}={getattr(cfg, key)}{extra}"

    sizes = " × ".join(size(k) for k in knobs)
    raise InputError(f"{sizes} need about {phases[largest] / 2**30:.3g} GiB for the {largest} (peak about "
                     f"{need / 2**30:.3g} GiB); {free / 2**30:.3g} GiB available on {problem.device}: lower "
                     f"{' or '.join(knobs)}", source=problem.system.source, field=field)
