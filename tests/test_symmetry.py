"""Spatial symmetry of the states: the point group found for a system, and the shares and labels of functions whose
angular momentum is known exactly (one and two particles, atoms, linear molecules, the plane, reflections)."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

import qsolver
from qsolver.compare import compare
from qsolver.errors import InputError
from qsolver.io import load_result, save_result, seal
from qsolver.references import reference
from qsolver.sampling import GaussianMixture, IndependentElectrons
from qsolver.checks import LevelCheck
from qsolver.symmetry import PURE, point_group, state_symmetry, term_irreps
from qsolver.potentials import Coulomb, Expression, Harmonic
from qsolver.system import System
from qsolver.validate import validate

F64 = torch.float64


def _system(potential, d=3, particles=1) -> System:
    return System(name="s", dimension=d, particles=particles, potential=potential)


def _proposal(d: int, particles: int, centre=None) -> IndependentElectrons:
    centre = torch.zeros(1, d, dtype=F64) if centre is None else torch.tensor([centre], dtype=F64)
    return IndependentElectrons(GaussianMixture(centre, torch.full((1, d), 1.3, dtype=F64)), particles)


def _shares(functions, system, particles=1, samples=4096):
    """Shares and labels of φ_l(x) = functions(x) (x: (M, N, d) numpy) on the system's group."""
    group = point_group(system)
    d = system.dimension
    centre = list(group.centre)
    sym = state_symmetry(functions, group, _proposal(d, particles, centre), torch.Generator().manual_seed(3), samples)
    return group, sym


def _atom_functions(x):
    """One electron about the origin: s, p_z, d_xy, d_z², f_xyz, and s + p_z (half and half), times e^{-r}."""
    p = x[:, 0]
    r = np.linalg.norm(p, axis=-1)
    e = np.exp(-r)
    s, pz = e, p[:, 2] * e                       # ∫ e^{-2r} = ∫ z² e^{-2r} = π: equal norms
    return np.stack([s, pz, p[:, 0] * p[:, 1] * e, (3 * p[:, 2] ** 2 - r**2) * e, p[:, 0] * p[:, 1] * p[:, 2] * e,
                     s + pz], 1)


def test_atom_groups_and_labels():
    """O_h about a nucleus: S, P°, D, D, F° exactly (one representation each: shares 1 to rounding on any samples),
    and a half-and-half S/P mixture gets no label, its shares ½ within their errors."""
    atom = _system(Coulomb(charges=[3.0], centers=[[0.2, -0.1, 0.4]]))
    group, sym = _shares(lambda x: _atom_functions(x - np.array([0.2, -0.1, 0.4])), atom)
    assert group.name == "O_h" and len(group.elements) == 48
    assert sym.labels == ["S", "P°", "D", "D", "F°", None]
    assert np.allclose(sym.shares.sum(1), 1.0, atol=1e-10)             # the projectors add up to the identity
    a1 = sym.irreps.index("A1g"), sym.irreps.index("T1u")
    assert sym.shares[0, a1[0]] == pytest.approx(1.0, abs=1e-12) and sym.shares[1, a1[1]] == pytest.approx(1.0, abs=1e-12)
    mixed = sym.shares[5, list(a1)]
    assert np.all(np.abs(mixed - 0.5) <= 4 * sym.share_errors[5, list(a1)] + 0.02), (mixed, sym.share_errors[5])


def test_group_acts_on_every_particle():
    """Two electrons: x₁·x₂ is invariant (S, even), x₁ × x₂ is a vector of even parity (P, like 2p² ³P), z₁ + z₂ is
    P°: the maps move all particles at once."""
    def functions(x):
        a, b = x[:, 0], x[:, 1]
        e = np.exp(-np.linalg.norm(a, axis=-1) - np.linalg.norm(b, axis=-1))
        return np.stack([(a * b).sum(-1) * e, (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]) * e, (a[:, 2] + b[:, 2]) * e], 1)

    helium = _system(Coulomb(charges=[2.0], centers=[[0.0, 0.0, 0.0]]), particles=2)
    _, sym = _shares(functions, helium, particles=2)
    assert sym.labels == ["S", "P", "P°"]


def test_linear_molecules():
    """Centres on a line: Σ, Π, Δ about it (C_8), with g/u where the centres are symmetric (H2-like), none where
    they are not (LiH-like)."""
    axis = np.array([1.0, 2.0, 2.0]) / 3.0
    mid = np.array([0.5, 0.0, -0.5])

    def functions(x):
        p = x[:, 0] - mid
        z = p @ axis
        u = np.cross(axis, [1.0, 0.0, 0.0])
        u /= np.linalg.norm(u)
        v = np.cross(axis, u)
        a, b = p @ u, p @ v
        e = np.exp(-np.linalg.norm(p, axis=-1))
        return np.stack([e, z * e, a * e, a * b * e, z * a * e], 1)

    ends = [list(mid - 0.7 * axis), list(mid + 0.7 * axis)]
    h2 = _system(Coulomb(charges=[1.0, 1.0], centers=ends))
    group, sym = _shares(functions, h2)
    assert group.name == "C_8 × i" and sym.labels == ["Σg", "Σu", "Πu", "Δg", "Πg"]
    lih = _system(Coulomb(charges=[3.0, 1.0], centers=ends))
    group, sym = _shares(functions, lih)
    assert group.name == "C_8" and sym.labels == ["Σ", "Σ", "Π", "Δ", "Π"]


