"""Levels of electrons bound by nuclei, from PySCF's Gaussian integrals (H, He+, H2+, He, H-, H2, Li, Be, LiH).

In an atom-centred basis {χ_μ}, each electron's H = -κ∇² - Σ_A Z_A/|x - R_A| is the core Hamiltonian
h = 2κ T + V_nuc (PySCF's T is ⟨χ_μ|-½∇²|χ_ν⟩). One electron: the levels solve h c = E S c (S the overlap).
Two electrons (repulsion 1/r_12, unscaled by κ): full CI, exact in the basis, as a dense diagonalisation of H in
the space of symmetric (singlet) or antisymmetric (triplet) orbital pairs of the core orbitals, so each spin
is computed alone and spatially degenerate levels (He 2¹P ×3) are repeated. PySCF's own determinant FCI gives
the same levels, but far too slowly at these basis sizes (results/bench/fci_bases.md). Three and more electrons:
PySCF's own determinant FCI (``pyscf.fci.direct_spin1``) in the M_S = S space, the roots of total spin S kept by
⟨S²⟩. Near-linear dependence of large diffuse bases is removed by canonical orthogonalisation. ``Reference.energies`` are **electronic** (the package's H has no nuclear repulsion);
``details`` adds the totals E + E_nn. Energies in hartree.

Error estimate per level: |E - E'| with E' from a companion basis (``[reference] companion``, else: for the
defaults a smaller set, where the difference is that set's error and so a conservative bound; for any other
basis the default, where it is close to that basis's own error). Defaults: ``even-tempered-large`` (one
electron; companion ``even-tempered-medium``), ``even-tempered-2e`` (two; companion ``even-tempered-2e-small``),
chosen for He and H⁻ by their measured basis errors and costs (results/bench/fci_bases.md), ``aug-cc-pvtz``
(three and more; companion ``aug-cc-pvdz``). On two or more
nuclei the two-electron default is too large (H2: 26 565 pairs): name ``basis`` and ``companion``.
Results are cached in HDF5 under ``$QSOLVER_CACHE/pyscf`` (default ``~/.cache/qsolver/pyscf``), one file per key.
"""
from __future__ import annotations

import hashlib
import itertools
import importlib.metadata
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.linalg

from ..errors import InputError
from ..files import atomic_write
from ..molecule import ELEMENTS, Molecule
from ..potentials import Coulomb, terms
from ..system import System
from .base import SHARED_OPTIONS, Reference

METHOD = "core Hamiltonian h = 2κT + V_nuc in the overlap metric, canonical orthogonalisation (v1)"
METHOD_2E = ("two-electron full CI: dense H in the spin-adapted orbital-pair space of the core orbitals, "
             "h = 2κT + V_nuc, canonical orthogonalisation (v1)")
# dense pair Hamiltonians larger than this take gigabytes and minutes of eigensolve (results/bench/fci_bases.md):
# refused, not attempted
MAX_PAIRS = 20000
BLOCK = 256   # rows of the pair Hamiltonian built at a time
METHOD_FCI = ("full CI: PySCF direct_spin1 in the M_S = S determinant space of the core orbitals, higher spins lifted "
              "by a penalty λ(S^2 - S(S+1)) in Davidson from randomly perturbed guesses, roots of spin S kept by <S^2>, "
              "h = 2κT + V_nuc, canonical orthogonalisation (v2)")
# PySCF's FCI expands (pq|rs) to norb⁴ doubles (4 GB at 150 orbitals): larger bases are refused, not attempted
MAX_ORBITALS = 150
MAX_DETERMINANTS = 2_000_000   # 16 MB per CI vector; Davidson holds a few dozen
# determinant spaces up to this size are diagonalised whole (seconds): no root can be missed, and PySCF's
# Davidson solver is unreliable for several roots of a space barely larger than their number
DENSE_DETERMINANTS = 2000
# Davidson convergence: energy change below CONV_TOL and residual below CONV_RESIDUAL give levels within
# ~CONV_RESIDUAL² / gap of the converged ones, far below 1e-9 hartree for gaps ≳ 1e-4
CONV_TOL = 1e-12
CONV_RESIDUAL = 1e-7
# Davidson iterations and subspace size per root (PySCF's defaults, 100 and 12, left Be's five singlets in aug-cc-pVDZ
# unconverged)
MAX_CYCLE = 400
MAX_SPACE = 24
# λ (hartree) of the penalty λ(S² - S(S+1)) added to H in the Davidson solver: it moves every level of spin S' > S
# up by λ(S'(S'+1) - S(S+1)) ≥ 2λ(S+1) and leaves the levels of spin S exact (S² commutes with H in the full
# determinant space), so n roots are n levels of spin S instead of a doubling search through the higher spins
# (Be singlets in cc-pVDZ: 5 roots instead of 20, 2.5x faster)
SPIN_PENALTY = 1.0
# PySCF's initial guesses are single determinants of lowest diagonal energy: in an atom, or a linear molecule, they may
# have no component of a whole symmetry species, and Davidson then never finds its levels (Be triplets in
# aug-cc-pVDZ: 4 roots gave 2s2p ³P ×3 and 2s3p ³P, skipping 2s3s ³S 33 mHa below). Each guess gets a random vector
# of this relative norm (fixed seed), so that every species is present from the first step
GUESS_NOISE = 1e-2
GUESS_SEED = 0
# three and more electrons: determinant spaces grow as the orbitals' count to the N-th power, so a correlation-
# consistent set with diffuse functions (46 orbitals for Li) rather than the large even-tempered ones
DEFAULT_BASIS_MANY = "aug-cc-pvtz"
COMPANION_BASIS_MANY = "aug-cc-pvdz"
MULTIPLETS = ("singlets", "doublets", "triplets", "quartets", "quintets")   # by 2S, for the method's text
# eigenvalues of S below this (S_μμ = 1 for PySCF's normalised functions) are dropped: far enough below 1 that no
# level moves by more than its basis error when the cut changes tenfold (results/bench/fci_bases.md)
LINDEP = 1e-9
DECIMALS = 8   # positions (bohr) in the cache key: a 1e-8 bohr shift moves the levels by ≲ 1e-8 hartree


