"""Checked fields of input files: numbers, integers and vectors as a (possibly hostile) file may hold them, each
refused with an InputError that names the file and the field. Imports nothing else of the package but its errors,
so every parser may use it."""
from __future__ import annotations

import math
import sys
from typing import Any

from .errors import InputError


def brief(value: Any) -> str:
    """``repr(value)`` cut to one short line: error messages quote what a (possibly hostile) file holds."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def integer(value: Any, name: str, source: str | None, minimum: int, maximum: int | None = None) -> int:
    """An integer (not bool) in [minimum, maximum], or InputError naming ``source`` and ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"must be an integer, got {brief(value)}", source=source, field=name)
    if value < minimum:
        raise InputError(f"must be at least {minimum}, got {brief(value)}", source=source, field=name)
    if maximum is not None and value > maximum:
        raise InputError(f"must be at most {maximum}, got {brief(value)}", source=source, field=name)
    return value


def finite_number(value: Any) -> bool:
    """A real number (int or float, not bool) that is finite as a float; integers beyond the float range are
    not (float() of them overflows)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) if isinstance(value, float) else abs(value) <= sys.float_info.max


def number(value: Any, name: str, source: str | None) -> float:
    """A finite real number as a float, or InputError naming ``source`` and ``name``."""
    if not finite_number(value):
        raise InputError(f"must be a finite number, got {brief(value)}", source=source, field=name)
    return float(value)


def vector(value: Any, name: str, source: str | None, length: int) -> list[float]:
    """A list of ``length`` finite numbers, or InputError naming ``source`` and ``name``."""
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise InputError(f"must be a list of {length} numbers, got {brief(value)}", source=source, field=name)
    return [number(v, name, source) for v in value]