def test_plane_and_reflections():
    """One centre in 2D: |m| = 0, 1, 2, 3 (C_8; the pair ±m is one real representation, share 1); an anisotropic
    trap: one parity per axis; a 1D trap: even/odd."""
    def plane(x):
        p = x[:, 0]
        angle, r = np.arctan2(p[:, 1], p[:, 0]), np.linalg.norm(p, axis=-1)
        return np.stack([np.cos(m * angle) * r**m * np.exp(-r) for m in range(4)], 1)

    group, sym = _shares(plane, _system(Coulomb(charges=[1.0], centers=[[0.0, 0.0]]), d=2))
    assert group.name == "C_8" and sym.labels == ["|m| = 0", "|m| = 1", "|m| = 2", "|m| = 3"]
    assert np.allclose(sym.shares.max(1), 1.0, atol=1e-10)

    def trap(x):
        p = x[:, 0] - np.array([0.5, 0.5])
        e = np.exp(-(p**2).sum(-1))
        return np.stack([e, p[:, 0] * e, p[:, 1] * e, p[:, 0] * p[:, 1] * e], 1)

    group, sym = _shares(trap, _system(Harmonic(omega=[1.0, 1.5], center=[0.5, 0.5]), d=2))
    assert group.name == "reflections" and sym.labels == ["++", "-+", "+-", "--"]
    _, sym = _shares(lambda x: np.stack([np.exp(-x[:, 0, 0] ** 2), x[:, 0, 0] * np.exp(-x[:, 0, 0] ** 2)], 1),
                     _system(Harmonic(omega=[1.0], center=[0.0]), d=1))
    assert sym.labels == ["even", "odd"]


@pytest.mark.parametrize("potential, d", [
    (Expression("r**2", 3), 3),                                 # an expression: symmetry unknown
    (Coulomb(charges=[1.0, 1.0, 1.0], centers=[[0, 0, 0], [1, 0, 0], [0, 1, 0]]), 3),   # a triangle
    (Coulomb(charges=[1.0, 1.0], centers=[[0, 0], [1, 0]]), 2),                 # two centres in the plane
], ids=["expression", "triangle", "plane-pair"])
def test_no_group(potential, d):
    assert point_group(_system(potential, d=d)) is None


def test_solve_stores_labels_and_validate_shows_them(tmp_path):
    """A short solve of the 3D oscillator: its states carry labels (the lowest is S to rounding, the next three
    P°), they survive the file, and the table shows them with ⟨Ŝ²⟩ "—" for one particle."""
    result = qsolver.solve("harmonic_3d", n_states=4, steps=200, eval_samples=4000, seed=0)
    labels = result.diagnostics["symmetry_labels"]
    assert result.diagnostics["symmetry_group"] == "O_h" and labels[0] == "S"
    shares = np.asarray(result.diagnostics["symmetry_shares"])
    assert shares[0, result.diagnostics["symmetry_irreps"].index("A1g")] >= PURE
    path = save_result(result, tmp_path / "osc.h5")
    again = load_result(path)
    assert again.diagnostics["symmetry_labels"] == labels
    table = validate(again)
    assert [row["term"] for row in table.states] == [x or "mixed" for x in labels]
    assert all(row["spin_squared"] is None for row in table.states)
    assert "| term |" in table.to_markdown()
    side = compare(again, [reference(again.system, 5, "analytic")])
    assert [row["term"] for row in side.states] == [row["term"] for row in table.states]
    assert "stored by the run" in side.to_markdown()


def test_malformed_labels_in_a_file_are_refused(tmp_path):
    """Labels of the wrong count or kind, sealed into the file on purpose, are refused naming the field."""
    result = qsolver.solve("harmonic_1d", n_states=2, steps=300, eval_samples=4000, seed=0, progress=False)
    assert result.diagnostics["symmetry_labels"] == ["even", "odd"]
    for bad in (["even"], ["even", 3]):
        path = save_result(result, tmp_path / "r.h5")
        with h5py.File(path, "r+") as f:
            diag = json.loads(f.attrs["diagnostics"])
            diag["symmetry_labels"] = bad
            f.attrs["diagnostics"] = json.dumps(diag)
        seal(path)
        with pytest.raises(InputError, match="field 'diagnostics': 'symmetry_labels' must be a list of 2 strings"):
            load_result(path)


