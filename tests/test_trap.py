"""Two particles in an isotropic harmonic trap (qsolver.references.trap) against closed forms (harmonium,
independent oscillators), an independent solver on the full (x_1, x_2) grid, and bad input."""
import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse.linalg as sla
import torch

from qsolver.errors import InputError
from qsolver.interactions import CoulombInteraction, ExpressionInteraction, NoInteraction
from qsolver.potentials import Coulomb, Harmonic
from qsolver.references.trap import trap_levels, trap_reference

torch.set_num_threads(1)


def coulomb(r: torch.Tensor) -> torch.Tensor:
    return 1 / r


def soft_coulomb(r: torch.Tensor) -> torch.Tensor:
    return 1 / torch.sqrt(r * r + 1)


def system(dimension=3, spin=0, omega=(0.5, 0.5, 0.5), potential=None, interaction=None, kinetic=0.5):
    """A duck-typed two-particle system, as qsolver.System will provide it."""
    return SimpleNamespace(particles=2, spin=spin, dimension=dimension, kinetic=kinetic, source="trap.toml",
                           potential=potential or Harmonic(list(omega), [0.0] * len(omega)),
                           interaction=interaction or CoulombInteraction(1.0))


@pytest.mark.parametrize("dimension, omega, exact", [(3, 0.5, 2.0), (2, 1.0, 3.0)])
def test_harmonium_singlet_ground_state(dimension, omega, exact):
    # κ = ½, W = 1/r: ψ_rel = (1 + r/2) e^{-r²/8} at ω = ½ in 3D (Taut 1993, E = 2 hartree) and
    # ψ_rel = (1 + r) e^{-r²/4} at ω = 1 in 2D solve the relative equation exactly (substitute: E_rel = 5/4 and 2)
    energies, errors, details = trap_levels(dimension, 0.5, omega, coulomb, 0, 1)
    assert abs(energies[0] - exact) <= errors[0] + 1e-13
    assert abs(energies[0] - exact) < 1e-9 and errors[0] < 1e-6
    assert details["labels"] == [(0, 0, 0)]


def test_taut_reference_from_a_system():
    ref = trap_reference(system(), 5)
    assert ref.energies[0] == pytest.approx(2.0, abs=1e-9)
    # next: the centre of mass excited (3 states, +ω), then the relative ℓ = 2 level (5 states)
    assert ref.details["labels"][:4] == [(0, 0, 0)] + [(1, 0, 0)] * 3
    assert np.allclose(ref.energies[1:4], 2.5, atol=1e-9)
    assert ref.error == pytest.approx(ref.errors.max()) and ref.error < 1e-6
    assert ref.method.startswith("separable trap: centre of mass + relative radial equation")


def one_particle_levels(dimension: int, kinetic: float, omega: float, quanta: int) -> list[float]:
    """Every one-particle oscillator state with n_1 + ... + n_d ≤ quanta, one entry per state."""
    factor = math.sqrt(2 * kinetic) * omega
    states = itertools.product(range(quanta + 1), repeat=dimension)
    return [factor * (sum(n) + dimension / 2) for n in states if sum(n) <= quanta]


@pytest.mark.parametrize("dimension, kinetic, omega", [(1, 0.5, 1.0), (2, 0.7, 1.3)])
def test_free_particles_fill_exchange_symmetric_pairs(dimension, kinetic, omega):
    # W = 0: singlets are symmetric products of one-particle states a ≤ b, triplets antisymmetric a < b
    n, single = 20, one_particle_levels(dimension, kinetic, omega, 12)
    pairs = {0: sorted(single[a] + single[b] for a in range(len(single)) for b in range(a, len(single))),
             2: sorted(single[a] + single[b] for a in range(len(single)) for b in range(a + 1, len(single)))}
    for spin in (0, 2):
        energies, errors, _ = trap_levels(dimension, kinetic, omega, NoInteraction(), spin, n)
        expected = np.array(pairs[spin][:n])
        assert np.all(np.abs(energies - expected) <= errors + 1e-12), (energies - expected, errors)
        assert np.abs(energies - expected).max() < 1e-9


