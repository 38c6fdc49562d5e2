"""A pyscf.gto.Mole is accepted wherever the Python API takes a system: its atoms (in its unit), charge and spin
become a [molecule] system, its basis the pyscf reference's basis; what the package's H does not hold is refused."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg

import qsolver
import qsolver.solver
from qsolver import InputError
from qsolver.system import as_system, system_from_dict

gto = pytest.importorskip("pyscf.gto")

LITHIUM_TOML = {"name": "Li", "molecule": {"atoms": [["Li", [0.0, 0.0, 0.0]]], "unit": "bohr", "spin": 1},
                "reference": {"kind": "pyscf", "basis": "cc-pvdz"}}


def mole(**kwargs):
    mol = gto.Mole()
    for key, value in kwargs.items():
        setattr(mol, key, value)
    return mol


def test_a_lithium_mole_gives_the_system_of_the_equivalent_file():
    system = as_system(mole(atom="Li 0 0 0", unit="Bohr", spin=1, basis="cc-pVDZ"))
    assert system.to_dict() == system_from_dict(LITHIUM_TOML).to_dict()
    assert (system.particles, system.spin, system.spin_sector) == (3, 1, (2, 1))


def test_angstrom_positions_become_bohr():
    """1 Å = 1.8897261246 bohr (CODATA; PySCF's 2010 value differs from 2018's by 6e-10 relative)."""
    system = as_system(mole(atom="Li 0 0 0; H 0 0 1.0", unit="Angstrom", basis="sto-3g"))
    assert system.molecule.positions[1][2] == pytest.approx(1.8897261246, abs=2e-9)
    assert (system.name, system.particles, system.spin) == ("LiH", 4, 0)
    assert system.reference_options == {"basis": "sto-3g"}


def test_charge_and_one_basis_per_element_are_read():
    system = as_system(mole(atom="He 0 0 0", charge=1, spin=1, basis={"He": "cc-pvdz"}))
    assert (system.particles, system.spin, system.molecule.charge) == (1, 1, 1)
    assert system.reference_options["basis"] == "cc-pvdz"


@pytest.mark.parametrize("kwargs, field", [
    (dict(atom="ghost-H 0 0 0; Li 0 0 1.5", spin=1), "atom[0]"),
    (dict(atom="Li 0 0 0; X-H 0 0 1.5", spin=1), "atom[1]"),
    (dict(atom="Li 0 0 0", spin=1, ecp={"Li": "lanl2dz"}), "ecp"),
    (dict(atom="Li 0 0 0; H 0 0 1.5", basis={"Li": "cc-pvdz", "H": "sto-3g"}), "basis"),
    (dict(atom="Li 0 0 0", spin=0), "molecule.spin"),      # three electrons: 2S = 1 or 3
], ids=["ghost", "ghost-x", "ecp", "mixed-basis", "spin"])
def test_what_the_hamiltonian_does_not_hold_is_refused(kwargs, field):
    with pytest.raises(InputError) as err:
        qsolver.reference(mole(**kwargs), 1)
    assert err.value.field == field


def test_a_basis_pyscf_lacks_is_refused_before_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training was set up despite the basis")

    monkeypatch.setattr(qsolver.solver, "make_problem", refuse)
    with pytest.raises(InputError) as err:
        qsolver.solve(mole(atom="Li 0 0 0", spin=1, basis="cc-pv9z"), steps=1, progress=False)
    assert err.value.field == "reference.basis" and "cc-pv9z" in str(err.value)


def test_the_reference_runs_in_the_moles_basis():
    """H2⁺ (one electron) in cc-pVDZ through the Mole: PySCF's own core-Hamiltonian level of the same Mole."""
    mol = gto.M(atom="H 0 0 0; H 0 0 2", unit="Bohr", charge=1, spin=1, basis="cc-pvdz", verbose=0)
    expected = scipy.linalg.eigh(mol.intor("int1e_kin") + mol.intor("int1e_nuc"), mol.intor("int1e_ovlp"),
                                 eigvals_only=True)[0]
    ref = qsolver.reference(mol, 1)
    assert ref.details["basis"] == "cc-pvdz"
    np.testing.assert_allclose(ref.energies[0], expected, rtol=0, atol=1e-10)


def test_pyscf_is_not_imported_for_other_systems():
    code = "import sys, qsolver; qsolver.system.as_system('harmonic_1d'); print('pyscf' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
