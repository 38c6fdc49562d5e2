"""Levels quoted from the literature, carried by the system file with their source.

``[reference.literature]`` holds ``levels`` (ascending, hartree, electronic: the package's H = -κ∇² + V has
no nuclear repulsion), ``source`` (who computed them, and how) and optionally ``precision`` (hartree, e.g.
half a unit in the last quoted digit; default 0) and ``all_bound`` (true when the table lists every bound level,
as for H⁻'s single one: more states may then be asked for, and those beyond the table lie in the continuum). Any
``[reference]`` kind may carry one.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..fields import brief, finite_number
from ..system import System
from .base import Reference

FIELD = "reference.literature"


def literature_reference(system: System, n: int) -> Reference:
    """The first n literature levels of the system; error = the stated precision."""
    table = check_literature(system, n)
    levels, precision = table["levels"], float(table.get("precision", 0.0))
    source = table["source"].strip()
    energies = np.array(levels[:n], dtype=float)
    return Reference(energies, f"literature (electronic): {source}", precision,
                     details={"source": source, "all_bound": table.get("all_bound", False)},
                     errors=np.full(len(energies), precision), kind="literature")


def check_literature(system: System, n: int) -> dict:
    """The system's ``[reference.literature]`` table, checked (InputError naming the field otherwise): its fields
    known, ``levels`` ascending finite numbers, at least ``n`` of them unless ``all_bound``, a ``source`` and a
    non-negative ``precision``."""
    table = system.reference_options.get("literature")
    src = system.source
    if table is None:
        raise InputError("missing: add a [reference.literature] table with levels and source", source=src,
                         field=FIELD)
    if not isinstance(table, dict):
        raise InputError("must be a table with levels, source and optionally precision", source=src, field=FIELD)
    for key in table:
        if key not in ("levels", "source", "precision", "all_bound"):
            raise InputError("unknown field (known: levels, source, precision, all_bound)", source=src,
                             field=f"{FIELD}.{key}")
    levels = table.get("levels")
    if not isinstance(levels, list) or not levels or not all(map(finite_number, levels)):
        raise InputError("must be a non-empty list of numbers (hartree)", source=src, field=f"{FIELD}.levels")
    if any(b < a for a, b in zip(levels, levels[1:])):
        raise InputError("must be in ascending order", source=src, field=f"{FIELD}.levels")
    all_bound = table.get("all_bound", False)
    if not isinstance(all_bound, bool):
        raise InputError(f"must be true or false, got {all_bound!r}", source=src, field=f"{FIELD}.all_bound")
    if len(levels) < n and not all_bound:
        raise InputError(f"gives {len(levels)} levels, {n} asked", source=src, field=f"{FIELD}.levels")
    source = table.get("source")
    if not isinstance(source, str) or not source.strip():
        raise InputError("must name where the levels come from", source=src, field=f"{FIELD}.source")
    precision = table.get("precision", 0.0)
    if not finite_number(precision) or precision < 0:
        raise InputError(f"must be a finite non-negative number (hartree), got {brief(precision)}", source=src,
                         field=f"{FIELD}.precision")
    return table
