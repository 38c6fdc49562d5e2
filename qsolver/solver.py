"""NeuralSVD eigensolver: train ψ_1..ψ_L on T = s (c - H) with NestedLoRA, then Rayleigh–Ritz.

``solve(system, ...)`` returns a :class:`~qsolver.result.Result` with the lowest L energies (hartree,
ascending), jackknife error bars and the wavefunctions. Settings come from the arguments, then the
system's ``[solver]`` table, then :class:`~qsolver.config.SolverConfig`; the networks and proposals from
:mod:`qsolver.networks`, the steps from :mod:`qsolver.training`, the estimate from :mod:`qsolver.estimation`.
Runs can write checkpoints and resume from them (:mod:`qsolver.checkpoint`) and train on several processes
(:mod:`qsolver.parallel`).
"""
from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .checkpoint import read_checkpoint, write_checkpoint
from .config import SolverConfig, argument_name, check_arguments, check_settings, gaussian_width
from .errors import InputError, Interrupted, TrainingDiverged, WriteError
from .fields import brief, finite_number
from .dipoles import transitions
from .estimation import evaluate, headline_errors, waypoint
from .extrapolation import WAYPOINTS_USED, extrapolated_bias, waypoints_due
from .ritz import not_eigenstates
from .memory import check_memory
from .networks import choose
from .observables import pair_observables
from .parallel import Comm, current
from .references import check_basis_names, check_reference_tables
from .result import Result
from .symmetry import expected_terms, point_group, state_symmetry
from .system import System, as_system
from .training import (Diverged, Problem, TrainingState, averaged_model, check_scales, finished, fraction_done,
                       init_state, make_problem, stop_reason, train, with_buffer)

CHECKPOINT_EVERY = 300.0      # seconds of training between checkpoints, when a checkpoint path is given


def resolve_config(system: System, **overrides) -> SolverConfig:
    """Package defaults, then the system's [solver] table, then the non-None overrides, an unset ``extra_states``
    derived from ``states`` (:func:`~qsolver.training.with_buffer`); checked as a whole, with the reference's
    basis names, quoted levels and expected terms (refused now, not by the reports made after training)."""
    cfg = replace(SolverConfig(), **system.solver)
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    cfg = with_buffer(cfg, system)                  # the buffer for this many states
    if cfg.damping is None:                         # the network kind's own default
        try:
            cfg = replace(cfg, damping=choose(system, cfg.network).damping)
        except ValueError as exc:
            raise InputError(str(exc), source=system.source, field="network") from None
    check_settings(cfg, system.source, prefix=None)
    check_basis_names(system)
    check_reference_tables(system, cfg.states)
    expected_terms(system)
    return cfg


def _check_arguments(settings: dict, checkpoint_every, checkpoint, resume) -> None:
    """The arguments of :func:`solve` by the rules (and messages) of the system files and the command line, naming
    the argument rather than the system's file: they are the caller's, not the file's."""
    check_arguments(settings, argument_name)
    every = checkpoint_every
    if every is not None and not ((finite_number(every) or every == math.inf) and every > 0):     # inf: never
        raise InputError(f"must be a positive number, got {brief(every)}", field="checkpoint_every")
    for name, path in (("checkpoint", checkpoint), ("resume", resume)):
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise InputError(f"must be a file path, got {brief(path)}", field=name)


