"""What a floating-point type must carry for a system: checked before training, so that a run of extreme magnitudes
is refused with the field at fault instead of diverging (:func:`qsolver.training.check_scales`).
"""
from __future__ import annotations

import math

import torch

from .hamiltonian import Hamiltonian
from .interactions import CoulombInteraction, ExpressionInteraction, NoInteraction
from .networks import KINDS, Network
from .potentials import Box, Coulomb, Expression, Harmonic, named_terms

RESOLUTION = 0.1          # coordinates near every centre resolved to this fraction of the states' length unit ℓ
OVERFLOW_MARGIN = 1e6     # largest ψ²/p and (Hψ)²/p this far below the maximum: room for batch sums and kernels
UNDERFLOW_MARGIN = 1e2    # ⟨ψ,ψ⟩ this far above the smallest normal number (the damping term, 1e-4 of the kernel's
                          # scale, may be subnormal then: a failed factorisation is redone in float64)


def length_unit(config) -> float:
    """The shortest length (bohr) the initial networks of ``config`` resolve (their kind's rule)."""
    return KINDS[config.kind].length_unit(config)


def unresolved_centre(config, dtype: torch.dtype) -> tuple[list[float], float] | None:
    """The networks' centre R farthest from the origin and the spacing ε|R|_∞ (bohr) of coordinates near it in
    ``dtype``, when that spacing exceeds RESOLUTION × :func:`length_unit`; else None."""
    far = max(config.centers, key=lambda c: max(map(abs, c)))
    spacing = torch.finfo(dtype).eps * max(map(abs, far))
    return (far, spacing) if spacing > RESOLUTION * length_unit(config) else None


def scale_fault(model: Network, hamiltonian: Hamiltonian, dtype: torch.dtype, generator: torch.Generator,
                n: int = 256) -> str | None:
    """What of ψ and Hψ ``dtype`` cannot carry, on n samples of the model's proposal, or None.

    Training integrates f = ψ/√p and h = Hψ/√p (⟨ψ_l,ψ_m⟩ = E_p[f_l f_m], ⟨ψ_l,Hψ_m⟩ = E_p[f_l h_m]), so the
    samples and densities must be finite, max f² and max h² at most max/OVERFLOW_MARGIN, every state's E_p[f²]
    at least tiny·UNDERFLOW_MARGIN, and the energy scale E² ≈ E_p[h²]/E_p[f²] (the error bars form E² S, in float64)
    at most the float64 maximum/OVERFLOW_MARGIN."""
    proposal = model.proposal(dtype)
    x = proposal.sample(n, generator)
    root_w = torch.exp(-0.5 * proposal.log_prob(x))[:, None]
    if not (torch.isfinite(x).all() and torch.isfinite(root_w).all()):
        return "the initial envelopes or the proposal's density are not finite"
    psi, h_psi = hamiltonian.apply(model, x)
    f, h = (psi * root_w).double(), (h_psi * root_w).double()       # squares in float64: they may pass dtype's max
    info = torch.finfo(dtype)
    if not (torch.isfinite(f).all() and torch.isfinite(h).all()) or \
            max(float((f * f).max()), float((h * h).max())) > info.max / OVERFLOW_MARGIN:
        return "ψ²/p or (Hψ)²/p overflows"
    norms = (f * f).mean(0)
    if float(norms.min()) < info.tiny * UNDERFLOW_MARGIN:
        return "⟨ψ,ψ⟩ underflows (ψ vanishes on the samples)"
    scale = float(torch.sqrt((h * h).mean(0) / norms).max())            # the states' energy scale |E| (hartree)
    if scale > math.sqrt(torch.finfo(torch.float64).max / OVERFLOW_MARGIN):
        return f"energies near {scale:.1g} hartree overflow their squares (the error bars' residuals ‖Hψ - Eψ‖²)"
    return None


def centre_field(system, centre: list[float]) -> str:
    """The field of a system file that places ``centre``."""
    if system.molecule is not None:
        return "molecule.atoms"
    for prefix, term in named_terms(system.potential):
        if isinstance(term, Coulomb) and list(centre) in [list(c) for c in term.centers]:
            return f"{prefix}.centers"
        if isinstance(term, (Harmonic, Box)) and list(centre) == list(term.center):
            return f"{prefix}.center"
    return "potential"


def extreme_field(system) -> tuple[str, str, str]:
    """(field, its magnitude in words, what to change) for the magnitude farthest from 1 in orders of magnitude:
    κ, charges, ω, box sides, the pair strength, and the centres' distances (bohr) from the origin and from each
    other. A formula or a Python function cannot be measured: it is named unless a magnitude lies beyond 1e±3."""
    rescale = "rescale the system to units in which its lengths and energies are nearer 1"
    found = [(abs(math.log10(system.kinetic)), "kinetic", f"kinetic = {system.kinetic:.3g}", rescale)]

    def values(field: str, name: str, numbers) -> None:
        numbers = [abs(v) for v in numbers if v != 0]
        if numbers:
            v = max(numbers, key=lambda v: abs(math.log10(v)))
            found.append((abs(math.log10(v)), field, f"{name} {v:.3g}", rescale))

    def points(field: str, centres) -> None:
        far = max(math.hypot(*c) for c in centres)
        apart = max((math.dist(a, b) for a in centres for b in centres), default=0.0)
        if max(far, apart) > 1:
            words = f"centres {apart:.3g} bohr apart" if apart >= far else f"a centre {far:.3g} bohr from the origin"
            found.append((math.log10(max(far, apart)), field, words, "move the centres nearer to each other and to "
                          "the origin"))

    for prefix, term in named_terms(system.potential):
        if system.molecule is not None:
            points("molecule.atoms", term.centers)
        elif isinstance(term, Coulomb):
            values(f"{prefix}.charges", "a charge of", term.charges)
            points(f"{prefix}.centers", term.centers)
        elif isinstance(term, Harmonic):
            values(f"{prefix}.omega", "omega", term.omega)
            points(f"{prefix}.center", [term.center])
        elif isinstance(term, Box):
            values(f"{prefix}.lengths", "a box side of", term.lengths)
            points(f"{prefix}.center", [term.center])
        else:
            field = f"{prefix}.expr" if isinstance(term, Expression) else prefix
            found.append((3.0, field, "the potential's formula", "check the formula's magnitudes"))
    if system.particles > 1 and isinstance(system.interaction, CoulombInteraction):
        values("interaction.strength", "a pair strength of", [system.interaction.strength])
    elif system.particles > 1 and not isinstance(system.interaction, NoInteraction):
        field = "interaction.expr" if isinstance(system.interaction, ExpressionInteraction) else "interaction"
        found.append((3.0, field, "the interaction's formula", "check the formula's magnitudes"))
    return max(found, key=lambda item: item[0])[1:]
