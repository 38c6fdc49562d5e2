"""The three uncertainty columns: the de-noised residual and the bias estimate on spans with known answers, and the
coverage / ratio arithmetic of `qsolver bench calibration`."""
from __future__ import annotations

import numpy as np

from qsolver.bench import calibration_summary
from qsolver.estimation import bar_ratio, coverage
from qsolver.ritz import bias_errors, denoised_residuals, residual_norms, rayleigh_ritz, span_errors

LEVELS = np.array([0.5, 1.5, 2.5, 3.5])          # the 1D oscillator, ω = 1


def span_blocks(eps: float, noise: float = 0.0, blocks: int = 40, seed: int = 0):
    """S, H, H2 block estimates for span{φ_0 + ε φ_2, φ_1} of the exact oscillator eigenfunctions, each block's H
    perturbed by symmetric Gaussian noise of size ``noise``: the Ritz vectors then mix the span's states by
    O(noise), which is how Monte Carlo noise enters the measured residual."""
    c = np.zeros((2, 4))
    c[0, 0], c[0, 2], c[1, 1] = 1.0, eps, 1.0                   # the trial functions in the eigenbasis
    s, h, h2 = c @ c.T, c @ np.diag(LEVELS) @ c.T, c @ np.diag(LEVELS**2) @ c.T
    rng = np.random.default_rng(seed)

    def noisy(m):
        e = rng.normal(scale=noise, size=(blocks, 2, 2))
        return m + 0.5 * (e + e.swapaxes(1, 2))
    return np.repeat(s[None], blocks, 0), noisy(h), np.repeat(h2[None], blocks, 0)


def test_noise_free_span_gives_the_second_order_error_within_its_bounds():
    eps = 1e-2
    s, h, h2 = span_blocks(eps)
    sol = rayleigh_ritz(s.mean(0), h.mean(0))
    exact_error = sol.energies[0] - 0.5                        # = 2 ε² / (1 + ε²), second order
    assert np.isclose(exact_error, 2 * eps**2 / (1 + eps**2))
    sigma = residual_norms(sol, s.mean(0), h.mean(0), h2.mean(0))
    sigma2 = denoised_residuals(s, h, h2)
    np.testing.assert_allclose(sigma2, sigma**2, rtol=1e-8, atol=1e-14)   # nothing to remove without noise
    np.testing.assert_allclose(sigma2[0], 4 * eps**2 / (1 + eps**2) ** 2, rtol=1e-8)   # ‖(H - E)φ‖²
    bias = bias_errors(sol.energies, sigma2, sigma)
    bound = span_errors(sol.energies, sigma)
    assert exact_error <= bias[0] <= bound[0] * (1 + 1e-12)
    assert bias[0] < 2.5 * exact_error                          # σ²/Δ with Δ = 1 against the true 2 (Δ_eff)
    assert bias[1] < 1e-12                                      # φ_1 is exact


def test_coverage_and_ratio():
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    bars = np.array([2.0, 2.0, 2.0, 8.0])
    assert coverage(actual, bars) == 0.75
    assert bar_ratio(actual, bars) == 2.0 / 2.5
    rows = [{"case": c, "state": i, "actual": a, "stat": b, "bias": 0.0, "bound": 10 * b, "headline": b}
            for i, (c, a, b) in enumerate(zip("aabb", actual, bars))]
    summary = calibration_summary(rows)
    assert summary["cases"]["a"]["coverage"] == 1.0 and summary["cases"]["b"]["coverage"] == 0.5
    assert summary["all"]["coverage"] == 0.75 and summary["all"]["old_coverage"] == 1.0
    assert np.isclose(summary["all"]["old_ratio"], np.median(np.hypot(bars, 10 * bars)) / 2.5)
