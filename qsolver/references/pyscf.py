"""One-electron levels of a set of nuclei from PySCF's Gaussian integrals (H, He+, H2+, HeH2+, H3 2+, ...).

In an atom-centred basis {χ_μ}, H = -κ∇² - Σ_A Z_A/|x - R_A| is the core Hamiltonian h = 2κ T + V_nuc
(PySCF's T is ⟨χ_μ|-½∇²|χ_ν⟩), and the levels solve h c = E S c (S the overlap; hartree). Near-linear
dependence of large diffuse bases is removed by canonical orthogonalisation. ``Reference.energies`` are
**electronic** (the package's H has no nuclear repulsion); ``details`` adds the totals E + E_nn.

Error estimate per level: |E - E'| with E' from a companion basis (``even-tempered-medium`` for the default
``even-tempered-large``, where the difference is the medium basis's error and so a conservative bound;
``even-tempered-large`` for any other basis, where it is close to that basis's own error). Results are cached
in HDF5 under ``$QSOLVER_CACHE/pyscf`` (default ``~/.cache/qsolver/pyscf``), one file per key.
"""
from __future__ import annotations

import hashlib
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
from ..molecule import ELEMENTS, Molecule
from ..potentials import Coulomb, terms
from ..system import System
from .analytic import Reference

METHOD = "core Hamiltonian h = 2κT + V_nuc in the overlap metric, canonical orthogonalisation (v1)"
# eigenvalues of S below this (S_μμ = 1 for PySCF's normalised functions) are dropped; with cuts of 1e-8,
# 1e-9 and 1e-10 the H2+ levels in the large basis agree within 5e-9 hartree (below its basis error)
LINDEP = 1e-9
DECIMALS = 8   # positions (bohr) in the cache key: a 1e-8 bohr shift moves the levels by ≲ 1e-8 hartree


@dataclass(frozen=True)
class EvenTempered:
    """Exponents α = s·a·β^k (k = 0, 1, ...) from a = ``smallest`` up to s·``largest[l]`` for each l ≤ lmax,
    on every nucleus, with s = (Z/(2κ))² so that the basis follows the length unit 2κ/Z of -κ∇² - Z/r."""

    lmax: int
    ratio: float
    smallest: float
    largest: tuple[float, ...]

    def shells(self, charge: int, kinetic: float) -> list:
        """PySCF basis entries for a nucleus of charge Z under -κ∇²."""
        from pyscf import gto

        s = (charge / (2 * kinetic)) ** 2
        counts = [math.floor(math.log(top / self.smallest, self.ratio) + 1e-9) + 1 for top in self.largest]
        return gto.etbs([(ell, counts[ell], s * self.smallest, self.ratio) for ell in range(self.lmax + 1)])


BASES = {
    "even-tempered-large": EvenTempered(4, 2.0, 1e-3, (4e4, 200.0, 40.0, 20.0, 10.0)),
    "even-tempered-medium": EvenTempered(3, 2.5, 3e-3, (1e4, 100.0, 20.0, 10.0)),
    "even-tempered-small": EvenTempered(2, 3.0, 1e-2, (2.5e3, 50.0, 10.0)),
}
DEFAULT_BASIS = "even-tempered-large"
OPTIONS = ("basis", "literature")   # the [reference] keys read here ("literature": see .literature)


def cache_directory() -> Path:
    """``$QSOLVER_CACHE/pyscf``, or ``~/.cache/qsolver/pyscf`` when the variable is unset."""
    root = os.environ.get("QSOLVER_CACHE") or Path.home() / ".cache" / "qsolver"
    return Path(root) / "pyscf"


def system_molecule(system: System) -> Molecule:
    """The system's nuclei: its ``[molecule]``, or a 3D Coulomb potential with integral charges 1..118."""
    if system.molecule is not None:
        return system.molecule
    parts = terms(system.potential)
    if system.dimension == 3 and len(parts) == 1 and isinstance(parts[0], Coulomb) and \
            all(float(z).is_integer() and 1 <= z <= len(ELEMENTS) for z in parts[0].charges):
        charges = [int(z) for z in parts[0].charges]
        return Molecule([ELEMENTS[z - 1] for z in charges], charges, [list(c) for c in parts[0].centers])
    raise InputError("the pyscf reference needs nuclei: a [molecule] table, or a 3D Coulomb potential with "
                     "integer charges", source=system.source, field="reference.kind")


def _mole(molecule: Molecule, kinetic: float, basis: str, source: str | None):
    """A built ``pyscf.gto.Mole`` with one electron (charge Σ Z - 1, spin 1), positions in bohr."""
    from pyscf import gto

    if basis in BASES:
        spec = {s: BASES[basis].shells(z, kinetic) for s, z in zip(molecule.symbols, molecule.charges)}
    else:
        spec = basis
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return gto.M(atom=[[s, p] for s, p in zip(molecule.symbols, molecule.positions)], unit="Bohr",
                         basis=spec, charge=sum(molecule.charges) - 1, spin=1, verbose=0)
    except (RuntimeError, KeyError, ValueError, OSError, TypeError) as exc:
        raise InputError(f"PySCF cannot build basis {basis!r} for {', '.join(sorted(set(molecule.symbols)))} "
                         f"({exc}); the package's own: {', '.join(BASES)}", source=source,
                         field="reference.basis") from None


