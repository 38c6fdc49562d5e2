"""qsolver: the lowest states of H = -κ∇² + V by NeuralSVD (nested low-rank approximation).

Hartree atomic units throughout; κ = 1/2 for a particle of mass 1 (the ICML paper's κ = 1 is a named
setting of its system files).
"""
from .config import SolverConfig
from .errors import InputError
from .result import Result
from .solver import solve
from .system import System, load_system, shipped_systems

__all__ = ["InputError", "Result", "SolverConfig", "System", "load_system", "shipped_systems", "solve"]
__version__ = "0.1.0"
