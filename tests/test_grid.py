"""Grid reference against closed-form levels and independent solvers, its own error estimate, the Coulomb
convergence order and bad input. Grids are small (seconds each); every level must lie within the grid's stated
error, and the stated error must not exceed 10× the true one (above a floor of 1e-9 hartree, the eigensolver's
accuracy) where the true levels are known in closed form. Potentials as a new user writes them (walls, shifted
minima, kinks, wells) are checked against a second-order finite-difference solve of our own, Richardson-
extrapolated (1D), and sums of such 1D levels (separable 2D/3D); one Coulomb centre (radial solver) against the
hydrogen-like levels to 1e-8 relative."""
import itertools
import math

import numpy as np
import pytest
import scipy.linalg as sl
import torch

import qsolver
from qsolver import InputError, System, fd_grid
from qsolver.fd_grid import GridOptions, solve_grid
from qsolver.references import reference
from qsolver.references.analytic import box_levels, hydrogen_levels, oscillator_levels
from qsolver.references.analytic_states import HydrogenStates

torch.set_num_threads(1)
FLOOR = 1e-9        # LOBPCG stops at residual 1e-5: energy errors ~1e-10; below this "true error" is noise


def check_against(ref, exact):
    true = np.abs(ref.energies - exact)
    assert np.all(true <= ref.errors + FLOOR), (true, ref.errors)
    # honest but not absurdly loose: the estimate is at most 10× the true error (the requirement)
    assert np.all(ref.errors <= 10 * np.maximum(true, FLOOR)), (true, ref.errors)
    assert ref.error == pytest.approx(ref.errors.max())
    states = ref.states
    gram = states.values.T @ (states.weights[:, None] * states.values)
    assert np.allclose(gram, np.eye(len(exact)), atol=1e-8)


@pytest.mark.parametrize("omega, kappa, points", [([1.0], 0.5, 60), ([1.0, 1.7], 1.0, 32),
                                                   ([1.0, 1.0, 1.0], 0.5, 24)])
def test_oscillator(omega, kappa, points):
    d = len(omega)
    system = System("osc", d, {"kind": "harmonic", "omega": omega}, kinetic=kappa, reference="none")
    n = 4
    ref = qsolver.reference(system, n, kind="grid", points=points)
    check_against(ref, oscillator_levels(omega, kappa, n))
    assert ref.method.startswith(f"grid: 8th-order finite differences, {points}^{d} points")


@pytest.mark.parametrize("name, charge, center, kinetic, dimension, n", [
    ("hydrogen_2d", 1.0, [0.0, 0.0], 1.0, 2, 16),            # shipped: shells n ≤ 3, -1/(4(n+½)²)
    ("hydrogen_2d", 1.0, [0.0, 0.0], 1.0, 2, 17),            # one state into the next shell (compare asks n + 1)
    ("hydrogen_3d", 1.0, [0.0, 0.0, 0.0], 0.5, 3, 14),       # shipped: shells n ≤ 3, -1/(2n²)
    (None, 2.0, [0.3, -1.2, 2.0], 0.5, 3, 14),               # He⁺ off the origin
    (None, 2.0, [3.0, -1.0], 0.5, 2, 9),
])
def test_single_coulomb_centre_is_solved_radially(name, charge, center, kinetic, dimension, n):
    # measured: ≤ 1e-11 relative (2D hydrogen ground state 9e-12, rounding), in < 0.1 s; the issue asks 1e-4.
    # The stated errors carry a rounding floor of ~1.6e-11 hartree: ≤ 1e-8 relative up to shell n = 4
    system = qsolver.load_system(name) if name else System(
        "he+", dimension, {"kind": "coulomb", "charges": [charge], "centers": [center]}, kinetic=kinetic,
        reference="none")
    ref = reference(system, n, kind="grid")
    exact = hydrogen_levels(charge, kinetic, dimension, n)
    true = np.abs(ref.energies - exact)
    assert np.all(true <= ref.errors + 1e-13), (true, ref.errors)
    assert np.all(ref.errors <= 1e-8 * np.abs(exact)), ref.errors
    assert ref.method.startswith("grid: radial equation per angular momentum")
    assert ref.details["center"] == center
    # the states: orthonormal on their rule and, shell by complete shell, the hydrogen-like ones
    states = ref.states
    gram = states.values.T @ (states.weights[:, None] * states.values)
    assert np.allclose(gram, np.eye(n), atol=1e-10)
    overlap = HydrogenStates(charge, center, kinetic, dimension, n)(states.points).T @ (
        states.weights[:, None] * states.values)
    for level in np.unique(np.round(exact, 12))[:-1]:
        shell = np.flatnonzero(np.isclose(exact, level, rtol=1e-12))
        assert np.allclose(np.linalg.svd(overlap[np.ix_(shell, shell)], compute_uv=False), 1.0, atol=1e-8)