@dataclass(frozen=True)
class EvenTempered:
    """Exponents α = s·a_l·β^k (k = 0, 1, ...) from a_l = ``smallest`` (one value, or one per l) up to
    s·``largest[l]`` for each l ≤ lmax, on every nucleus, with s = (Z/(2κ))² so that the basis follows the
    length unit 2κ/Z of -κ∇² - Z/r."""

    lmax: int
    ratio: float
    smallest: float | tuple[float, ...]
    largest: tuple[float, ...]

    def shells(self, charge: int, kinetic: float) -> list:
        """PySCF basis entries for a nucleus of charge Z under -κ∇²."""
        from pyscf import gto

        s = (charge / (2 * kinetic)) ** 2
        low = self.smallest if isinstance(self.smallest, tuple) else (self.smallest,) * (self.lmax + 1)
        counts = [math.floor(math.log(top / a, self.ratio) + 1e-9) + 1 for a, top in zip(low, self.largest)]
        return gto.etbs([(ell, counts[ell], s * low[ell], self.ratio) for ell in range(self.lmax + 1)])


BASES = {
    "even-tempered-large": EvenTempered(4, 2.0, 1e-3, (4e4, 200.0, 40.0, 20.0, 10.0)),
    "even-tempered-medium": EvenTempered(3, 2.5, 3e-3, (1e4, 100.0, 20.0, 10.0)),
    "even-tempered-small": EvenTempered(2, 3.0, 1e-2, (2.5e3, 50.0, 10.0)),
    # two electrons: diffuse s and p for Rydberg levels; d and f only down to the correlation region (diffuse
    # ones would serve D states, not the correlation of S and P); sizes kept for a dense pair Hamiltonian
    "even-tempered-2e": EvenTempered(3, 2.5, (2e-3, 2e-3, 2e-2, 0.3), (2.5e3, 50.0, 10.0, 5.0)),
    "even-tempered-2e-small": EvenTempered(2, 3.0, (2e-3, 2e-3, 2e-2), (2.5e3, 50.0, 10.0)),
}
DEFAULT_BASIS = "even-tempered-large"
DEFAULT_BASIS_2E = "even-tempered-2e"
# its companion lacks f functions and is coarser radially, so its levels are further off on every He level
COMPANION_BASIS_2E = "even-tempered-2e-small"
# the [reference] keys of this kind, with those of every kind
OPTIONS = ("basis", "companion", "frozen_core", *SHARED_OPTIONS)
METHOD_FROZEN = ("frozen-core CASCI: the lowest SCF orbitals, one per electron pair of each atom's noble-gas core, "
                 "doubly occupied, every other orbital active; one active electron: h_eff, two: the dense pair "
                 "Hamiltonian over h_eff's orbitals, more: full CI in the active space; h = 2κT + V_nuc, canonical "
                 "orthogonalisation (v1)")


def cache_directory() -> Path:
    """``$QSOLVER_CACHE/pyscf``, or ``~/.cache/qsolver/pyscf`` when the variable is unset."""
    root = os.environ.get("QSOLVER_CACHE") or Path.home() / ".cache" / "qsolver"
    return Path(root) / "pyscf"


