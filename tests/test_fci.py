"""Two-electron PySCF references (He, H-, H2): full CI in the pair space, spin sectors, [molecule] charge/spin."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import qsolver.references.pyscf as pyscf_ref
from qsolver import InputError
from qsolver.molecule import Molecule, parse_molecule
from qsolver.references import reference
from qsolver.system import system_from_dict

# exact non-relativistic levels (hartree, infinite nuclear mass; Drake, Pekeris, Kołos–Wolniewicz, Pachucki)
HE_SINGLETS = np.array([-2.903724377, -2.145974046] + [-2.123843086] * 3)   # 1¹S, 2¹S, 2¹P
HE_TRIPLETS = np.array([-2.175229378] + [-2.133164191] * 3)                  # 2³S, 2³P
H_MINUS = -0.527751017
H2_ELECTRONIC = -1.888761428   # R = 1.4 bohr, total -1.1744757 minus 1/R
ROUNDING = 1e-9                # the exact levels are quoted to 9 decimals
# fast tests: a small even-tempered set checked against aug-cc-pVTZ, which is further off on every He level
SMALL = {"basis": "even-tempered-2e-small", "companion": "aug-cc-pvtz"}


def atom_system(symbol: str, charge: int = 0, spin: int | None = None, **reference) -> object:
    molecule = {"atoms": [[symbol, [0.0, 0.0, 0.0]]], "unit": "bohr", "charge": charge}
    if spin is not None:
        molecule["spin"] = spin
    return system_from_dict({"name": "atom", "kinetic": 0.5, "molecule": molecule,
                             "reference": {"kind": "pyscf", **reference}})


def helium(spin: int = 0) -> Molecule:
    return Molecule(["He"], [2], [[0.0, 0.0, 0.0]], spin=spin)


# ------------------------------------------------------------------------------------- the pair-space CI

def rhf_integrals(kinetic: float) -> tuple:
    """(h, (pq|rs), orbital count) of He in aug-cc-pVDZ over its RHF orbitals, h = 2κT + V_nuc (PySCF's route)."""
    from pyscf import ao2mo, gto, scf

    mol = gto.M(atom="He 0 0 0", basis="aug-cc-pvdz", verbose=0)
    orbitals = scf.RHF(mol).run().mo_coeff
    h1 = orbitals.T @ (2 * kinetic * mol.intor("int1e_kin") + mol.intor("int1e_nuc")) @ orbitals
    return h1, ao2mo.kernel(mol, orbitals), mol.nao


@pytest.mark.parametrize("spin", [0, 2], ids=["singlets", "triplets"])
def test_pair_space_ci_equals_pyscf_fci_in_the_same_basis(spin):
    from pyscf import fci

    solver = fci.direct_spin1.FCI()
    solver.nroots = 12
    energies, vectors = solver.kernel(*rhf_integrals(kinetic=0.5), (1, 1))
    norb = len(vectors[0])
    # the M_S = 0 determinant space holds both spins: keep the roots of <S²> = S(S+1)
    s2 = np.array([fci.spin_op.spin_square0(v, norb, (1, 1))[0] for v in vectors])
    wanted = np.sort(np.asarray(energies)[np.abs(s2 - spin / 2 * (spin / 2 + 1)) < 1e-6])[:4]
    ours = pyscf_ref.fci_levels(helium(spin), 0.5, "aug-cc-pvdz", 4, spin)["energies"]
    np.testing.assert_allclose(ours, wanted, rtol=0, atol=1e-9)


def test_triplets_never_contain_a_singlet_level():
    triplets = pyscf_ref.fci_levels(helium(2), 0.5, "aug-cc-pvtz", 4, 2)["energies"]
    # 2³S, not 1¹S (-2.90): the antisymmetric pair space has no singlet; 2³P three times
    assert triplets[0] > -2.18 and abs(triplets[0] - HE_TRIPLETS[0]) < 6e-3
    np.testing.assert_allclose(triplets[1:], triplets[1], rtol=0, atol=1e-9)


def test_kinetic_prefactor_scales_the_two_electron_levels():
    # He with κ = 1 and the repulsion kept at 1/r: the identity E(κ) = E(½)/(2κ) holds only for W = 0, so
    # check against the independent route instead: κ enters h alone, as 2κT (the repulsion is unchanged)
    from pyscf import fci

    heavy = pyscf_ref.fci_levels(helium(), 1.0, "aug-cc-pvdz", 1, 0)["energies"][0]
    expected = fci.direct_spin1.FCI().kernel(*rhf_integrals(kinetic=1.0), (1, 1))[0]
    assert heavy == pytest.approx(expected, abs=1e-9)


# ------------------------------------------------------------------------------- references against exact

def test_helium_ground_state_is_within_its_stated_error():
    ref = pyscf_ref.pyscf_reference(atom_system("He", **SMALL), 1)
    assert ref.details["electrons"] == 2 and ref.details["spin"] == 0 and "singlets" in ref.method
    assert ref.energies[0] >= HE_SINGLETS[0] - ROUNDING   # variational
    assert abs(ref.energies[0] - HE_SINGLETS[0]) <= ref.errors[0] < 5e-3


def test_helium_lowest_triplet_is_within_its_stated_error():
    ref = pyscf_ref.pyscf_reference(atom_system("He", spin=2, **SMALL), 1)
    assert ref.details["spin"] == 2 and "triplets" in ref.method
    assert ref.energies[0] >= HE_TRIPLETS[0] - ROUNDING
    assert abs(ref.energies[0] - HE_TRIPLETS[0]) <= ref.errors[0] < 1e-2   # aug-cc-pVTZ's 2³S is 5e-3 off


def test_hydrogen_anion_is_bound_by_the_right_amount():
    ref = pyscf_ref.pyscf_reference(atom_system("H", charge=-1, **SMALL), 1)
    assert ref.energies[0] < -0.5 - 0.02   # below H(1s) + e: the one bound state
    assert ref.energies[0] >= H_MINUS - ROUNDING
    assert abs(ref.energies[0] - H_MINUS) <= ref.errors[0]


def test_h2_ground_state_electronic_energy_is_within_its_stated_error():
    # valence correlation converges like X^-3 in the cardinal number X, so |E(TZ) - E(DZ)| bounds E(TZ)'s error
    system = system_from_dict({"name": "h2", "kinetic": 0.5,
                               "molecule": {"atoms": [["H", [0, 0, -0.7]], ["H", [0, 0, 0.7]]], "unit": "bohr"},
                               "reference": {"kind": "pyscf", "basis": "aug-cc-pvtz", "companion": "aug-cc-pvdz"}})
    ref = pyscf_ref.pyscf_reference(system, 1)
    assert ref.details["nuclear_repulsion"] == pytest.approx(1 / 1.4, rel=1e-14)
    assert ref.energies[0] >= H2_ELECTRONIC - ROUNDING
    assert abs(ref.energies[0] - H2_ELECTRONIC) <= ref.errors[0] < 1e-2
    np.testing.assert_allclose(ref.details["total_energies"], ref.energies + 1 / 1.4, rtol=0, atol=1e-14)


@pytest.mark.slow
@pytest.mark.parametrize("spin, exact", [(0, HE_SINGLETS), (2, HE_TRIPLETS)], ids=["singlets", "triplets"])
def test_default_basis_gets_every_helium_level_within_its_stated_error(spin, exact):
    ref = pyscf_ref.pyscf_reference(atom_system("He", spin=spin), len(exact))
    assert ref.details["basis"] == pyscf_ref.DEFAULT_BASIS_2E
    assert np.all(ref.energies >= exact - ROUNDING)
    assert np.all(np.abs(ref.energies - exact) <= ref.errors) and ref.error < 5e-3


def test_cache_keys_on_spin_and_hits_without_pyscf(monkeypatch):
    singlet = pyscf_ref.pyscf_reference(atom_system("He", basis="aug-cc-pvdz", companion="cc-pvdz"), 2)
    triplet = pyscf_ref.pyscf_reference(atom_system("He", spin=2, basis="aug-cc-pvdz", companion="cc-pvdz"), 2)
    assert triplet.energies[0] > singlet.energies[0] + 0.5
    monkeypatch.setattr(pyscf_ref, "fci_levels", lambda *a, **k: pytest.fail("PySCF called despite the cache"))
    again = pyscf_ref.pyscf_reference(atom_system("He", spin=2, basis="aug-cc-pvdz", companion="cc-pvdz"), 2)
    np.testing.assert_array_equal(again.energies, triplet.energies)
    assert again.details == triplet.details


def test_another_basis_is_measured_against_the_files_basis():
    # "pyscf:BASIS" (qsolver compare's side-by-side FCI) runs that basis; its error estimate comes from the file's
    # own [reference] basis, not from the file's companion (which belongs to the file's basis)
    system = atom_system("He", basis="aug-cc-pvdz", companion="cc-pvdz")
    own, other = reference(system, 1), reference(system, 1, "pyscf:aug-cc-pvtz")
    assert (own.details["basis"], own.details["companion_basis"]) == ("aug-cc-pvdz", "cc-pvdz")
    assert (other.details["basis"], other.details["companion_basis"]) == ("aug-cc-pvtz", "aug-cc-pvdz")
    assert other.energies[0] < own.energies[0]                # the larger basis is lower (variational)
    assert other.errors[0] == pytest.approx(own.energies[0] - other.energies[0])


def test_only_coulomb_repulsion_of_strength_one_has_a_pyscf_reference():
    system = system_from_dict({"name": "he", "kinetic": 0.5, "interaction": {"kind": "coulomb", "strength": 0.5},
                               "molecule": {"atoms": [["He", [0, 0, 0]]], "unit": "bohr"},
                               "reference": {"kind": "pyscf"}})
    with pytest.raises(InputError) as err:
        pyscf_ref.pyscf_reference(system, 1)
    assert err.value.field == "interaction"


def test_companion_must_differ_from_the_basis():
    with pytest.raises(InputError) as err:
        pyscf_ref.pyscf_reference(atom_system("He", basis="cc-pvdz", companion="cc-pvdz"), 1)
    assert err.value.field == "reference.companion"


# ---------------------------------------------------------------------------------- [molecule] charge, spin

def test_charge_and_spin_set_the_electrons():
    neutral = parse_molecule({"atoms": "He 0 0 0", "unit": "bohr"})
    assert neutral.electrons == 2 and neutral.spin == 0 and neutral.charge == 0
    ion = parse_molecule({"atoms": "He 0 0 0", "unit": "bohr", "charge": 1})
    assert ion.electrons == 1 and ion.spin == 1
    triplet = parse_molecule({"atoms": "H 0 0 -0.7; H 0 0 0.7", "unit": "bohr", "spin": 2})
    assert triplet.electrons == 2 and triplet.to_dict()["spin"] == 2 and triplet.to_dict()["charge"] == 0
    assert parse_molecule(triplet.to_dict()) == triplet


@pytest.mark.parametrize("table, field", [
    ({"atoms": "Na 0 0 0"}, "molecule.charge"),                      # eleven electrons, beyond the limit
    ({"atoms": "He 0 0 0", "charge": 2}, "molecule.charge"),         # no electrons
    ({"atoms": "He 0 0 0", "charge": 0.0}, "molecule.charge"),       # not an integer
    ({"atoms": "He 0 0 0", "spin": 1}, "molecule.spin"),             # two electrons: 0 or 2
    ({"atoms": "He 0 0 0", "charge": 1, "spin": 2}, "molecule.spin"),  # one electron: 1 only
], ids=["eleven-electrons", "no-electrons", "float-charge", "spin-1-with-two", "spin-2-with-one"])
def test_bad_charge_or_spin_names_the_field(table, field, request):
    with pytest.raises(InputError) as err:
        parse_molecule({"unit": "bohr"} | table, source="m.toml")
    assert err.value.field == field and err.value.source == "m.toml"
    if "electrons" in request.node.callspec.id:
        assert "1 to 10 electrons" in str(err.value)


# ------------------------------------------------------------------------ three and more electrons: spin sectors

def beryllium_rhf_fci(basis: str, roots: int) -> list[tuple[float, float]]:
    """(E, ⟨S²⟩) of Be's lowest M_S = 0 roots by PySCF's own FCI over RHF orbitals (every spin, unfiltered)."""
    from pyscf import fci, gto, scf

    mol = gto.M(atom="Be 0 0 0", unit="bohr", basis=basis, verbose=0)
    solver = fci.FCI(scf.RHF(mol).run())
    solver.nroots = roots
    energies, vectors = solver.kernel()
    return [(e, fci.spin_op.spin_square0(v, mol.nao, mol.nelec)[0]) for e, v in zip(energies, vectors)]


# Be in cc-pVDZ from PySCF's own FCI over RHF orbitals (beryllium_rhf_fci("cc-pvdz", 7)), hartree: 2s² ¹S, 2s2p ³P, 2s2p ¹P
BE_CC_PVDZ = {"1S": -14.61740951, "3P": -14.51630276, "1P": -14.41065342}


def beryllium_levels(basis: str, spin: int, n: int) -> np.ndarray:
    atom = Molecule(["Be"], [4], [[0.0, 0.0, 0.0]], spin=spin)
    return pyscf_ref.many_electron_levels(atom, 0.5, basis, n, spin)["energies"]


def test_beryllium_spin_sectors_hold_their_own_p_levels_three_times():
    """Be: the M_S = 0 space holds the 2s2p ³P below the 2s2p ¹P. A spin = 2 run returns ³P (three equal levels),
    a spin = 0 run 2s² ¹S and then ¹P three times, never ³P. In 6-31G (H diagonalised whole) both equal PySCF's own
    FCI over RHF orbitals with its roots labelled by ⟨S²⟩ (another route: other orbitals, no spin filter)."""
    triplets, singlets = beryllium_levels("6-31g", 2, 3), beryllium_levels("6-31g", 0, 4)
    np.testing.assert_allclose(triplets, triplets[0], rtol=0, atol=1e-9)          # ³P: three components
    np.testing.assert_allclose(singlets[1:], singlets[1], rtol=0, atol=1e-9)      # ¹P: three components
    assert singlets[0] < triplets[0] - 0.05 and singlets[1] > triplets[0] + 0.05  # ¹S < ³P < ¹P, ³P absent
    reference = beryllium_rhf_fci("6-31g", 7)                                       # ¹S, ³P ×3, ¹P ×3
    assert [round(s2) for _, s2 in reference] == [0, 2, 2, 2, 0, 0, 0], reference
    np.testing.assert_allclose(triplets, [e for e, s2 in reference if round(s2) == 2], rtol=0, atol=1e-9)
    np.testing.assert_allclose(singlets, [e for e, s2 in reference if round(s2) == 0], rtol=0, atol=1e-9)


# Be in 6-31+G, triplets: the whole M_S = 1 space (3718 determinants) diagonalised
# (test_beryllium_6_31pg_constants_come_from_the_whole_space), hartree
BE_631PG = {"3P": -14.5106182, "3S": -14.3789145, "3P'": -14.3424035}


def test_davidson_finds_every_symmetry_species_and_lifts_the_other_spins():
    """Be in 6-31+G by PySCF's Davidson solver. Triplets: 2s2p ³P ×3 and then 2s3s ³S, as the whole determinant
    space gives them; PySCF's single-determinant guesses alone hold no ³S component, and 4 roots then skip it for
    2s3p ³P (-14.3424). Singlets: 2s² ¹S and then 2s2p ¹P, the ³P lifted out of the roots by the spin penalty."""
    triplets = beryllium_levels("6-31+g", 2, 4)
    np.testing.assert_allclose(triplets, [BE_631PG["3P"]] * 3 + [BE_631PG["3S"]], rtol=0, atol=1e-7)
    singlets = beryllium_levels("6-31+g", 0, 2)
    assert singlets[0] < triplets[0] - 0.05 and singlets[1] > triplets[0] + 0.05


@pytest.mark.slow
def test_beryllium_6_31pg_constants_come_from_the_whole_space():
    from pyscf import ao2mo, fci

    atom = Molecule(["Be"], [4], [[0.0, 0.0, 0.0]], spin=2)
    mol = pyscf_ref._mole(atom, 0.5, "6-31+g", None)
    energies, orbitals = pyscf_ref.core_orbitals(mol, 0.5)
    _, whole = fci.direct_spin1.pspace(np.diag(energies), ao2mo.kernel(mol, orbitals), len(energies), (3, 1), np=3718)
    exact = scipy.linalg.eigvalsh(whole, subset_by_index=[0, 4])   # quintets lie far above
    expected = [BE_631PG["3P"]] * 3 + [BE_631PG["3S"], BE_631PG["3P'"]]
    np.testing.assert_allclose(exact, expected, rtol=0, atol=1e-7)


@pytest.mark.slow
def test_beryllium_spin_sectors_by_davidson_in_cc_pvdz():
    triplets, singlets = beryllium_levels("cc-pvdz", 2, 3), beryllium_levels("cc-pvdz", 0, 4)
    np.testing.assert_allclose(triplets, [BE_CC_PVDZ["3P"]] * 3, rtol=0, atol=1e-7)
    np.testing.assert_allclose(singlets, [BE_CC_PVDZ["1S"]] + [BE_CC_PVDZ["1P"]] * 3, rtol=0, atol=1e-7)


@pytest.mark.slow
def test_beryllium_cc_pvdz_constants_come_from_pyscfs_own_fci():
    reference = beryllium_rhf_fci("cc-pvdz", 7)
    assert [round(s2) for _, s2 in reference] == [0, 2, 2, 2, 0, 0, 0], reference
    expected = [BE_CC_PVDZ["1S"]] + [BE_CC_PVDZ["3P"]] * 3 + [BE_CC_PVDZ["1P"]] * 3
    np.testing.assert_allclose([e for e, _ in reference], expected, rtol=0, atol=1e-7)


# ---------------------------------------------------------------------------------- frozen core
@pytest.mark.parametrize("atoms,spin,basis,roots", [
    ("Li 0 0 0; H 0 0 3.015", 0, "6-31g", 3),      # two active electrons: the pair Hamiltonian over h_eff's orbitals
    ("Li 0 0 0", 1, "6-31g", 3),                   # one: h_eff's eigenvalues
    ("Be 0 0 0; H 0 0 2.54", 1, "sto-3g", 2),      # three: full CI in the active space
])
def test_frozen_core_levels_equal_pyscf_casci(atoms, spin, basis, roots):
    from pyscf import gto, mcscf, scf

    system = system_from_dict({"name": "fc", "kinetic": 0.5,
                               "molecule": {"atoms": atoms, "unit": "bohr", "spin": spin},
                               "reference": {"kind": "pyscf", "basis": basis, "companion": "sto-3g" if basis != "sto-3g"
                                             else "6-31g", "frozen_core": True}})
    ref = pyscf_ref.pyscf_reference(system, roots, cache=False)
    mol = gto.M(atom=atoms, unit="Bohr", basis=basis, spin=spin, verbose=0)
    mf = (scf.RHF if spin == 0 else scf.ROHF)(mol).run(conv_tol=1e-10)
    core = 1                                            # Li or Be 1s
    mc = mcscf.CASCI(mf, mf.mo_coeff.shape[1] - core, mol.nelectron - 2 * core)
    mc.fcisolver.nroots, mc.verbose = roots, 0
    mc.fix_spin_(ss=spin / 2 * (spin / 2 + 1))
    expected = np.sort(np.atleast_1d(mc.kernel()[0])) - mol.energy_nuc()
    np.testing.assert_allclose(ref.energies, expected, atol=1e-8)
    assert ref.details["frozen_orbitals"] == core and "frozen-core" in ref.method


@pytest.mark.parametrize("atoms,value", [("He 0 0 0", True), ("Li 0 0 0", "yes")])
def test_frozen_core_needs_a_core_and_a_boolean(atoms, value):
    system = system_from_dict({"name": "fc", "kinetic": 0.5, "molecule": {"atoms": atoms, "unit": "bohr"},
                               "reference": {"kind": "pyscf", "basis": "6-31g", "companion": "sto-3g",
                                             "frozen_core": value}})
    with pytest.raises(InputError) as err:
        pyscf_ref.pyscf_reference(system, 1, cache=False)
    assert err.value.field == "reference.frozen_core"