def test_radial_error_estimate_covers_a_small_box():
    # R = 16 bohr holds shell n = 2 of 3D hydrogen by ~4 decay lengths: errors ~1e-4, all within the estimate
    system = qsolver.load_system("hydrogen_3d")
    ref = reference(system, 5, kind="grid", points=24, extent=16.0)
    check_against(ref, hydrogen_levels(1.0, 0.5, 3, 5))
    assert ref.details["extent"] == 16.0 and ref.details["points"] == 24


@pytest.mark.parametrize("options, field", [({"stretch": 8.0}, "reference.stretch"),
                                            ({"order": 6}, "reference.order"),
                                            ({"extent": [20.0, 20.0]}, "reference.extent"),
                                            ({"points": 4}, "reference.points")])
def test_radial_options(options, field):
    system = qsolver.load_system("hydrogen_2d")
    with pytest.raises(InputError) as info:
        reference(system, 4, kind="grid", **options)
    assert info.value.field == field
    repulsive = System("anion", 3, {"kind": "coulomb", "charges": [-1.0], "centers": [[0.0, 0.0, 0.0]]},
                       reference="none")
    with pytest.raises(InputError, match="binds no state") as info:
        reference(repulsive, 1, kind="grid")
    assert info.value.field == "potential.charges"


def test_coulomb_convergence_order():
    # 2D hydrogen ground state (κ = 1, E = -1) on grids of 24, 48, 96 points over ±12 bohr: the cusp limits
    # the 8th-order stencil to an order between 1 (point values of V) and 2 (3D); measured ≈ 1.6
    system = System("h", 2, {"kind": "coulomb", "charges": [1.0], "centers": [[0.0, 0.0]]}, kinetic=1.0,
                    reference="none")
    points = np.array([24, 48, 96])
    errors = [solve_grid(system, 1, GridOptions(int(n), [12.0, 12.0], [0.0, 0.0], 8, 8.0)).energies[0] + 1
              for n in points]
    slope = -np.polyfit(np.log(points + 1.0), np.log(errors), 1)[0]
    assert 1.3 < slope < 2.0, slope


def test_box_walls():
    # the grid is the box (Dirichlet walls); 8th-order differences on 40² points: errors ~1e-8
    system = System("box", 2, {"kind": "box", "lengths": [math.pi, 2.0]}, reference="none")
    ref = reference(system, 6, kind="grid", points=40)
    check_against(ref, box_levels([math.pi, 2.0], 0.5, 6))
    assert ref.details["extent"] == [math.pi / 2, 1.0]


def test_expression_and_callable_match_harmonic():
    # the same potential in three forms on the same grid gives the same levels (to rounding and LOBPCG)
    kinds = [{"kind": "harmonic", "omega": 1.0}, {"kind": "expression", "expr": "0.5*r**2"},
             lambda x: 0.5 * (x**2).sum(-1)]
    levels = [reference(System("v", 2, v, reference="none"), 3, kind="grid", points=24, extent=7.0).energies
              for v in kinds]
    assert np.allclose(levels[0], levels[1], atol=1e-9) and np.allclose(levels[0], levels[2], atol=1e-9)