def full_grid_levels(points: int, half_width: float, spin: int, count: int) -> np.ndarray:
    """Lowest levels of -½(∂₁² + ∂₂²) + ½(x_1² + x_2²) + 1/√((x_1 - x_2)² + 1) in one exchange sector,
    on a uniform (x_1, x_2) grid with the sinc-DVR kinetic matrix (Colbert-Miller), Lanczos on the projected
    operator: spectral accuracy for this smooth W, independent of the separation into r and R."""
    x = np.linspace(-half_width, half_width, points)
    h = x[1] - x[0]
    k = np.subtract.outer(np.arange(points), np.arange(points))
    kinetic = 0.5 / h**2 * np.where(k == 0, np.pi**2 / 3, 2.0 * (-1.0) ** k / np.where(k == 0, 1, k) ** 2)
    x1, x2 = np.meshgrid(x, x, indexing="ij")
    potential = 0.5 * (x1**2 + x2**2) + 1 / np.sqrt((x1 - x2) ** 2 + 1)
    sign = 1 if spin == 0 else -1

    def apply(v: np.ndarray) -> np.ndarray:
        # P H P + 100 (1 - P), P = exchange projector: the other sector moves far above the wanted levels
        psi = v.reshape(points, points)
        inside = 0.5 * (psi + sign * psi.T)
        h_psi = kinetic @ inside + inside @ kinetic + potential * inside
        return (0.5 * (h_psi + sign * h_psi.T) + 100.0 * (psi - inside)).ravel()

    operator = sla.LinearOperator((points**2, points**2), matvec=apply, dtype=float)
    start = np.random.default_rng(0).standard_normal(points**2)
    return np.sort(sla.eigsh(operator, k=count, which="SA", tol=1e-13, v0=start)[0])


@pytest.mark.parametrize("spin, count", [(0, 4), (2, 3)])
def test_one_dimensional_soft_coulomb_against_full_grid(spin, count):
    # the grid's own error: its change from 64 points on ±7 bohr to 96 on ±8 (spectral: measured ~1e-13);
    # 1e-10 covers the Lanczos tolerance. Measured |trap - grid| ≈ 6e-13.
    fine, coarse = full_grid_levels(96, 8.0, spin, count), full_grid_levels(64, 7.0, spin, count)
    grid_error = np.abs(fine - coarse)
    assert grid_error.max() < 1e-8
    energies, errors, details = trap_levels(1, 0.5, 1.0, soft_coulomb, spin, count)
    assert np.all(np.abs(energies - fine) <= grid_error + errors + 1e-10), (energies - fine, grid_error, errors)
    # exchange parity of the relative motion: singlets even (ℓ = 0), triplets odd (ℓ = 1)
    assert {ell for _, ell, _ in details["labels"]} == {spin // 2}


def test_expression_interaction_matches_callable():
    ref = trap_reference(system(1, 2, (1.0,), interaction=ExpressionInteraction("1/sqrt(r**2 + 1)")), 3)
    energies, _, _ = trap_levels(1, 0.5, 1.0, soft_coulomb, 2, 3)
    assert np.allclose(ref.energies, energies, atol=1e-12)


@pytest.mark.parametrize("potential", [Harmonic([1.0, 2.0], [0.0, 0.0]), Coulomb([1.0], [[0.0, 0.0]])])
def test_needs_an_isotropic_oscillator(potential):
    with pytest.raises(InputError, match="isotropic harmonic potential") as info:
        trap_reference(system(2, 0, potential=potential), 3)
    assert info.value.field == "potential" and info.value.source == "trap.toml"


def test_interaction_not_finite():
    broken = ExpressionInteraction("log(r - 1)")            # NaN for r < 1
    with pytest.raises(InputError, match="not finite") as info:
        trap_reference(system(2, 0, (1.0, 1.0), interaction=broken), 2)
    assert info.value.field == "interaction"


def test_refuses_the_singular_one_dimensional_coulomb_singlet():
    with pytest.raises(InputError, match="singular") as info:
        trap_reference(system(1, 0, (1.0,)), 2)
    assert info.value.field == "interaction"
