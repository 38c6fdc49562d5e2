"""When a run is done, and the settings derived from its size: the buffer of extra states, the plateau test of
the Ritz values and residuals, and the stages of a run without a fixed step count.

A run with ``steps`` unset trains in stages of constant step size, levels 1, ½, ¼, ... of the start down to
``lr_final`` (:func:`levels`). At a fixed step size the states approach the levels only to a noise floor set by
that size; every LOG_EVERY steps :func:`settled` fits a line to the block means of each reported state's Ritz value
and log-residual ‖(H - E)φ‖ over the stage's last SETTLE_POINTS log points, and when no trend is significant (at a
family-wise level over all those series) the states have reached that floor: the step size halves. The run stops
("converged") when they level off at the smallest one. So the number of steps follows the problem: states that
keep improving keep their step size, states at their floor move on at once. Halving on a plateau rather than a
cosine towards a horizon: any horizon fixed in advance (the cap) would leave the step sizes, and the noise of the
weights, near their start when the states settle. The cap ``max_steps`` and the ``budget`` bound the run: the
step sizes never exceed the cosine of max(step/max_steps, seconds/budget), so a run they end ("cap", "budget")
still ends at the smallest step size.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

LOG_EVERY = 10           # steps between log points (Ritz values, shift, divergence check, the plateau test)
SETTLE_POINTS = 80       # the trailing window of the plateau test: this many log points (800 steps) of the stage
SETTLE_BLOCKS = 16       # block means in the window (5 log points each, nearly independent)
SETTLE_ALPHA = 0.1       # noise alone fails a plateau test with this probability, over all its series together
STAGE_FACTOR = 0.5       # the step sizes halve at each plateau
SMALLEST = 2.0 ** -8     # the last stage's level when lr_final is 0 (a cosine to 0 has no last level)
BUFFER_FROM = 9          # runs of more states than this train a buffer (see buffer_states)

# Why a run stopped (diagnostics "stop_reason"), in words for the reports
REASONS = {"converged": "the Ritz values and residuals levelled off at every step size down to the smallest",
           "steps": "the fixed schedule of `steps` steps ended",
           "cap": "the step cap `max_steps` ended the run before the states levelled off at the smallest step size",
           "budget": "the time budget ended the run",
           "signal": "stopped by a signal (Ctrl-C or SIGTERM)",
           "diverged": "training diverged; the last good state was evaluated"}


def buffer_states(states: int, v_inf: float | None) -> int:
    """Networks trained beyond the reported ``states`` L: B = ⌈(L - BUFFER_FROM)/2⌉, none for L ≤ BUFFER_FROM or
    where V_∞ = lim V(x), |x| → ∞, is +∞ (a confining potential; None: not known).

    Where a continuum lies above the bound levels (Coulomb centres), the levels crowd below it and the operator's
    window reaches past them to V_∞ (:func:`qsolver.training.operator_shift`): the reported top level competes with
    the levels just above it (their eigenvalues of T lie within a few per cent), and networks trained above it let the
    final Rayleigh–Ritz step take that competition off the reported states (36 states of 2D hydrogen: mean
    relative error 5.7e-2 without, 5.8e-3 with 13 extra states, results/bench/README.md). The next degenerate group
    grows with L (2√L + 1 states for 2D shells, about (3L)^⅔ for 3D Coulomb ones), and so does B: 14 at L = 36, where
    2D hydrogen's next shell has 13; a step's cost, linear in the networks, grows by less than half. In a confining
    potential the window of the reported states alone, c = E_L + ¼ (E_L - E_min), often ends below the next level,
    so nothing above competes; a buffer must lie inside the window and lifts c over the next levels (harmonic_3d's 20
    states: six buffer states put c above its next shell and the mean error rose from 1.24e-5 to 1.51e-5). Runs of up
    to nine states (every N-electron system shipped), whose groups are small and whose networks are costly, train
    none.
    """
    if v_inf is not None and math.isinf(v_inf):
        return 0
    return max(0, math.ceil((states - BUFFER_FROM) / 2))


def levels(final: float) -> list[float]:
    """The stages' factors on the step sizes: 1, STAGE_FACTOR, STAGE_FACTOR², ... while above ``final`` (the
    schedule's lr_final; SMALLEST when 0), then ``final``: seven stages for the default 0.02."""
    final = min(final, 1.0) if final > 0 else SMALLEST
    out = [1.0]
    while out[-1] * STAGE_FACTOR > final:
        out.append(out[-1] * STAGE_FACTOR)
    return out + [final] if final < 1 else out