def core_levels(molecule: Molecule, kinetic: float, basis: str, n: int, source: str | None = None) -> dict:
    """Lowest n eigenvalues of h c = E S c, h = 2κT + V_nuc (hartree, electronic), with basis sizes."""
    mol = _mole(molecule, kinetic, basis, source)
    h = 2 * kinetic * mol.intor("int1e_kin") + mol.intor("int1e_nuc")
    s, u = scipy.linalg.eigh(mol.intor("int1e_ovlp"))
    keep = s > LINDEP
    if keep.sum() < n:
        raise InputError(f"basis {basis!r} spans only {int(keep.sum())} independent functions, {n} levels asked",
                         source=source, field="reference.basis")
    x = u[:, keep] / np.sqrt(s[keep])
    energies = scipy.linalg.eigh(x.T @ h @ x, eigvals_only=True, subset_by_index=[0, n - 1])
    return {"energies": energies, "functions": int(mol.nao), "independent": int(keep.sum())}


def _key(molecule: Molecule, kinetic: float, basis: str, n: int) -> dict:
    return {"method": METHOD, "pyscf": importlib.metadata.version("pyscf"), "charges": list(molecule.charges),
            "positions": [[round(c, DECIMALS) + 0.0 for c in p] for p in molecule.positions],
            "basis": basis, "kinetic": float(kinetic), "states": n}


def _read_cache(path: Path, key: str) -> Reference | None:
    try:
        with h5py.File(path, "r") as f:
            if f.attrs["key"] != key:
                return None
            return Reference(np.asarray(f["energies"]), str(f.attrs["method"]), float(f.attrs["error"]),
                             details=json.loads(f.attrs["details"]), errors=np.asarray(f["errors"]))
    except (OSError, KeyError, ValueError):   # absent, damaged or foreign: recompute and overwrite
        return None


def _write_cache(path: Path, key: str, ref: Reference) -> None:
    from ..io import atomic_write   # qsolver.io imports this package: import at call time

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f["energies"], f["errors"] = ref.energies, ref.errors
            f.attrs.update({"key": key, "method": ref.method, "error": ref.error,
                            "details": json.dumps(ref.details)})

    try:
        atomic_write(path, write)
    except InputError as exc:   # a read-only cache costs time, not correctness
        warnings.warn(f"PySCF reference not cached: {exc}", stacklevel=3)


def pyscf_reference(system: System, n: int, basis: str | None = None, cache: bool = True) -> Reference:
    """Lowest n electronic levels of the system's nuclei and one electron from PySCF integrals (hartree).

    ``basis`` (else ``[reference] basis``, else ``even-tempered-large``): one of :data:`BASES` or any basis
    name PySCF knows. ``details`` holds ``total_energies`` = energies + ``nuclear_repulsion``.
    """
    options = dict(system.reference_options)
    if system.reference == "pyscf":
        for name in options:
            if name not in OPTIONS:
                raise InputError(f"unknown option of the pyscf reference (known: {', '.join(OPTIONS)})",
                                 source=system.source, field=f"reference.{name}")
    basis = basis if basis is not None else options.get("basis", DEFAULT_BASIS)
    if not isinstance(basis, str) or not basis.strip():
        raise InputError(f"must be a basis name, got {basis!r}", source=system.source, field="reference.basis")
    basis = basis.strip().lower()
    molecule = system_molecule(system)
    try:
        importlib.metadata.version("pyscf")
    except importlib.metadata.PackageNotFoundError:
        raise InputError("the pyscf reference needs PySCF (pip install 'qsolver[pyscf]')", source=system.source,
                         field="reference.kind") from None
    key = json.dumps(_key(molecule, system.kinetic, basis, n), sort_keys=True)
    path = cache_directory() / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.h5"
    if cache and (hit := _read_cache(path, key)) is not None:
        return hit
    main = core_levels(molecule, system.kinetic, basis, n, system.source)
    companion = "even-tempered-medium" if basis == DEFAULT_BASIS else DEFAULT_BASIS
    other = core_levels(molecule, system.kinetic, companion, n, system.source)
    errors = np.abs(main["energies"] - other["energies"])
    repulsion = molecule.nuclear_repulsion()
    details = {"basis": basis, "functions": main["functions"], "independent_functions": main["independent"],
               "companion_basis": companion, "companion_energies": other["energies"].tolist(),
               "nuclear_repulsion": repulsion, "total_energies": (main["energies"] + repulsion).tolist(),
               "energies": "electronic (no nuclear repulsion); total = electronic + nuclear_repulsion",
               "error_estimate": f"|E({basis}) - E({companion})| per level", "kinetic": system.kinetic,
               "molecule": molecule.to_dict()}
    ref = Reference(main["energies"], f"PySCF one-electron core Hamiltonian, basis {basis}, electronic "
                    "energies (no nuclear repulsion)", float(errors.max()), details=details, errors=errors)
    if cache:
        _write_cache(path, key, ref)
    return ref
