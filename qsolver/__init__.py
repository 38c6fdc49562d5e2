"""qsolver: the lowest states of H = -κ∇² + V by NeuralSVD (nested low-rank approximation).

Hartree atomic units throughout; κ = 1/2 for a particle of mass 1 (the ICML paper's κ = 1 is a named
setting of its system files).
"""
from .config import SolverConfig
from .errors import InputError
from .io import load_result, save_result
from .references import reference
from .result import Result
from .solver import solve
from .system import System, load_system, shipped_systems
from .validate import validate
from .version import __version__

__all__ = ["InputError", "Result", "SolverConfig", "System", "__version__", "load_result", "load_system",
           "reference", "save_result", "shipped_systems", "solve", "validate"]
