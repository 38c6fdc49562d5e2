"""Variance extrapolation: how far each Ritz value still lies above its level, from how it fell with its residual.

Write a Ritz state as φ_i = ψ_i + δ_i with δ_i ⊥ ψ_i and split δ_i over the levels λ_k: E_i - λ_i = Σ|c_k|² (λ_k - λ_i)
and σ_i² = ‖(H - E_i)φ_i‖² ≈ Σ|c_k|² (λ_k - λ_i)², so E_i - λ_i ≈ σ_i²/ε_i with ε_i the error's mean excitation
energy (hartree). Kato–Temple bounds the ratio by ε_i ≥ Δ_i, the gap to the next level, and uses that bound; a
network's error is mostly of short wavelength (cusps, tails), with ε_i tens of hartree for atoms, where σ²/Δ
overstates the bias 100–1000×. Late in training ε_i changes slowly while σ_i² shrinks, so the waypoints
(E_ik, σ_ik²) evaluated on the way and the final (E_i, σ_i²) lie near the line E = λ_i + σ²/ε_i: its slope gives the
bias σ_i²/ε_i of the final state without knowing λ_i (the extrapolation to zero variance of quantum Monte Carlo).
Far from convergence a state sheds its short-wavelength error first, ε_i falls, and the line underestimates the
bias; such a state, recognised by how far it still falls, keeps the Kato–Temple estimate. Neither sees an error the
residual does not resolve: where several Ritz values approximate one degenerate level, their spread beyond their
noise does.
"""
from __future__ import annotations

import numpy as np

WAYPOINT_FRACTIONS = (0.5, 0.75)   # a fixed schedule's fractions at which the averaged weights are evaluated
WAYPOINTS_USED = 2                 # the latest this many waypoints, with the final evaluation, make the line
WAYPOINT_SHARE = 4                 # a waypoint's evaluation draws 1/this of the final evaluation's samples
MOVING = 0.03                      # a level that fell by more than this fraction of its cap since the first waypoint
                                   # (and by more than the fall's standard error) is still moving: the cap is its bias
DEGENERATE = 1e-3                  # Ritz values closer than this fraction of the span of all approximate one level
STUCK = 10.0                       # a state whose residual stood still at more than this many times the median σ²
                                   # of the run's states is stuck above its level: the cap is its bias


def waypoints_due(progress: float, taken: int, plateaus: int | None) -> bool:
    """Whether the averaged weights are to be evaluated now. A fixed schedule at ``progress`` (its fraction done):
    once each of WAYPOINT_FRACTIONS is passed. A run in stages (``plateaus``: the plateaus reached so far,
    :mod:`qsolver.stopping`): at the start of each stage after the first, where the step size has just halved."""
    if plateaus is not None:
        return taken < plateaus
    return taken < sum(progress >= f for f in WAYPOINT_FRACTIONS)


def extrapolated_bias(way_energies: np.ndarray, way_sigma2: np.ndarray, energies: np.ndarray,
                      sigma2: np.ndarray, cap: np.ndarray, stat: np.ndarray) -> np.ndarray:
    """Per state (hartree), from the waypoints (K, L) and the final values (L,), at most ``cap`` (the Kato–Temple
    estimate σ²/Δ, as ε_i ≥ Δ_i); ``stat`` (L,) the final values' statistical errors:

    - b σ_i², b ≥ 0 the least-squares slope of E against σ²: a level that did not fall while its residual shrank
      has b ≈ 0 (converged);
    - where the residuals did not change (a spread of σ² below a tenth of the final one, where the slope is noise):
      how far the level fell since the first waypoint, for a state at the run's noise floor;
    - either at least stat_i √(1 + WAYPOINT_SHARE), the standard error of the difference between the first waypoint
      and the end (the waypoint drew 1/WAYPOINT_SHARE of the samples): the line and the fall are measured from
      that difference, and a level can sit that far above its end without either showing it;
    - the cap for a state whose σ² stands still at over STUCK times the median of all states' (stuck: a mixed or
      wrong state the steps no longer improve; nothing in its trend bounds its error);
    - the cap itself where the level fell since the first waypoint by more than MOVING of it and by more than the
      fall's standard error stat_i √(1 + WAYPOINT_SHARE): a state still far from its level, whose error is then of
      long wavelength too (ε falls as training goes on) and the line underestimates it (results/bench/README.md,
      'Error bars'). A fall within its standard error is not read as movement: a converged level's end and first
      waypoint differ by that much by chance, half the time downwards;
    - no cap where it is 0: the de-noised σ² was all sampling noise, so the Kato–Temple estimate resolves nothing
      and cannot hold the line below the resolution of the comparison;
    - at least :func:`degenerate_excess`, which needs neither the residual nor the trend.

    NaN stays NaN."""
    e = np.vstack([np.asarray(way_energies, dtype=float), np.asarray(energies, dtype=float)])
    s = np.vstack([np.asarray(way_sigma2, dtype=float), np.asarray(sigma2, dtype=float)])
    cap = np.asarray(cap, dtype=float)
    resolved = cap != 0                      # NaN stays a ceiling, so that non-finite states stay NaN
    ceiling = np.where(resolved, cap, np.inf)
    with np.errstate(all="ignore"):          # non-finite states (and overflowing magnitudes) end as NaN or the cap
        ds, de = s - s.mean(0), e - e.mean(0)
        slope = (ds * de).sum(0) / (ds**2).sum(0)
        fell = np.maximum(e[0] - e[-1], 0.0)
        noise = np.asarray(stat, dtype=float) * np.sqrt(1.0 + WAYPOINT_SHARE)      # standard error of e[0] - e[-1]
        moved = np.sqrt((ds**2).mean(0)) > 0.1 * s[-1]
        stuck = ~moved & (s[-1] > STUCK * np.nanmedian(s[-1]))
        line = np.maximum(np.where(moved & np.isfinite(slope), np.maximum(slope, 0.0) * s[-1], fell), noise)
        moving = (fell > MOVING * cap) & (fell > noise)
        return np.maximum(np.where(resolved & (moving | stuck), cap, np.minimum(line, ceiling)),
                          degenerate_excess(energies, stat))


def degenerate_excess(energies: np.ndarray, stat: np.ndarray) -> np.ndarray:
    """max(0, E_i - min_G (E_j + 2 stat_j)) (hartree) per state, G the Ritz values that approximate one degenerate
    level λ_G (sorted, each within DEGENERATE × (max E - min E) of the next), ``stat`` their statistical errors: λ_G
    lies below every member's expectation, which lies below E_j + 2 stat_j but for a 2.3 % chance, so E_i - λ_G
    exceeds the excess. A level's states converge unevenly (the nesting orders them; the highest angular momenta come
    last), and this excess is what a residual at its noise floor cannot show; measuring it from a member's value
    alone would read that member's sampling noise below the level as the others' bias. 0 for a state alone in its
    group, NaN where E or stat is.

    An accidental near-degeneracy read as one level widens a bar by at most the true splitting."""
    e = np.asarray(energies, dtype=float)
    top = e + 2.0 * np.asarray(stat, dtype=float)
    out = np.full(e.shape, np.nan)
    order = np.flatnonzero(np.isfinite(top))
    order = order[np.argsort(e[order])]
    s = e[order]
    if s.size:
        starts = np.concatenate([[True], np.diff(s) > DEGENERATE * (s[-1] - s[0])])
        group = np.cumsum(starts) - 1
        floor = np.full(group[-1] + 1, np.inf)
        np.minimum.at(floor, group, top[order])
        out[order] = np.maximum(s - floor[group], 0.0)
    return out
