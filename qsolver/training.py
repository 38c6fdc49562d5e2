"""The training engine: an explicit state, one step that advances it, and a loop that yields it.

A step draws x ~ p (the proposal matched to the current envelopes), evaluates f = ψ/√p and Hψ/√p, updates the
running averages of S = ⟨ψ,ψ⟩, H = ⟨ψ,Hψ⟩ and H2 = ⟨Hψ,Hψ⟩ (decay 0.9), re-chooses T = s (c - H) from their
Ritz values every LOG_EVERY steps (:func:`operator_shift`; the Ritz values and residuals are logged then), moves
the networks along the NestedLoRA direction of T (natural-gradient or first-order step) and the weight average
towards them, and (N-electron determinants) fits the proposal's fitted part one step to ψ² on the same batch. A run without a step count trains at constant step sizes that halve each time its Ritz values and
residuals level off (:mod:`qsolver.stopping`). Everything a run depends on lives in
:class:`TrainingState`, so a state written to disk and read back continues bit for bit (:mod:`qsolver.checkpoint`).

Steps that leave non-finite weights or overlaps, or move the Ritz values far beyond the scale of the spectrum, are
undone (checked every LOG_EVERY steps): the loop returns to the last good state (kept at every log point) with
the trust region and learning rate halved, records the rewind, and after MAX_REWINDS raises :class:`Diverged`.
"""
from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

import numpy as np
import torch

from .config import SPIN_SHIFT, SolverConfig, gaussian_width
from .errors import InputError
from .hamiltonian import Hamiltonian, hamiltonian
from .natural import descent_direction, natural_step
from .nestedlora import lora_objective, nestedlora_loss
from .networks import Network, build, choose
from .parallel import Comm, draw
from .potentials import asymptote
from .ritz import rayleigh_ritz, residual_norms
from .scales import centre_field, extreme_field, length_unit, scale_fault, unresolved_centre
from .stopping import LOG_EVERY, buffer_states, levels, settled
from .system import System
from .threshold import spectrum_edge

MAX_REWINDS = 5
JUMP_FACTOR = 10.0      # Ritz values moving by this many times the spectrum's scale between log points diverged
COLLAPSED = 0.2         # a state whose norm is below this fraction of its optimum has lost its level to the shift
MAX_BOOST = 16.0        # the shift margin grows at most this many times while a state is collapsed
CONTINUUM_MARGIN = 0.05  # c at most this fraction of V_∞ - E_min above the continuum threshold (operator_shift)
WINDOW_MARGIN = 0.25    # c at least this fraction of E_rep - E_min above the top reported level (operator_shift)
BUFFER_MARGIN = 0.05    # and this fraction of E_top - E_min above the buffer's top (the margin of the 36-state run)


class Diverged(RuntimeError):
    """Training diverged MAX_REWINDS times; ``state`` is the last good state."""

    def __init__(self, message: str, state: "TrainingState"):
        super().__init__(message)
        self.state = state


def dtypes(cfg: SolverConfig) -> tuple[torch.dtype, torch.dtype]:
    """(training, evaluation) dtypes. "auto" trains in float32 (faster batched matmuls; the timing is in
    results/bench/README.md, "Constants chosen by hand timings") and evaluates Rayleigh–Ritz and the saved
    wavefunctions in float64."""
    if cfg.dtype == "float64":
        return torch.float64, torch.float64
    if cfg.dtype == "float32":
        return torch.float32, torch.float32
    return torch.float32, torch.float64


