"""Where the continuum starts: a state above this energy is not bound.

One particle: V_∞ = lim V(x), |x| → ∞ (0 for Coulomb centres, +∞ for traps). Two particles: one particle can leave
with zero kinetic energy while the other stays in the lowest one-particle level E_1 of -κ∇² + V, so the threshold is
E_1 + W(∞) (He: He⁺ 1s = -2; H⁻: H 1s = -1/2; H2 at R: H2⁺ 1σg at R). E_1 is known here in closed form for one
Coulomb centre, -Z²/(4κν²) with ν = (d - 1)/2; for several centres it needs a one-electron calculation
(:func:`qsolver.references.ionization_threshold`), and this module answers None.
"""
from __future__ import annotations

import math

from .interactions import CoulombInteraction, NoInteraction
from .potentials import Coulomb, asymptote, hydrogen_nu, terms


def continuum_threshold(system) -> float | None:
    """Lowest energy of the continuum (hartree), or None where it is not known in closed form."""
    v_inf = asymptote(system.potential)
    if system.particles == 1 or v_inf is None or math.isinf(v_inf):
        return v_inf
    if system.particles > 2:
        return None                            # the (N-1)-electron ion's ground level has no closed form
    if not isinstance(system.interaction, (CoulombInteraction, NoInteraction)):
        return None                            # W(∞) of a formula or callable is not known here
    parts = terms(system.potential)
    if len(parts) == 1 and isinstance(parts[0], Coulomb) and len(parts[0].charges) == 1 and system.dimension > 1:
        z = parts[0].charges[0]
        return -z * z / (4 * system.kinetic * hydrogen_nu(0, system.dimension) ** 2) if z > 0 else 0.0
    return None


def spectrum_edge(system) -> float | None:
    """The continuum threshold where it is known in closed form, else V_∞ (an upper bound of it)."""
    threshold = continuum_threshold(system)
    return asymptote(system.potential) if threshold is None else threshold
