"""Closed-form levels against independently written values and brute-force enumeration."""
import itertools
import math

import numpy as np
import pytest

from qsolver import System
from qsolver.references.analytic import analytic_reference, box_levels, hydrogen_levels, oscillator_levels
from qsolver.validate import degeneracy_groups


def test_hydrogen_2d_paper_convention():
    # H = -∇² - 1/r (κ = 1): E = -1/(4 (n + ½)²), n = 0, 1, ..., degeneracy 2n + 1
    expected = [-1 / (4 * (n + 0.5) ** 2) for n in range(4) for _ in range(2 * n + 1)]
    assert np.allclose(hydrogen_levels(1.0, 1.0, 2, 16), expected, rtol=1e-14)
    assert np.allclose(hydrogen_levels(1.0, 1.0, 2, 16)[[0, 1, 4, 9]], [-1.0, -1 / 9, -1 / 25, -1 / 49], rtol=1e-14)


def test_hydrogen_3d_any_charge_and_kappa():
    # κ = ½: E = -Z²/(2n²), degeneracy n²; for general κ, E scales as 1/κ
    z = 2.0
    expected = [-z**2 / (2 * n**2) for n in range(1, 4) for _ in range(n * n)]
    assert np.allclose(hydrogen_levels(z, 0.5, 3, 14), expected, rtol=1e-14)
    assert np.allclose(hydrogen_levels(z, 1.0, 3, 14), np.array(expected) / 2, rtol=1e-14)
    # 2D, Z = 3, κ = ½: E = -Z²/(2(n+½)²)
    assert np.isclose(hydrogen_levels(3.0, 0.5, 2, 1)[0], -9 / (2 * 0.25))


def test_hydrogen_4d_degeneracies():
    # in d dimensions shell n holds Σ_{ℓ<n} dim(harmonics of degree ℓ); for d = 4, dim = (ℓ+1)²
    levels = hydrogen_levels(1.0, 0.5, 4, 20)
    assert list(np.bincount(degeneracy_groups(levels))) == [1, 5, 14]
    assert np.isclose(levels[0], -1 / (2 * 1.5**2))


def brute(energy, dims, start, n):
    values = sorted(energy(idx) for idx in itertools.product(range(start, start + (40 if dims == 1 else 12)), repeat=dims))
    return np.array(values[:n])


@pytest.mark.parametrize("omega", [[1.0], [1.0, 1.0], [1.0, 2.3], [0.7, 1.0, 1.9], [1.0] * 4])
@pytest.mark.parametrize("kappa", [0.5, 1.0])
def test_oscillator_levels(omega, kappa):
    n = 20
    f = math.sqrt(2 * kappa)
    expected = brute(lambda idx: f * sum(w * (k + 0.5) for w, k in zip(omega, idx)), len(omega), 0, n)
    assert np.allclose(oscillator_levels(omega, kappa, n), expected, rtol=1e-13)


def test_oscillator_3d_degeneracies():
    levels = oscillator_levels([1.0] * 3, 0.5, 20)
    assert list(np.bincount(degeneracy_groups(levels))) == [1, 3, 6, 10]
    assert np.allclose(levels[[0, 1, 4, 10]], [1.5, 2.5, 3.5, 4.5])


@pytest.mark.parametrize("lengths", [[1.0], [math.pi, math.pi], [1.0, 1.7], [1.0, 1.2, 2.0]])
def test_box_levels(lengths):
    expected = brute(lambda idx: 0.5 * sum((math.pi * k / s) ** 2 for s, k in zip(lengths, idx)), len(lengths), 1, 15)
    assert np.allclose(box_levels(lengths, 0.5, 15), expected, rtol=1e-13)


def test_analytic_reference_dispatch_and_refusal():
    s = System("h", 3, {"kind": "coulomb", "charges": [1.0], "centers": [[0, 0, 0]]})
    assert np.isclose(analytic_reference(s, 1).energies[0], -0.5)
    h2 = System("h2plus", 3, {"kind": "coulomb", "charges": [1.0, 1.0], "centers": [[0, 0, -1], [0, 0, 1]]})
    from qsolver import InputError

    with pytest.raises(InputError, match="no closed-form"):
        analytic_reference(h2, 4)


def test_benchmarks_measure_against_literature_only_where_it_quotes_every_state():
    # a file quoting its ground level only (as beryllium does) is measured against its own kind for more states
    from qsolver.references import exact_or_own
    from qsolver.system import System

    system = System("osc", dimension=1, potential={"kind": "harmonic", "omega": 1.0}, reference="analytic",
                    reference_options={"literature": {"source": "s", "levels": [0.5], "precision": 0.0}})
    assert exact_or_own(system, 1).kind == "literature"
    assert np.allclose(exact_or_own(system, 3).energies[:3], [0.5, 1.5, 2.5])      # ω(n + ½), analytic