def operator_shift(ritz: np.ndarray, v_inf: float | None, fixed: float | None, margin: float | None = None,
                   reported: int | None = None, boost: float = 1.0) -> tuple[float, float]:
    """(c, s) in T = s (c - H).

    Rule: with E_min, E_max the current lowest and highest Ritz values (E_max ≥ E_L by Courant–Fischer)
    and V_∞ = lim V(x) for |x| → ∞ (0 for Coulomb systems, +∞ for confining ones), let
    E_top = min(E_max, V_∞), E_rep = min(E_reported, V_∞) for the highest of the ``reported`` lowest Ritz values
    (default: all) and c = max(E_rep + ¼ (E_rep - E_min), E_top + m_b (E_top - E_min)), m_b = BUFFER_MARGIN.
    Without a buffer of extra states (E_rep = E_top) this is c = E_top + ¼ (E_top - E_min). With one, the window's
    margin is measured from the top reported level, so a buffer does not compress the reported levels' eigenvalues
    of T, and the buffer's own levels keep a positive one. A given ``margin`` m fixes c = E_top + m (E_top - E_min);
    ``boost`` multiplies the margins (raised while a state collapses, :func:`margin_boost`). The lowest L levels
    are then T's largest eigenvalues, all positive. While every reported Ritz value lies below V_∞, c is capped at
    V_∞ + m_∞ (V_∞ - E_min), m_∞ = CONTINUUM_MARGIN: every bound level keeps a positive eigenvalue (no level can
    be lost to the shift), and the continuum states only a thin window of small ones, instead of eigenvalues
    close to the top level's (for 2D hydrogen, m = ¼ puts c at ¼ |E_0| above the threshold); buffer states still
    in the continuum do not lift the cap (their diffuse levels often are, early on, and c would jump to ¼). A cap at V_∞
    itself leaves the top levels' eigenvalues too small to learn them (measured in results/bench/README.md).
    s = 1/(c - E_min) makes the largest eigenvalue 1. A user's ``shift`` fixes c.
    """
    e = np.sort(ritz[np.isfinite(ritz)])
    e_min, e_max = float(e[0]), float(e[-1])
    if fixed is not None:
        c = fixed
    else:
        limit = v_inf if v_inf is not None else math.inf
        top, e_rep = min(e_max, limit), float(e[min(reported or len(e), len(e)) - 1])
        if margin is not None:
            c = top + margin * boost * (top - e_min)
        else:
            rep = min(e_rep, limit)
            c = max(rep + WINDOW_MARGIN * boost * (rep - e_min), top + BUFFER_MARGIN * boost * (top - e_min))
        if v_inf is not None and e_rep < v_inf:     # the reported states bound: admit a sliver of the continuum
            c = min(c, v_inf + CONTINUUM_MARGIN * (v_inf - e_min))
    return c, 1.0 / max(c - e_min, 1e-8)


def norm_ratios(s: np.ndarray, h: np.ndarray, shift: float, scale: float) -> np.ndarray:
    """ρ_k = S_kk / (s (c - R_k)), R_k = H_kk / S_kk, per state (0 where c ≤ R_k).

    At NestedLoRA's optimum state k is √λ_k times an eigenfunction, so its norm S_kk equals its eigenvalue of
    T = s (c - H): ρ_k = 1. A state whose level lies above c has no positive eigenvalue left to learn and decays
    towards zero (ρ_k falls): the shift was chosen from a span that misses a level (two networks on one level),
    and only a larger c lets the state find it again. Fresh networks start small too, but their ρ_k grows."""
    norms = np.diag(s)
    quotient = np.diag(h) / np.where(norms > 0, norms, np.inf)
    optimum = scale * (shift - quotient)
    return np.where(optimum > 0, norms / np.where(optimum > 0, optimum, 1.0), 0.0)


def margin_boost(boost: float, ratios: np.ndarray, before: np.ndarray | None) -> float:
    """Double the shift margin's factor while a state collapses (ρ_k below COLLAPSED and falling since the last
    re-choice), up to MAX_BOOST; otherwise let it relax towards 1 (by 10 % per re-choice), so that a recovered
    run returns to the compact window."""
    if before is not None and len(before) == len(ratios) and np.any((ratios < COLLAPSED) & (ratios < before)):
        return min(2.0 * boost, MAX_BOOST)
    return max(1.0, 0.9 * boost)


@dataclass
class Problem:
    """What stays fixed during a run: the system, its settings, H, the kind of network and where the run executes."""

    system: System
    cfg: SolverConfig
    comm: Comm
    device: torch.device
    train_dtype: torch.dtype
    eval_dtype: torch.dtype
    hamiltonian: Hamiltonian
    v_inf: float | None       # continuum threshold (or V_∞), the top of T's window
    network: type             # the kind of wavefunction (qsolver.networks)

    @property
    def network_cfg(self) -> SolverConfig:
        """The settings with ``states`` counting every trained network (the reported ones and the extra ones)."""
        return replace(self.cfg, states=self.cfg.states + self.cfg.extra_states)

    @property
    def local_batch(self) -> int:
        return self.cfg.batch // self.comm.world


