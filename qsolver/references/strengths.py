"""Exact oscillator strengths f = (E_j - E_i)|d_ij|²/(κd) (see :mod:`qsolver.dipoles`), summed over the final level.

- Hydrogen in d ≥ 2 dimensions, from the ground level to shell n: only its p states are reached. With κ = ½, Z = 1,
  E_n = -1/(2ν²), ν = n + (d-3)/2, and R_nl ∝ ρ^l e^(-ρ/2) L^(2l+d-2)_(n-l-1)(ρ), ρ = 2r/ν (generalised Laguerre,
  normalised to ∫ R² r^(d-1) dr = 1). Writing the d p states as R(r) x_a/r, only x_a couples the 1s to p_a, by
  ⟨1s|x_a|p_a⟩ = I/√d with I = ∫ R_10 R_n1 r^d dr, so that Σ_a |d|² = I² and f = (2/d) ΔE I². Scaling r by 2κ/Z
  multiplies ΔE by Z²/(2κ) and |d|² by (2κ/Z)², so f is the same for every κ and Z. 3D: 0.4162 (1s → 2p), 0.0791
  (1s → 3p); 2D: 27/128 (1s → 2p, see tests/test_dipoles.py).
- Isotropic harmonic oscillator, one particle: X couples the ground state to the first excited level only, with
  Σ_a |⟨0|x_a|1_a⟩|² = d/(2mω) = dκ/ω and ΔE = ω: f = 1 (the whole sum rule), 0 to every other level.
- Helium 1¹S → 2¹P: 0.2762 (non-relativistic, infinite nuclear mass; Schiff, Pekeris and Accad 1971, Drake 1996).
"""
from __future__ import annotations

import numpy as np
from scipy.integrate import quad
from scipy.special import genlaguerre

HELIUM_1S_2P = 0.2762          # 1¹S → 2¹P, summed over the three 2¹P states; quoted to 1e-4
HELIUM_PRECISION = 1e-4


def _radial(n: int, l: int, dimension: int):
    """The normalised hydrogen radial function R_nl(r) in ``dimension`` dimensions (κ = ½, Z = 1)."""
    nu = n + (dimension - 3) / 2
    laguerre = genlaguerre(n - l - 1, 2 * l + dimension - 2)

    def raw(r: float) -> float:
        rho = 2 * r / nu
        return rho**l * np.exp(-rho / 2) * laguerre(rho)

    norm = quad(lambda r: raw(r) ** 2 * r ** (dimension - 1), 0, np.inf, limit=200)[0]
    return lambda r: raw(r) / np.sqrt(norm)


def hydrogen_strength(dimension: int, n: int) -> float:
    """f from the hydrogen ground level to shell n ≥ 2 (its p states) in ``dimension`` ≥ 2 dimensions."""
    if dimension < 2 or n < 2:
        raise ValueError("needs dimension >= 2 and a shell n >= 2")
    nu = n + (dimension - 3) / 2
    ground, upper = _radial(1, 0, dimension), _radial(n, 1, dimension)
    overlap = quad(lambda r: ground(r) * upper(r) * r**dimension, 0, np.inf, limit=200)[0]
    excitation = 1 / (2 * ((dimension - 1) / 2) ** 2) - 1 / (2 * nu**2)
    return 2 / dimension * excitation * overlap**2
