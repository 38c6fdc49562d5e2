"""Transition dipoles and oscillator strengths (qsolver.dipoles, qsolver.spectrum) against exact numbers.

f_ij = (E_j - E_i)|d_ij|²/(κd) with the Thomas–Reiche–Kuhn sum rule Σ_j f_ij = N. The estimator is checked on exact
wavefunctions (oscillator, hydrogen) with their exact dipoles, the level grouping on a rotation inside a degenerate
level, and the committed trained results (results/*/*.h5) on fresh samples against the exact strengths.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.integrate import dblquad

import qsolver
from qsolver.dipoles import (Dipoles, jackknife_error, level_strengths, oscillator_strengths, sample_dipoles, transition_dipoles,
                             transitions)
from qsolver.io import load_result, save_result
from qsolver.references import system_reference
from qsolver.references.strengths import HELIUM_1S_2P, HELIUM_PRECISION, hydrogen_strength
from qsolver.sampling import ExponentialMixture, GaussianMixture
from qsolver.spectrum import spectrum, state_groups

REPO = Path(__file__).resolve().parents[1]
Z_TOL = 4.0        # a measured f may lie this many jackknife errors from the exact one (about 1 in 16000 by chance)


class OneParticle:
    """A one-particle proposal on configurations (B, 1, d)."""

    def __init__(self, density):
        self.density = density

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.density.sample(n, generator)[:, None, :]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.density.log_prob(x[:, 0])


class Exact(torch.nn.Module):
    """Fixed wavefunctions as a 'network': forward(x) = fn(x[:, 0]) (B, L)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.unit = torch.nn.Parameter(torch.ones((), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x[:, 0])


def oscillator_states(x: torch.Tensor) -> torch.Tensor:
    """The 1D oscillator's lowest four states (ω = 1, κ = ½): H_n(x) e^(-x²/2) / √(2^n n! √π)."""
    x = x[:, 0]
    hermite = [torch.ones_like(x), 2 * x, 4 * x**2 - 2, 8 * x**3 - 12 * x]
    return torch.stack([h * torch.exp(-x**2 / 2) / math.sqrt(2**n * math.factorial(n) * math.sqrt(math.pi))
                        for n, h in enumerate(hermite)], -1)


def hydrogen_states(x: torch.Tensor) -> torch.Tensor:
    """3D hydrogen (κ = ½, Z = 1): 1s = e^(-r)/√π, 2s = (2 - r) e^(-r/2)/√(32π), 2p_a = x_a e^(-r/2)/√(32π)."""
    r = torch.linalg.vector_norm(x, dim=-1)
    outer = torch.exp(-r / 2) / math.sqrt(32 * math.pi)
    return torch.stack([torch.exp(-r) / math.sqrt(math.pi), (2 - r) * outer, *(x[:, a] * outer for a in range(3))], -1)


def test_the_sum_rule_holds_exactly_on_the_oscillator_ladder():
    """1D oscillator (κ = ½, ω = 1): d_{n,n+1} = √((n+1)/2), so f_{n,n+1} = n + 1 and f_{n,n-1} = -n: every row of f
    sums to N = 1 (the one line 0 → 1 has f = 1). With κ = 1 (mass ½) in the same V = ½x²: ω = √(2κ) = √2 and
    |d_{n,n+1}|² = (n+1)κ/ω, so f is unchanged."""
    n = 10
    energies = np.arange(n) + 0.5
    dipoles = np.zeros((n, n, 1))
    for k in range(n - 1):
        dipoles[k, k + 1, 0] = dipoles[k + 1, k, 0] = math.sqrt((k + 1) / 2)
    f = oscillator_strengths(energies, dipoles, 0.5)
    assert f[0, 1] == pytest.approx(1.0) and np.allclose(f[0, 2:], 0)
    np.testing.assert_allclose(f[:-1].sum(1), 1.0, rtol=1e-12)        # the last row misses its upper line
    omega = math.sqrt(2.0)
    f_heavy = oscillator_strengths(omega * energies, dipoles * math.sqrt(2 * 1.0 / omega), 1.0)
    np.testing.assert_allclose(f_heavy[:-1].sum(1), 1.0, rtol=1e-12)


def test_the_estimator_on_exact_oscillator_states():
    """Sampled dipoles of the exact states: ⟨0|x|1⟩ = 1/√2, f_01 = 1, f_02 = f_03 = 0, and from the first excited
    state f_10 + f_12 + f_13 = -1 + 2 + 0 = 1 (the sum rule, complete inside these four states)."""
    model = Exact(oscillator_states)
    proposal = OneParticle(GaussianMixture(torch.zeros(1, 1, dtype=torch.float64),
                                           torch.full((1, 1), 1.4, dtype=torch.float64)))
    dip = sample_dipoles(model, proposal, np.eye(4), 40000, 20, torch.Generator().manual_seed(1))
    assert abs(abs(dip.values[0, 1, 0]) - 1 / math.sqrt(2)) < Z_TOL * dip.errors[0, 1, 0]
    assert dip.errors[0, 1, 0] < 5e-3
    data = transitions(np.arange(4) + 0.5, dip, 0.5)
    f, err = data["oscillator_strengths"], data["oscillator_strength_errors"]
    np.testing.assert_array_less(np.abs(f[0, 1:] - [1, 0, 0]), Z_TOL * err[0, 1:] + 1e-12)
    assert abs(f[1].sum() - 1) < Z_TOL * math.hypot(*err[1, [0, 2, 3]])


@pytest.fixture(scope="module")
def hydrogen() -> tuple[np.ndarray, Dipoles]:
    """Exact 3D hydrogen 1s, 2s, 2p on 200000 samples of e^(-r/2) (its tails cover the n = 2 states)."""
    proposal = OneParticle(ExponentialMixture(torch.zeros(1, 3, dtype=torch.float64),
                                              torch.full((1,), 2.0, dtype=torch.float64)))
    dip = sample_dipoles(Exact(hydrogen_states), proposal, np.eye(5), 200000, 20, torch.Generator().manual_seed(2))
    return np.array([-0.5, -0.125, -0.125, -0.125, -0.125]), dip


def test_the_estimator_on_exact_hydrogen(hydrogen):
    """⟨1s|z|2p_z⟩ = 2^7 √2 / 3^5 = 0.7449 bohr; 1s → n = 2 (2s + 2p): f = (2/3)(3/8)·3|⟨1s|z|2p_z⟩|² = 2^13/3^9 =
    0.4162 (1s → 2s is 0); the quadrature of qsolver.references.strengths gives it and 1s → 3p = 81/1024 = 0.0791."""
    energies, dip = hydrogen
    exact = 2**7 * math.sqrt(2) / 3**5
    for a in range(3):
        assert abs(abs(dip.values[0, 2 + a, a]) - exact) < Z_TOL * dip.errors[0, 2 + a, a]
    groups = np.array([0, 1, 1, 1, 1])
    f = level_strengths(energies, dip.values, groups, 0.5)[0, 1]
    err = jackknife_error(level_strengths(energies, dip.replicates, groups, 0.5)[:, 0, 1])
    assert abs(f - hydrogen_strength(3, 2)) < Z_TOL * err and err < 0.01 * f
    assert hydrogen_strength(3, 2) == pytest.approx(0.4162, abs=5e-5)
    assert hydrogen_strength(3, 3) == pytest.approx(0.0791, abs=5e-5)


def test_level_strengths_do_not_depend_on_the_basis_inside_a_level(hydrogen):
    """Rotating the n = 2 level's four states (2s, 2p) among themselves, d → Qᵀ d Q, leaves f(1s → n = 2), the
    reverse f(n = 2 → 1s) and the within-level f unchanged; per state the strengths do change."""
    energies, dip = hydrogen
    q = np.eye(5)
    q[1:, 1:] = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]
    rotated = np.einsum("mi,mnk,nj->ijk", q, dip.values, q)
    groups = np.array([0, 1, 1, 1, 1])
    np.testing.assert_allclose(level_strengths(energies, rotated, groups, 0.5),
                               level_strengths(energies, dip.values, groups, 0.5), atol=1e-12)
    assert not np.allclose(oscillator_strengths(energies, rotated, 0.5)[0],
                           oscillator_strengths(energies, dip.values, 0.5)[0], atol=1e-3)


