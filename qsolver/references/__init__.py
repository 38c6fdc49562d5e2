"""Reference spectra to validate against. Each reference states its method and its own error."""
from __future__ import annotations

from ..errors import InputError
from ..system import System
from .analytic import Reference, analytic_reference


def system_reference(system: System, n: int) -> Reference | None:
    """The reference named by the system's ``[reference]`` table, or None (kind "none", or no closed form)."""
    if system.reference != "analytic":
        return None
    try:
        return analytic_reference(system, n)
    except InputError:
        return None


__all__ = ["Reference", "analytic_reference", "system_reference"]