def with_buffer(cfg: SolverConfig, system: System) -> SolverConfig:
    """``cfg`` with an unset ``extra_states`` derived from ``states`` and the potential (:func:`buffer_states`)."""
    if cfg.extra_states is not None:
        return cfg
    return replace(cfg, extra_states=buffer_states(cfg.states, asymptote(system.potential)))


def make_problem(system: System, cfg: SolverConfig, comm: Comm = Comm()) -> Problem:
    """The fixed part of a run (an unset ``extra_states`` derived from ``states``, :func:`buffer_states`); a
    data-parallel batch must split into equal even parts."""
    cfg = with_buffer(cfg, system)
    if comm.world > 1:
        if cfg.batch % comm.world or (cfg.batch // comm.world) < 2:
            raise InputError(f"batch {cfg.batch} does not split into {comm.world} equal parts of at least 2",
                             source=system.source, field="batch")
        if cfg.optimizer != "natural":
            raise InputError(f"data-parallel training takes the natural-gradient step, not '{cfg.optimizer}'",
                             source=system.source, field="optimizer")
        if cfg.gram_batch % comm.world:
            raise InputError(f"gram_batch {cfg.gram_batch} does not split into {comm.world} equal parts",
                             source=system.source, field="gram_batch")
    train_dtype, eval_dtype = dtypes(cfg)
    try:
        network = choose(system, cfg.network)
    except ValueError as exc:
        raise InputError(str(exc), source=system.source, field="network") from None
    shift = cfg.spin_shift if cfg.spin_shift is not None else 0.0 if network.spin_adapted else SPIN_SHIFT
    return Problem(system, cfg, comm, torch.device(cfg.device), train_dtype, eval_dtype, hamiltonian(system, shift),
                   spectrum_edge(system), network)


@dataclass
class TrainingState:
    """Everything a run depends on between two steps (tensors on the run's device)."""

    model: Network
    averaged: list[torch.Tensor]              # exponential moving average of the parameters (decay cfg.ema)
    optimizer: torch.optim.Optimizer          # Adam/RMSprop state (unused by the natural-gradient step)
    generator: torch.Generator                # this rank's sampling stream
    step: int = 0                             # steps done
    seconds: float = 0.0                      # training wall time so far (excluding hooks and checkpoints)
    s_ema: torch.Tensor | None = None         # running ⟨ψ_l,ψ_m⟩, float64 (L, L)
    h_ema: torch.Tensor | None = None         # running ⟨ψ_l,Hψ_m⟩, float64 (L, L)
    h2_ema: torch.Tensor | None = None        # running ⟨Hψ_l,Hψ_m⟩, float64 (L, L) (the residuals)
    shift: float | None = None                # c of T = s (c - H)
    operator_scale: float | None = None       # s of T = s (c - H)
    ritz: np.ndarray | None = None            # Ritz values of (h_ema, s_ema) at the last re-choice of (c, s)
    residuals: np.ndarray | None = None       # their residuals ‖(H - E)φ‖ (hartree), from h2_ema too
    skipped: int = 0                          # steps whose direction was not finite (nothing applied)
    trust_factor: float = 1.0                 # halved at each rewind
    margin_boost: float = 1.0                 # factor on the shift's margins, raised while a state collapses
    norm_ratios: np.ndarray | None = None     # ρ_k at the last re-choice of (c, s) (see norm_ratios)
    plateaus: list[int] = field(default_factory=list)          # runs without `steps`: the steps at which the
                                                               # states levelled off at each step size (stopping)
    rewinds: list[int] = field(default_factory=list)           # steps at which a divergence was undone
    waypoints: list[dict] = field(default_factory=list)        # evaluations of the averaged weights on the way:
                                                               # step, Ritz values, σ² (qsolver.extrapolation)
    history: dict[str, list] = field(default_factory=lambda: {"step": [], "loss": [], "energies": [], "shift": [],
                                                              "time": [], "residuals": []})


def init_state(problem: Problem) -> TrainingState:
    """A fresh run: networks from the seed (the same on every rank), sampling stream from seed and rank."""
    cfg = problem.cfg
    model = build(problem.network.configure(problem.system, problem.network_cfg),
                  generator=torch.Generator().manual_seed(cfg.seed))
    model = model.to(device=problem.device, dtype=problem.train_dtype)
    optimizer = torch.optim.RMSprop if cfg.optimizer == "rmsprop" else torch.optim.Adam
    gen = torch.Generator(device=problem.device).manual_seed(problem.comm.rank_seed(cfg.seed))
    return TrainingState(model, [p.detach().clone() for p in model.parameters()],
                         optimizer(model.parameters(), lr=cfg.lr), gen)


def check_scales(state: TrainingState, problem: Problem, n: int = 256) -> None:
    """Refuse, before any step, a system whose magnitudes the training dtype cannot carry: coordinates near every
    centre R must be resolved to a tenth of the states' length unit ℓ (ε|R| ≤ ℓ/10), and on n samples of the
    initial proposal ψ/√p and Hψ/√p must stay inside the dtype's range (:func:`~qsolver.scales.scale_fault`).
    The error names the field at fault and says whether dtype = "float64" would carry the system."""
    system, dtype, config, seed = problem.system, problem.train_dtype, state.model.config, problem.cfg.seed
    gen = torch.Generator(device=problem.device)

    def float64_advice() -> str:
        """'use dtype = "float64" or ' when float64 carries the same initial networks (built anew), else ''."""
        if dtype == torch.float64 or unresolved_centre(config, torch.float64) is not None:
            return ""
        model = build(config, generator=torch.Generator().manual_seed(seed))
        model = model.to(device=problem.device, dtype=torch.float64)
        fault = scale_fault(model, problem.hamiltonian, torch.float64, gen.manual_seed(seed), n)
        return 'use dtype = "float64" or ' if fault is None else ""

    name, unit = str(dtype).replace("torch.", ""), length_unit(config)
    far = unresolved_centre(config, dtype)
    if far is not None:
        centre, spacing = far
        points = np.asarray(config.centers)             # would an origin amid the centres resolve them all?
        amid = replace(config, centers=(points - 0.5 * (points.min(0) + points.max(0))).tolist())
        move = "move the origin near the centres" if unresolved_centre(amid, dtype) is None else \
            "bring the centres nearer to each other"
        raise InputError(f"a centre {max(map(abs, centre)):.3g} bohr from the origin leaves coordinates near it "
                         f"resolved to {spacing:.2g} bohr in {name}, coarser than a tenth of the states' length unit "
                         f"{unit:.2g} bohr: {float64_advice()}{move}", source=system.source,
                         field=centre_field(system, centre))
    fault = scale_fault(state.model, problem.hamiltonian, dtype, gen.manual_seed(seed), n)
    if fault is not None:
        field, magnitude, change = extreme_field(system)
        raise InputError(f"{fault} in {name} at the states' length unit {unit:.2g} bohr (the most extreme magnitude: "
                         f"{magnitude}): {float64_advice()}{change}", source=system.source, field=field)


def schedule(fraction: float, final: float) -> float:
    """Cosine decay from 1 to ``final`` as the run's fraction goes from 0 to 1."""
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(fraction, 1.0)))


