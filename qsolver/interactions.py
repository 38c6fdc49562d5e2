"""Pair interactions W(r) between two particles, r = |x_1 - x_2| in bohr, W in hartree.

Kinds: ``coulomb`` (W = strength / r; electrons: strength 1), ``expression`` (a checked formula in r alone, e.g.
``1/sqrt(r**2 + 1)``), ``none`` (W = 0) and ``callable`` (a Python function of a torch tensor r). Each maps a
tensor of distances of any shape to a tensor of the same shape.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

import torch

from . import expression as _expression
from .errors import InputError
from .fields import brief, number


@dataclass
class CoulombInteraction:
    """W(r) = strength / r (repulsive for strength > 0)."""

    strength: float = 1.0
    kind: str = field(default="coulomb", init=False)

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        return self.strength / r

    def to_dict(self) -> dict:
        return {"kind": self.kind, "strength": self.strength}


@dataclass
class ExpressionInteraction:
    """W(r) from a formula in r (see :mod:`qsolver.expression`)."""

    expr: str
    kind: str = field(default="expression", init=False)

    def __post_init__(self) -> None:
        self._fn = _expression.compile_radial(self.expr)

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        return self._fn(r)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "expr": self.expr}


@dataclass
class NoInteraction:
    """W = 0: independent particles (only the exchange symmetry couples them)."""

    kind: str = field(default="none", init=False)

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(r)

    def to_dict(self) -> dict:
        return {"kind": self.kind}


@dataclass
class CallableInteraction:
    """W(r) from a user's Python function of a torch tensor; not storable in files."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    kind: str = field(default="callable", init=False)

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        return self.fn(r)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "repr": repr(self.fn)}


Interaction = Union[CoulombInteraction, ExpressionInteraction, NoInteraction, CallableInteraction]
_FIELDS = {"coulomb": ("strength",), "expression": ("expr",), "none": (), "callable": ("repr",)}


def parse_interaction(table: Any, source: str | None = None, stored: bool = False) -> Interaction:
    """Build a pair interaction from its ``[interaction]`` table (or pass a built one / a callable through).

    ``stored=True`` (results read back from files) accepts ``kind = "callable"``, which raises when evaluated."""
    if callable(table) and not hasattr(table, "to_dict"):
        return CallableInteraction(table)
    if hasattr(table, "to_dict"):
        return table
    if not isinstance(table, dict):
        raise InputError("must be a table, a qsolver interaction or a callable of r", source=source,
                         field="interaction")
    kind = table.get("kind", "coulomb")
    if not isinstance(kind, str) or kind not in _FIELDS or (kind == "callable" and not stored):
        raise InputError(f"unknown interaction kind {brief(kind)} (known: coulomb, expression, none)",
                         source=source, field="interaction.kind")
    for key in table:
        if key != "kind" and key not in _FIELDS[kind]:
            known = ", ".join(_FIELDS[kind]) or "none"
            raise InputError(f"unknown field for kind '{kind}' (known: {known})", source=source,
                             field=f"interaction.{key}")
    if kind == "coulomb":
        return CoulombInteraction(number(table.get("strength", 1.0), "interaction.strength", source))
    if kind == "expression":
        if "expr" not in table:
            raise InputError("missing", source=source, field="interaction.expr")
        try:
            return ExpressionInteraction(table["expr"])
        except ValueError as exc:
            raise InputError(f"{exc} (a pair interaction is a formula in r only)", source=source,
                             field="interaction.expr") from None
    if kind == "callable":
        description = table.get("repr", "?")

        def unavailable(r):
            raise RuntimeError(f"this result was made with a Python callable interaction ({description}) that "
                               "files cannot store; pass the function again to rebuild the system")

        return CallableInteraction(unavailable)
    return NoInteraction()


def cusp_slope(interaction: Interaction, kinetic: float, dimension: int, parallel: bool) -> float:
    """Kato slope γ = ∂ ln ψ/∂r_12 at coalescence for W = λ/r: the relative motion has kinetic prefactor 2κ,
    so γ = λ / (2κ (d - 1 + 2ℓ)) with ℓ = 0 for antiparallel spins and 1 for parallel ones, whose spatial function
    is odd under their exchange (κ = ½, d = 3: ½ and ¼). Zero for interactions without a 1/r singularity and in
    one dimension."""
    if not isinstance(interaction, CoulombInteraction) or dimension < 2:
        return 0.0
    ell = 1 if parallel else 0
    return interaction.strength / (2 * kinetic * (dimension - 1 + 2 * ell))
