"""Networks and proposal densities for a system: envelopes, cusps and initial length scales from its potential.

``model_config`` chooses the architecture (:mod:`qsolver.model` for one particle, :mod:`qsolver.pairnet` for two),
``build_model`` builds it, and ``proposal_for`` gives the Monte Carlo density matched to a model's current envelopes
(:mod:`qsolver.sampling`), so that importance weights ψ²/p stay bounded.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np
import torch

from .config import SolverConfig
from .errors import InputError
from .fd_grid import coarse_states
from .hamiltonian import apply_hamiltonian
from .interactions import CoulombInteraction, ExpressionInteraction, NoInteraction, cusp_slope
from .model import EigenNet, ModelConfig
from .pairnet import PairConfig, PairNet
from .potentials import Box, Coulomb, Expression, Harmonic, find, hydrogen_nu, named_terms, terms
from .sampling import ExponentialMixture, GaussianMixture, PairMixture, UniformBox
from .system import System

# p ∝ ψ_envelope^(2/PAIR_TAIL) per particle: 2 would give the one-particle rule (tails twice as wide in the exponent,
# effective sample fraction (27/64)² ≈ 0.18 for a pair of exponentials in 3D); 4/3 gives ≈ 0.68 per pair
PAIR_TAIL = 4.0 / 3.0
# the slowest decay (1/bohr) a two-particle envelope or input unit starts with: vanishing charges would otherwise give
# flat envelopes and MLP inputs that round to zero (g(0) = 0 at initialisation, so ψ would vanish everywhere)
MIN_DECAY = 1e-2
# What a floating-point type must carry (checked before training, qsolver.training.check_scales):
RESOLUTION = 0.1          # coordinates near every centre resolved to this fraction of the states' length unit ℓ
                          # (hydrogen trained in float32 keeps its levels while ε|R| ≤ ℓ/10, |R| ≈ 1e6 bohr; measured)
OVERFLOW_MARGIN = 1e6     # largest ψ²/p and (Hψ)²/p this far below the maximum: room for batch sums and kernels
UNDERFLOW_MARGIN = 1e2    # ⟨ψ,ψ⟩ this far above the smallest normal number (the damping term, 1e-4 of the kernel's
                          # scale, may be subnormal then: a failed factorisation is redone in float64)


def pair_model_config(system: System, cfg: SolverConfig) -> PairConfig:
    """Envelopes, cusps and initial length scales of two-particle states (see :mod:`qsolver.pairnet`).

    Coulomb centres: the inner particle starts at the hydrogen-like decay Z_c/(2κν_1) of its centre, the outer at
    that of the screened charge Z_out = max(ΣZ - 1, ¼ΣZ) in the shell of the state's outer particle (singlets
    start with both in the lowest shell; a triplet's outer particle is never there), both made 20 % wider and
    shared between the centres in proportion to their charges. Traps: the one-particle oscillator ground state.
    Boxes: the walls' cosine for each particle."""
    d, kappa, n = system.dimension, system.kinetic, cfg.states
    pot = system.potential
    boxes, harmonics, coulombs = find(pot, Box), find(pot, Harmonic), find(pot, Coulomb)
    envelope = cfg.envelope
    if envelope == "auto":
        envelope = "box" if boxes else "gaussian" if harmonics or not coulombs else "exponential"
    if envelope not in ("exponential", "gaussian", "box") or (envelope == "box") != bool(boxes):
        raise InputError("two-particle systems take exponential or gaussian envelopes, and the box envelope for "
                         "(and only for) a box potential", source=system.source, field="envelope")
    gamma = cusp_slope(system.interaction, kappa, d, system.spin)
    # the Jastrow factor exp(γr/(1 + r/ℓ)) saturates at exp(γℓ): ℓ = min(1, 1/|γ|) keeps it within [1/e, e] for a
    # strong interaction, where ℓ = 1 bohr would overflow (or underflow) ψ
    common = dict(dimension=d, states=n, hidden=cfg.hidden, layers=cfg.layers, activation=cfg.activation,
                  envelope=envelope, exchange=1 if system.spin == 0 else -1, pair_cusp=gamma,
                  pair_length=min(1.0, 1.0 / abs(gamma)) if gamma else 1.0)
    if envelope == "box":
        lengths = boxes[0].lengths
        unit = 2.0 / float(np.mean(lengths))
        return PairConfig(**common, centers=[list(boxes[0].center)], cusps=[], init_scales=[],
                          feature_scales=[[unit] * 3] * n, lengths=list(lengths))
    if envelope == "exponential":
        centers = [c for term in coulombs for c in term.centers] or [[0.0] * d]
        charges = [q for term in coulombs for q in term.charges] or [1.0]
        total = sum(max(q, 0.0) for q in charges) or 1.0
        share = [max(q, 0.0) / total for q in charges]
        cusps = [q / ((d - 1) * kappa) if d > 1 else 0.0 for q in charges]
        # a Kato slope below MIN_DECAY is dropped: the envelope blends it in over 1/|k| bohr, farther than the samples
        # reach (and 1/k², for a vanishing charge, overflows)
        cusps = [k if abs(k) >= MIN_DECAY else 0.0 for k in cusps]
        outer_charge = max(total - 1.0, 0.25 * total)
        first = 0 if system.spin == 0 else 1
        scales, features = [], []
        for i in range(n):
            inner = 0.8 * total / (2 * kappa * hydrogen_nu(0, d))
            outer = 0.8 * outer_charge / (2 * kappa * hydrogen_nu(i + first, d))
            if cfg.scale > 0:
                inner = outer = 1.0 / cfg.scale
            scales.append([[max(inner * w, MIN_DECAY) for w in share], [max(outer * w, MIN_DECAY) for w in share]])
            features.append([max(inner, MIN_DECAY), max(outer, MIN_DECAY), max(outer, MIN_DECAY)])
        return PairConfig(**common, centers=centers, cusps=cusps, init_scales=scales, feature_scales=features)
    if harmonics:
        omega = functools.reduce(np.hypot, (np.asarray(h.omega, dtype=float) for h in harmonics))   # no overflow
        beta = list(omega / math.sqrt(2 * kappa))
        center = harmonics[0].center
    else:
        scale = cfg.scale if cfg.scale > 0 else 1.0
        beta, center = [1.0 / scale**2] * d, (coulombs[0].centers[0] if coulombs else [0.0] * d)
    root = float(np.sqrt(np.mean(beta)))
    return PairConfig(**common, centers=[list(center)], cusps=[], init_scales=[[list(beta)] * 2] * n,
                      feature_scales=[[root] * 3] * n)


