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
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .fd_grid import COARSE_POINTS
from .references import Reference, grid_reference
from .references.radial import single_centre
from .result import Result
from .ritz import RESIDUAL_LIMIT, not_eigenstates

EXIT_FLAGGED = 4                           # exit status of `qsolver solve` / `validate` when a check fails


def skipped_levels(energies: np.ndarray, errors: np.ndarray, levels: np.ndarray,
                   level_errors: np.ndarray | float = 0.0) -> int:
    """How many reference levels below the highest learned energy the learned states cannot account for
    (0 when the count fits): #{levels < E_top - 3 err_top - err_level} - (L - 1), L the finite learned states."""
    e, err = np.asarray(energies, dtype=float), np.asarray(errors, dtype=float)
    finite = np.isfinite(e)
    if not finite.any():
        return 0
    top = int(np.flatnonzero(finite)[np.argmax(e[finite])])
    margin = 3 * (err[top] if np.isfinite(err[top]) else 0.0) + np.broadcast_to(level_errors, len(levels))
    below = int(np.sum(np.asarray(levels, dtype=float) < e[top] - margin))
    return max(0, below - (int(finite.sum()) - 1))


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

    @property
    def flagged(self) -> bool:
        return bool(self.not_eigenstates) or self.skipped > 0

    def messages(self) -> list[str]:
        """One line per failed check (empty when both pass)."""
        out = []
        if self.not_eigenstates:
            out.append(f"state(s) {', '.join(map(str, self.not_eigenstates))} are not eigenstates: residual "
                       f"‖(H - E)φ‖ above {RESIDUAL_LIMIT:g} of the spectrum's scale (a lost level or an unconverged "
                       "network; train longer or with another seed)")
        if self.skipped:
            out.append(f"{self.skipped} level(s) of the reference ({self.counted_with}) lie below the highest learned "
                       "energy but are missing from the learned spectrum (a skipped level)")
        return out

    def summary(self) -> str:
        """The validation table's line."""
        if self.flagged:
            return "FLAGGED: " + "; ".join(self.messages())
        counted = f"; level count against {self.counted_with}" if self.counted_with else "; no level count"
        return f"passed (residuals below {RESIDUAL_LIMIT:g} of the spectrum's scale{counted})"


def check_levels(result: Result, reference: Reference | None, threshold: float | None = None) -> LevelCheck:
    """Both checks of ``result``, for the states below the continuum ``threshold`` (states above it discretise the
    continuum and are labelled so by the validation); the level count uses ``reference`` (None: no count) and
    only its levels below the threshold (a basis set's discretised continuum is not a level)."""
    e = np.asarray(result.energies, dtype=float)
    bound = e < threshold if threshold is not None and np.isfinite(threshold) else np.ones(len(e), bool)
    residuals = np.asarray(result.diagnostics.get("residuals", np.full(len(e), np.nan)), dtype=float)
    flags = not_eigenstates(np.where(bound, e, np.nan), residuals)
    if reference is None:
        return LevelCheck(flags)
    levels = np.asarray(reference.energies, dtype=float)
    level_errors = np.broadcast_to(reference.errors if reference.errors is not None else reference.error,
                                   len(levels))
    keep = levels < threshold if threshold is not None and np.isfinite(threshold) else np.ones(len(levels), bool)
    skipped = skipped_levels(np.where(bound, e, np.nan), result.errors, levels[keep], level_errors[keep])
    return LevelCheck(flags, skipped, reference.method)
