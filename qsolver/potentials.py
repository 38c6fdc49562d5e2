"""Potentials V(x) in hartree, x in bohr with shape (N, d); each returns shape (N,).

Kinds: ``coulomb`` (-Σ_c Z_c/|x - R_c|), ``harmonic`` (½ Σ_i ω_i² (x_i - c_i)²), ``box`` (0 inside an
axis-aligned box, infinite outside: the wavefunctions vanish on its walls), ``expression`` (a checked
formula), ``callable`` (a Python function on torch tensors) and ``sum`` (of any of these);
:func:`parse_potential` builds one from a system file's ``[potential]`` table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Union

import torch

from . import expression as _expression
from .errors import InputError
from .fields import brief, number, vector

MAX_SUM_DEPTH = 16       # nested "sum" potentials: parsing and evaluating recurse once per level


class _Constants:
    """Tensors of a term's constant lists, made once per (device, dtype): a potential is evaluated on every
    step, and building them anew would copy host → device each time. The lists count as fixed once evaluated
    (to change a term, build a new one). Copies and pickles drop the cache: its tensors may live on a device the
    receiver lacks."""

    def _tensor(self, name: str, like: torch.Tensor) -> torch.Tensor:
        cache = self.__dict__.setdefault("_tensors", {})
        key = (name, like.device, like.dtype)
        if key not in cache:
            # a normal tensor even when first made under inference mode, so that later calls may backpropagate
            with torch.inference_mode(False):
                cache[key] = torch.as_tensor(getattr(self, name), dtype=like.dtype, device=like.device)
        return cache[key]

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_tensors"}


@dataclass
class Coulomb(_Constants):
    """V(x) = -Σ_c Z_c / |x - R_c| (attractive for Z > 0)."""

    charges: list[float]
    centers: list[list[float]]
    kind: str = field(default="coulomb", init=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        centers, charges = self._tensor("centers", x), self._tensor("charges", x)
        dist = torch.linalg.vector_norm(x[:, None, :] - centers[None], dim=-1)
        return -(charges / dist).sum(-1)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "charges": list(self.charges), "centers": [list(c) for c in self.centers]}


@dataclass
class Harmonic(_Constants):
    """V(x) = ½ Σ_i ω_i² (x_i - c_i)², ω one per axis."""

    omega: list[float]
    center: list[float]
    kind: str = field(default="harmonic", init=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        omega, center = self._tensor("omega", x), self._tensor("center", x)
        return 0.5 * ((omega * (x - center)) ** 2).sum(-1)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "omega": list(self.omega), "center": list(self.center)}


@dataclass
class Box:
    """Infinite well: V = 0 for |x_i - c_i| < l_i/2, wavefunctions vanish outside (enforced by the ansatz)."""

    lengths: list[float]
    center: list[float]
    kind: str = field(default="box", init=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "lengths": list(self.lengths), "center": list(self.center)}


@dataclass
class Expression:
    """V(x) given by a formula in x, y, z and r (see :mod:`qsolver.expression`)."""

    expr: str
    dimension: int
    kind: str = field(default="expression", init=False)

    def __post_init__(self) -> None:
        self._fn = _expression.compile_expression(self.expr, self.dimension)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "expr": self.expr}


@dataclass
class CallablePotential:
    """V(x) from a user's Python function mapping (N, d) tensors to (N,); not storable in files."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    kind: str = field(default="callable", init=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "repr": repr(self.fn)}


@dataclass
class Sum:
    """V(x) = Σ_t V_t(x)."""

    terms: list["Potential"]
    kind: str = field(default="sum", init=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return sum(term(x) for term in self.terms)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "terms": [t.to_dict() for t in self.terms]}


Potential = Union[Coulomb, Harmonic, Box, Expression, CallablePotential, Sum]

PROBE_POINTS = 5      # points a user's callable is tried on before training (training calls it on every batch)


