"""Is a learned spectrum a complete run of eigenstates? Two checks that every validation carries.

- Residuals. Each Ritz state φ_i has σ_i = ‖(H - E_i)φ_i‖ (hartree); by Weinstein's bound an exact level lies
  within σ_i of E_i, but which one is not pinned down once σ_i is a sizeable part of the spectrum. A state with
  σ_i > RESIDUAL_LIMIT × ((E_max - E_min) + |E_min|) is flagged as not an eigenstate (a network that lost its
  level, or one that has not converged). Converged runs of the shipped systems stay below 0.05.
- Level count. The levels of an independent reference lying below the highest learned energy E_top, by more than
  3 of its error bars plus the reference's own error, must number fewer than the learned states: if L of them
  do, a level below E_top was skipped. The reference is the system's own where it has one that is cheap;
  otherwise, for one particle in d ≤ 3, a coarse grid (:func:`count_reference`), whose stated error enters the
  margin.
- Numbers. A result whose energies, error bars, Ritz coefficients or network weights are not all finite (a failed
  run or a damaged file) is flagged: its levels mean nothing.
- Terms. Where the system file names the terms of its lowest states (``[reference] terms``), each degenerate group
  of them (equal reference levels) must hold PURE of its expected terms' share (:mod:`qsolver.symmetry`): an
  eigenstate of H of another symmetry is a stationary point the training does not leave, and its level, residual
  and error bar can look converged (beryllium's 2p² ¹D for 2s3s ¹S).
- Scale. An error bar larger than the spectrum's scale (E_max - E_min) + |E_min| says nothing about the level, and
  a state reported above the continuum threshold by more than 3 error bars, where the reference has a bound level
  of that index, is a bound state the run failed to find, not the continuum: both are flagged (they hold for the
  states above the threshold too, which the two checks above leave out).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import InputError
from .fd_grid import COARSE_POINTS
from .references import Reference, grid_reference
from .references.radial import single_centre
from .result import Result
from .ritz import RESIDUAL_LIMIT, not_eigenstates, spectrum_scale
from .symmetry import PURE, expected_terms, result_shares

# a network whose samples' effective fraction (Σ w ψ²)² / (N Σ (w ψ²)²) is below this is covered by a handful of
# samples: its overlaps, and so its energy and error bar, rest on them (the shipped results keep 0.036 and more)
ESS_COLLAPSED = 0.01
DEGENERATE = 1e-7      # reference levels this close (relative) are one level, whose states are checked together
EXIT_FLAGGED = 4       # exit status of `qsolver solve` / `validate` when a check fails (compare, plot: non-finite)


def skipped_levels(energies: np.ndarray, errors: np.ndarray, levels: np.ndarray,
                   level_errors: np.ndarray | float = 0.0) -> int:
    """How many reference levels the learned states cannot account for (0 when the count fits): the k-th lowest
    finite learned energy (k from 0) lies above at most k levels, so max_k #{levels < E_k - 3 err_k - err_level} - k.
    Every state is a witness, not the top one alone: an unconverged top state's wide bar hides nothing lower down."""
    e, err = np.asarray(energies, dtype=float), np.asarray(errors, dtype=float)
    finite = np.isfinite(e)
    if not finite.any():
        return 0
    order = np.flatnonzero(finite)[np.argsort(e[finite])]
    spread = np.where(np.isfinite(err[order]), err[order], 0.0)
    levels = np.asarray(levels, dtype=float)
    margin = 3 * spread[:, None] + np.broadcast_to(level_errors, len(levels))[None, :]
    below = np.sum(levels[None, :] < e[order][:, None] - margin, axis=1)
    return int(max(0, np.max(below - np.arange(order.size))))


def non_finite(result: Result) -> list[str]:
    """What in ``result`` is not a finite number (empty when all is): energies and error bars per state, the
    Rayleigh–Ritz coefficients, the network's weights and buffers."""
    out = []
    for name, values in (("energies", result.energies), ("error bars", result.errors)):
        bad = np.flatnonzero(~np.isfinite(np.asarray(values, dtype=float)))
        if bad.size:
            out.append(f"{name} of state(s) {', '.join(map(str, bad))}")
    if not np.all(np.isfinite(np.asarray(result.coefficients, dtype=float))):
        out.append("Rayleigh–Ritz coefficients")
    tensors = [*result.model.parameters(), *result.model.buffers()]
    if any(t.is_floating_point() and not bool(torch.isfinite(t).all()) for t in tensors):
        out.append("network weights")
    return out