def test_term_names_as_users_write_them():
    """Each group's terms in the spellings a file may use: a leading multiplicity in superscripts, 'o' for '°', ±
    on Σ; a name the group does not have is refused with the names it has."""
    atom = point_group(_system(Coulomb(charges=[3.0], centers=[[0.0, 0.0, 0.0]])))
    assert term_irreps(atom, "²P°") == term_irreps(atom, "P o") == term_irreps(atom, "Po") == ("T1u",)
    assert term_irreps(atom, "¹S") == ("A1g",) and term_irreps(atom, "D") == ("Eg", "T2g")
    assert term_irreps(atom, "F°") == ("A2u", "T1u", "T2u")
    h2 = point_group(_system(Coulomb(charges=[1.0, 1.0], centers=[[0, 0, 0], [0, 0, 1.4]])))
    assert term_irreps(h2, "¹Σg+") == ("Σg",) and term_irreps(h2, "Π") == ("Πg", "Πu")
    lih = point_group(_system(Coulomb(charges=[3.0, 1.0], centers=[[0, 0, 0], [0, 0, 3.015]])))
    assert term_irreps(lih, "Σ⁺") == ("Σ",)
    plane = point_group(_system(Harmonic(omega=[1.0, 1.0], center=[0.0, 0.0]), d=2))
    assert term_irreps(plane, "|m|=2") == ("|m| = 2",)
    line = point_group(_system(Harmonic(omega=[1.0], center=[0.0]), d=1))
    assert term_irreps(line, "odd") == ("odd",)
    with pytest.raises(ValueError, match=r"'Q' is not a term of O_h \(known: S, S°, P, P°, D"):
        term_irreps(atom, "Q")
    with pytest.raises(ValueError, match="'Σg' is not a term of C_8"):
        term_irreps(lih, "Σg")                                # LiH has no inversion: no g/u


def _stored(shares: list[list[float]], irreps: list[str], system: System, levels: list[float]):
    """A result whose diagnostics hold ``shares`` (states × irreps), and the reference with ``levels``."""
    from types import SimpleNamespace

    from qsolver.references import Reference

    diag = {"symmetry_group": "O_h", "symmetry_irreps": irreps, "symmetry_shares": shares,
            "symmetry_share_errors": np.zeros((len(shares), len(irreps))).tolist(), "symmetry_labels": [""] * len(shares)}
    return SimpleNamespace(system=system, n_states=len(shares), diagnostics=diag), Reference(np.array(levels), "test")


def test_wrong_terms_takes_a_degenerate_level_as_a_whole():
    """Hydrogen's n = 2 level: two states mixing 2s and 2p half and half pass, as the level holds one S and three P°
    however they are rotated; the same shares on four distinct levels flag the two mixed states. A missing share in
    a term (an S where P° is expected) is flagged with its share."""
    from qsolver.checks import wrong_terms

    hydrogen = _system(Coulomb(charges=[1.0], centers=[[0.0, 0.0, 0.0]]))
    hydrogen.reference_options = {"terms": ["S", "P°", "P°", "P°"]}
    irreps = ["A1g", "T1u", "Eg"]
    mixed = [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
    result, shell = _stored(mixed, irreps, hydrogen, [-0.125] * 4)
    assert wrong_terms(result, shell) == []
    result, apart = _stored(mixed, irreps, hydrogen, [-0.5, -0.2, -0.15, -0.1])
    assert wrong_terms(result, apart) == [(0, "S", 0.5), (1, "P°", 0.5)]
    hydrogen.reference_options = {"terms": ["S", "P°", "S", "P°"]}      # a 3-fold level named S, P°... wrongly
    result, levels = _stored([[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0]], irreps, hydrogen, [-0.5] + [-0.125] * 3)
    found = wrong_terms(result, levels)
    assert found == [(2, "S", 0.0)]
    assert "2: S expected, its share 0.00" in " ".join(LevelCheck(wrong_terms=found).messages())
    hydrogen.reference_options = {}
    assert wrong_terms(result, levels) == []                             # no terms named: nothing checked


def test_solve_checks_the_terms_its_file_expects(tmp_path):
    """A short solve of the 1D oscillator: its file's terms [even, odd] pass; [even, even] flag state 1, whose
    share in the even representation is near zero (the networks carry no parity; 300 steps leave it under 5 %)."""
    from qsolver.checks import check_levels

    system = qsolver.load_system("harmonic_1d")
    system.reference_options = {**system.reference_options, "terms": ["even", "odd"]}
    result = qsolver.solve(system, n_states=2, steps=300, eval_samples=4000, seed=0, progress=False)
    assert check_levels(result, reference(system, 2, "analytic")).wrong_terms == []
    result.system.reference_options["terms"] = ["even", "even"]
    flagged = check_levels(result, reference(system, 2, "analytic"))
    assert flagged.flagged and [(i, t) for i, t, _ in flagged.wrong_terms] == [(1, "even")]
    assert 0.0 <= flagged.wrong_terms[0][2] < 0.05