def check_callable(fn: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...], source: str | None,
                   field: str) -> None:
    """Call a user's function on PROBE_POINTS random inputs of ``shape`` (after the leading count) in float32 and
    float64, the training and evaluation dtypes; InputError naming ``field`` unless each call returns a torch tensor
    of shape (PROBE_POINTS,) in the input's dtype. A mistake found here would otherwise surface after training, or
    as an error deep in the solver."""
    what = f"({PROBE_POINTS}{''.join(f', {n}' for n in shape)})"
    for dtype in (torch.float32, torch.float64):
        x = torch.rand(PROBE_POINTS, *shape, generator=torch.Generator().manual_seed(0), dtype=dtype) + 0.5
        try:
            out = fn(x)
        # any exception of the user's code: reported as bad input with its own words, not as a solver failure
        except Exception as exc:
            raise InputError(f"raised {type(exc).__name__} on a {dtype} tensor of shape {what} ({exc})",
                             source=source, field=field) from None
        if isinstance(out, torch.Tensor) and tuple(out.shape) == (PROBE_POINTS,) and out.dtype == dtype:
            continue
        got = (f"a tensor of shape {tuple(out.shape)} and dtype {out.dtype}" if isinstance(out, torch.Tensor)
               else f"{type(out).__module__}.{type(out).__name__}".removeprefix("builtins."))
        raise InputError(f"must return a torch tensor of shape ({PROBE_POINTS},) and the input's dtype for a {dtype} "
                         f"tensor of shape {what}; got {got}", source=source, field=field)


def terms(potential: Potential) -> list[Potential]:
    """The flat list of non-sum terms of a potential."""
    if isinstance(potential, Sum):
        return [t for term in potential.terms for t in terms(term)]
    return [potential]


def named_terms(potential: Potential, prefix: str = "potential") -> list[tuple[str, Potential]]:
    """The flat list of non-sum terms with the field each comes from in a system file (``potential``,
    ``potential.terms[0]``, ``potential.terms[1].terms[0]``, ...), so that errors can name it."""
    if isinstance(potential, Sum):
        return [named for i, term in enumerate(potential.terms)
                for named in named_terms(term, f"{prefix}.terms[{i}]")]
    return [(prefix, potential)]


def asymptote(potential: Potential) -> float | None:
    """lim V(x) for |x| → ∞: 0 for Coulomb terms, +inf for confining terms, None when unknown."""
    values = []
    for term in terms(potential):
        if isinstance(term, (Harmonic, Box)):
            return math.inf
        values.append(0.0 if isinstance(term, Coulomb) else None)
    return None if any(v is None for v in values) else sum(values)


def find(potential: Potential, kind: type) -> list:
    """All terms of the given class."""
    return [t for t in terms(potential) if isinstance(t, kind)]


def harmonic_count(ell: int, dimension: int) -> int:
    """Number of independent harmonic polynomials of degree ℓ in d dimensions."""
    below = math.comb(ell + dimension - 3, dimension - 1) if ell + dimension - 3 >= 0 else 0
    return math.comb(ell + dimension - 1, dimension - 1) - below


@lru_cache(maxsize=None)
def hydrogen_shell(index: int, dimension: int) -> int:
    """Shell n = 1, 2, ... of the index-th state (0-based) of a d-dimensional hydrogen atom (d ≥ 2).

    Shell n holds the angular momenta ℓ = 0..n-1, i.e. Σ_ℓ harmonic_count(ℓ, d) states.
    """
    n, filled = 1, 0
    while True:
        filled += sum(harmonic_count(ell, dimension) for ell in range(n))
        if index < filled:
            return n
        n += 1


def hydrogen_nu(index: int, dimension: int) -> float:
    """Effective principal number ν = n + (d - 3)/2 of the index-th state: E = -Z²/(4κν²)."""
    return max(hydrogen_shell(index, dimension) + 0.5 * (dimension - 3), 0.5)