def test_options_from_system_file(tmp_path):
    path = tmp_path / "osc.toml"
    path.write_text('name = "osc"\ndimension = 1\n[potential]\nkind = "harmonic"\nomega = 2.0\n'
                    '[reference]\nkind = "grid"\npoints = 50\nextent = 5.0\norder = 6\n')
    ref = reference(qsolver.load_system(path), 3)
    assert ref.details["points"] == 50 and ref.details["order"] == 6 and ref.details["extent"] == [5.0]
    check_against(ref, oscillator_levels([2.0], 0.5, 3))


@pytest.mark.parametrize("options, field", [({"points": 3}, "reference.points"),
                                            ({"points": 2.5}, "reference.points"),
                                            ({"points": 100000}, "reference.points"),
                                            ({"extent": -1.0}, "reference.extent"),
                                            ({"extent": [1.0, 2.0, 3.0]}, "reference.extent"),
                                            ({"order": 5}, "reference.order"),
                                            ({"stretch": 0.5}, "reference.stretch"),
                                            ({"spacing": 0.1}, "reference.spacing")])
def test_bad_options(options, field):
    system = System("osc", 2, {"kind": "harmonic", "omega": 1.0}, reference="none")
    with pytest.raises(InputError) as info:
        reference(system, 2, kind="grid", **options)
    assert info.value.field == field


def test_refuses_six_dimensions_and_1d_coulomb():
    system = System("osc6", 6, {"kind": "harmonic", "omega": 1.0}, reference="grid")
    with pytest.raises(InputError, match="a grid reference requested in 6 dimensions") as info:
        reference(system, 2)
    assert info.value.field == "reference.kind"
    coulomb = System("c1", 1, {"kind": "coulomb", "charges": [1.0], "centers": [[0.0]]}, reference="none")
    with pytest.raises(InputError, match="singular"):
        reference(coulomb, 1, kind="grid")


def test_grid_reference_ignores_the_options_of_another_reference_kind():
    # a PySCF system file carries `basis` (and literature levels) in [reference]; asking it for a grid
    # reference must not read them as grid options
    system = qsolver.System("pyscf_h", 3, {"kind": "coulomb", "charges": [1.0], "centers": [[0.0, 0.0, 0.0]]},
                            reference={"kind": "pyscf", "basis": "cc-pvdz"})
    ref = reference(system, 1, "grid", points=24)
    assert abs(ref.energies[0] + 0.5) <= ref.errors[0] + 1e-9


# ------------------------------------------------------------------ potentials as a new user writes them

def fd_levels(potential, lo: float, hi: float, n: int, kinetic: float = 0.5, points: int = 2000) -> np.ndarray:
    """Lowest n levels of -κ d²/dx² + V on [lo, hi] (ψ = 0 at both ends), independently of the package's grid:
    the 3-point Laplacian (tridiagonal, scipy's eigh_tridiagonal) on N, 2N+1 and 4N+3 interior nodes, Richardson-
    extrapolated (h², h⁴) to O(h⁶); V is a torch callable on (M, 1), capped at 1e5 hartree (a wall is a wall)."""
    def levels(count: int) -> np.ndarray:
        x = np.linspace(lo, hi, count + 2)[1:-1]
        h = x[1] - x[0]
        v = np.minimum(potential(torch.as_tensor(x[:, None])).numpy(), 1e5)
        return sl.eigh_tridiagonal(2 * kinetic / h**2 + v, np.full(count - 1, -kinetic / h**2), select="i",
                                   select_range=(0, n - 1), eigvals_only=True)

    e1, e2, e4 = (levels(m) for m in (points, 2 * points + 1, 4 * points + 3))
    e12, e24 = (4 * e2 - e1) / 3, (4 * e4 - e2) / 3
    return (16 * e24 - e12) / 15


def expression(d: int, expr: str) -> System:
    """A system as a new user writes it: an expression and [reference] kind = "grid"."""
    return System("user", d, {"kind": "expression", "expr": expr}, reference="grid")


