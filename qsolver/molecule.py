"""Nuclear geometries and electron counts of one- and two-electron molecular systems, in PySCF's own form.

A ``[molecule]`` table gives ``atoms`` as PySCF's list form of ``Mole.atom`` (``[["H", [0, 0, -1]], ...]``,
an element symbol or a nuclear charge per atom) or its string form (``"H 0 0 -1; H 0 0 1"``), and
``unit = "bohr"`` or ``"angstrom"`` (required). Each electron sees V(x) = -Σ_A Z_A / |x - R_A| (hartree, bohr);
the nuclei repel each other by E_nn = Σ_{A<B} Z_A Z_B / R_AB.

``charge`` (optional, default 0, as in PySCF) sets the electron count N = Σ Z_A - charge, from 1 to MAX_ELECTRONS
(H2+ is ``charge = 1``, He and H2 ``charge = 0``, H- ``charge = -1``). ``spin`` is 2S as in PySCF: one electron
takes N mod 2 (the default), N mod 2 + 2, ..., N: two electrons 0 (singlets, the default) or 2 (triplets).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

from .errors import InputError
from .fields import brief, finite_number, vector
from .potentials import Coulomb

# bohr in ångström as PySCF uses it (pyscf.data.nist.BOHR, CODATA 2010), so geometries agree with PySCF's
BOHR_ANGSTROM = 0.52917721092
UNITS = {"bohr": 1.0, "angstrom": 1.0 / BOHR_ANGSTROM}
# nuclei closer than this (bohr) are refused: E_nn ≥ Z_A Z_B / 1e-3 hartree would swamp every electronic
# level, and no Gaussian basis or sampler resolves two cusps 1e-3 bohr apart (≈ 1/500 of a 1s radius)
MIN_DISTANCE = 1e-3
ELEMENTS = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",
    "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La",
    "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re",
    "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np",
    "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg",
    "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og")
_KEYS = ("atoms", "unit", "charge", "spin")
MAX_ELECTRONS = 10   # the most electrons a system may hold (the determinant networks' tested range)


def spin_values(particles: int) -> tuple[int, ...]:
    """The values 2S = n_up - n_down that ``particles`` spin-½ particles can have, lowest (the default) first."""
    return tuple(range(particles % 2, particles + 1, 2))


def electron_spin(charges: list[int], charge: object, spin: object, source: str | None = None) -> tuple[int, int]:
    """(N, 2S) for nuclear charges Z_A and a total charge: N = Σ Z_A - charge from 1 to :data:`MAX_ELECTRONS`, 2S one
    of :func:`spin_values` (None: the lowest)."""
    if isinstance(charge, bool) or not isinstance(charge, int):
        raise InputError(f"must be an integer, got {charge!r}", source=source, field="molecule.charge")
    electrons = sum(charges) - charge
    if not 1 <= electrons <= MAX_ELECTRONS:
        raise InputError(f"Σ Z - charge = {sum(charges)} - {charge} = {electrons} electrons; 1 to {MAX_ELECTRONS} "
                         f"electrons are supported", source=source, field="molecule.charge")
    allowed = spin_values(electrons)
    if spin is None:
        return electrons, allowed[0]
    if isinstance(spin, bool) or not isinstance(spin, int) or spin not in allowed:
        raise InputError(f"2S of {electrons} electron(s) must be {' or '.join(map(str, allowed))}, got {spin!r}",
                         source=source, field="molecule.spin")
    return electrons, spin


@dataclass
class Molecule:
    """Point nuclei (charges Z_A, positions R_A in bohr) binding N = Σ Z_A - ``charge`` electrons (1 or 2) of
    total spin 2S = ``spin`` (None: 1 for one electron, 0 for two); ``unit`` as the file gave it."""

    symbols: list[str]
    charges: list[int]
    positions: list[list[float]]
    unit: str = "bohr"
    charge: int = 0
    spin: int | None = None

    def __post_init__(self) -> None:
        self.spin = electron_spin(self.charges, self.charge, self.spin)[1]

    @property
    def electrons(self) -> int:
        """N = Σ Z_A - charge."""
        return sum(self.charges) - self.charge

    def nuclear_repulsion(self) -> float:
        """E_nn = Σ_{A<B} Z_A Z_B / |R_A - R_B| (hartree)."""
        n = len(self.charges)
        return sum(self.charges[a] * self.charges[b] / math.dist(self.positions[a], self.positions[b])
                   for a in range(n) for b in range(a + 1, n))

    def potential(self) -> Coulomb:
        """The electron's potential V(x) = -Σ_A Z_A / |x - R_A| (positions in bohr)."""
        return Coulomb([float(z) for z in self.charges], [list(p) for p in self.positions])

    def to_dict(self) -> dict:
        """The ``[molecule]`` table with positions in bohr (exact: no unit conversion on reading it back)."""
        return {"atoms": [[s, list(p)] for s, p in zip(self.symbols, self.positions)], "unit": "bohr",
                "charge": self.charge, "spin": self.spin}


