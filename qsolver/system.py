"""System definitions: H = Σ_i (-κ∇_i² + V(x_i)) + Σ_{i<j} W(|x_i - x_j|) in Hartree atomic units.

A system file holds ``name``, ``dimension`` (per particle), ``particles`` (N identical spin-½ fermions),
``spin`` (2S of the states sought, as in PySCF: 0 ≤ 2S ≤ N with the parity of N; default the lowest),
``kinetic`` (κ; 1/2 for mass 1, the ICML paper's convention is κ = 1), a ``[potential]`` table (the one-body
term) or, for nuclei in 3D, a ``[molecule]`` table (:mod:`.molecule`; V = -Σ_A Z_A/|x - R_A|, which also sets
the electron count and spin), an ``[interaction]`` table for several particles (:mod:`.interactions`; default
Coulomb repulsion 1/r), optional ``[solver]`` defaults and a
``[reference]`` table (``kind = "analytic"``, ``"grid"``, ``"pyscf"``, ``"literature"`` or ``"none"``, plus the
options of that method, and optionally a ``[reference.literature]`` table of quoted levels).
"""
from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import MAX_INT, check_settings
from .errors import InputError
from .fields import brief, integer, number
from .interactions import CallableInteraction, CoulombInteraction, Interaction, parse_interaction
from .molecule import MAX_ELECTRONS, Molecule, from_pyscf, is_pyscf_mole, parse_molecule, spin_values
from .potentials import CallablePotential, Coulomb, check_callable, named_terms, parse_potential, terms

SYSTEMS_DIR = Path(__file__).resolve().parent / "systems"   # package data; the checkout's systems/ links here
REFERENCE_KINDS = ("analytic", "grid", "pyscf", "literature", "none")
_TOP_KEYS = {"name", "dimension", "particles", "spin", "kinetic", "potential", "interaction", "molecule", "solver",
             "reference"}
# an upper bound keeps a hostile file from building d-long lists (default centres, coordinate names) of any
# size; it is far beyond what Monte Carlo training of these networks resolves
MAX_DIMENSION = 100
MAX_SYSTEM_BYTES = 2**20        # shipped files are a few kB; a bigger one is not a system file
# io.py reads a stored result's settings through these names (MAX_INT included) until it imports config's own
check_solver_table = check_settings


