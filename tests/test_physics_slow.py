"""The long physics runs behind results/ (minutes each on 2 CPU cores): `python -m pytest -m slow`.

Each solves a shipped system with its defaults and checks an accuracy target against closed-form levels
(hydrogen, oscillator), exact literature levels (H2+, He, H⁻) or the separated trap spectrum (harmonium).
"""
import os
from pathlib import Path

import numpy as np
import pytest

import qsolver
from qsolver.references import system_reference
from qsolver.validate import validate

pytestmark = pytest.mark.slow

# N electrons: the committed runs' accuracy with a margin (results/bench/README.md, "N electrons"), not yet the
# issue's targets (fermions 1e-5 relative; Li 2S within 1 mHa, 2P spread 0.3 mHa; Be excitations within 1.6 mHa)
FERMIONS_REL = 1e-4          # committed: at most 7.9e-6 (state 7), mean 1.9e-6; the target 1e-5 on all 9
FERMIONS_MEAN = 2e-5
LITHIUM_GROUND = 1e-3        # committed: 0.09 mHa above the exact 2²S (the target: 1 mHa)
LITHIUM_EXCITATION = 1e-3    # committed: 2²S → 2²P 0.007 mHa from exact (the target: 0.5 mHa)
LITHIUM_SPREAD = 1e-3        # committed: 0.28 mHa over the three 2²P states, stat. 0.065 each (target: 0.3 mHa)
BERYLLIUM_EXCITATION = 3e-3  # committed: ¹S → ¹P 0.75 mHa, ¹S → ³P 0.45 mHa from experiment (backflow); the
                             # budget ends these runs, so a slower machine makes fewer steps and lands higher
BERYLLIUM_GROUND = 3e-3      # committed: 0.60 mHa above the exact 2s² ¹S (the target: 5 mHa, aim 1)
LITHIUM_HYDRIDE_GROUND = 2e-3  # committed: 0.24 mHa above the exact X¹Σ⁺ (backflow; without: 1.6; target: 2 mHa)


def solved(name):
    """A shipped system and its result with the package defaults; saved as QSOLVER_SLOW_OUT/<name>.h5, with the
    system's reference as `qsolver solve` stores it, when that variable names a folder: a passing run can then
    replace the committed file it reproduces."""
    system = qsolver.load_system(name)
    result = qsolver.solve(system, progress=False)
    if os.environ.get("QSOLVER_SLOW_OUT"):
        reference = system_reference(system, result.n_states, warn=lambda why: None)
        qsolver.save_result(result, Path(os.environ["QSOLVER_SLOW_OUT"]) / f"{name}.h5", reference)
    return system, result


def rel_errors(name):
    system, result = solved(name)
    table = validate(result)
    return np.array([row["rel_error"] for row in table.states]), table


def test_hydrogen_2d_shells_up_to_n2():
    # 2D hydrogen, κ = 1: levels -1/(4(n+½)²); the 9 states of shells n ≤ 2 to a mean relative error 1e-2
    rel, table = rel_errors("hydrogen_2d")
    assert len(rel) == 16
    assert rel[:9].mean() <= 1e-2, table.to_markdown()


def test_hydrogen_3d_shells_up_to_n2():
    # 3D hydrogen, κ = ½: levels -1/(2n²); the 5 states of shells n ≤ 2 to a mean relative error 1e-2
    rel, table = rel_errors("hydrogen_3d")
    assert len(rel) == 14
    assert rel[:5].mean() <= 1e-2, table.to_markdown()


def test_harmonic_2d_all_levels():
    # 2D oscillator, ω = 1: levels n_x + n_y + 1; all 10 states to a relative error 1e-3
    rel, table = rel_errors("harmonic_2d")
    assert rel.max() <= 1e-3, table.to_markdown()


def test_h2plus_lowest_five_states_within_a_millihartree():
    # H2+ at R = 2 bohr: exact Born–Oppenheimer electronic levels (quoted to 7 decimals in the system file);
    # the target is |E - E_exact| <= 1e-3 hartree for the lowest five states with the defaults
    system, result = solved("h2plus")
    exact = qsolver.reference(system, 5, "literature").energies
    assert np.abs(result.energies[:5] - exact).max() <= 1e-3, (result.energies, exact)


@pytest.mark.parametrize("name", ["helium_singlet", "helium_triplet"])
def test_helium_levels_within_a_millihartree(name):
    # He singlets 1¹S, 2¹S, 2¹P×3 and triplets 2³S, 2³P×3 against the exact non-relativistic levels (Drake):
    # the target is every level within 1 mHa with the defaults, and the error bars holding the truth
    system, result = solved(name)
    table = validate(result, qsolver.reference(system, result.n_states, "literature"))
    errors = np.array([row["abs_error"] for row in table.states])
    assert errors.max() <= 1e-3, table.to_markdown()
    assert sum(row["z"] <= 3 for row in table.states) >= len(errors) - 1, table.to_markdown()
    assert table.bound_levels == result.n_states and all(row["spin"] in ("singlet", "triplet")
                                                         for row in table.states)