def _split_string(atoms: str, source: str | None) -> list[list[Any]]:
    """PySCF's string form "H 0 0 -1; H 0 0 1" (';' or new lines between atoms) as the list form."""
    out = []
    for i, line in enumerate(p for p in atoms.replace("\n", ";").split(";") if p.strip()):
        words = line.replace(",", " ").split()
        if len(words) != 4:
            raise InputError(f"expected 'symbol x y z', got {line.strip()!r}", source=source,
                             field=f"molecule.atoms[{i}]")
        try:
            out.append([words[0], [float(w) for w in words[1:]]])
        except ValueError:
            raise InputError(f"coordinates must be numbers, got {line.strip()!r}", source=source,
                             field=f"molecule.atoms[{i}]") from None
    return out


def _nucleus(label: Any, source: str | None, where: str) -> tuple[str, int]:
    """An element symbol (any case) or an integral nuclear charge 1..118 → (symbol, Z)."""
    if isinstance(label, str):
        lookup = {s.upper(): (s, z) for z, s in enumerate(ELEMENTS, start=1)}
        if label.strip().upper() not in lookup:
            raise InputError(f"unknown element {label!r}", source=source, field=where)
        return lookup[label.strip().upper()]
    if not finite_number(label) or label != int(label) or not 1 <= label <= len(ELEMENTS):
        raise InputError(f"must be an element symbol or a nuclear charge 1..{len(ELEMENTS)}, got {brief(label)}",
                         source=source, field=where)
    return ELEMENTS[int(label) - 1], int(label)


