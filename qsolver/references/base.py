"""The records every reference method returns: levels with their method and error, and optionally the
reference eigenfunctions on a quadrature rule. Imports nothing from the package, so any module may use them."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KINDS = ("analytic", "grid", "pyscf", "literature")   # the [reference] kinds, each a family of methods
# [reference] keys of every kind, read by the reports rather than by the reference methods: the quoted levels
# (.literature) and the terms expected of the lowest states (qsolver.symmetry.expected_terms)
SHARED_OPTIONS = ("literature", "terms")


@dataclass
class ReferenceStates:
    """Reference eigenfunctions on quadrature points: ∫ f g dx ≈ Σ_k w_k f(x_k) g(x_k).

    ``values`` (M, n) are orthonormal in that rule, Σ_k w_k v_ki v_kj = δ_ij (bohr^(-d/2)).
    """

    points: np.ndarray     # (M, d) bohr
    weights: np.ndarray    # (M,) bohr^d
    values: np.ndarray     # (M, n)


@dataclass
class Reference:
    """Reference levels (ascending, hartree) with the method that produced them and its error.

    ``error`` bounds |E_ref - E_exact| over all levels (0 for closed forms); ``errors`` is the per-level
    estimate where the method gives one; ``states`` holds the reference eigenfunctions when available.
    ``kind`` is the reference kind that made it (one of :data:`KINDS`; "" for one made by hand), for code to
    branch on; ``method`` is prose for people.
    """

    energies: np.ndarray
    method: str
    error: float = 0.0
    details: dict = field(default_factory=dict)
    errors: np.ndarray | None = None
    states: ReferenceStates | None = None
    kind: str = ""