def parse_potential(table: Any, dimension: int, source: str | None = None, prefix: str = "potential",
                    stored: bool = False, depth: int = 0) -> Potential:
    """Build a potential from its TOML table, checking every field.

    ``stored=True`` (results read back from HDF5) also accepts ``kind = "callable"``: the Python function
    itself was not stored, so the potential raises if evaluated.
    """
    if not isinstance(table, dict):
        raise InputError("must be a table", source=source, field=prefix)
    kind = table.get("kind")
    if kind is None:
        kind = "sum" if "terms" in table else None
    if kind is None:
        raise InputError("missing", source=source, field=f"{prefix}.kind")
    if not isinstance(kind, str):
        raise InputError(f"must be a string, got {brief(kind)}", source=source, field=f"{prefix}.kind")
    if stored and kind == "callable":
        return CallablePotential(_unavailable(table.get("repr", "?")))
    known = {"coulomb": ("charges", "centers"), "harmonic": ("omega", "center"), "box": ("lengths", "center"),
             "expression": ("expr",), "sum": ("terms",)}
    if kind not in known:
        raise InputError(f"unknown potential kind {brief(kind)} (known: {', '.join(known)})", source=source,
                         field=f"{prefix}.kind")
    for key in table:
        if key != "kind" and key not in known[kind]:
            raise InputError(f"unknown field for kind '{kind}' (known: {', '.join(known[kind])})",
                             source=source, field=f"{prefix}.{key}")
    d = dimension
    if kind == "coulomb":
        charges = table.get("charges")
        if not isinstance(charges, list) or not charges:
            raise InputError("must be a non-empty list of numbers", source=source, field=f"{prefix}.charges")
        charges = [number(q, f"{prefix}.charges", source) for q in charges]
        centers = table.get("centers", [[0.0] * d])
        if not isinstance(centers, list) or len(centers) != len(charges):
            raise InputError(f"must be a list of {len(charges)} points (one per charge)", source=source,
                             field=f"{prefix}.centers")
        centers = [vector(c, f"{prefix}.centers", source, d) for c in centers]
        return Coulomb(charges, centers)
    if kind == "harmonic":
        if "omega" not in table:
            raise InputError("missing", source=source, field=f"{prefix}.omega")
        omega = table["omega"]
        omega = vector(omega, f"{prefix}.omega", source, d) if isinstance(omega, list) else \
            [number(omega, f"{prefix}.omega", source)] * d
        if any(w <= 0 for w in omega):
            raise InputError("must be positive", source=source, field=f"{prefix}.omega")
        return Harmonic(omega, vector(table.get("center", [0.0] * d), f"{prefix}.center", source, d))
    if kind == "box":
        if "lengths" not in table:
            raise InputError("missing", source=source, field=f"{prefix}.lengths")
        lengths = table["lengths"]
        lengths = vector(lengths, f"{prefix}.lengths", source, d) if isinstance(lengths, list) else \
            [number(lengths, f"{prefix}.lengths", source)] * d
        if any(length <= 0 for length in lengths):
            raise InputError("must be positive", source=source, field=f"{prefix}.lengths")
        return Box(lengths, vector(table.get("center", [0.0] * d), f"{prefix}.center", source, d))
    if kind == "expression":
        if "expr" not in table:
            raise InputError("missing", source=source, field=f"{prefix}.expr")
        try:
            return Expression(table["expr"], d)
        except ValueError as exc:
            raise InputError(str(exc), source=source, field=f"{prefix}.expr") from None
    items = table.get("terms")
    if not isinstance(items, list) or not items:
        raise InputError("must be a non-empty list of potential tables", source=source, field=f"{prefix}.terms")
    if depth >= MAX_SUM_DEPTH:
        raise InputError(f"sums are nested more than {MAX_SUM_DEPTH} levels deep", source=source,
                         field=f"{prefix}.terms")
    parsed = [parse_potential(t, d, source, f"{prefix}.terms[{i}]", stored, depth + 1) for i, t in enumerate(items)]
    if sum(isinstance(t, Box) for t in parsed) > 1:
        raise InputError("at most one box per system", source=source, field=f"{prefix}.terms")
    return Sum(parsed)


def _unavailable(description: str):
    def potential(x):
        raise RuntimeError(f"this result was made with a Python callable potential ({description}) that "
                           "files cannot store; pass the function again to rebuild the system")

    return potential
