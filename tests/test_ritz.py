"""Rayleigh–Ritz residuals and the Kato–Temple span-error estimate on matrices with known answers."""
import numpy as np
import scipy.linalg

from qsolver.ritz import rayleigh_ritz, residual_norms, span_errors


def test_residual_vanishes_for_an_invariant_span_and_measures_contamination():
    levels = np.array([-1.0, -0.25, 0.5])
    s, h = np.eye(3), np.diag(levels)
    exact = rayleigh_ritz(s, h)
    assert np.allclose(residual_norms(exact, s, h, h @ h), 0.0, atol=1e-12)
    # the trial functions leave the span: ⟨Hψ_l, Hψ_m⟩ exceeds (H²)_lm by a positive matrix (the part of Hψ
    # outside the span); σ_i² = vᵢᵀ (H2 - (H²)_span) vᵢ for the Ritz vectors vᵢ
    extra = np.diag([1e-4, 4e-4, 9e-4])
    assert np.allclose(residual_norms(exact, s, h, h @ h + extra), [1e-2, 2e-2, 3e-2], rtol=1e-10)


def test_kato_temple_interval_holds_the_exact_level():
    # two exact levels λ0 < λ1; trial state cos θ u0 + sin θ u1 has ρ = λ0 + sin²θ (λ1 - λ0) and
    # σ² = sin²θ cos²θ (λ1 - λ0)²; Kato–Temple: ρ - σ²/(λ1 - ρ) ≤ λ0 ≤ ρ, with equality here
    lam0, lam1, theta = -1.0, -0.25, 0.1
    rho = lam0 + np.sin(theta) ** 2 * (lam1 - lam0)
    sigma = abs(np.sin(theta) * np.cos(theta)) * (lam1 - lam0)
    span = span_errors(np.array([rho, lam1]), np.array([sigma, 0.0]))
    assert np.isclose(rho - span[0], lam0, rtol=1e-12)
    assert span[1] == 0.0


def test_span_error_falls_back_to_weinstein_without_a_resolved_neighbour():
    # the only other Ritz value is closer than σ: no resolvable gap, so |ρ - λ| ≤ σ (Weinstein)
    span = span_errors(np.array([-1.0, -0.999]), np.array([0.01, 0.01]))
    assert np.allclose(span, [0.01, 0.01])
    # a continuum threshold above the level bounds the gap: Δ = V∞ - ρ
    span = span_errors(np.array([-0.5]), np.array([0.1]), threshold=0.0)
    assert np.isclose(span[0], 0.1**2 / 0.5)


def test_rayleigh_ritz_solves_the_generalised_problem_for_norms_many_orders_apart():
    """Functions whose norms differ by 1e14 (networks on nuclei 100 bohr apart): the Ritz values equal SciPy's
    generalised eigenvalues of the unit-norm problem, with S-orthonormal vectors; unscaled, canonical
    orthogonalisation would drop the small function as linearly dependent."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(4, 4))
    s_unit = a @ a.T + 4 * np.eye(4)
    h_unit = rng.normal(size=(4, 4))
    h_unit = h_unit + h_unit.T
    d = np.array([1.0, 1e-7, 1e7, 1.0])
    s, h = s_unit * np.outer(d, d), h_unit * np.outer(d, d)
    solution = rayleigh_ritz(s, h)
    np.testing.assert_allclose(solution.energies, scipy.linalg.eigh(h_unit, s_unit, eigvals_only=True), rtol=1e-10)
    np.testing.assert_allclose(solution.vectors.T @ s @ solution.vectors, np.eye(4), atol=1e-9)
