"""Potentials V(x) in hartree, x in bohr with shape (N, d); each returns shape (N,).

Kinds: ``coulomb`` (-Σ_c Z_c/|x - R_c|), ``harmonic`` (½ Σ_i ω_i² (x_i - c_i)²), ``box`` (0 inside an
axis-aligned box, infinite outside: the wavefunctions vanish on its walls), ``expression`` (a checked
formula), ``callable`` (a Python function on torch tensors) and ``sum`` (of any of these).
"""
from __future__ import annotations

import math
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Callable, Union

import torch

from . import expression as _expression


@dataclass
class Coulomb:
    """V(x) = -Σ_c Z_c / |x - R_c| (attractive for Z > 0)."""

    charges: list[float]
    centers: list[list[float]]
    kind: str = field(default="coulomb", init=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        centers = torch.as_tensor(self.centers, dtype=x.dtype, device=x.device)
        charges = torch.as_tensor(self.charges, dtype=x.dtype, device=x.device)
        dist = torch.linalg.vector_norm(x[:, None, :] - centers[None], dim=-1)
        return -(charges / dist).sum(-1)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "charges": list(self.charges), "centers": [list(c) for c in self.centers]}


@dataclass
class Harmonic:
    """V(x) = ½ Σ_i ω_i² (x_i - c_i)², ω one per axis."""

    omega: list[float]
    center: list[float]
    kind: str = field(default="harmonic", init=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        omega = torch.as_tensor(self.omega, dtype=x.dtype, device=x.device)
        center = torch.as_tensor(self.center, dtype=x.dtype, device=x.device)
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


def terms(potential: Potential) -> list[Potential]:
    """The flat list of non-sum terms of a potential."""
    if isinstance(potential, Sum):
        return [t for term in potential.terms for t in terms(term)]
    return [potential]


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