def wide_errors(energies: np.ndarray, errors: np.ndarray) -> list[int]:
    """States whose error bar exceeds the spectrum's scale: E ± error could then be any of its levels, or none."""
    err = np.asarray(errors, dtype=float)
    return [int(i) for i in np.flatnonzero(np.isfinite(err) & (err > spectrum_scale(energies)))]


def unbound_states(energies: np.ndarray, errors: np.ndarray, levels: np.ndarray, level_errors: np.ndarray,
                   threshold: float | None) -> list[int]:
    """States reported above the continuum ``threshold`` by more than 3 error bars although the reference's level
    of the same index is bound (below the threshold by more than its own error): Ritz values lie above their
    levels, so such a state is a bound level the run did not reach, not a piece of the continuum."""
    if threshold is None or not np.isfinite(threshold):
        return []
    e, err = np.asarray(energies, dtype=float), np.asarray(errors, dtype=float)
    bound_levels = int(np.sum(np.asarray(levels, dtype=float) + level_errors < threshold))
    above = np.isfinite(e) & (e - 3 * np.nan_to_num(err, nan=0.0) > threshold)
    return [int(i) for i in np.flatnonzero(above[:bound_levels])]


def wrong_terms(result: Result, reference: Reference | None) -> list[tuple[int, str, float]]:
    """States not of the terms ``[reference] terms`` expects: (state, expected term, its share in that term's
    irreps). The states of one degenerate reference level are taken together, as any rotation among them is as
    good: for each term T expected k times there, Σ over the level's states of the share in T must reach PURE·k
    (hydrogen's 2s and 2p, accidentally degenerate, may mix; their level holds one S and three P° all the same)."""
    expected = expected_terms(result.system)
    found = result_shares(result) if expected else None
    if found is None:
        return []
    sym = found[0]
    column = {r: i for i, r in enumerate(sym.irreps)}
    n = min(len(expected), result.n_states, len(sym.shares))
    share = np.array([[sum(sym.shares[i, column[r]] for r in reps) for _, reps in expected[:n]] for i in range(n)])
    levels = np.asarray(reference.energies, dtype=float) if reference is not None else np.array([])
    starts = [i for i in range(n) if i == 0 or i >= len(levels) or
              abs(levels[i] - levels[i - 1]) > DEGENERATE * max(abs(levels[i]), 1.0)]
    out = []
    for start, stop in zip(starts, [*starts[1:], n]):
        idx = range(start, stop)
        for j in idx:
            same = [k for k in idx if expected[k][1] == expected[j][1]]
            if share[list(idx), j].sum() < PURE * len(same):     # NaN shares (a vanishing state) say nothing
                out.append((j, expected[j][0], float(share[j, j])))
    return out


def count_reference(result: Result) -> Reference | None:
    """A coarse grid's levels for the level count of a system without a cheap reference of its own (one particle,
    d ≤ 3; seconds), or None where no grid applies (more particles, higher dimension, 1D Coulomb)."""
    system = result.system
    if system.particles != 1 or system.dimension > 3:
        return None
    coarse = {} if single_centre(system) is not None else {"points": COARSE_POINTS[system.dimension]}
    try:                                     # (one Coulomb centre: radial equations, exact and instant)
        return grid_reference(system, result.n_states, **coarse)
    except InputError:
        return None