def test_planar_hydrogen_closed_form():
    """2D hydrogen, κ = ½, Z = 1 (E = -1/(2(n - ½)²)): 1s = 4 e^(-2r)/√(2π) (E = -2), and the n = 2 level's p states
    2p_a = N r e^(-2r/3) (x_a/r)/√π with N² = (4/3)⁴/3! = 128/243 (E = -2/9). Only x_a couples 1s to 2p_a:
    ⟨1s|x_a|2p_a⟩ = (4/√(2π)) (N/√π) π ∫ r³ e^(-8r/3) dr = 4 N √π/√(2π) · 3!·(3/8)⁴ = √3888/256 bohr,
    so f(1s → 2p) = (2/d) ΔE Σ_a |d_a|² = (16/9)(2 · 3888/65536) = 27/128 = 0.2109375 (the same for every κ and Z:
    r → 2κr/Z scales ΔE by Z²/(2κ) and |d|² by (2κ/Z)²). Checked here against a direct 2D quadrature."""
    norm = math.sqrt(128 / 243)
    dipole = dblquad(lambda r, phi: 4 / math.sqrt(2 * math.pi) * math.exp(-2 * r) * r * math.cos(phi)
                     * norm * r * math.exp(-2 * r / 3) * math.cos(phi) / math.sqrt(math.pi) * r,
                     0, 2 * math.pi, 0, 40)[0]
    assert dipole == pytest.approx(math.sqrt(3888) / 256, rel=1e-8)
    assert 2 * (16 / 9) * dipole**2 == pytest.approx(27 / 128, rel=1e-8)         # f = (2/2) ΔE (d_x² + d_y²)
    assert hydrogen_strength(2, 2) == pytest.approx(27 / 128, rel=1e-8)


