"""Two-particle eigenfunctions with exact exchange symmetry and exact cusps.

For configurations x = (x_1, x_2) (B, 2, d) each state is

    ψ_l(x_1, x_2) = Φ_l(x_1, x_2) + s Φ_l(x_2, x_1),   Φ_l(x_a, x_b) = g_l(u_l(x_a, x_b)) e_la(x_a) e_lb(x_b) J(r_12),

with s = +1 (spin singlets: symmetric spatial part) or s = -1 (triplets: antisymmetric), so the exchange symmetry
holds to rounding whatever the weights. g_l is one MLP per state; e_la and e_lb are one-particle envelopes with
their own learned scales (an inner and an outer electron: the symmetrised product is the "1s nℓ" structure);
J(r) = exp(γ r/(1 + r/ℓ)) is a fixed Jastrow factor whose slope γ at r = 0 is the Kato pair cusp of W = λ/r.

The envelopes (:mod:`.envelopes`): exponential with the exact electron–nucleus cusps (slopes k_c = Z_c/((d-1)κ)),
Gaussian for traps, the walls' cosines for a box (nothing learned; ψ vanishes on the walls).
The MLP inputs are smooth at every coalescence (scaled differences x_a - R_c, x_b - R_c, x_a - x_b and their
lengths through ρ(s) = s²/(1 + s), whose slope vanishes at s = 0), so the cusps of e and J are those of ψ.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ..interactions import cusp_slope
from ..potentials import Box, Coulomb, Harmonic, find, hydrogen_nu
from .base import Layout, Tangents, register
from .envelopes import ENVELOPES, Exponential, Walls, choose_envelope
from .mlp import mlp_jet, mlp_layers, mlp_parameters, mlp_tangents

ENVELOPE_CHOICES = ("exponential", "gaussian", "box")
# the slowest decay (1/bohr) an envelope or input unit starts with: vanishing charges would otherwise give flat
# envelopes and MLP inputs that round to zero (g(0) = 0 at initialisation, so ψ would vanish everywhere)
MIN_DECAY = 1e-2


@dataclass
class PairConfig:
    """Architecture of the two-particle networks; with the weights it rebuilds the wavefunctions exactly."""

    dimension: int                   # per particle
    states: int
    hidden: int
    layers: int
    activation: str
    envelope: str                    # "exponential", "gaussian" or "box"
    centers: list[list[float]]       # Coulomb centres, or the trap centre
    cusps: list[float]               # k_c per centre (exponential), slope of ln ψ at the nucleus (1/bohr)
    init_scales: list[list[list[float]]]  # (states, 2, C) decays a or (states, 2, d) curvatures β; box: none
    feature_scales: list[list[float]]     # (states, 3): inverse length units of the a, b and pair inputs
    exchange: int                    # +1 symmetric (singlets), -1 antisymmetric (triplets)
    pair_cusp: float                 # γ of the Jastrow factor (1/bohr)
    pair_length: float = 1.0         # ℓ of the Jastrow factor (bohr)
    kind: str = "pair"
    lengths: list[float] = field(default_factory=list)   # box sides L_i (bohr), centred on centers[0]

    def to_dict(self) -> dict:
        return asdict(self)


def _rho(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ρ(s) = s²/(1 + s), ρ'(s)/s = (2 + s)/(1 + s)², ρ''(s) = 2/(1 + s)³ (the slope over s is finite at 0)."""
    one = 1 + s
    return s * s / one, (2 + s) / one**2, 2 / one**3