def parse_molecule(table: Any, source: str | None = None) -> Molecule:
    """Check a ``[molecule]`` table and convert positions to bohr (1 Å = 1/0.52917721092 bohr); ``charge``
    (default 0) and ``spin`` (2S) must describe 1 or 2 electrons (see :func:`electron_spin`)."""
    if not isinstance(table, dict):
        raise InputError("must be a table", source=source, field="molecule")
    for key in table:
        if key not in _KEYS:
            raise InputError(f"unknown field (known: {', '.join(_KEYS)})", source=source, field=f"molecule.{key}")
    if "unit" not in table:
        raise InputError("missing: state the unit of the positions, \"bohr\" or \"angstrom\"", source=source,
                         field="molecule.unit")
    unit = table["unit"]
    if not isinstance(unit, str) or unit.lower() not in UNITS:
        raise InputError(f"must be \"bohr\" or \"angstrom\", got {unit!r}", source=source, field="molecule.unit")
    atoms = table.get("atoms")
    if isinstance(atoms, str):
        atoms = _split_string(atoms, source)
    if not isinstance(atoms, list) or not atoms:
        raise InputError("must be a non-empty list of [symbol or charge, [x, y, z]] entries, or PySCF's string "
                         "form \"H 0 0 -1; H 0 0 1\"", source=source, field="molecule.atoms")
    scale = UNITS[unit.lower()]
    symbols, charges, positions = [], [], []
    for i, atom in enumerate(atoms):
        where = f"molecule.atoms[{i}]"
        if not isinstance(atom, (list, tuple)) or len(atom) != 2 or not isinstance(atom[1], (list, tuple)) \
                or len(atom[1]) != 3:
            raise InputError(f"must be [symbol or charge, [x, y, z]] (three coordinates), got {atom!r}",
                             source=source, field=where)
        symbol, z = _nucleus(atom[0], source, where)
        position = [c * scale for c in vector(atom[1], where, source, 3)]
        if not all(map(math.isfinite, position)):    # |x| near the float limit in angstrom overflows in bohr
            raise InputError(f"coordinates {brief(atom[1])} {unit} are beyond the float range in bohr",
                             source=source, field=where)
        symbols.append(symbol)
        charges.append(z)
        positions.append(position)
    for b in range(len(positions)):
        for a in range(b):
            distance = math.dist(positions[a], positions[b])
            if distance < MIN_DISTANCE:
                raise InputError(f"nuclei {a} and {b} are {distance:.2g} bohr apart (overlapping; at least "
                                 f"{MIN_DISTANCE} bohr needed)", source=source, field=f"molecule.atoms[{b}]")
    charge = table.get("charge", 0)
    spin = electron_spin(charges, charge, table.get("spin"), source)[1]
    return Molecule(symbols, charges, positions, unit.lower(), charge, spin)


def is_pyscf_mole(obj: Any) -> bool:
    """Whether ``obj`` is a ``pyscf.gto.Mole``; PySCF is imported only where the caller has imported it already
    (no Mole can exist otherwise), so systems of other kinds never pay for the import."""
    gto = sys.modules.get("pyscf.gto")
    return gto is not None and isinstance(obj, gto.Mole)


def from_pyscf(mol: Any) -> tuple[Molecule, str]:
    """The nuclei, charge and spin of a ``pyscf.gto.Mole`` (positions converted to bohr by PySCF's own constant)
    and its basis name, for the PySCF reference; InputError for what the package's H does not hold (ghost atoms,
    effective core potentials, finite nuclei) or for per-element bases."""
    from pyscf import gto

    if mol.ecp or getattr(mol, "_ecp", None):
        raise InputError(f"effective core potentials are not supported (ecp = {brief(mol.ecp)}): every electron "
                         "is treated, so give an all-electron basis", field="ecp")
    if mol.nucmod:
        raise InputError(f"finite nuclear models are not supported (nucmod = {brief(mol.nucmod)}): the "
                         "nuclei are point charges", field="nucmod")
    try:
        atoms = mol.format_atom(mol.atom, unit=mol.unit)    # [(label, [x, y, z] in bohr)]
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"PySCF cannot read the atoms ({exc})", field="atom") from None
    if not atoms:
        raise InputError("the Mole has no atoms", field="atom")
    table = []
    for i, (label, position) in enumerate(atoms):
        z = gto.charge(label)
        if gto.mole.is_ghost_atom(label) or not 1 <= z <= len(ELEMENTS):
            raise InputError(f"ghost or dummy atom {label!r} is not supported: give only the nuclei the electrons "
                             "feel", field=f"atom[{i}]")
        table.append([ELEMENTS[z - 1], [float(c) for c in position]])
    basis = mol.basis
    if isinstance(basis, dict):                  # {"Li": "cc-pvdz", "H": "cc-pvdz"}: one name for every element
        names = {name.lower() if isinstance(name, str) else None for name in basis.values()}
        basis = names.pop() if len(names) == 1 else None
    if not isinstance(basis, str) or not basis.strip():
        raise InputError(f"must be one basis name for every atom (the pyscf reference's basis), got "
                         f"{brief(mol.basis)}", field="basis")
    molecule = parse_molecule({"atoms": table, "unit": "bohr", "charge": mol.charge, "spin": mol.spin})
    return molecule, basis.strip().lower()