@dataclass
class Batch:
    """One step's samples x ~ p with 1/√p, f = ψ/√p and Hψ/√p on them, and the whole batch's S and H (float64)."""

    x: torch.Tensor
    root_w: torch.Tensor
    f: torch.Tensor
    hf: torch.Tensor
    overlap: torch.Tensor        # ⟨ψ_l,ψ_m⟩ in the training dtype (the descent direction's Gram matrix)
    s: torch.Tensor
    h: torch.Tensor
    h2: torch.Tensor             # ⟨Hψ_l,Hψ_m⟩ (float64)


def draw_batch(state: TrainingState, problem: Problem, proposal) -> Batch:
    """Samples of this rank's part of the batch, the networks and H on them, and the batch means over all ranks."""
    cfg, comm = problem.cfg, problem.comm
    x = draw(proposal, problem.local_batch, state.generator, comm)
    root_w = torch.exp(-0.5 * proposal.log_prob(x))[:, None]         # 1/√p
    psi, h_psi = problem.hamiltonian.apply(state.model, x, cfg.laplacian, cfg.fd_step)
    f, hf = psi * root_w, h_psi * root_w
    overlap = comm.sum(f.T @ f) / cfg.batch
    return Batch(x, root_w, f, hf, overlap, overlap.double(), (comm.sum(f.T @ hf) / cfg.batch).double(),
                 (comm.sum(hf.T @ hf) / cfg.batch).double())