REFERENCE_ERROR = 1e-8      # of fd_levels (measured: extrapolations from N = 2000 and 3000 agree to ≤ 4e-10)


@pytest.mark.parametrize("expr, n", [("x**4 - 3*x**2 + exp(4*x)", 6),   # anharmonic, exponential wall: RuntimeError
                                     ("0.5*(x-7)**2", 6),                  # minimum far from the origin
                                     ("x**8", 6),                          # steep walls
                                     ("(x**2 - 1)**2", 6),                 # double well
                                     ("-10*exp(-20*x**2)", 1)])            # narrow deep well, one bound state
def test_new_user_potentials_1d(expr, n):
    system = expression(1, expr)
    ref = reference(system, n)                       # the system's own [reference] kind
    (center,), (half,) = ref.details["center"], ref.details["extent"]
    exact = fd_levels(system.potential, center - 1.5 * half - 2, center + 1.5 * half + 2, n)
    true = np.abs(ref.energies - exact)
    assert np.all(true <= ref.errors + REFERENCE_ERROR), (true, ref.errors)
    assert np.all(ref.errors <= 1e-8 * np.maximum(1, np.abs(exact))), ref.errors        # converged
    assert ref.details["extent_from"].startswith("V: walls")


def test_shifted_minimum_is_found():
    ref = reference(expression(1, "0.5*(x-7)**2"), 3)
    assert abs(ref.details["center"][0] - 7) < 0.01 and 5 < ref.details["extent"][0] < 10
    np.testing.assert_allclose(ref.energies, [0.5, 1.5, 2.5], atol=1e-9)
    two = reference(expression(2, "0.5*((x-30)**2 + (y+40)**2)"), 4)
    np.testing.assert_allclose(two.details["center"], [30, -40], atol=0.1)
    np.testing.assert_allclose(two.energies, [1, 2, 2, 3], atol=1e-8)


def test_kink_converges_at_its_own_order():
    # exp(|x|) has a kink at 0: the even states converge like h² (not h⁸), which the observed order catches.
    # Exact reference: on x ≥ 0, V = eˣ is smooth; even states have ψ'(0) = 0, odd ones ψ(0) = 0.
    system = expression(1, "exp(abs(x))")
    ref = reference(system, 4)
    kappa, top = 0.5, 12.0

    def half_line(even: bool, count: int) -> np.ndarray:
        h = top / (count + 0.5) if even else top / (count + 1)
        x = (np.arange(count) + (0.5 if even else 1.0)) * h           # even: cell-centred, mirror ghost at 0
        diagonal = 2 * kappa / h**2 + np.exp(x)
        if even:
            diagonal[0] -= kappa / h**2
        return sl.eigh_tridiagonal(diagonal, np.full(count - 1, -kappa / h**2), select="i", select_range=(0, 1),
                                   eigvals_only=True)

    def extrapolated(even: bool) -> np.ndarray:
        e1, e2, e4 = (half_line(even, m) for m in (2000, 4000, 8000))
        return (16 * (4 * e4 - e2) / 3 - (4 * e2 - e1) / 3) / 15

    exact = np.sort(np.concatenate([extrapolated(True), extrapolated(False)]))
    true = np.abs(ref.energies - exact)
    assert np.all(true <= ref.errors + REFERENCE_ERROR), (true, ref.errors)
    assert ref.errors.max() < 1e-6                   # 1D doubles its points (to 6400) while the error allows
    assert min(ref.details["convergence_order"]) < 2  # half the observed order ~2 of the even states


def separable_levels(parts: list[str], n: int, centers: list[float], halves: list[float]) -> np.ndarray:
    """The n lowest sums of 1D levels, one 1D potential (expression in x) per axis (κ = ½)."""
    per_axis = [fd_levels(expression(1, p).potential, c - 1.5 * h - 2, c + 1.5 * h + 2, n)
                for p, c, h in zip(parts, centers, halves)]
    return np.sort([sum(c) for c in itertools.product(*per_axis)])[:n]


