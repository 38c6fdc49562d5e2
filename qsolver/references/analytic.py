"""Closed-form levels (hartree) of H = -κ∇² + V.

- hydrogen-like, one centre of charge Z in d ≥ 2 dimensions: E = -Z²/(4κν²), ν = n + (d-3)/2, shell n
  holding Σ_{ℓ<n} (harmonic polynomials of degree ℓ) states (2D: 2n-1 = 1, 3, 5, ...; 3D: n²);
- oscillator V = ½ Σ_i ω_i² (x_i - c_i)²: E = √(2κ) Σ_i ω_i (n_i + ½), n_i ≥ 0 (κ = ½: ω(n + ½));
- box of sides L_i: E = κ Σ_i (π n_i / L_i)², n_i ≥ 1.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..errors import InputError
from ..interactions import NoInteraction
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


def fermion_levels(one: np.ndarray, particles: int, spin: int, n: int) -> np.ndarray:
    """Lowest n levels of total spin S = ``spin``/2 of ``particles`` non-interacting spin-½ fermions in the orbital
    energies ``one`` (ascending, degenerate ones repeated), each repeated by its degeneracy (hartree).

    An occupation (0, 1 or 2 fermions per orbital) with m singly occupied orbitals has energy Σ occ_i ε_i and
    holds C(m, m/2 + S) - C(m, m/2 + S + 1) states of spin S (the S_z = S states less those of S_z = S + 1).
    Occupations are enumerated up to an energy cut that grows until n states lie below it. An occupation using an
    orbital beyond those passed lies at least ε_last - ε_top above the ground level (ε_top its highest occupied
    orbital), so only levels below that are complete; ValueError when fewer than n are."""
    one = np.sort(np.asarray(one, dtype=float))

    def spin_states(m: int) -> int:
        if m < spin or (m - spin) % 2:
            return 0
        k = (m + spin) // 2
        return math.comb(m, k) - (math.comb(m, k + 1) if k + 1 <= m else 0)

    def lowest_fill(start: int, k: int) -> float:
        """The least energy of k fermions in orbitals from ``start`` on (two per orbital)."""
        slots = np.repeat(one[start:], 2)[:k]
        return float(slots.sum()) if len(slots) == k else math.inf

    def occupations(start: int, left: int, energy: float, open_shells: int, cut: float, out: list) -> None:
        if left == 0:
            out.extend([energy] * spin_states(open_shells))
            return
        if start == len(one) or energy + lowest_fill(start, left) > cut:
            return
        for occ in (2, 1, 0):
            if occ <= left:
                occupations(start + 1, left - occ, energy + occ * one[start], open_shells + (occ == 1), cut, out)

    ground = lowest_fill(0, particles)
    complete = ground + one[-1] - one[(particles - 1) // 2]
    width = max(one[-1] - one[0], 1e-12)
    for step in range(1, 9):
        cut = min(ground + width * step / 8, complete * (1 - 1e-12) - 1e-12)
        found: list[float] = []
        occupations(0, particles, 0.0, 0, cut, found)
        if len(found) >= n:
            return np.sort(found)[:n]
    raise ValueError(f"fewer than {n} levels of 2S = {spin} below {complete:.6g} from {len(one)} orbitals")


def analytic_reference(system: System, n: int, with_states: bool = False) -> Reference:
    """Closed-form levels for single-term potentials; InputError when the system has none.

    ``with_states`` also fills ``states`` with the closed-form eigenfunctions on a quadrature rule
    (oscillator, box, hydrogen-like in 2D and 3D).
    """
    if system.particles != 1 and not isinstance(system.interaction, NoInteraction):
        raise InputError("no closed-form levels for interacting particles (use kind = \"grid\" for a harmonic "
                         "trap, \"pyscf\" for nuclei, or quoted levels)", source=system.source, field="reference.kind")
    if system.particles != 1:
        one = analytic_reference(replace(system, particles=1, spin=1, interaction=None), 2 * (n + system.particles))
        return Reference(fermion_levels(one.energies, system.particles, system.spin, n),
                         f"analytic: non-interacting fermions of 2S = {system.spin} in the levels of {one.method}",
                         kind="analytic")
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