def rechoose_shift(state: TrainingState, problem: Problem) -> None:
    """(c, s) of T = s (c - H) from the Ritz values of the running averages (:func:`operator_shift`), with the
    shift margin's boost updated from the states' norm ratios; Ritz values NaN when the averages are not finite
    (the divergence check after this step rewinds it)."""
    cfg = problem.cfg
    s_now, h_now = state.s_ema.cpu().numpy(), state.h_ema.cpu().numpy()
    if not (np.isfinite(s_now).all() and np.isfinite(h_now).all()):
        state.ritz = state.residuals = np.full(len(s_now), np.nan)
        return
    if state.shift is not None:
        ratios = norm_ratios(s_now, h_now, state.shift, state.operator_scale)
        state.margin_boost = margin_boost(state.margin_boost, ratios, state.norm_ratios)
        state.norm_ratios = ratios
    solution = rayleigh_ritz(s_now, h_now)
    state.ritz = solution.energies
    with np.errstate(all="ignore"):             # a non-finite ⟨Hψ,Hψ⟩ leaves NaN residuals: not settled
        state.residuals = residual_norms(solution, s_now, h_now, state.h2_ema.cpu().numpy())
    state.shift, state.operator_scale = operator_shift(state.ritz, problem.v_inf, cfg.shift, cfg.shift_margin,
                                                       cfg.states, state.margin_boost)
    if cfg.operator_scale is not None:
        state.operator_scale = cfg.operator_scale


def gram_matrix(state: TrainingState, problem: Problem, proposal, batch: Batch) -> torch.Tensor | None:
    """⟨ψ_k,ψ_m⟩ for the descent direction: from ``gram_batch`` independent samples, the whole batch's when the
    batch is split over ranks, else None (the direction takes it from its own samples)."""
    cfg, comm = problem.cfg, problem.comm
    if cfg.gram_batch:
        with torch.no_grad():
            xg = draw(proposal, cfg.gram_batch // comm.world, state.generator, comm)
            fg = state.model(xg) * torch.exp(-0.5 * proposal.log_prob(xg))[:, None]
            return comm.sum(fg.T @ fg) / cfg.gram_batch
    return batch.overlap if comm.world > 1 else None


def move(state: TrainingState, problem: Problem, batch: Batch, gram: torch.Tensor | None, decay: float) -> None:
    """Move the networks along NestedLoRA's direction for T = s (c - H): a natural-gradient step (every rank the
    same), or a first-order step of the optimiser on the NestedLoRA loss; a non-finite direction counts as skipped."""
    cfg, comm, model = problem.cfg, problem.comm, state.model
    t_f = state.operator_scale * (state.shift * batch.f - batch.hf)
    if cfg.optimizer == "natural":
        direction = descent_direction(batch.f, t_f, cfg.nesting, gram)
        finite = bool(torch.isfinite(direction).all())
        if comm.world > 1:                  # every rank must take the same step
            finite = comm.max(float(not finite)) == 0.0
        if finite:
            natural_step(model, batch.x, batch.root_w, direction, batch.f, decay,
                         cfg.trust * decay * state.trust_factor, cfg.damping, comm)
        else:
            state.skipped += 1
        return
    loss = nestedlora_loss(model(batch.x) * batch.root_w, t_f, cfg.nesting, gram=gram)
    state.optimizer.zero_grad(set_to_none=True)
    if torch.isfinite(loss):
        loss.backward()
        state.optimizer.step()
    else:
        state.skipped += 1


def train_step(state: TrainingState, problem: Problem, decay: float) -> dict:
    """Advance ``state`` by one step with the step sizes ``decay`` times their start (:func:`step_decay`); returns
    the batch's S and H (float64)."""
    cfg = problem.cfg
    state.step += 1
    for group in state.optimizer.param_groups:
        group["lr"] = cfg.lr * decay * state.trust_factor
    proposal = state.model.proposal(problem.train_dtype, gaussian_width(cfg))
    batch = draw_batch(state, problem, proposal)
    state.s_ema = batch.s if state.s_ema is None else 0.9 * state.s_ema + 0.1 * batch.s
    state.h_ema = batch.h if state.h_ema is None else 0.9 * state.h_ema + 0.1 * batch.h
    state.h2_ema = batch.h2 if state.h2_ema is None else 0.9 * state.h2_ema + 0.1 * batch.h2
    if state.shift is None or state.step % LOG_EVERY == 0:
        rechoose_shift(state, problem)
    if state.shift is None:                 # no finite estimate yet (overflowing samples): nothing to step along
        state.skipped += 1
        return {"s": batch.s, "h": batch.h}
    move(state, problem, batch, gram_matrix(state, problem, proposal, batch), decay)
    fit = getattr(state.model, "fit_proposal", None)          # kinds whose proposal learns from ψ² (dets)
    if fit is not None:
        fit(batch.x, batch.f, problem.comm)
    with torch.no_grad():
        for avg, p in zip(state.averaged, state.model.parameters()):
            avg.lerp_(p, 1.0 - cfg.ema)
    return {"s": batch.s, "h": batch.h}


def _log(state: TrainingState, batch: dict) -> float:
    """Append the LoRA objective of the batch and the current Ritz values to the history."""
    s_b, h_b = batch["s"].cpu(), batch["h"].cpu()
    value = float("nan") if state.shift is None else \
        float(lora_objective(s_b, state.operator_scale * (state.shift * s_b.diagonal() - h_b.diagonal())))
    hist = state.history
    hist["step"].append(state.step)
    hist["loss"].append(value)
    hist["energies"].append(state.ritz)
    hist["residuals"].append(state.residuals)
    hist["shift"].append(state.shift)
    hist["time"].append(state.seconds)
    return value


def snapshot(state: TrainingState) -> dict:
    """A copy of everything in ``state`` that a step changes (for rewinds)."""
    return {"model": {k: v.clone() for k, v in state.model.state_dict().items()},
            "averaged": [a.clone() for a in state.averaged],
            "optimizer": _clone(state.optimizer.state_dict()),
            "scalars": dict(step=state.step, shift=state.shift, operator_scale=state.operator_scale, skipped=state.skipped,
                            margin_boost=state.margin_boost,
                            norm_ratios=None if state.norm_ratios is None else state.norm_ratios.copy(),
                            s_ema=None if state.s_ema is None else state.s_ema.clone(),
                            h_ema=None if state.h_ema is None else state.h_ema.clone(),
                            h2_ema=None if state.h2_ema is None else state.h2_ema.clone(),
                            ritz=None if state.ritz is None else state.ritz.copy(),
                            residuals=None if state.residuals is None else state.residuals.copy(),
                            plateaus=list(state.plateaus)),
            "history": {k: len(v) for k, v in state.history.items()}}


def restore(state: TrainingState, snap: dict) -> None:
    """Put ``state`` back to a :func:`snapshot` (the sampling stream and the clock go on)."""
    state.model.load_state_dict(snap["model"])
    for avg, saved in zip(state.averaged, snap["averaged"]):
        avg.copy_(saved)
    state.optimizer.load_state_dict(_clone(snap["optimizer"]))
    for key, value in snap["scalars"].items():
        setattr(state, key, value.clone() if isinstance(value, torch.Tensor) else value)
    for key, n in snap["history"].items():
        del state.history[key][n:]


def _clone(obj):
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clone(v) for v in obj]
    return obj