def test_hydride_has_one_bound_level():
    # H⁻: one bound state at -0.527751017 (within 0.5 mHa); the other two states asked for lie above the H 1s
    # threshold -½ and must be reported as such, not as levels
    system, result = solved("hydride")
    table = validate(result, qsolver.reference(system, result.n_states, "literature"))
    assert abs(table.states[0]["abs_error"]) <= 5e-4, table.to_markdown()
    assert table.bound_levels == 1
    assert [row["status"] for row in table.states[1:]] == ["above threshold"] * 2, table.to_markdown()


def test_harmonium_against_the_separated_spectrum():
    # Hooke's atom (ω = ½): ground state exactly 2 hartree (Taut), then the centre-of-mass excitation at 2.5 (×3)
    system, result = solved("harmonium")
    exact = qsolver.reference(system, result.n_states).energies
    assert exact[0] == pytest.approx(2.0, abs=1e-9)
    assert np.abs(result.energies - exact).max() <= 2e-3, (result.energies, exact)


def test_fermions_2d_every_doublet_exact():
    # three non-interacting electrons in a 2D oscillator: the 9 doublets 4 (×2), 5 (×7) are closed-form, so the
    # estimator (slot-product proposal, Rayleigh–Ritz on its samples) is checked against exact levels
    system, result = solved("fermions_2d")
    exact = qsolver.reference(system, result.n_states).energies
    rel = np.abs(result.energies - exact) / np.abs(exact)
    assert rel.max() <= FERMIONS_REL and rel.mean() <= FERMIONS_MEAN, (result.energies, exact)
    assert np.allclose(result.diagnostics["spin_squared"], 0.75, atol=0.02)


def test_lithium_doublets_against_the_exact_levels():
    # Li 2²S, 2²P (×3), 3²S against Hylleraas values (Wang, Yan, Qiao, Drake 2012)
    system, result = solved("lithium")
    exact = qsolver.reference(system, 5, "literature").energies
    e = result.energies
    assert abs(e[0] - exact[0]) <= LITHIUM_GROUND, (e, exact)
    assert abs(e[1:4].mean() - e[0] - (exact[1] - exact[0])) <= LITHIUM_EXCITATION, (e, exact)
    assert np.ptp(e[1:4]) <= LITHIUM_SPREAD, e
    assert np.allclose(result.diagnostics["spin_squared"], 0.75, atol=0.02)


@pytest.mark.parametrize("name, level, gap", [("beryllium_singlet", slice(1, 4), 0.1939),
                                              ("beryllium_triplet", slice(0, 3), 0.1002)])
def test_beryllium_excitations_from_the_exact_ground_level(name, level, gap):
    # Be 2s² ¹S → 2s2p ¹P and → ³P (experimental excitation energies, the targets), from the exact
    # non-relativistic ground level -14.66736 (Chakravorty et al. 1993) for the triplet run
    system, result = solved(name)
    ground = result.energies[0] if name == "beryllium_singlet" else -14.66736
    if name == "beryllium_singlet":
        assert abs(ground - (-14.66736)) <= BERYLLIUM_GROUND, result.energies
    assert abs(result.energies[level].mean() - ground - gap) <= BERYLLIUM_EXCITATION, result.energies
    spin = 0.0 if name == "beryllium_singlet" else 2.0
    assert np.allclose(result.diagnostics["spin_squared"], spin, atol=0.02)
    # the levels are the ones named: ¹S, ¹P° and 2s3s ¹S (³P° and 2s3s ³S), none a ¹D component or a mixture
    terms = result.diagnostics["symmetry_labels"]
    assert terms == (["S", "P°", "P°", "P°", "S"] if name == "beryllium_singlet" else ["P°"] * 3 + ["S"]), terms


def test_lithium_hydride_ground_level_and_excited_singlets():
    # LiH at 3.015 bohr: X¹Σ⁺ against the explicitly correlated total -8.070548 (electronic -9.0655729); the excited
    # singlets variationally below full CI in cc-pVDZ (the file's reference, whose core is uncorrelated)
    system, result = solved("lithium_hydride")
    assert abs(result.energies[0] - (-9.0655729)) <= LITHIUM_HYDRIDE_GROUND, result.energies
    fci = qsolver.reference(system, 4).energies
    assert np.all(result.energies[1:] < fci[1:]), (result.energies, fci)
    assert result.diagnostics["symmetry_labels"] == ["Σ", "Σ", "Π", "Π"], result.diagnostics["symmetry_labels"]
    assert np.allclose(result.diagnostics["spin_squared"], 0.0, atol=0.02)
