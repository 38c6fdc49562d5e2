"""The continuum threshold of N ≥ 3 electrons: the (N-1)-electron ion's lowest level of spin S ± ½, quoted from the
literature for tabulated atomic ions, else computed by PySCF full CI of the ion, checked here against exact levels
that the table does not hold."""
from __future__ import annotations

import numpy as np
import pytest

import qsolver.references as refs
from qsolver.references import ionization_threshold
from qsolver.references.ions import fci_ion_level
from qsolver.system import system_from_dict
from qsolver.validate import state_status

# exact nonrelativistic 1s² ¹S and 1s2s ³S levels, infinite nuclear mass (Drake 1996), not read from ION_LEVELS
LI_PLUS = -7.279913413
LI_PLUS_TRIPLET = -5.110727724
B_3PLUS = -22.030971580
# even-tempered-2e-small, the basis of two-electron ions on one nucleus, lies above these by 1.5e-3 (Li⁺) and
# 2.2e-3 (B³⁺) hartree (measured): full CI is variational, so the number must lie above, and within this
BASIS_ERROR = 3e-3


def atom(symbol: str, charge: int = 0, spin: int | None = None, kinetic: float = 0.5):
    molecule = {"atoms": [[symbol, [0.0, 0.0, 0.0]]], "unit": "bohr", "charge": charge}
    if spin is not None:
        molecule["spin"] = spin
    return system_from_dict({"name": "atom", "kinetic": kinetic, "molecule": molecule, "reference": {"kind": "none"}})


@pytest.fixture
def no_fci(monkeypatch):
    """Fail the test if the threshold reaches for a PySCF calculation."""

    def refuse(*args):
        raise AssertionError("PySCF full CI ran where the table has the ion")

    monkeypatch.setattr(refs, "fci_ion_level", refuse)


def test_lithium_threshold_is_li_plus_from_the_table(no_fci):
    assert ionization_threshold(atom("Li")) == pytest.approx(LI_PLUS, abs=1e-9)


def test_table_levels_scale_as_one_over_2_kappa(no_fci):
    """H(κ) = H(½)/(2κ) under x → 2κx (every potential term is Coulomb): lithium at κ = 1 has Li⁺ at E/2."""
    assert ionization_threshold(atom("Li", kinetic=1.0)) == pytest.approx(LI_PLUS / 2, abs=1e-9)


def test_pyscf_path_reproduces_the_tabulated_li_plus_within_its_basis_error():
    """The PySCF path on an ion the table holds, at κ = 1 where PySCF computes with κ itself (the even-tempered
    exponents follow 2κ/Z): above the exact E/(2κ), by less than the basis error scaled the same way."""
    level = fci_ion_level(("Li",), (3,), ((0.0, 0.0, 0.0),), 1, 1, 1.0)
    assert 0 < level - LI_PLUS / 2 < BASIS_ERROR / 2


def test_three_electrons_without_a_table_entry_get_pyscf_full_ci():
    """B²⁺ (Z = 5, three electrons): its ion B³⁺ is not tabulated."""
    threshold = ionization_threshold(atom("B", charge=2))
    assert 0 < threshold - B_3PLUS < BASIS_ERROR


def test_the_ion_level_has_a_spin_that_couples_to_the_state():
    """Lithium quartets (2S = 3) leave Li⁺ in a triplet (2S' = 2), not in its singlet ground level: the threshold is
    Li⁺ 1s2s ³S, which the table does not hold."""
    threshold = ionization_threshold(atom("Li", spin=3))
    assert 0 < threshold - LI_PLUS_TRIPLET < BASIS_ERROR


def test_states_above_the_ion_level_are_labelled_continuum(no_fci):
    """Li 2²S at -7.478 is bound, a state at -7.2 lies above Li⁺ (-7.2799): continuum."""
    status = state_status(np.array([-7.478, -7.2]), np.array([1e-3, 1e-3]), ionization_threshold(atom("Li")))
    assert status == ["bound", "above threshold"]


def test_no_threshold_for_other_pair_interactions(no_fci):
    system = system_from_dict({"name": "soft", "particles": 3, "dimension": 3, "reference": {"kind": "none"},
                               "potential": {"kind": "coulomb", "charges": [3.0], "centers": [[0.0, 0.0, 0.0]]},
                               "interaction": {"kind": "coulomb", "strength": 0.5}})
    assert ionization_threshold(system) is None
