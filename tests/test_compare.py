"""Closed-form reference states, the comparison table (per state, per group, subspace distances) and
`qsolver compare`."""
import math

import numpy as np
import pytest
import torch

import qsolver
from qsolver import InputError, System
from qsolver.cli import main
from qsolver.compare import compare, default_kinds, subspace_distance
from qsolver.references import Reference, ReferenceStates, reference
from qsolver.references.analytic_states import closed_form_states
from qsolver.result import Result
from qsolver.validate import validate

SYSTEMS = {
    "oscillator 1D": (System("o1", 1, {"kind": "harmonic", "omega": 1.3}), 7),
    "oscillator 2D anisotropic, κ = 1": (System("o2", 2, {"kind": "harmonic", "omega": [1.0, 1.7],
                                                          "center": [0.3, -0.2]}, kinetic=1.0), 9),
    "oscillator 3D, partial shell": (System("o3", 3, {"kind": "harmonic", "omega": 1.0}), 6),
    "box 2D": (System("b2", 2, {"kind": "box", "lengths": [1.0, 1.6], "center": [0.2, 0.0]}), 8),
    "box 3D": (System("b3", 3, {"kind": "box", "lengths": [1.0, 1.2, 2.0]}), 7),
    "hydrogen 2D, Z = 2, κ = 1": (System("h2", 2, {"kind": "coulomb", "charges": [2.0], "centers": [[0.5, -1.0]]},
                                         kinetic=1.0), 12),
    "hydrogen 3D, partial shell": (System("h3", 3, {"kind": "coulomb", "charges": [1.0],
                                                    "centers": [[0.0, 0.3, 0.0]]}), 11),
}


@pytest.mark.parametrize("name", SYSTEMS)
def test_analytic_states_orthonormal_on_their_rule(name):
    # The rules integrate products of the states exactly (Gauss–Hermite, Gauss–Laguerre × angular rules
    # exact for the harmonics) or, for the box sines, to rounding: 1e-10 leaves room only for rounding
    # and the convergence of the compact low hydrogen shells (~1e-13).
    system, n = SYSTEMS[name]
    ref = reference(system, n, "analytic", with_states=True)
    st = ref.states
    assert st.values.shape == (len(st.weights), n) and st.points.shape == (len(st.weights), system.dimension)
    gram = st.values.T @ (st.weights[:, None] * st.values)
    assert np.abs(gram - np.eye(n)).max() < 1e-10


@pytest.mark.parametrize("name", SYSTEMS)
def test_analytic_states_solve_the_schroedinger_equation(name):
    # H ψ = E ψ at random points, with E the analytic level of the same column: -κΔψ by a 4th-order central
    # difference with h = 1e-3 (truncation ~h⁴ψ⁽⁶⁾/90 ~ 1e-13, rounding ~6ε|ψ|/h² ~ 1e-9 |ψ|), so a
    # residual below 1e-6 (relative to max|Eψ| + κ max|Δψ|) means the state is an eigenfunction of that level
    # (measured: ≤ 3e-9; a level off by 1 % gives ~5e-3).
    system, n = SYSTEMS[name]
    d, kappa = system.dimension, system.kinetic
    ref = reference(system, n, "analytic")
    family = closed_form_states(qsolver.potentials.terms(system.potential)[0], d, kappa, n)
    center = np.asarray(getattr(system.potential, "center", None) or system.potential.centers[0], dtype=float)
    scale = 0.3 if isinstance(system.potential, qsolver.potentials.Box) else 1.5
    x = center + scale * np.random.default_rng(1).uniform(-1, 1, size=(6, d))
    h = 1e-3
    laplacian = np.zeros((len(x), n))
    for i in range(d):
        step = np.zeros(d)
        step[i] = h
        f = {k: family(x + k * step) for k in (-2, -1, 0, 1, 2)}
        laplacian += (-f[2] + 16 * f[1] - 30 * f[0] + 16 * f[-1] - f[-2]) / (12 * h**2)
    psi = family(x)
    v = system.potential(torch.as_tensor(x)).numpy()[:, None]
    residual = -kappa * laplacian + v * psi - ref.energies[None, :] * psi
    scale_terms = np.abs(ref.energies[None, :] * psi).max(0) + kappa * np.abs(laplacian).max(0)
    assert np.all(np.abs(residual).max(0) <= 1e-6 * scale_terms)