def build_model(config: ModelConfig | PairConfig, generator: torch.Generator | None = None) -> EigenNet | PairNet:
    """The network for a configuration of either kind."""
    return PairNet(config, generator) if isinstance(config, PairConfig) else EigenNet(config, generator)


def model_config(system: System, cfg: SolverConfig) -> ModelConfig | PairConfig:
    """Envelope and initial length scales from the potential (see :mod:`qsolver.model`)."""
    if system.particles == 2:
        return pair_model_config(system, cfg)
    d, kappa, n = system.dimension, system.kinetic, cfg.states
    pot = system.potential
    boxes, harmonics, coulombs = find(pot, Box), find(pot, Harmonic), find(pot, Coulomb)
    envelope = cfg.envelope
    if envelope == "auto":
        envelope = "box" if boxes else "gaussian" if harmonics else "exponential" if coulombs else "gaussian"
    common = dict(dimension=d, states=n, hidden=cfg.hidden, layers=cfg.layers, activation=cfg.activation,
                  envelope=envelope)
    if envelope == "none":
        center = coulombs[0].centers[0] if coulombs else harmonics[0].center if harmonics else [0.0] * d
        return ModelConfig(**common, centers=[list(center)], init_scales=[[1.0] * d] * n, features=cfg.features,
                           feature_scale=cfg.feature_scale)
    if envelope == "box":
        if not boxes:
            raise InputError("a box envelope needs a box potential term", source=system.source, field="envelope")
        return ModelConfig(**common, centers=[boxes[0].center], init_scales=[boxes[0].lengths])
    if envelope == "exponential":
        centers = [c for term in coulombs for c in term.centers] or [[0.0] * d]
        charges = [max(q, 0.1) for term in coulombs for q in term.charges] or [1.0]
        if cfg.scale > 0:
            decays = [[1.0 / cfg.scale] * len(centers) for _ in range(n)]
        else:  # hydrogen-like decay sqrt(-E/κ) = Z/(2κν) of the state's shell, made 20 % wider
            decays = [[0.8 * q / (2 * kappa * hydrogen_nu(i, d)) for q in charges] for i in range(n)]
        return ModelConfig(**common, centers=centers, init_scales=decays)
    fit = None
    if cfg.scale <= 0 and not coulombs and len(harmonics) < len(terms(pot)):   # V is not only oscillators
        fit = fitted_gaussians(system, n)
    if fit is not None:
        center, betas = fit
    elif harmonics:
        omega = functools.reduce(np.hypot, (np.asarray(h.omega, dtype=float) for h in harmonics))   # no overflow
        betas = [list(omega / math.sqrt(2 * kappa))] * n   # ground state exp(-½ Σ β_i x_i²), β = ω/√(2κ)
        center = harmonics[0].center
    else:
        scale = cfg.scale if cfg.scale > 0 else 1.0
        betas, center = [[1.0 / scale**2] * d] * n, (coulombs[0].centers[0] if coulombs else [0.0] * d)
    return ModelConfig(**common, centers=[list(center)], init_scales=[list(b) for b in betas])