@pytest.mark.parametrize("expr, parts", [("0.5*(x**2+4*y**2) + exp(3*y)", ["0.5*x**2", "2*x**2 + exp(3*x)"]),
                                         ("(x**2 - 1)**2 + 0.5*y**2", ["(x**2 - 1)**2", "0.5*x**2"]),
                                         ("0.5*r**2 + exp(z)", ["0.5*x**2"] * 2 + ["0.5*x**2 + exp(x)"])])
def test_new_user_potentials_separable(expr, parts):
    # before: LOBPCG's RuntimeError after 40-400 s (2D at ±10 bohr); measured now 0.8 s (2D), 1.5 s (3D),
    # errors ≤ 2e-8 (2D, 160²) and 1e-5 (3D, 48³)
    d = len(parts)
    ref = reference(expression(d, expr), 6)
    exact = separable_levels(parts, 6, ref.details["center"], ref.details["extent"])
    true = np.abs(ref.energies - exact)
    assert np.all(true <= ref.errors + REFERENCE_ERROR), (true, ref.errors)
    assert ref.errors.max() < (1e-6 if d == 2 else 1e-4)


def test_steep_wall_in_a_wide_box_converges():
    # the case that stalled LOBPCG: exp(3y) reaches 1e13 hartree at the wall of a ±10 bohr box. The separable
    # preconditioner is exact for it; 64² points leave errors ~1e-3, within the stated ones
    ref = reference(expression(2, "0.5*(x**2+4*y**2) + exp(3*y)"), 4, extent=10.0, points=64)
    exact = separable_levels(["0.5*x**2", "2*x**2 + exp(3*x)"], 4, [0.0, 0.0], [10.0, 10.0])
    assert np.all(np.abs(ref.energies - exact) <= ref.errors + REFERENCE_ERROR), (ref.energies - exact, ref.errors)


def test_eigensolver_falls_back_and_never_raises_runtime_error(monkeypatch):
    system = expression(2, "(x**2 - 1)**2 + 0.5*y**2")
    options = GridOptions(48, [3.0, 6.0], [0.0, 0.0], 8, 1.0)            # 48² > DENSE_MAX: iterative
    direct = solve_grid(system, 4, options).energies

    def stall(*args, **kwargs):
        raise fd_grid.NotConverged("stalled on purpose")

    monkeypatch.setattr(fd_grid, "_lobpcg", stall)
    np.testing.assert_allclose(solve_grid(system, 4, options).energies, direct, atol=1e-9)  # shift-invert
    monkeypatch.setattr(fd_grid, "_shift_invert", stall)
    with pytest.raises(InputError, match="did not converge") as info:
        solve_grid(system, 4, options)
    assert info.value.field == "reference.points"


@pytest.mark.parametrize("d, expr, n, field, match", [
    (1, "-10*exp(-20*x**2)", 2, "reference.extent", r"put 1 level\(s\) there"),   # one bound state, 2 asked for
    (1, "-x**2", 1, "reference.extent", "unbounded below or levels off"),
    (3, "-3*exp(-r**2)", 2, "reference.extent", "fewer than the 2 states asked for"),
    (1, "log(x)", 1, "potential", "the potential is nan"),
    (1, "exp(1000 + x**2)", 1, "potential", "overflows"),
])
def test_unsolvable_potentials_say_what_to_change(d, expr, n, field, match):
    with pytest.raises(InputError, match=match) as info:
        reference(expression(d, expr), n)
    assert info.value.field == field


def test_box_states_on_request():
    # with reference.extent the narrow well's box states are solved, and their stated box error is large
    ref = reference(expression(1, "-10*exp(-20*x**2)"), 3, extent=8.0)
    assert ref.energies[0] == pytest.approx(fd_levels(expression(1, "-10*exp(-20*x**2)").potential, -12, 12, 1)[0],
                                            abs=1e-8)
    assert ref.details["box_errors"][1:].min() > 1e-3