@dataclass
class System:
    """H = Σ_i (-κ∇_i² + V(x_i)) + Σ_{i<j} W(|x_i - x_j|) for N particles in ``dimension`` dimensions each
    (hartree, bohr); ``spin`` is 2S of the states sought (two particles: 0 singlets, 2 triplets)."""

    name: str
    dimension: int
    potential: Any
    kinetic: float = 0.5
    particles: int | None = None          # None: 1, or the molecule's electron count
    spin: int | None = None               # None: the lowest, N mod 2 (singlets for two)
    interaction: Interaction | Any = None  # several particles only; None: Coulomb repulsion 1/r
    solver: dict = field(default_factory=dict)
    reference: str = "analytic"
    reference_options: dict = field(default_factory=dict)   # the other keys of [reference], checked by
    source: str | None = None                               # the reference method that reads them
    molecule: Molecule | None = None     # nuclei (a [molecule] table or a Molecule) giving the potential
    _stored: bool = field(default=False, repr=False)   # read back from a file: callables are placeholders

    @property
    def spin_sector(self) -> tuple[int, int]:
        """(n_up, n_down) of the S_z = S sector: n_up - n_down = 2S = ``spin``, n_up + n_down = ``particles``."""
        return (self.particles + self.spin) // 2, (self.particles - self.spin) // 2

    def __post_init__(self) -> None:
        src = self.source
        if isinstance(self.molecule, dict):
            self.molecule = parse_molecule(self.molecule, src)
        if self.molecule is not None:
            if not isinstance(self.molecule, Molecule):
                raise InputError("must be a table or a qsolver Molecule", source=src, field="molecule")
            if self.dimension != 3:
                raise InputError(f"a [molecule] lives in 3 dimensions, got {brief(self.dimension)}", source=src,
                                 field="dimension")
            if self.potential is not None:
                raise InputError("give either [potential] or [molecule] (which sets the potential), not both",
                                 source=src, field="potential")
            self.potential = self.molecule.potential()
            for key, value in (("particles", self.molecule.electrons), ("spin", self.molecule.spin)):
                if getattr(self, key) is not None and getattr(self, key) != value:
                    raise InputError(f"the [molecule] sets {key} = {value}; got {brief(getattr(self, key))} "
                                     "(leave it out)", source=src, field=key)
                setattr(self, key, value)
        # at most 100 characters: output file names add a suffix, and file systems allow 255 bytes
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}", self.name):
            raise InputError(f"must be a non-empty name of at most 100 letters, digits and _ . + - (it names output "
                             f"files), got {brief(self.name)}", source=src, field="name")
        self.dimension = integer(self.dimension, "dimension", src, minimum=1, maximum=MAX_DIMENSION)
        self.particles = integer(1 if self.particles is None else self.particles, "particles", src, minimum=1)
        if self.particles > MAX_ELECTRONS:
            raise InputError(f"at most {MAX_ELECTRONS} particles are supported, got {self.particles}",
                             source=src, field="particles")
        allowed = spin_values(self.particles)
        spin = allowed[0] if self.spin is None else self.spin
        if isinstance(spin, bool) or not isinstance(spin, int) or spin not in allowed:
            raise InputError(f"2S of {self.particles} spin-1/2 particle(s) must be "
                             f"{' or '.join(map(str, allowed))} (0 ≤ 2S ≤ N, 2S and N of the same parity), got "
                             f"{brief(spin)}", source=src, field="spin")
        self.spin = spin
        if self.particles == 1 and self.interaction is not None:
            raise InputError("a pair interaction needs two or more particles", source=src, field="interaction")
        if self.particles > 1:
            self.interaction = parse_interaction({} if self.interaction is None else self.interaction, src,
                                                 stored=self._stored)
        self.kinetic = number(self.kinetic, "kinetic", src)
        if self.kinetic <= 0:
            raise InputError(f"must be positive, got {self.kinetic}", source=src, field="kinetic")
        if isinstance(self.potential, dict):
            self.potential = parse_potential(self.potential, self.dimension, src)
        elif callable(self.potential) and not hasattr(self.potential, "to_dict"):
            self.potential = CallablePotential(self.potential)
        elif not hasattr(self.potential, "to_dict"):
            raise InputError("must be a table, a qsolver potential or a callable", source=src, field="potential")
        if not self._stored:           # (stored callables are placeholders that raise when called)
            self._check_callables()
            self._check_binding()      # (a result made before this check still reads back)
        self.solver = check_settings(self.solver, src)
        if isinstance(self.reference, dict):
            table = dict(self.reference)
            self.reference = table.pop("kind", "none")
            self.reference_options = {**table, **self.reference_options}
        if not isinstance(self.reference_options, dict):
            raise InputError("must be a table", source=src, field="reference")
        if self.reference not in REFERENCE_KINDS:
            raise InputError(f"unknown kind {brief(self.reference)} (known: {', '.join(REFERENCE_KINDS)})",
                             source=src, field="reference.kind")

    def _check_binding(self) -> None:
        """Refuse N ≥ 2Z + K electrons (Coulomb repulsion 1/r) on K nuclei of total charge Z in 3D: by Lieb's
        bound (Phys. Rev. A 29, 3018 (1984)), such a system has no bound state, every level is continuum."""
        parts = terms(self.potential)
        if self.particles < 2 or self.dimension != 3 or not isinstance(self.interaction, CoulombInteraction) or \
                self.interaction.strength != 1.0 or len(parts) != 1 or not isinstance(parts[0], Coulomb):
            return
        charges = parts[0].charges
        if not all(float(z).is_integer() and z >= 1 for z in charges):
            return                              # not nuclei: the bound is stated for electrons bound by nuclei
        z, k = int(sum(charges)), len(charges)
        if self.particles >= 2 * z + k:
            nuclei = "one nucleus" if k == 1 else f"{k} nuclei"
            raise InputError(f"{self.particles} electrons on {nuclei} of total charge Z = {z} have no bound state: "
                             f"by Lieb's bound (1984) a bound state needs N < 2Z + K = {2 * z + k} (K nuclei; an "
                             "atom binds fewer than 2Z + 1 electrons)", source=self.source,
                             field="molecule.charge" if self.molecule is not None else "particles")

    def _check_callables(self) -> None:
        """A user's Python potential (a term of one) on points (N, d) and interaction on distances (N,), tried
        before anything trains (:func:`~qsolver.potentials.check_callable`)."""
        for name, term in named_terms(self.potential):
            if isinstance(term, CallablePotential):
                check_callable(term.fn, (self.dimension,), self.source, name)
        if isinstance(self.interaction, CallableInteraction):
            check_callable(self.interaction.fn, (), self.source, "interaction")

    def to_dict(self) -> dict:
        """The definition as plain data (the TOML layout); a callable potential is recorded by its repr,
        a molecule by its ``[molecule]`` table (in bohr) in place of the potential it defines."""
        shape = {"molecule": self.molecule.to_dict()} if self.molecule is not None else \
            {"potential": self.potential.to_dict()}
        pair = {"spin": self.spin, "interaction": self.interaction.to_dict()} if self.particles > 1 else {}
        return {"name": self.name, "dimension": self.dimension, "particles": self.particles,
                "kinetic": self.kinetic, **shape, **pair, "solver": dict(self.solver),
                "reference": {"kind": self.reference, **self.reference_options}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def shipped_systems() -> dict[str, Path]:
    """The system files shipped in ``systems/``, by name."""
    return {p.stem: p for p in sorted(SYSTEMS_DIR.glob("*.toml"))}


def _read_capped(path: Path, source: str) -> str:
    """The text of the system file at ``path``: a regular file of at most MAX_SYSTEM_BYTES (a device such as
    /dev/zero, a pipe or a huge file would be read without end or block)."""
    if not stat.S_ISREG(path.stat().st_mode):
        raise InputError("not a regular file (a system file is a TOML text file)", source=source)
    with open(path, "rb") as handle:
        data = handle.read(MAX_SYSTEM_BYTES + 1)
    if len(data) > MAX_SYSTEM_BYTES:
        raise InputError(f"larger than {MAX_SYSTEM_BYTES // 2**20} MiB: not a system file", source=source)
    return data.decode("utf-8")


def as_system(system: System | str | Path | Any, field: str = "system") -> System:
    """``system`` itself, the system a file path or a shipped system's name holds (:func:`load_system`), or that of
    a ``pyscf.gto.Mole`` (:func:`mole_system`): what the Python API takes wherever it expects a System; InputError
    naming ``field`` for anything else."""
    if isinstance(system, System):
        return system
    if isinstance(system, (str, os.PathLike)):
        return load_system(system)
    if is_pyscf_mole(system):
        return mole_system(system)
    raise InputError(f"must be a qsolver System, a system file, a shipped system's name or a pyscf.gto.Mole, got "
                     f"{brief(system)}", field=field)


def mole_system(mol: Any) -> System:
    """The ``[molecule]`` system of a ``pyscf.gto.Mole``'s atoms (in its unit), charge and spin, with a pyscf
    reference in the Mole's basis, named by its formula (LiH, H2); see :func:`~qsolver.molecule.from_pyscf`."""
    molecule, basis = from_pyscf(mol)
    counts: dict[str, int] = {}
    for symbol in molecule.symbols:
        counts[symbol] = counts.get(symbol, 0) + 1
    name = "".join(s + (str(n) if n > 1 else "") for s, n in counts.items())
    return System(name=name, dimension=3, potential=None, molecule=molecule,
                  reference={"kind": "pyscf", "basis": basis})


def load_system(path_or_name: str | Path) -> System:
    """Load a system from a TOML file, or a shipped system by name (``qsolver systems`` lists them)."""
    if not isinstance(path_or_name, (str, Path)):
        raise InputError(f"must be a file path or a shipped system's name, got {type(path_or_name).__name__}",
                         field="path_or_name")
    path = Path(path_or_name)
    source = str(path)
    try:
        shipped = shipped_systems()
        if not path.is_file() and str(path_or_name) in shipped:
            path = shipped[str(path_or_name)]
            source = str(path)
        elif not path.exists():
            raise InputError(f"no such file, and not a shipped system (shipped: {', '.join(shipped)})",
                             source=source)
        data = tomllib.loads(_read_capped(path, source))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not a valid TOML file ({exc})", source=source) from None
    except RecursionError:   # tomllib parses nested arrays and tables recursively
        raise InputError("not a valid TOML file (arrays or tables nested too deeply)", source=source) from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", source=source) from None
    return system_from_dict(data, source)


def system_from_dict(data: dict, source: str | None = None, stored: bool = False) -> System:
    """Build a system from the TOML layout (as read from a file, or stored in a result with ``stored``)."""
    if not isinstance(data, dict):
        raise InputError(f"must be a table of the system's fields, got {brief(data)}", source=source)
    for key in data:
        if key not in _TOP_KEYS:
            raise InputError(f"unknown field (known: {', '.join(sorted(_TOP_KEYS))})", source=source, field=key)
    molecule = "molecule" in data
    for key in ("name",) if molecule else ("name", "dimension", "potential"):
        if key not in data:
            raise InputError("missing (or give a [molecule] table)" if key == "potential" else "missing",
                             source=source, field=key)
    if molecule and "potential" in data:
        raise InputError("give either [potential] or [molecule] (which sets the potential), not both",
                         source=source, field="potential")
    dimension = integer(data.get("dimension", 3), "dimension", source, minimum=1, maximum=MAX_DIMENSION)
    reference = data.get("reference", {"kind": "analytic"})
    if not isinstance(reference, dict):
        raise InputError("must be a table", source=source, field="reference")
    potential = None if molecule else parse_potential(data["potential"], dimension, source, stored=stored)
    return System(name=data["name"], dimension=dimension, potential=potential,
                  kinetic=data.get("kinetic", 0.5), particles=data.get("particles"), spin=data.get("spin"),
                  interaction=data.get("interaction"), solver=data.get("solver", {}),
                  reference={"kind": "analytic", **reference}, source=source, molecule=data.get("molecule"),
                  _stored=stored)