def fitted_gaussians(system: System, n_states: int) -> tuple[list[float], list[list[float]]] | None:
    """Centre c (bohr) and per-state curvatures β_ki (1/bohr²) of Gaussian envelopes exp(-½ Σ_i β_ki (x_i - c_i)²)
    matched to the lowest states of a coarse grid (:func:`qsolver.fd_grid.coarse_states`): c is the mean of their
    centroids and β_ki = 1/(2 v_ki), v_ki = ⟨(x_i - c_i)²⟩ in state k, so each envelope squared has its state's
    spread (a potential's own shape, where one oscillator or one origin-centred guess misplaces the higher states).
    None where no coarse grid applies (d > 3, V undefined where sampled or binding fewer states): then the
    oscillator or unit guess stands."""
    if system.dimension > 3:
        return None
    try:
        coarse = coarse_states(system, n_states)
    except InputError:
        return None
    weights = coarse.values**2 * coarse.weights[:, None]                       # (M, L), columns sum to 1
    center = (weights.T @ coarse.points).mean(axis=0)                          # (d,)
    spread = weights.T @ (coarse.points - center) ** 2                         # (L, d)
    if not (np.isfinite(spread).all() and (spread > 0).all()):
        return None
    return center.tolist(), (0.5 / spread).tolist()


def proposal_for(model: EigenNet, dtype: torch.dtype, fixed_scale: float | None = None):
    """Sampling density matched to the current envelopes: one component per state (and centre), with
    tails twice as wide in the exponent as ψ², so the importance weights ψ²/p stay bounded. Exponential
    components are weighted ∝ a^(d-1): a hydrogen-like shell holds ∝ ν^(d-1) states of decay a ∝ 1/ν,
    so every shell gets a similar share of the samples (equal weights starve the compact low states).
    ``fixed_scale`` (bohr) instead gives one Gaussian of that standard deviation at the model's centre."""
    c = model.config
    if isinstance(model, PairNet):
        return _pair_proposal(model, dtype)
    if fixed_scale is not None or c.envelope == "none":
        sigma = torch.full_like(model.centers[:1], fixed_scale or 16.0)
        return GaussianMixture(model.centers[:1].to(dtype), sigma.to(dtype))
    if c.envelope == "box":
        return UniformBox(model.centers[0].to(dtype), model.lengths.to(dtype))
    scales = torch.exp(model.log_scale.detach()).to(dtype)
    if c.envelope == "exponential":
        centers = model.centers.to(dtype).repeat(c.states, 1)
        # w ∝ a^(d-1) normalised in log space: a^(d-1) itself overflows (or underflows) for extreme decays
        weights = torch.softmax((c.dimension - 1) * model.log_scale.detach().reshape(-1), 0).to(dtype)
        return ExponentialMixture(centers, 1.0 / scales.reshape(-1), weights)
    return GaussianMixture(model.centers.to(dtype).expand(c.states, -1), 1.0 / torch.sqrt(scales))


