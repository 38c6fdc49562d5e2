"""Reference spectra to validate against. Each reference states its method and its own error.

``reference(system, n_states, kind)`` dispatches to the analytic levels (:mod:`.analytic`), a grid
discretisation (:mod:`.grid`; for two particles in a harmonic trap the separated centre-of-mass and relative
equations, :mod:`.trap`), a PySCF calculation (:mod:`.pyscf`: one-electron core Hamiltonian, or FCI for two
electrons) or levels quoted from the literature in the system file (:mod:`.literature`).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable
from pathlib import Path

from ..config import argument_name, check_arguments
from ..errors import InputError
from ..molecule import Molecule
from ..system import System, as_system
from ..threshold import continuum_threshold
from .analytic import analytic_reference
from .base import KINDS, Reference, ReferenceStates
from .grid import grid_reference
from .ions import fci_ion_level, tabulated_ion_level
from .literature import check_literature, literature_reference
from .pyscf import DEFAULT_BASIS, check_basis_names, core_levels, pyscf_reference, system_molecule
from .trap import trap_reference


def reference(system: System | str | Path, n_states: int, kind: str | None = None, **options) -> Reference:
    """Lowest ``n_states`` reference levels of the system by ``kind`` (default: the system's own
    ``[reference]`` kind; ``"pyscf:BASIS"`` runs PySCF in that basis); InputError when that method cannot treat
    the system. ``system``: a System, a system file or a shipped system's name."""
    system = as_system(system)
    check_arguments({"states": n_states}, argument_name, optional=False)
    kind = kind or system.reference
    if kind.startswith("pyscf:") and kind[6:].strip():       # a PySCF calculation in a named basis
        return pyscf_reference(system, n_states, basis=kind[6:].strip(), **options)
    if kind not in KINDS:
        raise InputError(f"unknown reference kind '{kind}' (known: {', '.join(KINDS)})", source=system.source,
                         field="reference.kind")
    if kind == "analytic":
        return analytic_reference(system, n_states, **options)
    if kind == "grid":
        return trap_reference(system, n_states) if system.particles == 2 else grid_reference(system, n_states,
                                                                                               **options)
    if kind == "pyscf":
        return pyscf_reference(system, n_states, **options)
    return literature_reference(system, n_states)


def check_reference_tables(system: System, n_states: int) -> None:
    """Refuse now, not in the report made after training, a ``[reference.literature]`` table that is malformed or,
    where the literature is the system's reference kind, gives fewer than ``n_states`` levels."""
    if "literature" in system.reference_options:
        check_literature(system, n_states if system.reference == "literature" else 0)


def exact_or_own(system: System, n_states: int) -> Reference:
    """The levels benchmarks measure against: those the system file quotes from the literature (exact) when it
    quotes all ``n_states`` of them (beryllium quotes its ground level only), else its own reference kind;
    InputError when they are fewer than ``n_states``."""
    table = system.reference_options.get("literature")
    quoted = isinstance(table, dict) and len(table.get("levels", [])) >= n_states
    ref = reference(system, n_states, "literature" if quoted else None)
    if len(ref.energies) < n_states:
        raise InputError(f"the reference gives {len(ref.energies)} levels for {n_states} states", source=system.source,
                         field="reference")
    return ref


def system_reference(system: System, n: int, warn: Callable[[str], None] | None = None) -> Reference | None:
    """The reference that ``qsolver solve`` stores and validates against: the system's own ``[reference]``
    kind when it is analytic, quoted from the literature, PySCF (cached) or the two-particle trap (a second), else
    None. One-particle grid references, which can take minutes, are made on request only (``qsolver compare
    --reference grid``). Where that kind cannot treat the system (full CI over the size limit, a level count the
    basis cannot hold), None too, and ``warn`` is told why: a run is not to end without its validation unsaid."""
    if system.reference not in ("analytic", "literature", "pyscf") and \
            not (system.reference == "grid" and system.particles == 2):
        return None
    try:
        return reference(system, n)
    except InputError as exc:
        if warn is not None:
            warn(f"no {system.reference} reference to validate against: {exc}")
        return None


def ionization_threshold(system: System) -> float | None:
    """The continuum threshold (hartree): closed form where :func:`qsolver.threshold.continuum_threshold` knows
    it; for two electrons bound by nuclei the lowest level of one electron in their field (H2 at R: H2⁺ 1σg),
    from PySCF's core Hamiltonian in the default one-electron basis (error ≲ 1e-5 hartree); for N ≥ 3 electrons
    (Coulomb repulsion 1/r_ij) the (N-1)-electron ion's lowest level of spin S ± ½ (:mod:`.ions`): from the
    literature for a tabulated ion of one nucleus (error < 1e-8 hartree), else by PySCF full CI of the ion, too
    high by its basis error (≈ 2e-3 hartree for a two-electron ion on one nucleus, ≈ 5e-2 in aug-cc-pVDZ, which
    lacks core correlation). None when none of these applies or the ion is too large for full CI."""
    threshold = continuum_threshold(system)
    if threshold is not None or system.particles == 1:
        return threshold
    try:
        nuclei = system_molecule(system)
    except InputError:
        return None
    key = (tuple(nuclei.symbols), tuple(nuclei.charges), tuple(tuple(p) for p in nuclei.positions))
    if system.particles == 2:
        return _ion_ground_level(*key, system.kinetic)
    interaction = system.interaction
    if interaction.kind != "coulomb" or interaction.strength != 1.0:
        return None                      # the ion's levels below are those of electrons
    if len(nuclei.charges) == 1:
        tabulated = tabulated_ion_level(nuclei.charges[0], system.particles - 1, system.spin, system.kinetic)
        if tabulated is not None:
            return tabulated
    try:
        return fci_ion_level(*key, nuclei.charge + 1, system.spin, system.kinetic)
    except InputError:                   # the ion's determinant space exceeds what full CI here treats
        return None


@lru_cache(maxsize=32)   # reports ask for the threshold several times per result
def _ion_ground_level(symbols: tuple, charges: tuple, positions: tuple, kinetic: float) -> float:
    """Lowest level of one electron in the field of the nuclei (hartree, electronic)."""
    ion = Molecule(list(symbols), list(charges), [list(p) for p in positions], charge=sum(charges) - 1)
    return float(core_levels(ion, kinetic, DEFAULT_BASIS, 1)["energies"][0])


__all__ = ["check_basis_names", "check_reference_tables", "exact_or_own", "ionization_threshold", "KINDS", "Reference", "ReferenceStates", "analytic_reference", "grid_reference", "literature_reference",
           "pyscf_reference", "reference", "system_reference"]