def divergence(state: TrainingState, batch: dict) -> str | None:
    """At a log point, why the steps since the last one must be undone, or None: non-finite overlaps or weights,
    or Ritz values that moved by more than JUMP_FACTOR times the scale of the previous spectrum,
    (E_max - E_min) + |E_min|: an exploding step, far beyond the moves of a level being found. Checked every
    LOG_EVERY steps only, so that a GPU run waits for the device once per log point, not once per step."""
    if state.step % LOG_EVERY:
        return None
    if not (torch.isfinite(batch["s"]).all() and torch.isfinite(batch["h"]).all()):
        return "non-finite overlaps"
    if not all(torch.isfinite(p).all() for p in state.model.parameters()):
        return "non-finite weights"
    energies = state.history["energies"]
    if len(energies) < 2 or not np.all(np.isfinite(energies[-2])):
        return None
    before, now = energies[-2], energies[-1]
    scale = before.max() - before.min() + abs(before.min())
    if not np.all(np.isfinite(now)) or np.abs(now - before).max() > JUMP_FACTOR * scale:
        return f"Ritz values jumped by {float(np.abs(now - before).max()):.3g} hartree"
    return None


def step_decay(state: TrainingState, cfg: SolverConfig) -> float:
    """The factor on the step sizes at the next step. A fixed schedule: the cosine of max(step/steps,
    seconds/budget). A run without ``steps``: the level of its current stage (:func:`~qsolver.stopping.levels`),
    at most the cosine of max(step/max_steps, seconds/budget), so that the cap or the budget, when they come
    first, still end the run at the smallest step size."""
    cosine = schedule(fraction_done(state, cfg, ahead=1), cfg.lr_final)
    if cfg.steps is not None:
        return cosine
    stages = levels(cfg.lr_final)
    return min(stages[min(len(state.plateaus), len(stages) - 1)], cosine)