def _pair_proposal(model: PairNet, dtype: torch.dtype) -> PairMixture:
    """One symmetrised product per state of its two particles' densities, with tails wider in the exponent than the
    envelopes' squares by PAIR_TAIL (so the importance weights ψ²/p stay bounded: |ψ| ≤ C e under a bounded
    network): exponential envelopes decay like exp(-A r) far from the nuclei, A = Σ_c a_c, so each centre's
    component decays like exp(-2A r/PAIR_TAIL); Gaussian ones like exp(-β x²), so p like exp(-β x²/PAIR_TAIL)."""
    c = model.config
    centers = model.centers.to(dtype)
    if c.envelope == "box":                          # uniform in the box for each particle
        return PairMixture(centers[:1], model.lengths.to(dtype).expand(1, 2, -1), kind="box")
    scales = torch.exp(model.log_scale.detach()).to(dtype).reshape(c.states, 2, -1)
    if c.envelope == "exponential":
        return PairMixture(centers, PAIR_TAIL / (2 * scales.sum(-1)))
    return PairMixture(centers[:1], torch.sqrt(PAIR_TAIL / (2 * scales)), kind="gaussian")


def length_unit(config: ModelConfig | PairConfig) -> float:
    """The shortest length (bohr) the initial networks resolve: 1/a for the largest decay a, 1/√β for the largest
    curvature β, half the shortest box side (inputs 2(x - c)/L), 1 without an envelope; for two particles
    1/s for the largest input scale s."""
    if isinstance(config, PairConfig):
        return 1.0 / max(max(row) for row in config.feature_scales)
    scales = [s for row in config.init_scales for s in row]
    if config.envelope == "exponential":
        return 1.0 / max(scales)
    if config.envelope == "gaussian":
        return 1.0 / math.sqrt(max(scales))
    return 0.5 * min(scales) if config.envelope == "box" else 1.0


def unresolved_centre(config: ModelConfig | PairConfig, dtype: torch.dtype) -> tuple[list[float], float] | None:
    """The networks' centre R farthest from the origin and the spacing ε|R|_∞ (bohr) of coordinates near it in
    ``dtype``, when that spacing exceeds RESOLUTION × :func:`length_unit`; else None."""
    far = max(config.centers, key=lambda c: max(map(abs, c)))
    spacing = torch.finfo(dtype).eps * max(map(abs, far))
    return (far, spacing) if spacing > RESOLUTION * length_unit(config) else None


def scale_fault(model: EigenNet | PairNet, energy: Callable[[torch.Tensor], torch.Tensor], kinetic: float,
                dtype: torch.dtype, generator: torch.Generator, n: int = 256) -> str | None:
    """What of ψ and Hψ ``dtype`` cannot carry, on n samples of the model's proposal, or None.

    Training integrates f = ψ/√p and h = Hψ/√p (⟨ψ_l,ψ_m⟩ = E_p[f_l f_m], ⟨ψ_l,Hψ_m⟩ = E_p[f_l h_m]), so the
    samples and densities must be finite, max f² and max h² at most max/OVERFLOW_MARGIN, every state's E_p[f²]
    at least tiny·UNDERFLOW_MARGIN, and the energy scale E² ≈ E_p[h²]/E_p[f²] (the error bars form E² S, in float64)
    at most the float64 maximum/OVERFLOW_MARGIN."""
    proposal = proposal_for(model, dtype)
    x = proposal.sample(n, generator)
    root_w = torch.exp(-0.5 * proposal.log_prob(x))[:, None]
    if not (torch.isfinite(x).all() and torch.isfinite(root_w).all()):
        return "the initial envelopes or the proposal's density are not finite"
    psi, h_psi = apply_hamiltonian(model, energy, kinetic, x)
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


def centre_field(system: System, centre: list[float]) -> str:
    """The field of a system file that places ``centre``."""
    if system.molecule is not None:
        return "molecule.atoms"
    for prefix, term in named_terms(system.potential):
        if isinstance(term, Coulomb) and list(centre) in [list(c) for c in term.centers]:
            return f"{prefix}.centers"
        if isinstance(term, (Harmonic, Box)) and list(centre) == list(term.center):
            return f"{prefix}.center"
    return "potential"


def extreme_field(system: System) -> tuple[str, str, str]:
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
    if system.particles == 2 and isinstance(system.interaction, CoulombInteraction):
        values("interaction.strength", "a pair strength of", [system.interaction.strength])
    elif system.particles == 2 and not isinstance(system.interaction, NoInteraction):
        field = "interaction.expr" if isinstance(system.interaction, ExpressionInteraction) else "interaction"
        found.append((3.0, field, "the interaction's formula", "check the formula's magnitudes"))
    return max(found, key=lambda item: item[0])[1:]