def test_groups_follow_the_reference_then_the_results_own_levels():
    result = load_result(REPO / "results" / "hydrogen_3d" / "hydrogen_3d.h5")
    reference = system_reference(result.system, result.n_states)
    assert state_groups(result, reference).tolist() == [0] + [1] * 4 + [2] * 9
    assert state_groups(result, None)[0] == 0 and state_groups(result, None)[1] == 1


def test_a_solved_result_stores_its_transitions_and_reads_them_back(tmp_path):
    """solve() estimates the dipoles on the final Rayleigh–Ritz samples; the file (format 3) holds them; a file of
    an older format has none and spectrum() estimates them on fresh samples instead."""
    result = qsolver.solve(qsolver.load_system("harmonic_1d"), n_states=3, steps=3, dtype="float64",
                           eval_samples=2000, eval_blocks=4, progress=False, threads=1)
    data = result.transitions
    assert data["dipoles"].shape == (3, 3, 1) and data["dipole_replicates"].shape == (4, 3, 3, 1)
    np.testing.assert_allclose(data["oscillator_strengths"],
                               oscillator_strengths(result.energies, data["dipoles"], 0.5))
    back = load_result(save_result(result, tmp_path / "r.h5"))
    for key, value in data.items():       # the replicates are stored in float32
        np.testing.assert_allclose(back.transitions[key], value, rtol=1e-6 if "replicates" in key else 0)
    assert "final Rayleigh–Ritz" in spectrum(back).source
    back.transitions = {}
    assert "fresh samples" in spectrum(back, samples=400).source


TRAINED = {  # committed result: [(initial level, final level, exact f)]
    "harmonic_1d": [(0, 1, 1.0), (0, 2, 0.0), (0, 3, 0.0)],
    "harmonic_3d": [(0, 1, 1.0), (0, 2, 0.0), (0, 3, 0.0)],
    "hydrogen_3d": [(0, 1, hydrogen_strength(3, 2)), (0, 2, hydrogen_strength(3, 3))],
    "hydrogen_2d": [(0, 1, 27 / 128), (0, 2, hydrogen_strength(2, 3))],
    "helium_singlet": [(0, 1, 0.0), (0, 2, HELIUM_1S_2P)],
}


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_committed_results_reproduce_the_exact_strengths(name):
    """The trained networks on 30000 fresh samples: each line within Z_TOL jackknife errors plus 2 % of the exact
    value (the learned states' own error: hydrogen_2d's third level is 8 % off, not checked; bench/
    oscillator_strengths.md has the numbers on many more samples), the ground level's sum within the rule's N."""
    path = REPO / "results" / name / f"{name}.h5"
    if not path.exists():
        pytest.skip("no committed results in this checkout")
    result = load_result(path)
    reference = system_reference(result.system, result.n_states) if result.system.particles == 1 else None
    lines = spectrum(result, reference or _literature(result), samples=30000)
    for g, h, exact in TRAINED[name]:
        f, err = lines.strengths[g, h], lines.errors[g, h]
        assert abs(f - exact) < Z_TOL * err + 0.02 * exact + (HELIUM_PRECISION if "helium" in name else 0), (g, h, f)


def _literature(result):
    from qsolver.references import reference

    return reference(result.system, result.n_states, "literature")