class ClosedForm(torch.nn.Module):
    """A stand-in for the trained networks: the closed-form states, so that Result.wavefunctions gives
    exactly the states selected by the coefficients."""

    def __init__(self, family):
        super().__init__()
        self.family = family

    def forward(self, x: torch.Tensor) -> torch.Tensor:       # configurations (N, 1, d) of one particle
        return torch.from_numpy(self.family(x[:, 0].numpy()))


OSC2 = qsolver.load_system("harmonic_2d")     # levels 1 (×1), 2 (×2), 3 (×3) hartree


def synthetic(coefficients: np.ndarray, energies, errors=None, system: System = OSC2) -> Result:
    """A result whose state j is Σ_m ψ_m C_mj, ψ the six lowest closed-form states of the 2D oscillator."""
    family = closed_form_states(system.potential, 2, system.kinetic, 6)
    energies = np.asarray(energies, dtype=float)
    errors = np.full(len(energies), 1e-3) if errors is None else np.asarray(errors, dtype=float)
    return Result(system, energies, errors, ClosedForm(family), np.asarray(coefficients, dtype=float), {})


def columns(*mixes) -> np.ndarray:
    """Coefficient matrix (6, len(mixes)) from {closed-form index: amplitude} per learned state."""
    c = np.zeros((6, len(mixes)))
    for j, mix in enumerate(mixes):
        for m, a in mix.items():
            c[m, j] = a
    return c


@pytest.fixture(scope="module")
def short_result():
    torch.set_num_threads(1)
    return qsolver.solve(qsolver.load_system("harmonic_1d"), steps=50, progress=False, eval_samples=4000,
                         eval_blocks=8, seed=0, threads=1)


def test_against_analytic_gives_the_differences_of_validate(short_result):
    n = short_result.n_states
    ref = reference(short_result.system, n, "analytic", with_states=True)
    table = compare(short_result, [ref])
    check = validate(short_result)
    assert table.labels == ["analytic"] and len(table.states) == n
    # the same float operations as validate: identical numbers
    assert [abs(r["dE_analytic"]) for r in table.states] == [r["abs_error"] for r in check.states]
    assert [r["group"] for r in table.states] == list(range(n))        # 1D levels are non-degenerate
    text = table.to_markdown()
    assert "| state | term | group | E (NeuralSVD) | ± | stat. | bias | bound | E (analytic) | ± | ΔE | z |" in text
    assert "sin θ_max (analytic)" in text
    # the exact reference gives exactly n levels here, so the last group cannot be known to be complete
    assert table.groups[-1]["distance_analytic"] is None and "No subspace distance for states 3" in text
    assert all(0 <= g["distance_analytic"] <= 1 for g in table.groups[:-1])
    assert len(table.to_csv().strip().splitlines()) == n + 1


def test_subspace_distance_zero_for_a_rotated_eigenspace_and_sin_angle_when_mixed():
    # learned states = ψ0, and a rotation by 0.7 of (ψ1, ψ2) inside the level-2 eigenspace: distance 0 up to
    # rounding (the rule integrates Hermite products exactly, so 1e-12).
    a = 0.7
    rotated = synthetic(columns({0: 1}, {1: math.cos(a), 2: math.sin(a)}, {1: -math.sin(a), 2: math.cos(a)}),
                        [1.0, 2.0, 2.0])
    ref = reference(OSC2, 4, "analytic", with_states=True)      # a 4th level: the group of 2 is complete
    table = compare(rotated, [ref])
    assert [g["states"] for g in table.groups] == ["0", "1-2"]
    assert all(g["distance_analytic"] < 1e-12 for g in table.groups)
    assert all(abs(g["captured_analytic"] - 1) < 1e-12 for g in table.groups)
    # mixing ψ3 (level 3) into the group by an angle b: principal angles (0, b), so sin θ_max = sin b;
    # mixing ψ4 into the ground state by c: sin c.
    b, c = 0.3, 0.05
    mixed = synthetic(columns({0: math.cos(c), 4: math.sin(c)}, {1: math.cos(b), 3: math.sin(b)}, {2: 1}),
                      [1.0, 2.0, 2.0])
    groups = compare(mixed, [ref]).groups
    assert groups[0]["distance_analytic"] == pytest.approx(math.sin(c), abs=1e-12)
    assert groups[1]["distance_analytic"] == pytest.approx(math.sin(b), abs=1e-12)
    # the same directly, and symmetric for equal dimensions
    w, v = ref.states.weights, ref.states.values
    learned = mixed.wavefunctions(ref.states.points)[:, 1:3]
    assert subspace_distance(v[:, 1:3], learned, w) == pytest.approx(math.sin(b), abs=1e-12)