def system_molecule(system: System) -> Molecule:
    """The system's nuclei and electrons: its ``[molecule]``, or a 3D Coulomb potential with integral charges
    1..118 binding ``system.particles`` electrons of spin ``system.spin``."""
    if system.molecule is not None:
        return system.molecule
    parts = terms(system.potential)
    if system.dimension == 3 and len(parts) == 1 and isinstance(parts[0], Coulomb) and \
            all(float(z).is_integer() and 1 <= z <= len(ELEMENTS) for z in parts[0].charges):
        charges = [int(z) for z in parts[0].charges]
        return Molecule([ELEMENTS[z - 1] for z in charges], charges, [list(c) for c in parts[0].centers],
                        charge=sum(charges) - system.particles, spin=system.spin)
    raise InputError("the pyscf reference needs nuclei: a [molecule] table, or a 3D Coulomb potential with "
                     "integer charges", source=system.source, field="reference.kind")


def _check_interaction(system: System) -> None:
    """PySCF's electron repulsion is 1/r_12: other pair interactions have no PySCF reference."""
    interaction = system.interaction
    if interaction.kind != "coulomb" or interaction.strength != 1.0:
        raise InputError(f"the pyscf reference treats electrons (Coulomb repulsion of strength 1) only, got "
                         f"{interaction.to_dict()}", source=system.source, field="interaction")


def _mole(molecule: Molecule, kinetic: float, basis: str, source: str | None):
    """A built ``pyscf.gto.Mole`` with the molecule's charge and spin, positions in bohr."""
    from pyscf import gto

    if basis in BASES:
        spec = {s: BASES[basis].shells(z, kinetic) for s, z in zip(molecule.symbols, molecule.charges)}
    else:
        spec = basis
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return gto.M(atom=[[s, p] for s, p in zip(molecule.symbols, molecule.positions)], unit="Bohr",
                         basis=spec, charge=molecule.charge, spin=molecule.spin, verbose=0)
    except (RuntimeError, KeyError, ValueError, OSError, TypeError) as exc:
        raise InputError(f"PySCF cannot build basis {basis!r} for {', '.join(sorted(set(molecule.symbols)))} "
                         f"({exc}); the package's own: {', '.join(BASES)}", source=source,
                         field="reference.basis") from None


def check_basis_names(system: System) -> None:
    """Before anything trains: InputError naming ``reference.basis`` (or ``reference.companion``) when a pyscf
    reference's file names a basis that PySCF lacks for one of the system's elements (basis files are read,
    no integrals computed), a ``frozen_core`` that is not a boolean or leaves nothing to freeze or correlate, or a
    full CI too large to compute (:func:`_check_space_size`). Systems without nuclei are left to the reference."""
    if system.reference != "pyscf":
        return
    try:
        molecule = system_molecule(system)
    except InputError:
        return
    symbols = sorted(set(molecule.symbols))
    _check_frozen_core(system.reference_options.get("frozen_core", False), molecule, system.source)
    from pyscf import gto

    for option in ("basis", "companion"):
        name = system.reference_options.get(option)
        if not isinstance(name, str) or name.strip().lower() in BASES:
            continue                   # a non-string is refused by pyscf_reference with its own message
        for symbol in symbols:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")     # PySCF's hint to install basis-set-exchange
                    gto.basis.load(name.strip(), symbol)
            except (RuntimeError, KeyError, ValueError, OSError, TypeError):
                raise InputError(f"PySCF has no basis {name!r} for {symbol} (the package's own: "
                                 f"{', '.join(BASES)})", source=system.source, field=f"reference.{option}") from None
    _check_space_size(system, molecule)


def _check_space_size(system: System, molecule: Molecule) -> None:
    """InputError naming ``reference.basis`` when full CI in the reference's basis (the file's, or the default
    for the electron count) exceeds the size limits, counted from the basis's functions: the independent orbitals
    the calculation keeps are no more, and for the correlation-consistent sets on atoms and diatomics as many. The
    package's even-tempered sets, whose near-dependent functions are dropped, are left to the reference itself, as
    are one-electron systems (no CI)."""
    options = system.reference_options
    default = DEFAULT_BASIS_2E if molecule.electrons == 2 else DEFAULT_BASIS_MANY
    basis = options.get("basis", default)
    frozen = options.get("frozen_core", False)
    if molecule.electrons < 2 or not isinstance(basis, str) or basis.strip().lower() in BASES or \
            not isinstance(frozen, bool):
        return                          # the reference refuses a malformed value with its own message
    basis = basis.strip().lower()
    orbitals = _mole(molecule, system.kinetic, basis, system.source).nao
    electrons = molecule.electrons
    if frozen:
        core = frozen_orbitals(molecule.charges)
        orbitals, electrons = orbitals - core, electrons - 2 * core
    up, down = (electrons + molecule.spin) // 2, (electrons - molecule.spin) // 2
    if electrons == 2:
        size, limit, what = orbitals * (orbitals + 1) // 2, MAX_PAIRS, "two-electron states"
    else:
        size, limit, what = math.comb(orbitals, up) * math.comb(orbitals, down), MAX_DETERMINANTS, "determinants"
    if size > limit or (electrons > 2 and orbitals > MAX_ORBITALS):
        raise InputError(f"basis {basis!r} spans {orbitals} {'active ' if frozen else ''}orbitals, {size} {what}: "
                         f"full CI treats at most {limit} (and {MAX_ORBITALS} orbitals); choose a smaller basis"
                         f"{'' if frozen or electrons < 3 else ', frozen_core = true'} or kind = \"none\"",
                         source=system.source, field="reference.basis")


