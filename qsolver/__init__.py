"""qsolver: the lowest states of H = -κ∇² + V by NeuralSVD (nested low-rank approximation).

Hartree atomic units throughout; κ = 1/2 for a particle of mass 1 (the ICML paper's κ = 1 is a named
setting of its system files).
"""
__version__ = "0.1.0"

from .config import SolverConfig  # noqa: E402
from .errors import InputError  # noqa: E402
from .io import load_result  # noqa: E402
from .references import reference  # noqa: E402
from .result import Result  # noqa: E402
from .solver import solve  # noqa: E402
from .system import System, load_system, shipped_systems  # noqa: E402
from .validate import validate  # noqa: E402

__all__ = ["InputError", "Result", "SolverConfig", "System", "load_result", "load_system", "reference",
           "shipped_systems", "solve", "validate"]