def fraction_done(state: TrainingState, cfg: SolverConfig, ahead: int = 0) -> float:
    """max(step/N, seconds/budget) after ``ahead`` more steps, N the fixed ``steps`` or else the cap ``max_steps``:
    how far the cosine schedule (a run's ceiling without ``steps``) has come."""
    return max((state.step + ahead) / (cfg.steps if cfg.steps is not None else cfg.max_steps),
               state.seconds / cfg.budget if cfg.budget else 0.0)


def finished(state: TrainingState, cfg: SolverConfig) -> bool:
    """Whether training is over: the budget spent, the fixed ``steps`` done, or (without ``steps``) the states
    levelled off at the last step size or the cap ``max_steps`` reached."""
    if cfg.budget and state.seconds >= cfg.budget:
        return True
    if cfg.steps is not None:
        return state.step >= cfg.steps
    return len(state.plateaus) >= len(levels(cfg.lr_final)) or state.step >= cfg.max_steps


def check_plateau(state: TrainingState, problem: Problem) -> None:
    """A run without ``steps``, at a log point: record a plateau (and so move to the next step size) when the
    reported states' Ritz values and residuals logged since the current stage began have levelled off
    (:func:`~qsolver.stopping.settled`)."""
    cfg, hist = problem.cfg, state.history
    if cfg.steps is not None:
        return
    start = bisect.bisect_right(hist["step"], state.plateaus[-1] if state.plateaus else 0)
    if settled(hist["energies"][start:], hist["residuals"][start:], cfg.states):
        state.plateaus.append(state.step)


def stop_reason(state: TrainingState, cfg: SolverConfig) -> str:
    """Why a finished run stopped (a key of :data:`qsolver.stopping.REASONS`), signals and divergence aside."""
    if cfg.steps is not None:
        return "steps" if state.step >= cfg.steps else "budget"
    if len(state.plateaus) >= len(levels(cfg.lr_final)):
        return "converged"
    return "budget" if cfg.budget and state.seconds >= cfg.budget else "cap"


def train(state: TrainingState, problem: Problem, stop: Callable[[], bool] = lambda: False,
          ) -> Iterator[TrainingState]:
    """Run steps until :func:`finished` or ``stop()`` (asked on rank 0, obeyed by all); yield the state
    after every step. Only the steps' own time counts as training time, not the consumer's; rank 0's clock is
    every rank's, so all ranks see the same state.seconds and make the same decisions."""
    cfg, comm = problem.cfg, problem.comm
    good = snapshot(state)
    state.seconds, halt = comm.broadcast([state.seconds, float(stop())])
    while not finished(state, cfg) and not halt:
        tick = time.perf_counter()
        batch = train_step(state, problem, step_decay(state, cfg))
        logged = state.step % LOG_EVERY == 0 or state.step == cfg.steps
        if logged:
            _log(state, batch)
        reason = divergence(state, batch)
        if reason is not None:
            failed = state.step
            restore(state, good)
            state.trust_factor *= 0.5
            state.rewinds.append(failed)
            if len(state.rewinds) > MAX_REWINDS:
                raise Diverged(f"training diverged at step {failed} ({reason}) after {MAX_REWINDS} rewinds", state)
        elif logged:
            check_plateau(state, problem)
            good = snapshot(state)
        state.seconds, halt = comm.broadcast([state.seconds + time.perf_counter() - tick, float(stop())])
        yield state


def averaged_model(state: TrainingState, dtype: torch.dtype | None = None) -> Network:
    """A detached copy of the networks carrying the averaged weights (what training returns)."""
    model = state.model
    copy = build(model.config).to(device=state.averaged[0].device, dtype=state.averaged[0].dtype)
    copy.load_state_dict(model.state_dict())
    with torch.no_grad():
        for avg, p in zip(state.averaged, copy.parameters()):
            p.copy_(avg)
    return copy if dtype is None else copy.to(dtype=dtype)