def _check_frozen_core(frozen, molecule: Molecule, source: str | None) -> None:
    """InputError naming ``reference.frozen_core`` unless it is a boolean and, when true, leaves core orbitals to
    freeze and at least one electron to correlate."""
    if not isinstance(frozen, bool):
        raise InputError(f"must be true or false, got {frozen!r}", source=source, field="reference.frozen_core")
    core = frozen_orbitals(molecule.charges)
    if frozen and (core == 0 or molecule.electrons - 2 * core < 1):
        raise InputError(f"freezes each atom's noble-gas core: {molecule.electrons} electrons on "
                         f"{', '.join(sorted(set(molecule.symbols)))} leave {core} core orbitals and "
                         f"{molecule.electrons - 2 * core} active electrons", source=source,
                         field="reference.frozen_core")


def core_orbitals(mol, kinetic: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs (ε, C) of h c = ε S c, h = 2κT + V_nuc, in the canonically orthogonalised basis (S
    eigenvalues ≤ LINDEP dropped); C (AO × independent) is S-orthonormal."""
    h = 2 * kinetic * mol.intor("int1e_kin") + mol.intor("int1e_nuc")
    s, u = scipy.linalg.eigh(mol.intor("int1e_ovlp"))
    keep = s > LINDEP
    x = u[:, keep] / np.sqrt(s[keep])
    energies, vectors = scipy.linalg.eigh(x.T @ h @ x)
    return energies, x @ vectors


def core_levels(molecule: Molecule, kinetic: float, basis: str, n: int, source: str | None = None) -> dict:
    """Lowest n eigenvalues of h c = E S c, h = 2κT + V_nuc (hartree, electronic), with basis sizes."""
    mol = _mole(molecule, kinetic, basis, source)
    energies, orbitals = core_orbitals(mol, kinetic)
    if len(energies) < n:
        raise InputError(f"basis {basis!r} spans only {len(energies)} independent functions, {n} levels asked",
                         source=source, field="reference.basis")
    return {"energies": energies[:n], "functions": int(mol.nao), "independent": len(energies)}


def pair_hamiltonian(orbital_energies: np.ndarray, eri: np.ndarray, spin: int) -> np.ndarray:
    """Two-electron H in the spatial pair basis of orthonormal orbitals with diagonal h (hartree).

    Ψ(x1, x2) = Σ c_pq [φ_p(x1) φ_q(x2) ± φ_q(x1) φ_p(x2)] / √(2(1 + δ_pq)), symmetric (+, p ≤ q) for
    singlets (spin 0) and antisymmetric (-, p < q) for triplets (spin 2):
    H_(pq),(rs) = δ (ε_p + ε_q) + [(pr|qs) ± (ps|qr)] / √((1 + δ_pq)(1 + δ_rs)); ``eri`` is PySCF's 4-fold
    packed (pq|rs), pair index p(p+1)/2 + q for p ≥ q.
    """
    m = len(orbital_energies)
    p, q = np.triu_indices(m, 0 if spin == 0 else 1)
    a, b = np.maximum.outer(np.arange(m), np.arange(m)), np.minimum.outer(np.arange(m), np.arange(m))
    packed = a * (a + 1) // 2 + b                      # packed[x, y]: the pair index of (x, y)
    flat, stride = eri.ravel(), eri.shape[1]
    sign = 1.0 if spin == 0 else -1.0
    norm = np.where(p == q, np.sqrt(0.5), 1.0)
    h = np.empty((len(p), len(p)))
    for start in range(0, len(p), BLOCK):              # rows in blocks: index arrays stay small
        i = slice(start, start + BLOCK)
        coulomb = flat[packed[p[i, None], p[None, :]] * stride + packed[q[i, None], q[None, :]]]
        exchange = flat[packed[p[i, None], q[None, :]] * stride + packed[q[i, None], p[None, :]]]
        h[i] = (coulomb + sign * exchange) * norm[i, None] * norm[None, :]
    h[np.diag_indices_from(h)] += orbital_energies[p] + orbital_energies[q]
    return h


def spin_states(norb: int, nelec: tuple[int, int]) -> int:
    """Number of levels of total spin S = (n_up - n_down)/2 among ``norb`` orbitals: the M_S = S determinants
    hold every S' ≥ S once, those of M_S = S + 1 every S' > S."""
    up, down = nelec
    return math.comb(norb, up) * math.comb(norb, down) - math.comb(norb, up + 1) * math.comb(norb, down - 1) \
        if down > 0 else math.comb(norb, up)


def determinant_levels(h1: np.ndarray, eri: np.ndarray, norb: int, nelec: tuple[int, int], n: int) -> np.ndarray:
    """Lowest n eigenvalues of total spin S = (n_up - n_down)/2 of H = Σ h1_pq E_pq + ½ Σ (pq|rs) (E_pq E_rs -
    δ_qr E_ps) over ``norb`` orthonormal orbitals (``eri``: PySCF's packed (pq|rs)), hartree.

    H is solved in the M_S = S determinant space, which holds every S' ≥ S once per level: whole up to
    :data:`DENSE_DETERMINANTS`, else by PySCF's Davidson solver on H + λ(S² - S(S+1)) (:data:`SPIN_PENALTY`,
    which lifts the higher spins and leaves the levels of spin S exact), asking for twice as many roots until n of
    spin S are found. A root counts as spin S when ⟨S²⟩ is nearer S(S+1) than (S+1)(S+2), so that of two
    levels of different spin mixed by their (near) degeneracy exactly one is kept, at their common energy.
    """
    from pyscf import fci

    s = (nelec[0] - nelec[1]) / 2
    if not n <= spin_states(norb, nelec):
        raise ValueError(f"{norb} orbitals hold {spin_states(norb, nelec)} levels of 2S = {2 * s:g}, {n} asked")
    up, down = math.comb(norb, nelec[0]), math.comb(norb, nelec[1])

    def spin_s(vector: np.ndarray) -> bool:
        return fci.spin_op.spin_square0(vector.reshape(up, down), norb, nelec)[0] < s * (s + 1) + s + 1

    if up * down <= DENSE_DETERMINANTS and norb < 64:   # PySCF's pspace packs strings into 64-bit words
        _, h = fci.direct_spin1.pspace(h1, eri, norb, nelec, np=up * down)   # all of H, determinants in order
        energies, vectors = scipy.linalg.eigh(h)
        keep = (i for i in range(len(energies)) if spin_s(vectors[:, i]))   # lazily: ⟨S²⟩ costs ms per root
        return energies[list(itertools.islice(keep, n))]
    solver = fci.direct_spin1.FCI()
    solver.conv_tol, solver.conv_tol_residual, solver.verbose = CONV_TOL, CONV_RESIDUAL, 0
    solver.max_cycle, solver.max_space = MAX_CYCLE, MAX_SPACE
    fci.addons.fix_spin_(solver, shift=SPIN_PENALTY, ss=s * (s + 1))
    roots, found, whole = n, [], False
    guess = _noisy_guess(solver.get_init_guess(norb, nelec, roots, solver.make_hdiag(h1, eri, norb, nelec)))
    while len(found) < n:
        if whole:
            raise RuntimeError(f"PySCF's FCI gave {len(found)} of {n} levels of 2S = {2 * s:g} from all its roots")
        energies, vectors = solver.kernel(h1, eri, norb, nelec, nroots=roots, ci0=guess, davidson_only=True)
        energies, vectors = np.atleast_1d(energies), vectors if roots > 1 else [vectors]
        if not np.all(solver.converged):
            raise RuntimeError(f"PySCF's FCI did not converge for {roots} roots of {up * down} determinants")
        found = energies[[spin_s(v) for v in vectors]]
        whole, roots, guess = roots == up * down, min(2 * roots, up * down), list(vectors)
    return found[:n]


def _noisy_guess(vectors: list) -> list[np.ndarray]:
    """Orthonormal initial vectors: each guess plus :data:`GUESS_NOISE` times a random unit vector (seeded)."""
    x = np.array([np.ravel(v) for v in vectors], dtype=float)
    noise = np.random.default_rng(GUESS_SEED).standard_normal(x.shape)
    x += GUESS_NOISE * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    q = np.linalg.qr(x.T)[0]
    return [q[:, i].copy() for i in range(q.shape[1])]


def many_electron_levels(molecule: Molecule, kinetic: float, basis: str, n: int, spin: int,
                         source: str | None = None) -> dict:
    """Lowest n levels of three or more electrons with total spin 2S = ``spin``, exact in the basis (hartree,
    electronic): H = Σ_i (2κT + V_nuc)(i) + Σ_{i<j} 1/r_ij by full CI over the core orbitals, n_up - n_down = 2S
    (:func:`determinant_levels`). Spatially degenerate levels are repeated."""
    from pyscf import ao2mo

    electrons = molecule.electrons
    nelec = ((electrons + spin) // 2, (electrons - spin) // 2)
    mol = _mole(molecule, kinetic, basis, source)
    orbital_energies, orbitals = core_orbitals(mol, kinetic)
    m = len(orbital_energies)
    energies = _determinant_space(np.diag(orbital_energies), lambda: ao2mo.kernel(mol, orbitals), m, nelec, n, basis,
                                  source)
    return {"energies": energies, "functions": int(mol.nao), "independent": m}


def _determinant_space(h1: np.ndarray, eri, norb: int, nelec: tuple[int, int], n: int, basis: str,
                       source: str | None) -> np.ndarray:
    """:func:`determinant_levels` over ``norb`` orbitals (``eri()`` gives their packed (pq|rs)), after the size
    limits: InputError naming ``reference.basis`` where the space is too large or holds fewer than n levels."""
    spin = nelec[0] - nelec[1]
    states, determinants = spin_states(norb, nelec), math.comb(norb, nelec[0]) * math.comb(norb, nelec[1])
    if not (n <= states and norb <= MAX_ORBITALS and determinants <= MAX_DETERMINANTS):
        raise InputError(f"basis {basis!r} spans {norb} orbitals, {determinants} determinants and {states} levels of "
                         f"2S = {spin}: {n} levels asked, at most {MAX_ORBITALS} orbitals and {MAX_DETERMINANTS} "
                         "determinants treated", source=source, field="reference.basis")
    return determinant_levels(h1, eri(), norb, nelec, n)


def fci_levels(molecule: Molecule, kinetic: float, basis: str, n: int, spin: int,
               source: str | None = None) -> dict:
    """Lowest n two-electron levels of spin 2S = ``spin`` (0 or 2), exact in the basis (hartree, electronic).

    H = Σ_i (2κT + V_nuc)(i) + 1/r_12 diagonalised in the space of all orbital pairs of the core orbitals
    (full CI, invariant to the choice of orbitals): symmetric pairs for singlets, antisymmetric for triplets,
    so no root of the other spin can appear. Spatially degenerate levels are repeated.
    """
    from pyscf import ao2mo

    if spin not in (0, 2):
        raise ValueError(f"two electrons have 2S = 0 or 2, got {spin!r}")
    mol = _mole(molecule, kinetic, basis, source)
    orbital_energies, orbitals = core_orbitals(mol, kinetic)
    energies = _pair_space(orbital_energies, lambda: ao2mo.kernel(mol, orbitals), spin, n, basis, source)
    return {"energies": energies, "functions": int(mol.nao), "independent": len(orbital_energies)}


def _pair_space(orbital_energies: np.ndarray, eri, spin: int, n: int, basis: str, source: str | None) -> np.ndarray:
    """Lowest n two-electron levels of spin 2S = ``spin`` in the pair space of orthonormal orbitals with diagonal
    one-electron operator ``orbital_energies`` (:func:`pair_hamiltonian`; ``eri()`` gives their packed (pq|rs)),
    after the size limit: InputError naming ``reference.basis`` where the space is too large or holds fewer than n
    states."""
    m = len(orbital_energies)
    size = m * (m + 1) // 2 if spin == 0 else m * (m - 1) // 2
    if not n <= size <= MAX_PAIRS:
        raise InputError(f"basis {basis!r} spans {size} two-electron states of spin {spin}: {n} levels asked, at "
                         f"most {MAX_PAIRS} states treated", source=source, field="reference.basis")
    h = pair_hamiltonian(orbital_energies, eri(), spin)
    return scipy.linalg.eigh(h, eigvals_only=True, subset_by_index=[0, n - 1], overwrite_a=True)


NOBLE_GASES = (2, 10, 18, 36, 54, 86)   # electrons of the closed cores below each row of the periodic table


def frozen_orbitals(charges) -> int:
    """Core orbitals of atoms with nuclear charges Z: half the electrons of the heaviest noble gas below each Z
    (Li-Ne: 1s², Na-Ar: [Ne]); PySCF's chemcore leaves Li and Be unfrozen, whose 1s² is the core here."""
    return sum(max((g for g in NOBLE_GASES if g < z), default=0) // 2 for z in charges)


def frozen_core_levels(molecule: Molecule, kinetic: float, basis: str, n: int, spin: int,
                       source: str | None = None) -> dict:
    """Lowest n levels of total spin 2S = ``spin`` with the atoms' core orbitals frozen (hartree, electronic).

    The k = :func:`frozen_orbitals` lowest orbitals of a restricted (open-shell) Hartree–Fock calculation with
    h = 2κT + V_nuc are doubly occupied, D_c = 2 C_c C_cᵀ; the other orbitals are active, with the core's mean field in
    h_eff = C_aᵀ (h + J[D_c] - ½K[D_c]) C_a and its energy E_c = tr D_c h + ½ tr D_c (J - ½K), added to every
    level. Exact in the active space, so the levels lack only the core's correlation (for Li and Be 1s², tens of
    mHa on every level, under a millihartree on valence excitation energies), which ``errors`` do not hold."""
    from pyscf import ao2mo, scf

    _check_frozen_core(True, molecule, source)
    mol = _mole(molecule, kinetic, basis, source)
    core = frozen_orbitals(molecule.charges)
    electrons = molecule.electrons - 2 * core
    h = 2 * kinetic * mol.intor("int1e_kin") + mol.intor("int1e_nuc")
    mf = (scf.RHF if molecule.spin == 0 else scf.ROHF)(mol)     # near-dependent functions: PySCF drops them itself
    mf.get_hcore = lambda *args: h
    mf.conv_tol, mf.verbose = 1e-10, 0
    mf.kernel()
    if not mf.converged:
        raise RuntimeError(f"the SCF for the frozen core did not converge in basis {basis!r}")
    c_core, c_active = mf.mo_coeff[:, :core], mf.mo_coeff[:, core:]
    density = 2 * c_core @ c_core.T
    coulomb, exchange = mf.get_jk(mol, density)
    field = h + coulomb - 0.5 * exchange
    core_energy = float(np.sum(density * (h + field)) / 2)
    h_eff = c_active.T @ field @ c_active
    m = h_eff.shape[0]
    nelec = ((electrons + spin) // 2, (electrons - spin) // 2)
    if electrons == 1:
        energies = scipy.linalg.eigvalsh(h_eff)[:n]
    elif electrons == 2:          # the pair space over the orbitals that diagonalise h_eff
        eps, rotation = scipy.linalg.eigh(h_eff)
        energies = _pair_space(eps, lambda: ao2mo.kernel(mol, c_active @ rotation), spin, n, basis, source)
    else:
        energies = _determinant_space(h_eff, lambda: ao2mo.kernel(mol, c_active), m, nelec, n, basis, source)
    if len(energies) < n:
        raise InputError(f"basis {basis!r} leaves {len(energies)} active levels, {n} asked", source=source,
                         field="reference.basis")
    return {"energies": np.asarray(energies) + core_energy, "functions": int(mol.nao), "independent": m + core,
            "frozen_orbitals": core, "core_energy": core_energy}


def _key(molecule: Molecule, kinetic: float, basis: str, n: int) -> dict:
    return {"method": _method(molecule), "pyscf": importlib.metadata.version("pyscf"),
            "charges": list(molecule.charges), "electrons": molecule.electrons, "spin": molecule.spin,
            "positions": [[round(c, DECIMALS) + 0.0 for c in p] for p in molecule.positions],
            "basis": basis, "kinetic": float(kinetic), "states": n}


def _method(molecule: Molecule) -> str:
    return METHOD if molecule.electrons == 1 else METHOD_2E if molecule.electrons == 2 else METHOD_FCI


def _read_cache(path: Path, key: str) -> Reference | None:
    try:
        with h5py.File(path, "r") as f:
            if f.attrs["key"] != key:
                return None
            return Reference(np.asarray(f["energies"]), str(f.attrs["method"]), float(f.attrs["error"]),
                             details=json.loads(f.attrs["details"]), errors=np.asarray(f["errors"]), kind="pyscf")
    except (OSError, KeyError, ValueError):   # absent, damaged or foreign: recompute and overwrite
        return None


def _write_cache(path: Path, key: str, ref: Reference) -> None:
    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f["energies"], f["errors"] = ref.energies, ref.errors
            f.attrs.update({"key": key, "method": ref.method, "error": ref.error,
                            "details": json.dumps(ref.details)})

    try:
        atomic_write(path, write)
    except InputError as exc:   # a read-only cache costs time, not correctness
        warnings.warn(f"PySCF reference not cached: {exc}", stacklevel=3)


def companion_basis(basis: str, electrons: int) -> str:
    """The basis whose levels estimate the error of ``basis``: a smaller one for the default, else the default
    (for the electron count)."""
    if electrons == 1:
        return "even-tempered-medium" if basis == DEFAULT_BASIS else DEFAULT_BASIS
    if electrons == 2:
        return COMPANION_BASIS_2E if basis == DEFAULT_BASIS_2E else DEFAULT_BASIS_2E
    return COMPANION_BASIS_MANY if basis == DEFAULT_BASIS_MANY else DEFAULT_BASIS_MANY


def pyscf_reference(system: System, n: int, basis: str | None = None, cache: bool = True) -> Reference:
    """Lowest n electronic levels of the system's nuclei and its one or two electrons from PySCF integrals.

    One electron: the core Hamiltonian (:func:`core_levels`); two: full CI of spin ``system.spin``
    (:func:`fci_levels`), spatially degenerate levels repeated. ``basis`` (else ``[reference] basis``, else
    :data:`DEFAULT_BASIS` or :data:`DEFAULT_BASIS_2E`): one of :data:`BASES` or any basis name PySCF knows;
    ``[reference] companion`` overrides :func:`companion_basis` for that basis (e.g. for molecules, where the
    atoms' default two-electron basis on every nucleus is too large); another basis asked for by argument is
    compared with the file's ``[reference] basis`` when it names one.
    Energies in hartree; ``details`` holds ``total_energies`` = energies + ``nuclear_repulsion``.
    """
    options = dict(system.reference_options)
    if system.reference == "pyscf":
        for name in options:
            if name not in OPTIONS:
                raise InputError(f"unknown option of the pyscf reference (known: {', '.join(OPTIONS)})",
                                 source=system.source, field=f"reference.{name}")
    molecule = system_molecule(system)
    if molecule.electrons > 1:
        _check_interaction(system)
    default = DEFAULT_BASIS if molecule.electrons == 1 else DEFAULT_BASIS_2E if molecule.electrons == 2 else \
        DEFAULT_BASIS_MANY
    configured = options.get("basis", default)
    basis = basis if basis is not None else configured
    if not isinstance(basis, str) or not basis.strip():
        raise InputError(f"must be a basis name, got {basis!r}", source=system.source, field="reference.basis")
    basis = basis.strip().lower()
    own = isinstance(configured, str) and basis == configured.strip().lower()
    # the file's companion belongs to the file's basis; another basis is measured against the file's basis
    companion = options.get("companion", companion_basis(basis, molecule.electrons)) if own else \
        (configured if "basis" in options else companion_basis(basis, molecule.electrons))
    if not isinstance(companion, str) or not companion.strip() or companion.strip().lower() == basis:
        raise InputError(f"must be a basis name other than {basis!r}, got {companion!r}", source=system.source,
                         field="reference.companion")
    companion = companion.strip().lower()
    try:
        importlib.metadata.version("pyscf")
    except importlib.metadata.PackageNotFoundError:
        raise InputError("the pyscf reference needs PySCF (pip install pyscf)", source=system.source,
                         field="reference.kind") from None
    frozen = options.get("frozen_core", False)
    _check_frozen_core(frozen, molecule, system.source)
    key = _key(molecule, system.kinetic, basis, n) | {"companion": companion}
    key = json.dumps(key | {"method": METHOD_FROZEN} if frozen else key, sort_keys=True)
    path = cache_directory() / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.h5"
    if cache and (hit := _read_cache(path, key)) is not None:
        return hit
    ref = _calculate(molecule, system.kinetic, basis, companion, n, system.source, frozen)
    if cache:
        _write_cache(path, key, ref)
    return ref


def _levels(molecule: Molecule, kinetic: float, basis: str, n: int, source: str | None, frozen: bool = False) -> dict:
    if frozen:
        return frozen_core_levels(molecule, kinetic, basis, n, molecule.spin, source)
    if molecule.electrons == 1:
        return core_levels(molecule, kinetic, basis, n, source)
    if molecule.electrons == 2:
        return fci_levels(molecule, kinetic, basis, n, molecule.spin, source)
    return many_electron_levels(molecule, kinetic, basis, n, molecule.spin, source)


def _calculate(molecule: Molecule, kinetic: float, basis: str, companion: str, n: int,
               source: str | None, frozen: bool = False) -> Reference:
    """Levels in ``basis`` with per-level errors |E(basis) - E(companion)| (hartree, electronic); ``frozen``: with
    the atoms' cores frozen (:func:`frozen_core_levels`) in both."""
    main = _levels(molecule, kinetic, basis, n, source, frozen)
    other = _levels(molecule, kinetic, companion, n, source, frozen)
    errors = np.abs(main["energies"] - other["energies"])
    repulsion = molecule.nuclear_repulsion()
    one = molecule.electrons == 1
    details = {"basis": basis, "functions": main["functions"], "independent_functions": main["independent"],
               "companion_basis": companion, "companion_energies": other["energies"].tolist(),
               "nuclear_repulsion": repulsion, "total_energies": (main["energies"] + repulsion).tolist(),
               "energies": "electronic (no nuclear repulsion); total = electronic + nuclear_repulsion",
               "error_estimate": f"|E({basis}) - E({companion})| per level", "kinetic": kinetic,
               "molecule": molecule.to_dict(), "method": METHOD_FROZEN if frozen else _method(molecule),
               "electrons": molecule.electrons, "spin": molecule.spin}
    multiplet = MULTIPLETS[molecule.spin] if molecule.spin < len(MULTIPLETS) else f"2S = {molecule.spin}"
    what = "one-electron core Hamiltonian" if one else f"{molecule.electrons}-electron full CI ({multiplet})"
    if frozen:
        details |= {"frozen_orbitals": main["frozen_orbitals"], "core_energy": main["core_energy"],
                    "error_estimate": f"|E({basis}) - E({companion})| per level; the core's correlation, missing "
                                      "from every level, is not in it"}
        what = (f"{molecule.electrons}-electron frozen-core CASCI ({multiplet}, {main['frozen_orbitals']} core "
                "orbitals frozen: levels lack the core's correlation)")
    return Reference(main["energies"], f"PySCF {what}, basis {basis}, electronic energies (no nuclear repulsion)",
                     float(errors.max()), details=details, errors=errors, kind="pyscf")