def test_partial_group_needs_the_next_level_and_one_learned_state_in_a_larger_eigenspace():
    # two learned states: ψ0 and one direction of the 2-fold level 2. Reference levels (1, 2) or (1, 2, 2)
    # end inside that level, which may go on: no distance. With (1, 2, 2, 3) the group is known to be
    # complete, and a direction inside the eigenspace is at distance 0 (one-sided: 1 learned vs 2 exact).
    result = synthetic(columns({0: 1}, {1: 0.6, 2: 0.8}), [1.0, 2.0])
    for levels in (2, 3):
        cut = compare(result, [reference(OSC2, levels, "analytic", with_states=True)])
        assert cut.groups[1]["distance_analytic"] is None and not cut.groups[1]["complete"]
    full = compare(result, [reference(OSC2, 4, "analytic", with_states=True)])
    assert full.groups[1]["complete"] and full.groups[1]["distance_analytic"] < 1e-12
    # a learned direction leaving the eigenspace by 0.2 rad towards ψ3
    tilted = synthetic(columns({0: 1}, {1: 0.6 * math.cos(0.2), 2: 0.8 * math.cos(0.2), 3: math.sin(0.2)}),
                       [1.0, 2.0])
    assert compare(tilted, [reference(OSC2, 4, "analytic", with_states=True)]).groups[1][
        "distance_analytic"] == pytest.approx(math.sin(0.2), abs=1e-12)


def test_group_mean_and_spread_for_a_degenerate_level():
    result = synthetic(columns({0: 1}, {1: 1}, {2: 1}), [1.0, 1.99, 2.03])
    table = compare(result, [reference(OSC2, 4, "analytic")])
    g = table.groups[1]
    assert g["size"] == 2 and g["level_analytic"] == 2.0
    assert g["mean_energy"] == pytest.approx(2.01, abs=1e-14)
    assert g["spread"] == pytest.approx(0.04, abs=1e-14)
    assert g["dmean_analytic"] == pytest.approx(0.01, abs=1e-14)


def test_numerical_reference_groups_levels_within_its_error_and_its_states_are_used():
    # a hand-made "grid" reference: the level-2 pair split by 4e-4 < the sum of the stated errors 2e-3,
    # with its eigenspace given in another basis (ψ1 ± ψ2)/√2 on the analytic rule.
    exact = reference(OSC2, 4, "analytic", with_states=True)
    v = exact.states.values.copy()
    v[:, 1], v[:, 2] = (v[:, 1] + v[:, 2]) / math.sqrt(2), (v[:, 1] - v[:, 2]) / math.sqrt(2)
    grid = Reference(np.array([1.0001, 2.0, 2.0004, 3.0002]), "grid: test", error=1e-3,
                     errors=np.full(4, 1e-3), states=ReferenceStates(exact.states.points, exact.states.weights, v))
    result = synthetic(columns({0: 1}, {1: 1}, {2: 1}), [1.0, 2.0, 2.0])
    table = compare(result, [grid, exact])
    assert [r["group"] for r in table.states] == [0, 1, 1]
    assert all(g["distance_grid"] < 1e-12 and g["distance_analytic"] < 1e-12 for g in table.groups)
    text = table.to_markdown()
    assert "Degenerate groups from **grid**" in text and "merged numerically split levels" in text
    assert table.states[2]["E_grid"] == 2.0004 and table.states[2]["error_grid"] == 1e-3