def settled(energies: list[np.ndarray], residuals: list[np.ndarray], reported: int) -> bool:
    """Whether the reported states' Ritz values and the logarithms of their residuals ‖(H - E)φ‖ (one row per log
    point of the current stage) have stopped moving: :func:`steady` for both."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = [np.log(np.asarray(r, dtype=float)) for r in residuals]
    return steady(energies, reported) and steady(logs, reported)


def steady(rows: list[np.ndarray], reported: int) -> bool:
    """Whether the first ``reported`` columns of ``rows`` (one row per log point) show no significant trend.

    The last SETTLE_POINTS rows are cut into SETTLE_BLOCKS blocks; a least-squares line through each column's
    block means has slope a_k and standard error σ_k (from the means' scatter about the line, which the trend does
    not inflate; the running averages forget 0.9 per step, so blocks of 5 log points are nearly independent).
    Steady when |a_k| ≤ t σ_k for every k, t the Šidák threshold of :func:`threshold` for this many columns and
    both kinds of series: pure noise passes with probability 1 - SETTLE_ALPHA however many states there are.
    Both ways, as the training estimates of the energies lie below the levels by the Monte Carlo bias of
    Rayleigh–Ritz, which shrinks (they rise) as the states approach eigenfunctions. The window is fixed, not a
    share of the stage: over a window growing with the stage a slowly improving state's drift grows while the
    block means' scatter shrinks, and the stage would never end."""
    if len(rows) < SETTLE_POINTS:
        return False
    size = SETTLE_POINTS // SETTLE_BLOCKS
    window = np.asarray(rows[-size * SETTLE_BLOCKS:], dtype=float)[:, :reported]
    if not np.all(np.isfinite(window)):
        return False
    means = window.reshape(SETTLE_BLOCKS, size, -1).mean(1)
    t = np.arange(SETTLE_BLOCKS) - (SETTLE_BLOCKS - 1) / 2
    slope = t @ means / (t @ t)
    scatter = means - means.mean(0) - np.outer(t, slope)
    error = np.sqrt((scatter**2).sum(0) / (SETTLE_BLOCKS - 2) / (t @ t))
    return bool(np.all(np.abs(slope) <= threshold(2 * reported) * error))


def threshold(series: int) -> float:
    """The Šidák threshold on |slope|/σ for ``series`` tests at once: the Student t quantile (SETTLE_BLOCKS - 2
    degrees of freedom) at two-sided level 1 - (1 - SETTLE_ALPHA)^(1/series): 2.1 for one state, 3.2 for nine."""
    level = 1.0 - (1.0 - SETTLE_ALPHA) ** (1.0 / series)
    return float(stats.t.ppf(1.0 - level / 2, SETTLE_BLOCKS - 2))


def describe(reason: str, steps_done: int, plateaus: list[int] | None = None) -> str:
    """One line on why a run of ``steps_done`` steps stopped (reason: a key of REASONS; ``plateaus``: the steps at
    which its states levelled off, runs without ``steps``)."""
    text = REASONS.get(reason, reason)
    if plateaus:
        text += f" (plateaus at steps {', '.join(map(str, plateaus))})"
    return f"{reason}: {text}, after {steps_done} steps"
