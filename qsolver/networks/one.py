"""One particle: ψ_l(x) = g_l(u_l(x)) · e_l(x), one small MLP g_l per state, all evaluated at once.

The envelope e_l (:mod:`.envelopes`) fixes the asymptotics and the boundary conditions; the inputs u_l are
coordinates in the envelope's own length unit, so every state's network sees O(1) inputs however diffuse the state
is: a_lc (x - R_c) and a_lc |x - R_c| for Coulomb centres, √β_l ⊙ (x - c) for Gaussians, 2(x - c)/L in a box; without
an envelope x - c, optionally through F random Fourier features [cos 2πBu, sin 2πBu], B ~ N(0, σ_F²) of shape
(d, F/2) (the ICML paper's network). Configurations are (B, 1, d).
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..fd_grid import coarse_states
from ..laplacian import product_jet
from ..potentials import Box, Coulomb, Harmonic, find, hydrogen_nu, terms
from .base import Layout, Tangents, register
from .envelopes import ENVELOPES, Exponential, Flat, Walls, choose_envelope, one_particle_density
from .mlp import mlp_jet, mlp_layers, mlp_parameters, mlp_tangents

ENVELOPE_CHOICES = ("exponential", "gaussian", "box", "none")


@dataclass
class OneConfig:
    """Architecture of the per-state networks; with the weights it rebuilds the wavefunctions exactly."""

    dimension: int
    states: int
    hidden: int
    layers: int
    activation: str
    envelope: str                  # "exponential", "gaussian", "box" or "none"
    centers: list[list[float]]     # Coulomb centres, or the one centre of a gaussian or box envelope
    init_scales: list[list[float]]  # (states, centres) decays a, (states, d) curvatures β, or box lengths
    features: int = 0              # random Fourier features (envelope "none" only); 0 = raw coordinates
    feature_scale: float = 0.1     # σ_F of the Fourier frequencies (1/bohr)
    cusps: list[float] = field(default_factory=list)   # Kato slope k per centre built into the envelope (1/bohr);
                                                        # empty: the network learns the cusp (files before it too)
    kind: str = "one"

    def to_dict(self) -> dict:
        return asdict(self)


@register
class OneParticleNet(nn.Module):
    """L trial functions of one particle; ``forward`` gives values (B, L), ``jet`` values, gradients (B, L, d) and
    Laplacians (B, L), for configurations (B, 1, d)."""

    kind = "one"
    config_type = OneConfig
    damping = 1e-4          # a sharp end; one particle's envelope decays do not drift (results/bench/README.md)
    automatic = True
    spin_adapted = True

    def __init__(self, config: OneConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = c = config
        self.envelope = ENVELOPES[c.envelope]
        self.register_buffer("centers", torch.tensor(c.centers, dtype=torch.float64))
        scales = torch.tensor(c.init_scales, dtype=torch.float64)
        if self.envelope is Walls:
            self.register_buffer("lengths", scales[0].clone())
        elif self.envelope.learned:
            self.log_scale = nn.Parameter(torch.log(scales))
        if c.features and (self.envelope is not Flat or c.features % 2):
            raise ValueError("Fourier features need envelope 'none' and an even count")
        if c.features:
            freq = torch.randn(c.dimension, c.features // 2, generator=generator, dtype=torch.float64)
            self.register_buffer("fourier", 2 * math.pi * c.feature_scale * freq)
        self.weights, self.biases = mlp_parameters(c.states, [self.layout(c).input_width] + [c.hidden] * c.layers
                                                   + [1], generator)

    # ---- the kind ----
    @classmethod
    def fits(cls, system) -> str | None:
        return None if system.particles == 1 else f"it holds one particle, the system has {system.particles}"

    @classmethod
    def configure(cls, system, cfg) -> OneConfig:
        return one_particle_config(system, cfg)

    @classmethod
    def layout(cls, config: OneConfig) -> Layout:
        width = len(config.centers) * (config.dimension + 1) if config.envelope == Exponential.name \
            else config.dimension
        return Layout(copies=1, input_width=config.features or width)

    @classmethod
    def length_unit(cls, config: OneConfig) -> float:
        """The shortest length (bohr) the initial networks resolve: 1/a for the largest decay, 1/√β for the largest
        curvature, half the shortest box side, 1 without an envelope."""
        return ENVELOPES[config.envelope].length_unit([s for row in config.init_scales for s in row])

    @classmethod
    def check_config(cls, config: dict, system) -> list[str]:
        cusps = config.get("cusps", [])
        checks = {"hidden": config["hidden"] >= 1, "layers": config["layers"] >= 0,
                  "features": config.get("features", 0) >= 0, "envelope": config["envelope"] in ENVELOPE_CHOICES,
                  "cusps": not cusps or (config["envelope"] == Exponential.name and len(cusps) == len(config["centers"])
                                         == 1 and all(k > 0 for k in cusps))}
        return [key for key, ok in checks.items() if not ok]

    # ---- inputs and envelope as jets (component axis: [value, ∂_1..∂_d, ∇²]) ----
    def _log_scale(self, per_sample: torch.Tensor | None) -> torch.Tensor | None:
        """Log-decays or log-curvatures as (L, 1, C), or the given per-sample copy (L, B, C)."""
        if per_sample is not None:
            return per_sample
        return self.log_scale[:, None, :] if hasattr(self, "log_scale") else None

    def _input_scales(self, log_scale: torch.Tensor | None) -> torch.Tensor:
        """Per-state multipliers of the base inputs, (L, 1, F) (or (L, B, F) for per-sample log-scales)."""
        c = self.config
        if self.envelope is Walls:
            return Walls.input_scales(self.lengths, c.states)
        if self.envelope is Flat:
            return torch.ones(c.states, 1, c.features or c.dimension, dtype=self.centers.dtype,
                              device=self.centers.device)
        return self.envelope.input_scales(log_scale, c.dimension)

    def _base_jet(self, x: torch.Tensor, with_derivatives: bool) -> torch.Tensor:
        """Base inputs as jets (B, d + 2, F), or values (B, F)."""
        if not self.config.features:
            return self.envelope.inputs(x, self.centers, with_derivatives, **self._cusps())
        z = (x - self.centers[0]) @ self.fourier                        # [cos z, sin z], z = (x - c) B
        cos, sin = torch.cos(z), torch.sin(z)
        if not with_derivatives:
            return torch.cat([cos, sin], dim=-1)
        grads = torch.cat([-sin[:, None, :] * self.fourier, cos[:, None, :] * self.fourier], dim=-1)
        k2 = (self.fourier**2).sum(0)
        return torch.cat([torch.cat([cos, sin], -1)[:, None], grads, torch.cat([-k2 * cos, -k2 * sin], -1)[:, None]],
                         dim=1)

    def _envelope(self, x: torch.Tensor, with_derivatives: bool, log_scale: torch.Tensor | None) -> torch.Tensor:
        """e_l(x) as jets (L, B, d + 2), or values (L, B)."""
        c = self.config
        if self.envelope is Flat:
            one = torch.ones(c.states, x.shape[0], 1, dtype=x.dtype, device=x.device)
            return torch.cat([one, torch.zeros(c.states, x.shape[0], c.dimension + 1, dtype=x.dtype,
                                               device=x.device)], -1) if with_derivatives else one[..., 0]
        if self.envelope is Walls:
            walls = Walls.walls(x[:, None], self.centers[0], self.lengths, with_derivatives)
            if not with_derivatives:
                return walls.expand(c.states, -1)
            w, grad, lap = walls
            return torch.cat([w[:, None], grad, lap[:, None]], dim=-1).expand(c.states, -1, -1)
        return self.envelope.product(x, self.centers, log_scale, with_derivatives, **self._cusps())

    def _cusps(self) -> dict:
        return {"cusps": self.config.cusps} if self.config.cusps else {}

    # ---- the network interface ----
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ψ_l(x) for configurations x (B, 1, d) -> (B, L)."""
        return self.layers(x)[0]

    def layers(self, x: torch.Tensor, log_scale: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """ψ (B, L) with every linear layer's input z (L, B, fan_in) and output zW + b (L, B, fan_out).

        ``log_scale`` (L, B, C), a per-sample copy of the learned log-scales, gives per-sample derivatives by them."""
        x = x[:, 0]
        log_scale = self._log_scale(log_scale)
        z = self._base_jet(x, False)[None] * self._input_scales(log_scale)          # (L, B, F)
        g, inputs, outputs = mlp_layers(self.weights, self.biases, z, self.config.activation)
        return (g * self._envelope(x, False, log_scale)).T, inputs, outputs

    def jet(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ψ (B, L), ∇ψ (B, L, d) and ∇²ψ (B, L) by one forward-Laplacian pass."""
        x = x[:, 0]
        base = self._base_jet(x, True)                                  # (B, d + 2, F)
        log_scale = self._log_scale(None)
        scales = self._input_scales(log_scale)                          # (L, 1, F)
        value = base[None, :, 0] * scales                               # (L, B, F)
        grad = base[None, :, 1:-1] * scales[:, :, None]                 # (L, B, d, F)
        lap = base[None, :, -1] * scales
        g = mlp_jet(self.weights, self.biases, value, grad, lap, self.config.activation)   # (L, B, d + 2)
        psi = product_jet(g, self._envelope(x, True, log_scale))
        return psi[..., 0].T, psi[..., 1:-1].transpose(0, 1), psi[..., -1].T

    def tangents(self, x: torch.Tensor, root_w: torch.Tensor) -> Tangents:
        return mlp_tangents(self, x, root_w)

    def proposal(self, dtype: torch.dtype, fixed_scale: float | None = None):
        """Sampling density matched to the current envelopes (see :mod:`.envelopes`), or one Gaussian of
        ``fixed_scale`` bohr at the centre; configurations (B, 1, d)."""
        log_scale = self.log_scale.detach() if hasattr(self, "log_scale") else None
        lengths = self.lengths.to(dtype) if self.envelope is Walls else None
        return one_particle_density(self.config.envelope, self.centers.to(dtype), log_scale, lengths,
                                    self.config.dimension, fixed_scale)

    def extent(self) -> tuple[np.ndarray, np.ndarray] | None:
        centers = self.centers.detach().cpu().numpy()
        if self.envelope is Flat:
            return None
        if self.envelope is Walls:
            half = 0.5 * self.lengths.detach().cpu().numpy()
            return centers[0] - half, centers[0] + half
        reach = self.envelope.reach(centers, np.exp(self.log_scale.detach().cpu().numpy()))
        return centers.min(0) - reach, centers.max(0) + reach

    def symmetry_error(self, x: torch.Tensor, psi: torch.Tensor) -> float | None:
        return None


def one_particle_config(system, cfg) -> OneConfig:
    """Envelope and initial length scales from the potential: hydrogen-like decays Z/(2κν) of each state's shell
    (made 20 % wider) for Coulomb centres, the oscillator's ground state for traps, Gaussians fitted to a coarse
    grid's states for other formulas (:func:`fitted_gaussians`), the box's sides for a box."""
    d, kappa, n = system.dimension, system.kinetic, cfg.states
    pot = system.potential
    boxes, harmonics, coulombs = find(pot, Box), find(pot, Harmonic), find(pot, Coulomb)
    envelope = choose_envelope(system, cfg.envelope, ENVELOPE_CHOICES)
    common = dict(dimension=d, states=n, hidden=cfg.hidden, layers=cfg.layers, activation=cfg.activation,
                  envelope=envelope)
    if envelope == Flat.name:
        center = coulombs[0].centers[0] if coulombs else harmonics[0].center if harmonics else [0.0] * d
        return OneConfig(**common, centers=[list(center)], init_scales=[[1.0] * d] * n, features=cfg.features,
                         feature_scale=cfg.feature_scale)
    if envelope == Walls.name:
        return OneConfig(**common, centers=[boxes[0].center], init_scales=[boxes[0].lengths])
    if cfg.cusp == "exact" and envelope != Exponential.name:
        raise InputError(f"\"exact\" is built into the exponential envelope, not {envelope!r}", source=system.source,
                         field="cusp")
    if envelope == Exponential.name:
        cusps = [exact_cusp(system)] if cfg.cusp == "exact" else []
        centers = [c for term in coulombs for c in term.centers] or [[0.0] * d]
        charges = [max(q, 0.1) for term in coulombs for q in term.charges] or [1.0]
        if cfg.scale > 0:
            decays = [[1.0 / cfg.scale] * len(centers) for _ in range(n)]
        else:  # hydrogen-like decay sqrt(-E/κ) = Z/(2κν) of the state's shell, made 20 % wider
            decays = [[0.8 * q / (2 * kappa * hydrogen_nu(i, d)) for q in charges] for i in range(n)]
        return OneConfig(**common, centers=centers, init_scales=decays, cusps=cusps)
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
    return OneConfig(**common, centers=[list(center)], init_scales=[list(b) for b in betas])


def exact_cusp(system) -> float:
    """Kato's slope k = Z/((d - 1)κ) (1/bohr) of one particle at its one Coulomb centre, ψ ≈ ψ(R)(1 - k|x - R|):
    what ``cusp = "exact"`` builds into the envelope. InputError naming ``cusp`` where the particle is not bound by
    one attractive Coulomb centre in two or more dimensions."""
    centres = {tuple(map(float, c)) for term in find(system.potential, Coulomb) for c in term.centers}
    charge = sum(q for term in find(system.potential, Coulomb) for q in term.charges)
    if system.dimension < 2 or len(centres) != 1 or charge <= 0:
        raise InputError("\"exact\" builds the nuclear cusp of one particle at one attractive Coulomb centre in 2 or "
                         "more dimensions", source=system.source, field="cusp")
    return charge / ((system.dimension - 1) * system.kinetic)


def fitted_gaussians(system, n_states: int) -> tuple[list[float], list[list[float]]] | None:
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
