"""Networks and proposal densities for a system: envelopes, cusps and initial length scales from its potential.

``model_config`` chooses the architecture (:mod:`qsolver.model` for one particle, :mod:`qsolver.pairnet` for two),
``build_model`` builds it, and ``proposal_for`` gives the Monte Carlo density matched to a model's current envelopes
(:mod:`qsolver.sampling`), so that importance weights ψ²/p stay bounded.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from .config import SolverConfig
from .errors import InputError
from .interactions import cusp_slope
from .model import EigenNet, ModelConfig
from .pairnet import PairConfig, PairNet
from .potentials import Box, Coulomb, Harmonic, find, hydrogen_nu
from .sampling import ExponentialMixture, GaussianMixture, PairMixture, UniformBox
from .system import System

# p ∝ ψ_envelope^(2/PAIR_TAIL) per particle: 2 would give the one-particle rule (tails twice as wide in the exponent,
# effective sample fraction (27/64)² ≈ 0.18 for a pair of exponentials in 3D); 4/3 gives ≈ 0.68 per pair
PAIR_TAIL = 4.0 / 3.0


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
    common = dict(dimension=d, states=n, hidden=cfg.hidden, layers=cfg.layers, activation=cfg.activation,
                  envelope=envelope, exchange=1 if system.spin == 0 else -1,
                  pair_cusp=cusp_slope(system.interaction, kappa, d, system.spin))
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
        outer_charge = max(total - 1.0, 0.25 * total)
        first = 0 if system.spin == 0 else 1
        scales, features = [], []
        for i in range(n):
            inner = 0.8 * total / (2 * kappa * hydrogen_nu(0, d))
            outer = 0.8 * outer_charge / (2 * kappa * hydrogen_nu(i + first, d))
            if cfg.scale > 0:
                inner = outer = 1.0 / cfg.scale
            scales.append([[max(inner * w, 1e-2) for w in share], [max(outer * w, 1e-2) for w in share]])
            features.append([inner, outer, outer])
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
    if harmonics:
        omega = functools.reduce(np.hypot, (np.asarray(h.omega, dtype=float) for h in harmonics))   # no overflow
        beta = list(omega / math.sqrt(2 * kappa))   # ground state exp(-½ Σ β_i x_i²), β = ω/√(2κ)
        center = harmonics[0].center
    else:
        scale = cfg.scale if cfg.scale > 0 else 1.0
        beta, center = [1.0 / scale**2] * d, (coulombs[0].centers[0] if coulombs else [0.0] * d)
    return ModelConfig(**common, centers=[list(center)], init_scales=[list(beta)] * n)


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
        weights = scales.reshape(-1) ** (c.dimension - 1)
        return ExponentialMixture(centers, 1.0 / scales.reshape(-1), weights / weights.sum())
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
