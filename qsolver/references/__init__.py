"""Reference spectra to validate against. Each reference states its method and its own error."""
from .analytic import Reference, analytic_reference

__all__ = ["Reference", "analytic_reference"]