@dataclass
class LevelCheck:
    """Outcome of both checks: flagged states, levels skipped below the top one, and what the count used."""

    not_eigenstates: list[int] = field(default_factory=list)
    skipped: int = 0
    counted_with: str | None = None      # the reference method of the level count; None = not counted
    non_finite: list[str] = field(default_factory=list)
    wide_errors: list[int] = field(default_factory=list)
    unbound: list[int] = field(default_factory=list)
    collapsed: list[int] = field(default_factory=list)   # networks whose effective sample fraction collapsed
    wrong_terms: list[tuple[int, str, float]] = field(default_factory=list)   # (state, expected term, its share)

    @property
    def flagged(self) -> bool:
        return bool(self.not_eigenstates or self.non_finite or self.wide_errors or self.unbound or self.collapsed
                    or self.wrong_terms) or self.skipped > 0

    def messages(self) -> list[str]:
        """One line per failed check (empty when both pass)."""
        out = []
        if self.non_finite:
            out.append(f"not finite: {'; '.join(self.non_finite)} (a failed run or a damaged file: these numbers "
                       "mean nothing)")
        if self.not_eigenstates:
            out.append(f"state(s) {', '.join(map(str, self.not_eigenstates))} are not eigenstates: residual "
                       f"‖(H - E)φ‖ above {RESIDUAL_LIMIT:g} of the spectrum's scale (a lost level or an unconverged "
                       "network; train longer or with another seed)")
        if self.skipped:
            out.append(f"{self.skipped} level(s) of the reference ({self.counted_with}) lie below the highest learned "
                       "energy but are missing from the learned spectrum (a skipped level)")
        if self.wide_errors:
            out.append(f"state(s) {', '.join(map(str, self.wide_errors))} have error bars larger than the spectrum's "
                       "scale (E_max - E_min) + |E_min|: the energy names no level (train longer)")
        if self.unbound:
            out.append(f"state(s) {', '.join(map(str, self.unbound))} lie above the continuum threshold by more than "
                       f"3 error bars where the reference ({self.counted_with}) has bound levels: bound states the "
                       "run did not reach, not the continuum (train longer)")
        if self.collapsed:
            out.append(f"network(s) {', '.join(map(str, self.collapsed))} have an effective sample fraction below "
                       f"{ESS_COLLAPSED:g}: a few samples carry their overlaps, so their energies and error bars are "
                       "unreliable (the proposal does not cover those states)")
        if self.wrong_terms:
            states = "; ".join(f"{i}: {term} expected, its share {share:.2f}" for i, term, share in self.wrong_terms)
            out.append(f"state(s) not of the terms the system file expects ([reference] terms): {states} (an "
                       "eigenstate of another symmetry, or a mixture; train with an extra state or another seed)")
        return out

    def summary(self) -> str:
        """The validation table's line."""
        if self.flagged:
            return "FLAGGED: " + "; ".join(self.messages())
        counted = f"; level count against {self.counted_with}" if self.counted_with else "; no level count"
        return f"passed (residuals below {RESIDUAL_LIMIT:g} of the spectrum's scale{counted})"


def check_levels(result: Result, reference: Reference | None, threshold: float | None = None) -> LevelCheck:
    """Every check of ``result``: its numbers finite and its error bars within the spectrum's scale; residuals and
    level count for the states below the continuum ``threshold`` (states above it discretise the continuum and are
    labelled so by the validation), unless the reference has a bound level there. The level count uses
    ``reference`` (None: no count) and only its levels below the threshold (a basis set's discretised continuum is
    not a level)."""
    e = np.asarray(result.energies, dtype=float)
    bound = e < threshold if threshold is not None and np.isfinite(threshold) else np.ones(len(e), bool)
    residuals = np.asarray(result.diagnostics.get("residuals", np.full(len(e), np.nan)), dtype=float)
    flags = not_eigenstates(np.where(bound, e, np.nan), residuals)
    ess = np.asarray(result.diagnostics.get("ess_fraction", []), dtype=float)
    numbers = dict(non_finite=non_finite(result), wide_errors=wide_errors(e, result.errors),
                   collapsed=[int(i) for i in np.flatnonzero(ess < ESS_COLLAPSED)],
                   wrong_terms=wrong_terms(result, reference))
    if reference is None:
        return LevelCheck(flags, **numbers)
    levels = np.asarray(reference.energies, dtype=float)
    level_errors = np.broadcast_to(reference.errors if reference.errors is not None else reference.error,
                                   len(levels))
    keep = levels < threshold if threshold is not None and np.isfinite(threshold) else np.ones(len(levels), bool)
    skipped = skipped_levels(np.where(bound, e, np.nan), result.errors, levels[keep], level_errors[keep])
    unbound = unbound_states(e, result.errors, levels, level_errors, threshold)
    return LevelCheck(flags, skipped, reference.method, unbound=unbound, **numbers)