@register
class PairNet(nn.Module):
    """L two-particle trial functions; ``forward`` gives values (B, L), ``jet`` values, gradients over the 2d
    coordinates (B, L, 2d) and Laplacians (B, L)."""

    kind = "pair"
    config_type = PairConfig
    # with less damping the envelope decays, nearly redundant with the network, drift from the states' true decay and
    # the proposal, which follows them, starves weakly bound states (results/bench/README.md)
    damping = 1e-2
    automatic = True
    spin_adapted = True     # symmetric (singlets) or antisymmetric (triplets) by construction

    def __init__(self, config: PairConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = c = config
        self.envelope = ENVELOPES[c.envelope]
        self.register_buffer("centers", torch.tensor(c.centers, dtype=torch.float64))
        self.register_buffer("cusps", torch.tensor(c.cusps or [0.0] * len(c.centers), dtype=torch.float64))
        self.register_buffer("feature_scales", torch.tensor(c.feature_scales, dtype=torch.float64))
        if self.envelope is Walls:
            self.register_buffer("lengths", torch.tensor(c.lengths, dtype=torch.float64))
        else:
            self.log_scale = nn.Parameter(torch.log(torch.tensor(c.init_scales, dtype=torch.float64)).flatten(1))
        self.weights, self.biases = mlp_parameters(c.states, [self.layout(c).input_width] + [c.hidden] * c.layers
                                                   + [1], generator)

    # ---- the kind ----
    @classmethod
    def fits(cls, system) -> str | None:
        return None if system.particles == 2 else f"it holds two particles, the system has {system.particles}"

    @classmethod
    def configure(cls, system, cfg) -> PairConfig:
        return pair_config(system, cfg)

    @classmethod
    def layout(cls, config: PairConfig) -> Layout:
        return Layout(copies=2, input_width=(2 * len(config.centers) + 1) * (config.dimension + 1))

    @classmethod
    def length_unit(cls, config: PairConfig) -> float:
        """1/s for the largest input scale s (bohr)."""
        return 1.0 / max(max(row) for row in config.feature_scales)

    @classmethod
    def check_config(cls, config: dict, system) -> list[str]:
        # singlets are symmetric (+1), triplets antisymmetric (-1) under exchange
        checks = {"hidden": config["hidden"] >= 1, "layers": config["layers"] >= 0,
                  "envelope": config["envelope"] in ENVELOPE_CHOICES,
                  "exchange": config["exchange"] == exchange_sign(system)}
        return [key for key, ok in checks.items() if not ok]

    # ---- differences: each input vector is x_i - x_j or x_i - R_c, with its sign pattern over the particles ----
    def _vectors(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Difference vectors v (B, K, d) in the order [a - R_c..., b - R_c..., a - b], their lengths (B, K) and
        ∂v/∂x_particle as signs (K, 2)."""
        n_c = self.centers.shape[0]
        to_centres = x[:, :, None, :] - self.centers[None, None]                     # (B, 2, C, d)
        v = torch.cat([to_centres.reshape(x.shape[0], 2 * n_c, -1), (x[:, 0] - x[:, 1])[:, None]], 1)
        signs = torch.zeros(2 * n_c + 1, 2, dtype=x.dtype, device=x.device)
        signs[:n_c, 0], signs[n_c:2 * n_c, 1], signs[-1] = 1.0, 1.0, torch.tensor([1.0, -1.0])
        return v, torch.linalg.vector_norm(v, dim=-1), signs

    def _input_scales(self) -> torch.Tensor:
        """Inverse length unit per state and input vector (L, K)."""
        n_c = self.centers.shape[0]
        s = self.feature_scales
        return torch.cat([s[:, :1].expand(-1, n_c), s[:, 1:2].expand(-1, n_c), s[:, 2:]], 1)

    def _inputs(self, x: torch.Tensor, with_derivatives: bool):
        """MLP inputs per state [s v, ρ(s|v|)] for every vector: values (L, B, F); with derivatives also the
        gradients (L, B, 2d, F) and Laplacians (L, B, F)."""
        n, _, d = x.shape
        v, r, signs = self._vectors(x)
        s = self._input_scales()[:, None, :]                                          # (L, 1, K)
        sv = s[..., None] * v[None]                                                   # (L, B, K, d)
        sr = s * r[None]
        rho, slope_over_s, curv = _rho(sr)
        n_states, k = s.shape[0], v.shape[1]
        value = torch.cat([sv, rho[..., None]], -1).reshape(n_states, n, -1)
        if not with_derivatives:
            return value
        # ∂(s v_m)/∂x_{p,m'} = s σ_kp δ_mm';  ∂ρ(s|v|)/∂x_p = σ_kp s² ρ'(s r)/(s r) v
        eye = torch.eye(d, dtype=x.dtype, device=x.device)
        lin = s[..., None, None, None] * signs[None, None, :, :, None, None] * eye            # (L, 1, K, 2, d, d)
        lin = lin.expand(n_states, n, k, 2, d, d)
        rad = (s**2 * slope_over_s)[..., None, None] * signs[None, None, :, :, None] * v[None, :, :, None, :]
        grad = torch.cat([lin, rad[..., None]], -1)                                   # (L, B, K, 2, d, d + 1)
        grad = grad.permute(0, 1, 3, 4, 2, 5).reshape(n_states, n, 2 * d, -1)
        # ∇²ρ(s|v|) = (Σ_p σ_kp²) s² (ρ''(s r) + (d - 1) ρ'(s r)/(s r))
        weight = (signs**2).sum(-1)                                                   # (K,)
        lap_rad = weight * s**2 * (curv + (d - 1) * slope_over_s)
        lap = torch.cat([torch.zeros_like(sv), lap_rad[..., None]], -1).reshape(n_states, n, -1)
        return value, grad, lap

    def _log_envelope(self, x: torch.Tensor, log_scale: torch.Tensor | None, with_derivatives: bool):
        """ln e_a(x_a) + ln e_b(x_b) + ln J(r_ab) (box: ln J alone): values (L | 1, B); with derivatives also
        gradients (L | 1, B, 2d) and Laplacians (L | 1, B). ``log_scale`` is (L, 1, P) or a per-sample copy (L, B, P)."""
        c = self.config
        n, _, d = x.shape
        if self.envelope is Walls:
            value, grad, lap = x.new_zeros(1, n), x.new_zeros(1, n, 2 * d), x.new_zeros(1, n)
        elif with_derivatives:
            value, grad, lap = self.envelope.log_product(x, self.centers, self.cusps, log_scale, True)
        else:
            value = self.envelope.log_product(x, self.centers, self.cusps, log_scale, False)
        gamma, ell12 = c.pair_cusp, c.pair_length
        if gamma:
            v = x[:, 0] - x[:, 1]
            r12 = torch.linalg.vector_norm(v, dim=-1)
            value = value + gamma * r12 / (1 + r12 / ell12)
            if with_derivatives:
                slope = gamma / (1 + r12 / ell12) ** 2
                curv = -2 * gamma / (ell12 * (1 + r12 / ell12) ** 3)
                unit = v / r12[:, None]
                grad = grad + torch.cat([slope[:, None] * unit, -slope[:, None] * unit], -1)
                lap = lap + 2 * (curv + (d - 1) * slope / r12)
        if not with_derivatives:
            return value
        return value, grad, lap

    def _envelope(self, x: torch.Tensor, log_scale: torch.Tensor | None, with_derivatives: bool):
        """E = e_a(x_a) e_b(x_b) J(r_ab) (times the walls' w for a box): values (L | 1, B); with derivatives also
        gradients (L | 1, B, 2d) and Laplacians, by ∇E = E ∇ln E and ∇²E = E (∇²ln E + |∇ln E|²)."""
        if not with_derivatives:
            value = torch.exp(self._log_envelope(x, log_scale, False))
            return value * Walls.walls(x, self.centers[0], self.lengths, False) if self.envelope is Walls else value
        ln_e, ln_grad, ln_lap = self._log_envelope(x, log_scale, True)
        e = torch.exp(ln_e)
        grad, lap = e[..., None] * ln_grad, e * (ln_lap + (ln_grad**2).sum(-1))
        if self.envelope is not Walls:
            return e, grad, lap
        w, w_grad, w_lap = Walls.walls(x, self.centers[0], self.lengths, True)
        return e * w, grad * w[:, None] + e[..., None] * w_grad, lap * w + 2 * (grad * w_grad).sum(-1) + e * w_lap

    def _both_orders(self, x: torch.Tensor) -> torch.Tensor:
        """The batch followed by the same configurations with the particles swapped (2B, 2, d)."""
        return torch.cat([x, x.flip(1)])

    def _combine(self, phi: torch.Tensor) -> torch.Tensor:
        """ψ = Φ(x) + s Φ(Px) from Φ on the doubled batch (L, 2B, ...) -> (L, B, ...)."""
        n = phi.shape[1] // 2
        return phi[:, :n] + self.config.exchange * phi[:, n:]

    # ---- the network interface ----
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ψ_l(x) for configurations x (B, 2, d) -> (B, L)."""
        return self.layers(x)[0]

    def layers(self, x: torch.Tensor, log_scale: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """ψ (B, L) with every linear layer's input and output over the doubled batch (L, 2B, ·): each sample's
        Jacobian is the sum of its two orderings' (see :class:`~qsolver.networks.base.Tangents`). ``log_scale``
        (L, B, P), a per-sample copy of the learned log-scales, gives per-sample derivatives by them."""
        both = self._both_orders(x)
        if log_scale is not None:
            log_scale = torch.cat([log_scale, log_scale], 1)
        elif hasattr(self, "log_scale"):
            log_scale = self.log_scale[:, None, :]
        g, inputs, outputs = mlp_layers(self.weights, self.biases, self._inputs(both, False),
                                        self.config.activation)
        phi = g * self._envelope(both, log_scale, False)
        return self._combine(phi).T, inputs, outputs

    def jet(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ψ (B, L), ∇ψ (B, L, 2d) over (x_1, x_2) and ∇²ψ (B, L), by one forward-Laplacian pass."""
        n, _, d = x.shape
        both = self._both_orders(x)
        g = mlp_jet(self.weights, self.biases, *self._inputs(both, True), self.config.activation)
        log_scale = self.log_scale[:, None, :] if hasattr(self, "log_scale") else None
        e, e_grad, e_lap = self._envelope(both, log_scale, True)
        g_val, g_grad, g_lap = g[..., 0], g[..., 1:-1], g[..., -1]
        # Φ = g E:  ∇Φ = E ∇g + g ∇E,  ∇²Φ = E ∇²g + 2 ∇g·∇E + g ∇²E
        value = g_val * e
        grad = e[..., None] * g_grad + g_val[..., None] * e_grad
        lap = e * g_lap + 2 * (g_grad * e_grad).sum(-1) + g_val * e_lap
        # the swapped half was differentiated by its own (swapped) coordinates: swap the gradient blocks back
        grad = torch.cat([grad[:, :n], grad[:, n:].reshape(-1, n, 2, d).flip(2).reshape(-1, n, 2 * d)], 1)
        psi, grad, lap = self._combine(value), self._combine(grad), self._combine(lap)
        return psi.T, grad.transpose(0, 1), lap.T

    def tangents(self, x: torch.Tensor, root_w: torch.Tensor) -> Tangents:
        return mlp_tangents(self, x, root_w)

    def proposal(self, dtype: torch.dtype, fixed_scale: float | None = None):
        """One symmetrised product per state of its two particles' densities, with tails wider in the exponent than
        the envelopes' squares (see :mod:`.envelopes`); a fixed scale does not apply to pairs."""
        centers = self.centers.to(dtype)
        if self.envelope is Walls:                        # uniform in the box for each particle
            return Walls.pair_density(centers, self.lengths.to(dtype))
        return self.envelope.pair_density(centers, self.log_scale.detach())

    def extent(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Per state and particle slot, the slowest decay (or the widest Gaussian) sets the reach."""
        centers = self.centers.detach().cpu().numpy()
        if self.envelope is Walls:
            half = 0.5 * self.lengths.detach().cpu().numpy()
            return centers[0] - half, centers[0] + half
        scales = np.exp(self.log_scale.detach().cpu().numpy())
        scales = scales.reshape(-1, centers.shape[0] if self.envelope is Exponential else centers.shape[1])
        reach = self.envelope.reach(centers, scales)
        return centers.min(0) - reach, centers.max(0) + reach

    def symmetry_error(self, x: torch.Tensor, psi: torch.Tensor) -> float | None:
        """max |ψ(x) - s ψ(Px)| / max |ψ|: the exchange symmetry as built (rounding only)."""
        with torch.no_grad():
            swapped = self(x.flip(1)) * self.config.exchange
        return float((psi - swapped).abs().max() / psi.abs().max())


def exchange_sign(system) -> int:
    """s of ψ(Px) = s ψ(x): +1 when the two spins can differ (n_down = 1, a singlet's symmetric spatial part), -1 for
    two parallel spins (a triplet's antisymmetric one)."""
    return 1 if system.spin_sector[1] else -1


def pair_config(system, cfg) -> PairConfig:
    """Envelopes, cusps and initial length scales of two-particle states.

    Coulomb centres: the inner particle starts at the hydrogen-like decay Z_c/(2κν_1) of its centre, the outer at
    that of the screened charge Z_out = max(ΣZ - 1, ¼ΣZ) in the shell of the state's outer particle (singlets
    start with both in the lowest shell; a triplet's outer particle is never there), both made 20 % wider and
    shared between the centres in proportion to their charges. Traps: the one-particle oscillator ground state.
    Boxes: the walls' cosine for each particle."""
    d, kappa, n = system.dimension, system.kinetic, cfg.states
    pot = system.potential
    boxes, harmonics, coulombs = find(pot, Box), find(pot, Harmonic), find(pot, Coulomb)
    envelope = choose_envelope(system, cfg.envelope, ENVELOPE_CHOICES)
    sign = exchange_sign(system)
    gamma = cusp_slope(system.interaction, kappa, d, parallel=sign < 0)
    # the Jastrow factor exp(γr/(1 + r/ℓ)) saturates at exp(γℓ): ℓ = min(1, 1/|γ|) keeps it within [1/e, e] for a
    # strong interaction, where ℓ = 1 bohr would overflow (or underflow) ψ
    common = dict(dimension=d, states=n, hidden=cfg.hidden, layers=cfg.layers, activation=cfg.activation,
                  envelope=envelope, exchange=sign, pair_cusp=gamma,
                  pair_length=min(1.0, 1.0 / abs(gamma)) if gamma else 1.0)
    if envelope == Walls.name:
        lengths = boxes[0].lengths
        unit = 2.0 / float(np.mean(lengths))
        return PairConfig(**common, centers=[list(boxes[0].center)], cusps=[], init_scales=[],
                          feature_scales=[[unit] * 3] * n, lengths=list(lengths))
    if envelope == Exponential.name:
        centers = [c for term in coulombs for c in term.centers] or [[0.0] * d]
        charges = [q for term in coulombs for q in term.charges] or [1.0]
        total = sum(max(q, 0.0) for q in charges) or 1.0
        share = [max(q, 0.0) / total for q in charges]
        cusps = [q / ((d - 1) * kappa) if d > 1 else 0.0 for q in charges]
        # a Kato slope below MIN_DECAY is dropped: the envelope blends it in over 1/|k| bohr, farther than the samples
        # reach (and 1/k², for a vanishing charge, overflows)
        cusps = [k if abs(k) >= MIN_DECAY else 0.0 for k in cusps]
        outer_charge = max(total - 1.0, 0.25 * total)
        first = 0 if sign > 0 else 1
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
