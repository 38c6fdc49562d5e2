"""Closed-form levels (hartree) of H = -κ∇² + V.

- hydrogen-like, one centre of charge Z in d ≥ 2 dimensions: E = -Z²/(4κν²), ν = n + (d-3)/2, shell n
  holding Σ_{ℓ<n} (harmonic polynomials of degree ℓ) states (2D: 2n-1 = 1, 3, 5, ...; 3D: n²);
- oscillator V = ½ Σ_i ω_i² (x_i - c_i)²: E = √(2κ) Σ_i ω_i (n_i + ½), n_i ≥ 0 (κ = ½: ω(n + ½));
- box of sides L_i: E = κ Σ_i (π n_i / L_i)², n_i ≥ 1.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..potentials import Box, Coulomb, Harmonic, hydrogen_nu, terms
from ..system import System
from .analytic_states import closed_form_states, reference_states
from .base import Reference
from .quanta import box_energy, box_quanta, oscillator_energy, oscillator_quanta


def hydrogen_levels(charge: float, kinetic: float, dimension: int, n: int) -> np.ndarray:
    """Lowest n levels of -κ∇² - Z/r in d dimensions, each repeated by its degeneracy."""
    if dimension < 2:
        raise ValueError("hydrogen-like levels need d >= 2 (the 1D Coulomb problem is singular)")
    return np.array([-charge**2 / (4 * kinetic * hydrogen_nu(i, dimension) ** 2) for i in range(n)])


def oscillator_levels(omega: list[float], kinetic: float, n: int) -> np.ndarray:
    """Lowest n levels of -κ∇² + ½ Σ ω_i² x_i²."""
    energy = oscillator_energy(omega, kinetic)
    return np.array([energy(idx) for idx in oscillator_quanta(omega, kinetic, n)])


def box_levels(lengths: list[float], kinetic: float, n: int) -> np.ndarray:
    """Lowest n levels of -κ∇² in a box with infinite walls."""
    energy = box_energy(lengths, kinetic)
    return np.array([energy(idx) for idx in box_quanta(lengths, kinetic, n)])


def analytic_reference(system: System, n: int, with_states: bool = False) -> Reference:
    """Closed-form levels for single-term potentials; InputError when the system has none.

    ``with_states`` also fills ``states`` with the closed-form eigenfunctions on a quadrature rule
    (oscillator, box, hydrogen-like in 2D and 3D).
    """
    if system.particles != 1:
        raise InputError("no closed-form levels for interacting particles (use kind = \"grid\" for a harmonic "
                         "trap, \"pyscf\" for nuclei, or quoted levels)", source=system.source, field="reference.kind")
    parts = terms(system.potential)
    d, kappa = system.dimension, system.kinetic
    if len(parts) == 1 and isinstance(parts[0], Coulomb) and len(parts[0].charges) == 1 and d >= 2 \
            and parts[0].charges[0] > 0:
        z = parts[0].charges[0]
        ref = Reference(hydrogen_levels(z, kappa, d, n), "analytic: hydrogen-like -Z²/(4κν²)",
                        details={"charge": z}, kind="analytic")
    elif len(parts) == 1 and isinstance(parts[0], Harmonic):
        ref = Reference(oscillator_levels(parts[0].omega, kappa, n), "analytic: oscillator √(2κ) Σ ω_i(n_i+½)",
                        kind="analytic")
    elif len(parts) == 1 and isinstance(parts[0], Box):
        ref = Reference(box_levels(parts[0].lengths, kappa, n), "analytic: box κ Σ (π n_i/L_i)²", kind="analytic")
    else:
        raise InputError("no closed-form levels for this potential (analytic references cover one Coulomb "
                         "centre in d >= 2, one oscillator, or one box)", source=system.source,
                         field="reference.kind")
    if with_states:
        family = closed_form_states(parts[0], d, kappa, n)
        if family is None:
            ref.details["states"] = "closed-form states are implemented for hydrogen-like systems in d = 2, 3 only"
        else:
            ref.states = reference_states(family)
    return ref