@contextmanager
def stop_requests() -> Iterator[Callable[[], str | None]]:
    """While active, SIGINT (Ctrl-C) and SIGTERM ask training to stop after the current step instead of killing
    it; yields a function that names the signal received, if any. A second Ctrl-C interrupts at once."""
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def handler(signum, frame):
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: received[0] if received else None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def solve(system: System | str | Path, n_states: int | None = None, steps: int | None = None, seed: int | None = None,
          device: str | None = None, dtype: str | None = None, progress: bool = True,
          evaluate_at: Sequence[float] = (), on_evaluate: Callable | None = None,
          checkpoint: str | Path | None = None, checkpoint_every: float | None = None,
          resume: str | Path | None = None, comm: Comm | None = None, **settings) -> Result:
    """Lowest ``n_states`` eigenpairs of the system's Hamiltonian by NeuralSVD (energies in hartree). ``system``: a
    :class:`~qsolver.system.System`, a system file or a shipped system's name.

    ``steps``: a fixed schedule of that many steps; unset (and unset in the system file), training runs until the
    states level off at the smallest step size (:mod:`qsolver.stopping`); ``diagnostics["stop_reason"]`` says why
    it stopped. ``settings`` are further :class:`~qsolver.config.SolverConfig` fields (batch, lr, nesting, ...).
    ``on_evaluate(model, step, seconds)`` is called with the averaged weights once training time passes each of
    ``evaluate_at`` (seconds) and at the end; its own time is not counted as training time.
    ``checkpoint``: file that receives the training state every ``checkpoint_every`` seconds of training
    (default CHECKPOINT_EVERY) and when SIGINT/SIGTERM arrives, after which :class:`~qsolver.errors.Interrupted`
    is raised. Without it, Ctrl-C stops training and the states learned so far are evaluated.
    ``resume``: a checkpoint of this same run to continue from; the finished run has the same numbers as one
    never interrupted (same machine and thread count).
    ``comm``: the process group's place of this process (default: torch.distributed's group when one is
    initialised, e.g. under torchrun); only rank 0 shows progress and writes checkpoints.
    Divergence: after more than :data:`~qsolver.training.MAX_REWINDS` rewinds,
    :class:`~qsolver.errors.TrainingDiverged` carries the evaluated last good state.
    """
    system = as_system(system)
    unknown = set(settings) - set(SolverConfig.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown solver setting(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    if "states" in settings:                  # the SolverConfig name of n_states
        if n_states is not None:
            raise InputError("give the number of states once (n_states or states)", field="states")
        n_states = settings.pop("states")
    _check_arguments(dict(states=n_states, steps=steps, seed=seed, device=device, dtype=dtype, **settings),
                     checkpoint_every, checkpoint, resume)
    cfg = resolve_config(system, states=n_states, steps=steps, seed=seed, device=device, dtype=dtype, **settings)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    problem = make_problem(system, cfg, current() if comm is None else comm)
    check_memory(problem)
    state = read_checkpoint(resume, problem) if resume is not None else init_state(problem)
    check_scales(state, problem)
    every = CHECKPOINT_EVERY if checkpoint_every is None else checkpoint_every
    root = problem.comm.is_root
    pending = sorted(t for t in evaluate_at if state.step == 0 or t > state.seconds)   # a resumed run is past some
    last_written, start_step = state.seconds, state.step
    bar = tqdm(total=cfg.steps or cfg.max_steps, initial=state.step, disable=not (progress and root),
               desc=system.name, unit="step", dynamic_ncols=True)
    diverged = None
    try:
        with stop_requests() as requested:
            try:
                for state in train(state, problem, lambda: requested() is not None):
                    bar.update(state.step - bar.n)
                    if state.history["step"] and state.history["step"][-1] == state.step:
                        bar.set_postfix_str(f"loss {state.history['loss'][-1]:.4g}  "
                                            f"E {np.array2string(state.ritz[:4], precision=4)}")
                    take_waypoint(state, problem)
                    if pending and state.seconds >= pending[0] and on_evaluate is not None:
                        while pending and state.seconds >= pending[0]:
                            pending.pop(0)
                        on_evaluate(averaged_model(state), state.step, state.seconds)
                    if checkpoint is not None and state.seconds - last_written >= every:
                        try:
                            write_checkpoint(checkpoint, state, problem)
                        except WriteError as exc:      # a full disk must not end the run (the CLI saves its
                            # result elsewhere when --out cannot be written either)
                            tqdm.write(f"qsolver: warning: {exc}; training goes on", file=sys.stderr)
                        last_written = state.seconds
            except Diverged as exc:
                diverged, state = exc, exc.state
            signal_name = requested() or "a signal"
            interrupted = problem.comm.broadcast([float(requested() is not None)])[0] > 0   # rank 0's decision
    finally:
        bar.close()
    if interrupted and checkpoint is not None and diverged is None:
        write_checkpoint(checkpoint, state, problem)
        raise Interrupted(f"stopped by {signal_name} after {state.step} steps; the training state is in {checkpoint}",
                          checkpoint=Path(checkpoint), signal_name=signal_name, seconds=state.seconds)
    if on_evaluate is not None and evaluate_at:
        on_evaluate(averaged_model(state), state.step, state.seconds)
    result = finish(state, problem, interrupted=interrupted, resumed_at=start_step if resume else None)
    if diverged is not None:
        result.diagnostics.update(diverged=str(diverged), stop_reason="diverged")
        raise TrainingDiverged(f"{diverged}; the last good state (step {state.step}) was evaluated", result=result)
    return result


def take_waypoint(state: TrainingState, problem: Problem) -> None:
    """Evaluate the averaged weights when a waypoint is due (:func:`~qsolver.extrapolation.waypoints_due`; not at
    the end, which the final evaluation covers), on samples from a stream of their own seeded by the run's seed: every
    waypoint sees the same samples, and a resumed run takes the same waypoints."""
    cfg = problem.cfg
    if finished(state, cfg) or not waypoints_due(fraction_done(state, cfg), len(state.waypoints),
                                                 None if cfg.steps is not None else len(state.plateaus)):
        return
    stream = torch.Generator(device=state.generator.device).manual_seed(problem.comm.rank_seed(cfg.seed) + 1)
    point = waypoint(averaged_model(state, problem.eval_dtype), problem.system, cfg, problem.eval_dtype,
                     problem.hamiltonian, stream, problem.comm)
    state.waypoints.append({"step": state.step, **point})


def finish(state: TrainingState, problem: Problem, interrupted: bool = False, resumed_at: int | None = None) -> Result:
    """Rayleigh–Ritz of the averaged weights (in the evaluation dtype) and the result with its diagnostics."""
    tick = time.perf_counter()
    cfg, system = problem.cfg, problem.system
    model = averaged_model(state, problem.eval_dtype)
    estimate = evaluate(model, system, cfg, state.generator, problem.eval_dtype, problem.hamiltonian,
                        comm=problem.comm)
    n, diag = cfg.states, estimate["diagnostics"]
    for key in ("stat_errors", "residuals", "span_errors", "bias_errors", "denoised_sigma2", "spin_squared",
                "spin_squared_errors", "spin_penalty"):
        if key in diag:                                              # report the lowest `states` of the trained span
            diag[key] = diag[key][:n]
    used = state.waypoints[-WAYPOINTS_USED:]
    if used:                       # the bias by variance extrapolation, the Kato–Temple estimate as its ceiling
        way_e, way_s2 = (np.array([w[k][:n] for w in used]) for k in ("energies", "sigma2"))
        ceiling = diag["bias_errors"]
        diag["bias_errors"] = extrapolated_bias(way_e, way_s2, estimate["energies"][:n], diag["denoised_sigma2"],
                                                ceiling, diag["stat_errors"])
        estimate["errors"] = headline_errors(diag["stat_errors"], diag["bias_errors"])
        # everything the rule read is kept, so that a later rule can be replayed on this file (bench calibration)
        diag.update(bias_method="variance extrapolation", waypoint_steps=[w["step"] for w in used],
                    waypoint_energies=way_e, waypoint_sigma2=way_s2, bias_ceiling=ceiling)
    else:
        diag["bias_method"] = "Kato-Temple"
    hist = {k: np.asarray(v, dtype=float) for k, v in state.history.items()}
    estimate["diagnostics"].update(steps_done=state.step, interrupted=interrupted, skipped_steps=state.skipped,
                                   rewinds=list(state.rewinds), train_seconds=state.seconds,
                                   eval_seconds=time.perf_counter() - tick,
                                   train_dtype=str(problem.train_dtype).replace("torch.", ""),
                                   torch=torch.__version__, threads=torch.get_num_threads(),
                                   world=problem.comm.world,
                                   stop_reason="signal" if interrupted else stop_reason(state, cfg),
                                   **({"plateau_steps": list(state.plateaus)} if cfg.steps is None else {}),
                                   **({"resumed_at_step": resumed_at} if resumed_at is not None else {}))
    missing = int(np.sum(~np.isfinite(estimate["energies"][:n])))
    if missing:                          # a span with fewer independent directions than states: say so in the file
        diag["non_finite_energies"] = missing
    suspect = not_eigenstates(estimate["energies"][:n], diag["residuals"])
    if suspect:                          # say so in the file too (qsolver.checks; the level count needs a reference)
        diag["not_eigenstates"] = suspect
    result = Result(system=system, energies=estimate["energies"][:n], errors=estimate["errors"][:n], model=model,
                    coefficients=estimate["vectors"][:, :n], config=asdict(cfg), history=hist,
                    diagnostics=estimate["diagnostics"],
                    transitions=transitions(estimate["energies"][:n], estimate["dipoles"].first(n), system.kinetic))
    if system.particles == 2 and problem.comm.is_root:
        lo, hi = result.extent()
        mid, half = 0.5 * (lo + hi), 0.25 * (hi - lo)      # the densities live well inside the envelopes' reach
        result.observables = pair_observables(result.wavefunctions, model.proposal(problem.eval_dtype),
                                              max(cfg.eval_samples // 2, 1000), state.generator, mid - half,
                                              mid + half)
    group = point_group(system)
    if group is not None and problem.comm.is_root:       # its own generator: no other number moves with it
        generator = torch.Generator(device=state.generator.device).manual_seed(cfg.seed)
        proposal = model.proposal(problem.eval_dtype, gaussian_width(cfg))
        result.diagnostics.update(state_symmetry(result.wavefunctions, group, proposal, generator).to_diagnostics())
    return result
