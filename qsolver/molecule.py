"""Nuclear geometries for one-electron molecular systems, in PySCF's own form.

A ``[molecule]`` table gives ``atoms`` as PySCF's list form of ``Mole.atom`` (``[["H", [0, 0, -1]], ...]``,
an element symbol or a nuclear charge per atom) or its string form (``"H 0 0 -1; H 0 0 1"``), and
``unit = "bohr"`` or ``"angstrom"`` (required). The electron sees V(x) = -Σ_A Z_A / |x - R_A| (hartree, bohr);
the nuclei repel each other by E_nn = Σ_{A<B} Z_A Z_B / R_AB. One electron, so ``charge`` (optional) must be
Σ Z_A - 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import InputError
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
_KEYS = ("atoms", "unit", "charge")


@dataclass
class Molecule:
    """Point nuclei (charges Z_A, positions R_A in bohr) binding one electron; ``unit`` as the file gave it."""

    symbols: list[str]
    charges: list[int]
    positions: list[list[float]]
    unit: str = "bohr"

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
                "charge": sum(self.charges) - 1}


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
    if isinstance(label, bool) or not isinstance(label, (int, float)) or label != int(label) \
            or not 1 <= label <= len(ELEMENTS):
        raise InputError(f"must be an element symbol or a nuclear charge 1..{len(ELEMENTS)}, got {label!r}",
                         source=source, field=where)
    return ELEMENTS[int(label) - 1], int(label)


def parse_molecule(table: Any, source: str | None = None) -> Molecule:
    """Check a ``[molecule]`` table and convert positions to bohr (1 Å = 1/0.52917721092 bohr)."""
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
        if any(isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) for c in atom[1]):
            raise InputError(f"coordinates must be finite numbers, got {atom[1]!r}", source=source, field=where)
        symbols.append(symbol)
        charges.append(z)
        positions.append([float(c) * scale for c in atom[1]])
    for b in range(len(positions)):
        for a in range(b):
            distance = math.dist(positions[a], positions[b])
            if distance < MIN_DISTANCE:
                raise InputError(f"nuclei {a} and {b} are {distance:.2g} bohr apart (overlapping; at least "
                                 f"{MIN_DISTANCE} bohr needed)", source=source, field=f"molecule.atoms[{b}]")
    if "charge" in table:
        charge = table["charge"]
        if isinstance(charge, bool) or not isinstance(charge, int) or charge != sum(charges) - 1:
            raise InputError(f"one electron: the charge must be Σ Z - 1 = {sum(charges) - 1}, got {charge!r}",
                             source=source, field="molecule.charge")
    return Molecule(symbols, charges, positions, unit.lower())