def test_literature_and_pyscf_say_which_is_closer_and_label_electronic_energies():
    lit = np.array([-1.1026342, -0.6675344, -0.4287718])
    pyscf = lit + np.array([1e-4, -1e-6, 2e-5])
    refs = [Reference(pyscf, "core Hamiltonian", errors=np.full(3, 1e-4),
                      details={"total_energies": pyscf + 0.5, "nuclear_repulsion": 0.5}, kind="pyscf"),
            Reference(lit, "literature (electronic): exact", error=5e-8, errors=np.full(3, 5e-8))]
    result = synthetic(columns({0: 1}, {1: 1}, {2: 1}, {3: 1}), np.r_[lit + 1e-5, -0.35])
    table = compare(result, refs, labels=["pyscf", "literature"], unavailable={"grid": "not available yet"})
    assert [r["closer_pyscf"] for r in table.states] == ["NeuralSVD", "pyscf", "NeuralSVD", None]
    assert table.states[3]["E_literature"] is None           # the literature gives three levels only
    text = table.to_markdown()
    assert "NeuralSVD is closer to the literature value than pyscf for states 0, 2 (of 3 with both values)" in text
    assert "total energy = electronic + nuclear repulsion 0.50000000" in text
    assert "**grid**: not available (not available yet)" in text
    assert "closer to literature: NeuralSVD or pyscf" in text and "| NeuralSVD (1.0e-05 vs 1.0e-04) |" in text
    assert table.states[0]["pyscf_minus_literature"] == pytest.approx(1e-4, abs=1e-15)
    # the upper-bound note keys on the reference's kind, not on its prose: states 0 and 2 lie below pyscf
    assert "NeuralSVD lies below pyscf for states 0 (by 9.0e-05), 2 (by 1.0e-05) hartree" in text


def test_no_working_reference_is_an_input_error():
    result = synthetic(columns({0: 1}), [1.0])
    with pytest.raises(InputError, match="no reference could treat"):
        compare(result, [], unavailable={"pyscf": "needs nuclei"})


def test_default_kinds_add_literature_when_quoted():
    lit = {"levels": [1.0], "source": "test"}
    assert default_kinds(System("a", 1, {"kind": "harmonic", "omega": 1.0},
                                reference={"kind": "analytic", "literature": lit})) == ["analytic", "literature"]
    assert default_kinds(System("b", 1, {"kind": "harmonic", "omega": 1.0}, reference="none")) == []


def test_cli_writes_three_files_and_rejects_bad_input(short_result, tmp_path, capsys):
    path = qsolver.save_result(short_result, tmp_path / "osc.h5")
    out = tmp_path / "report"
    assert main(["compare", str(path), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["osc_compare.csv", "osc_compare.md", "osc_compare.png"]
    printed = capsys.readouterr().out
    assert printed.strip() == (out / "osc_compare.md").read_text(encoding="utf-8").strip()
    # a reference that cannot treat the system is reported, the others still compared
    assert main(["compare", str(path), "--reference", "analytic", "pyscf"]) == 0
    assert "**pyscf**: not available" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["osc.h5", "osc_compare.csv", "osc_compare.md",
                                                          "osc_compare.png", "report"]
    assert main(["compare", str(path), "--reference", "bogus"]) == 2
    assert "'--reference'" in capsys.readouterr().err
    assert main(["compare", str(path), "--reference", "pyscf"]) == 2          # 1D: no nuclei
    assert "no reference could treat" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "missing.h5")]) == 2


@pytest.mark.parametrize("system, kind", [("harmonic_1d", "analytic"), ("harmonic_1d", "grid"),
                                          ("harmonium", "grid"), ("h2plus", "literature")])
def test_every_reference_names_the_kind_that_made_it(system, kind):
    # compare branches on Reference.kind (the [reference] kind), never on the method's prose
    assert reference(qsolver.load_system(system), 2, kind).kind == kind
