"""N electrons: sums of Slater determinants of neural orbitals, antisymmetric under the exchange of any two electrons
of the same spin by construction, with exact nuclear and electron–electron cusps.

The first n_up electrons of a configuration x (B, N, d) have spin up, the others spin down (n_up - n_down = 2S).
Each state l is

    ψ_l(x) = J(x) Σ_k det[φ_lki(x_j)]_{i,j ≤ n_up} det[φ_lk(n_up+i)(x_(n_up+j))]_{i,j < n_down},

with orbitals φ_lki(x) = g_lki(s_l u(x)) e_lki(x): one MLP per state maps an electron's features u (its offsets from
the centres and their lengths, in the state's length unit 1/s_l) to the orbitals of all K determinants, and each
orbital has its own learned envelope (:mod:`.envelopes`: exponential with the Kato slope -Z_c/((d-1)κ) at every
nucleus, or Gaussian). The Jastrow factor J_l = exp(Σ_{i<j} [γ_ij r_ij/(1 + r_ij/ℓ) + u_l(q_ij)]) holds the pair cusp
(γ for antiparallel spins, the parallel-spin slope for equal spins) and a per-state MLP u_l of features q_ij of the
pair and the nuclei that are symmetric in i ↔ j and smooth where electrons meet each other or a nucleus, so that it
correlates electrons without moving a cusp. Orbitals depend on their own electron only, so a determinant is linear in each
electron's column: ∇_j det A = Σ_i C_ij ∇φ_i(x_j) and ∇_j² det A = Σ_i C_ij ∇²φ_i(x_j) with the cofactors C, which
are taken from an SVD and so stay exact where A is singular (at the nodes).
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ..interactions import NoInteraction, cusp_slope
from ..laplacian import activation_jet
from ..potentials import Coulomb, Harmonic, find, hydrogen_nu
from ..sampling import Blend, SlotProducts
from .backflow import backflow_inputs, det_jet, spread
from .base import Layout, Tangents, register
from .envelopes import Exponential, Gaussian, choose_envelope
from .mlp import mlp_jet, mlp_outputs, mlp_parameters, row_jacobians
from .pair import _rho

ENVELOPE_CHOICES = ("exponential", "gaussian")
# slot scales over the envelope's, one mixture component each: the wide one (above ½) keeps ψ²/p bounded (bounded MLP
# outputs), the narrow one follows orbitals that the MLP draws in from the wider product of exponentials over the
# centres (a bond's); a trap's Gaussian orbitals are their envelopes times polynomials, and the wide one alone fits
TAILS = (0.4, 0.6)
GAUSSIAN_TAILS = (0.6,)
CENTRE_FLOOR = 0.2        # every centre's least share of a slot's mixture
# The fitted proposal: the share of samples still drawn from the envelopes' slot products (it bounds every importance
# weight by 1/ENVELOPE_SHARE times their bound, whatever the fit does), the step size of the fit and the bound on its
# shifts of log-scales and logits (a factor e³ either way)
ENVELOPE_SHARE = 0.25
FIT_RATE = 0.5
FIT_RANGE = 3.0
MIN_DECAY = 1e-2          # the slowest decay (1/bohr) an orbital envelope starts with (vanishing charges)


@dataclass
class DetsConfig:
    """Architecture of the determinant networks; with the weights it rebuilds the wavefunctions exactly."""

    dimension: int
    states: int
    particles: int
    spin: int                              # 2S = n_up - n_down
    determinants: int                      # K per state
    hidden: int
    layers: int
    activation: str
    envelope: str                          # "exponential" or "gaussian"
    centers: list[list[float]]             # Coulomb centres, or the trap centre
    cusps: list[float]                     # Kato slope k_c per centre (exponential), 1/bohr
    init_scales: list[list[float]]         # (states, K·N·C) decays or (states, K·N·d) curvatures per orbital
    feature_scales: list[float]            # s_l per state: the inverse length unit of its MLP inputs (1/bohr)
    pair_cusps: list[float]                # γ for antiparallel and for parallel spins (1/bohr)
    pair_length: float = 1.0              # ℓ of the cusp factor (bohr)
    jastrow: int = 0                       # width of the pair-correlation MLP u_l (two hidden layers); 0: none
    fitted: bool = False                   # exponential envelopes: sample a blend with slot products fitted to ψ²
    backflow: int = 0                      # inverse lengths s_l/4^k (k < backflow) of the backflow inputs; 0: none
    kind: str = "dets"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def spins(self) -> tuple[int, int]:
        return (self.particles + self.spin) // 2, (self.particles - self.spin) // 2


def _cofactors(a: torch.Tensor) -> torch.Tensor:
    """Cofactor matrices C (..., n, n) of square matrices a, C_ij = ∂det a/∂a_ij, from a = U Σ Vᵀ:
    C = det(U) det(V) U diag(Π_{k≠i} σ_k) Vᵀ, finite where a is singular."""
    u, s, vh = torch.linalg.svd(a)
    ones = torch.ones_like(s[..., :1])
    left = torch.cumprod(torch.cat([ones, s[..., :-1]], -1), -1)            # Π_{k<i} σ_k
    right = torch.flip(torch.cumprod(torch.cat([ones, torch.flip(s, [-1])[..., :-1]], -1), -1), [-1])   # Π_{k>i}
    sign = torch.linalg.det(u) * torch.linalg.det(vh)
    return sign[..., None, None] * (u * (left * right)[..., None, :]) @ vh


def _det(a: torch.Tensor) -> torch.Tensor:
    """det a, computed in float64 and returned in a's dtype: torch's determinant is differentiable at singular
    matrices (a node crossing the batch; slogdet's gradient fails there), and in float64 its backward never mixes
    dtypes (for float32 input under a float64 default it does)."""
    return torch.linalg.det(a.double()).to(a.dtype)


@register
class DeterminantNet(nn.Module):
    """L antisymmetric trial functions of N electrons; ``forward`` gives values (B, L), ``jet`` values, gradients
    over the N·d coordinates (B, L, N·d) and Laplacians (B, L)."""

    kind = "dets"
    config_type = DetsConfig
    damping = 1e-2          # as for pairs: envelope decays beside a network drift with less
    automatic = True        # registered after "pair": chosen for three and more electrons
    spin_adapted = False    # fixed spin labels: the S_z = S sector also holds every higher S

    def __init__(self, config: DetsConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = c = config
        self.envelope = Exponential if c.envelope == Exponential.name else Gaussian
        self.register_buffer("centers", torch.tensor(c.centers, dtype=torch.float64))
        self.register_buffer("cusps", torch.tensor(c.cusps or [0.0] * len(c.centers), dtype=torch.float64))
        self.register_buffer("feature_scales", torch.tensor(c.feature_scales, dtype=torch.float64))
        self.log_scale = nn.Parameter(torch.log(torch.tensor(c.init_scales, dtype=torch.float64)))
        orbitals = c.determinants * c.particles
        self.weights, self.biases = mlp_parameters(c.states, [self.layout(c).input_width] + [c.hidden] * c.layers
                                                   + [orbitals], generator)
        self.pair_weights, self.pair_biases = mlp_parameters(
            c.states, [self._pair_width(c)] + [c.jastrow] * 2 + [1], generator) if c.jastrow else (nn.ParameterList(), nn.ParameterList())
        if c.jastrow:
            with torch.no_grad():       # u = 0 at the start: the cusp-only factor the other settings were chosen for
                self.pair_weights[-1].zero_()
        if c.fitted:                    # shifts of the fitted slot products from the envelopes' (zero: the same)
            components, slots = len(TAILS) * c.states * c.determinants, (c.particles, len(c.centers))
            self.register_buffer("fit_scales", torch.zeros(components, *slots, dtype=torch.float64))
            self.register_buffer("fit_weights", torch.zeros(components, dtype=torch.float64))
            self.register_buffer("fit_centres", torch.zeros(components, *slots, dtype=torch.float64))

    # ---- the kind ----
    @classmethod
    def fits(cls, system) -> str | None:
        return None if system.particles >= 2 else "it holds two or more electrons"

    @classmethod
    def configure(cls, system, cfg) -> DetsConfig:
        return dets_config(system, cfg)

    @classmethod
    def layout(cls, config: DetsConfig) -> Layout:
        per_centre = config.dimension + 1 if config.envelope == Exponential.name else config.dimension
        pairs = config.particles * (config.particles - 1) // 2 if config.jastrow else 0
        backflow = 2 * config.backflow * (config.dimension + 1)
        return Layout(copies=1, input_width=len(config.centers) * per_centre + backflow, rows=config.particles,
                      pair_rows=pairs, pair_width=config.jastrow, coupled=config.backflow > 0)

    @classmethod
    def length_unit(cls, config: DetsConfig) -> float:
        return 1.0 / max(config.feature_scales)

    @classmethod
    def check_config(cls, config: dict, system) -> list[str]:
        checks = {"hidden": config["hidden"] >= 1, "layers": config["layers"] >= 0,
                  "jastrow": config.get("jastrow", 0) >= 0, "backflow": config.get("backflow", 0) >= 0,
                  "fitted": not config.get("fitted") or config["envelope"] == Exponential.name,
                  "envelope": config["envelope"] in ENVELOPE_CHOICES, "particles": config["particles"] ==
                  system.particles, "spin": config["spin"] == system.spin, "determinants": config["determinants"] >= 1}
        return [key for key, ok in checks.items() if not ok]

    # ---- orbitals ----
    def _features(self, x: torch.Tensor, with_derivatives: bool):
        """Each electron's MLP inputs per state, scaled by s_l: its offsets s(x - R_c) and, for Coulomb centres, the
        smoothed lengths ρ(s|x - R_c|), ρ(t) = t²/(1 + t) (no kink at a nucleus: the envelope's cusp stays exact).
        Values (L, B·N, F); with derivatives also gradients (L, B·N, d, F) and Laplacians (L, B·N, F) by that
        electron's coordinates."""
        points = x.reshape(-1, x.shape[-1])
        p, d = points.shape
        s = self.feature_scales[:, None, None]                                  # (L, 1, 1)
        dx = points[:, None, :] - (self.centers[None] if self.envelope is Exponential else self.centers[None, :1])
        sv = s[..., None] * dx[None]                                            # (L, P, C, d)
        n_states, n_c = sv.shape[0], sv.shape[2]
        if self.envelope is Exponential:
            t = s * torch.linalg.vector_norm(dx, dim=-1)[None]                  # (L, P, C)
            rho, slope_over_t, curv = _rho(t)
            value = torch.cat([sv, rho[..., None]], -1).reshape(n_states, p, -1)
        else:
            value = sv.reshape(n_states, p, -1)
        if not with_derivatives:
            return value
        eye = torch.eye(d, dtype=x.dtype, device=x.device)
        lin = (s[..., None, None] * eye).expand(n_states, p, n_c, d, d)         # ∂(s dx_m)/∂x_m' = s δ
        if self.envelope is Exponential:
            rad = (s**2 * slope_over_t)[..., None] * dx[None]                   # ∂ρ/∂x = s² ρ'(t)/t dx
            grad = torch.cat([lin, rad[..., None]], -1)                         # (L, P, C, d, d + 1)
            lap = torch.cat([torch.zeros_like(sv), (s**2 * (curv + (d - 1) * slope_over_t))[..., None]], -1)
        else:
            grad, lap = lin, torch.zeros_like(sv)
        grad = grad.permute(0, 1, 3, 2, 4).reshape(n_states, p, d, -1)
        return value, grad, lap.reshape(n_states, p, -1)

    def _backflow_scales(self) -> torch.Tensor:
        """Inverse lengths σ_lk = s_l/4^k of the backflow inputs, (L, backflow), 1/bohr: from the state's core length
        out to sixteen times it and more, where valence electrons meet."""
        powers = 4.0 ** -torch.arange(self.config.backflow, dtype=self.feature_scales.dtype,
                                      device=self.feature_scales.device)
        return self.feature_scales[:, None] * powers

    def _inputs(self, x: torch.Tensor, with_derivatives: bool):
        """The orbital MLPs' inputs per electron: :meth:`_features`, then with ``backflow`` the electron's sums over
        the other electrons (:func:`~.backflow.backflow_inputs`). Values (L, B·N, F); with derivatives gradients
        by the electron's own d coordinates (L, B·N, d, F), or with backflow by all N·d (L, B·N, N·d, F), and
        Laplacians (L, B·N, F)."""
        own = self._features(x, with_derivatives)
        if not self.config.backflow:
            return own
        pairs = backflow_inputs(x, self._backflow_scales(), self.config.spins[0], with_derivatives)
        if not with_derivatives:
            return torch.cat([own, pairs], -1)
        return (torch.cat([own[0], pairs[0]], -1), torch.cat([spread(own[1], x.shape[1]), pairs[1]], -1),
                torch.cat([own[2], pairs[2]], -1))

    def _log_envelopes(self, x: torch.Tensor, log_scale: torch.Tensor, with_derivatives: bool):
        """ln e of every orbital at every electron, (L, B·N, M) for M = K·N orbitals; with derivatives also the
        gradients (L, B·N, d, M) and Laplacians (L, B·N, M) by that electron's coordinates."""
        points = x.reshape(-1, x.shape[-1])
        n_states, n_orb = log_scale.shape[0], self.config.determinants * self.config.particles
        scales = torch.exp(log_scale).reshape(n_states, log_scale.shape[1], n_orb, -1)   # (L, 1 | P, M, C | d)
        d = points.shape[-1]
        if self.envelope is Gaussian:
            dx = points - self.centers[0]                                       # (P, d)
            value = -0.5 * (scales * dx[None, :, None, :] ** 2).sum(-1)         # (L, P, M)
            if not with_derivatives:
                return value
            grad = -(scales * dx[None, :, None, :]).transpose(2, 3)             # (L, P, d, M)
            return value, grad, -scales.sum(-1).expand_as(value)
        dx = points[:, None, :] - self.centers[None]                            # (P, C, d)
        r = torch.linalg.vector_norm(dx, dim=-1)                                # (P, C)
        k = self.cusps
        ell = 1.0 / torch.where(k == 0, torch.ones_like(k), k.abs())
        rr = r[None, :, None, :]
        value = (-scales * rr - (k - scales) * ell * rr / (ell + rr)).sum(-1)  # (L, P, M)
        if not with_derivatives:
            return value
        slope = -scales - (k - scales) * ell**2 / (ell + rr) ** 2              # φ'(r), (L, P, M, C)
        curv = 2 * (k - scales) * ell**2 / (ell + rr) ** 3
        unit = dx / r[..., None]                                                # (P, C, d)
        grad = torch.einsum("lpmc,pcd->lpdm", slope, unit)
        return value, grad, (curv + (d - 1) * slope / rr).sum(-1)

    def _orbitals(self, x: torch.Tensor, log_scale: torch.Tensor, record: list | None = None) -> torch.Tensor:
        """φ of every orbital at every electron, (L, B, N, M); log_scale (L, 1 or B·N, M·C) and ``record`` as in
        :func:`~.mlp.mlp_outputs`."""
        z = mlp_outputs(self.weights, self.biases, self._inputs(x, False), self.config.activation, record)
        phi = z * torch.exp(self._log_envelopes(x, log_scale, False))
        return phi.reshape(phi.shape[0], x.shape[0], x.shape[1], -1)

    def _orbital_jets(self, x: torch.Tensor):
        """φ, ∇φ and ∇²φ of every orbital at every electron by its coordinates: (L, B, N, M), (L, B, N, d, M),
        (L, B, N, M); with backflow by all N·d coordinates: ∇φ (L, B, N, N·d, M)."""
        value, grad, lap = self._inputs(x, True)
        n_states, points, d = grad.shape[:3]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            value = torch.baddbmm(b, value, w)
            grad = torch.bmm(grad.reshape(n_states, points * d, -1), w).reshape(n_states, points, d, -1)
            lap = torch.bmm(lap, w)
            if i < last:
                value, grad, lap = activation_jet(value, grad, lap, self.config.activation)
        ln_e, ln_grad, ln_lap = self._log_envelopes(x, self.log_scale[:, None, :], True)
        if self.config.backflow:
            ln_grad = spread(ln_grad, x.shape[1])
        e = torch.exp(ln_e)
        e_grad, e_lap = e[:, :, None] * ln_grad, e * (ln_lap + (ln_grad**2).sum(2))
        phi = value * e
        phi_grad = grad * e[:, :, None] + value[:, :, None] * e_grad
        phi_lap = lap * e + 2 * (grad * e_grad).sum(2) + value * e_lap
        shape = (n_states, x.shape[0], x.shape[1])
        return phi.reshape(*shape, -1), phi_grad.reshape(*shape, d, -1), phi_lap.reshape(*shape, -1)

    def _blocks(self, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The up and down matrices A_ji = φ_i(x_j) per state and determinant: (L, B, K, n, n) each, from orbital
        values (L, B, N, K·N) (or their jets' components, with extra axes before the last)."""
        up, down = self.config.spins
        k = self.config.determinants
        per_det = phi.reshape(*phi.shape[:-1], k, up + down)                   # (L, B, N, ..., K, N)
        a_up = per_det[:, :, :up, ..., :up]
        a_down = per_det[:, :, up:, ..., up:]
        return a_up.movedim(2, -2), a_down.movedim(2, -2)                       # electrons next to orbitals

    # ---- the Jastrow factor ----
    @staticmethod
    def _pair_width(config: DetsConfig) -> int:
        """Inputs of u: whether the spins are parallel, ρ(s r_ij), and per centre ρ_i + ρ_j and ρ_i ρ_j."""
        return 2 + 2 * len(config.centers)

    def _pair_features(self, x: torch.Tensor, i: torch.Tensor, j: torch.Tensor, with_derivatives: bool):
        """Features q_ij per state, in the state's length unit 1/s_l: values (L, B·P, F); with derivatives also their
        gradients by (x_i, x_j), (L, B·P, 2d, F), and Laplacians (L, B·P, F). ρ(t) = t²/(1 + t) has no slope at 0,
        so u leaves the electron–electron and nuclear cusps to the cusp factor and the envelopes."""
        n, _, d = x.shape
        s = self.feature_scales[:, None, None]                                  # (L, 1, 1)
        parallel = ((i < self.config.spins[0]) == (j < self.config.spins[0])).to(x.dtype)
        v = (x[:, i] - x[:, j]).reshape(-1, d)                                  # (B·P, d)
        r = torch.linalg.vector_norm(v, dim=-1)
        e, e_slope, e_curv = _rho(s[..., 0] * r)                                # (L, B·P)
        dx = x[:, :, None, :] - self.centers                                    # (B, N, C, d)
        a, a_slope, a_curv = _rho(s[..., None] * torch.linalg.vector_norm(dx, dim=-1))     # (L, B, N, C)
        a_i, a_j = a[:, :, i].flatten(1, 2), a[:, :, j].flatten(1, 2)           # (L, B·P, C)
        spin = parallel.repeat(n).expand(len(s), -1)
        value = torch.cat([spin[..., None], e[..., None], a_i + a_j, a_i * a_j], -1)
        if not with_derivatives:
            return value
        g_e = (s[..., 0]**2 * e_slope)[..., None] * v                                  # ∂ρ(s r_ij)/∂x_i, (L, B·P, d)
        g_a = (s[..., None] ** 2 * a_slope)[..., None] * dx                     # ∂ρ(s r_ic)/∂x_i, (L, B, N, C, d)
        g_i, g_j = (g_a[:, :, k].flatten(1, 2).transpose(-1, -2) for k in (i, j))   # (L, B·P, d, C)
        zero = torch.zeros_like(g_e)[..., None]
        grad = torch.cat([torch.cat([zero, g_e[..., None], g_i, a_j[:, :, None] * g_i], -1),     # by x_i
                          torch.cat([zero, -g_e[..., None], g_j, a_i[:, :, None] * g_j], -1)], -2)  # by x_j
        lap_a = s[..., None] ** 2 * (a_curv + (d - 1) * a_slope)                # (L, B, N, C)
        l_i, l_j = lap_a[:, :, i].flatten(1, 2), lap_a[:, :, j].flatten(1, 2)
        lap = torch.cat([zero[..., 0, :], (2 * s[..., 0]**2 * (e_curv + (d - 1) * e_slope))[..., None], l_i + l_j,
                         a_j * l_i + a_i * l_j], -1)                            # no mixed terms: i ≠ j
        return value, grad, lap

    def _log_jastrow(self, x: torch.Tensor, with_derivatives: bool, record: list | None = None):
        """ln J_l = Σ_{i<j} [γ_ij r_ij/(1 + r_ij/ℓ) + u_l(q_ij)]: values (L, B); with derivatives also gradients
        (L, B, N·d) and Laplacians (L, B). ``record`` collects the pair MLP's layers (values only)."""
        n, particles, d = x.shape
        anti, parallel = self.config.pair_cusps
        i, j = torch.triu_indices(particles, particles, offset=1, device=x.device)
        up = self.config.spins[0]
        gamma = torch.where((i < up) == (j < up), parallel, anti).to(x.dtype)  # (P,)
        ell = self.config.pair_length
        v = x[:, i] - x[:, j]                                                    # (B, P, d)
        r = torch.linalg.vector_norm(v, dim=-1)
        n_states = self.feature_scales.shape[0]
        value = (gamma * r / (1 + r / ell)).sum(-1).expand(n_states, -1)
        if self.config.jastrow:
            q = self._pair_features(x, i, j, with_derivatives)
            if not with_derivatives:
                u = mlp_outputs(self.pair_weights, self.pair_biases, q, self.config.activation, record)[..., 0]
                return value + u.reshape(n_states, n, -1).sum(-1)
        if not with_derivatives:
            return value
        slope = gamma / (1 + r / ell) ** 2
        curv = -2 * gamma / (ell * (1 + r / ell) ** 3)
        pull = (slope[..., None] * v / r[..., None]).expand(n_states, -1, -1, -1)   # ∂/∂x_i of each pair term
        lap = (2 * (curv + (d - 1) * slope / r)).sum(-1).expand(n_states, -1)
        if self.config.jastrow:
            jet = mlp_jet(self.pair_weights, self.pair_biases, *q, self.config.activation)   # (L, B·P, 2d + 2)
            jet = jet.reshape(n_states, n, len(i), -1)
            value = value + jet[..., 0].sum(-1)
            pull_j = -pull + jet[..., 1 + d:1 + 2 * d]
            pull = pull + jet[..., 1:1 + d]
            lap = lap + jet[..., -1].sum(-1)
        else:
            pull_j = -pull
        grad = x.new_zeros(n_states, *x.shape).index_add_(2, i, pull).index_add_(2, j, pull_j)
        return value, grad.reshape(n_states, n, -1), lap

    # ---- the network interface ----
    def _values(self, x: torch.Tensor, log_scale: torch.Tensor, orbital: list | None = None,
                pair: list | None = None) -> torch.Tensor:
        """ψ_l(x) (L, B) with the envelopes' log-scales ``log_scale`` (L, 1 or B·N, M·C); ``orbital`` and ``pair``
        collect the orbital and pair MLPs' layers (:func:`~.mlp.mlp_outputs`)."""
        a_up, a_down = self._blocks(self._orbitals(x, log_scale, orbital))
        dets = _det(a_up) * _det(a_down)                                        # (L, B, K); det of 0×0 = 1
        return dets.sum(-1) * torch.exp(self._log_jastrow(x, False, pair))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ψ_l(x) for configurations x (B, N, d) -> (B, L)."""
        return self._values(x, self.log_scale[:, None, :]).T

    def jet(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ψ (B, L), ∇ψ (B, L, N·d) and ∇²ψ (B, L): orbital jets, determinants through their cofactors (their
        second-order terms too with backflow, :func:`~.backflow.det_jet`), then the Jastrow factor by the product
        rule."""
        s, s_grad, s_lap = (self._coupled_sum if self.config.backflow else self._determinant_sum)(x)
        ln_j, ln_j_grad, ln_j_lap = self._log_jastrow(x, True)
        j = torch.exp(ln_j)
        psi = j * s
        grad = j[..., None] * (s_grad + s[..., None] * ln_j_grad)
        lap = j * (s_lap + 2 * (ln_j_grad * s_grad).sum(-1) + s * (ln_j_lap + (ln_j_grad**2).sum(-1)))
        return psi.T, grad.transpose(0, 1), lap.T

    def _determinant_sum(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Σ_k det_up det_down with its gradient (L, B, N·d) and Laplacian (L, B) for orbitals of one electron each:
        a determinant is linear in each electron's row, so ∇_j det = Σ_i C_ji ∇φ_i(x_j), ∇²_j det = Σ_i C_ji ∇²φ_i(x_j),
        and the up and down factors share no coordinate."""
        phi, phi_grad, phi_lap = self._orbital_jets(x)
        spins = []
        for a, g, lap in zip(self._blocks(phi), self._blocks(phi_grad), self._blocks(phi_lap)):
            det = _det(a)                                                       # (L, B, K)
            if a.shape[-1] == 0:
                spins.append((det, a.new_zeros(*det.shape, 0), torch.zeros_like(det)))
                continue
            cof = _cofactors(a)                                                 # (L, B, K, n, n): electrons, orbitals
            # g: (L, B, d, K, n, n) with electrons next to orbitals; ∇_j det = Σ_i C_ji ∇φ_i(x_j)
            grad = (cof[:, :, None] * g).sum(-1)                                 # (L, B, d, K, n)
            grad = grad.permute(0, 1, 3, 4, 2).reshape(*det.shape, -1)          # (L, B, K, n·d)
            spins.append((det, grad, (cof * lap).sum((-1, -2))))
        (d_up, g_up, l_up), (d_down, g_down, l_down) = spins
        s = (d_up * d_down).sum(-1)                                             # (L, B)
        s_grad = torch.cat([d_down[..., None] * g_up, d_up[..., None] * g_down], -1).sum(2)   # (L, B, N·d)
        return s, s_grad, (d_down * l_up + d_up * l_down).sum(-1)

    def _coupled_sum(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As :meth:`_determinant_sum` for backflow orbitals, whose every entry depends on every electron:
        each determinant's full jet (:func:`~.backflow.det_jet`) and ∇²(u v) = v∇²u + u∇²v + 2∇u·∇v."""
        phi, phi_grad, phi_lap = self._orbital_jets(x)                          # ∇φ: (L, B, N, N·d, M)
        spins = []
        for a, g, lap in zip(self._blocks(phi), self._blocks(phi_grad), self._blocks(phi_lap)):
            det = _det(a)                                                       # (L, B, K)
            if a.shape[-1] == 0:
                spins.append((det, a.new_zeros(*det.shape, phi_grad.shape[3]), torch.zeros_like(det)))
                continue
            _, grad, laplacian = det_jet(a, g.movedim(2, -3), lap)             # g: (L, B, N·d, K, n, n)
            spins.append((det, grad, laplacian))
        (d_up, g_up, l_up), (d_down, g_down, l_down) = spins
        s_grad = (d_down[..., None] * g_up + d_up[..., None] * g_down).sum(2)
        s_lap = (d_down * l_up + d_up * l_down + 2 * (g_up * g_down).sum(-1)).sum(-1)
        return (d_up * d_down).sum(-1), s_grad, s_lap

    def tangents(self, x: torch.Tensor, root_w: torch.Tensor) -> Tangents:
        """Per-sample Jacobians of f = ψ·root_w from one forward and one backward pass: each MLP layer's by
        :func:`~.mlp.row_jacobians` (every sample passes the orbital MLP once per electron, the pair MLP once per
        pair), the envelopes' log-scales through a per-sample copy (L, B, M·C)."""
        n, particles = x.shape[:2]
        copy = self.log_scale.detach()[:, None, :].expand(-1, n, -1).clone().requires_grad_(True)
        orbital, pair = [], []
        psi = self._values(x, copy.repeat_interleave(particles, 1), orbital, pair)                  # (L, B)
        outputs = [out for _, out in orbital + pair]
        grads = torch.autograd.grad((psi * root_w.T).sum(), outputs + [copy])
        direct = {**row_jacobians(orbital, grads[:len(orbital)], particles),
                  **row_jacobians(pair, grads[len(orbital):-1], particles * (particles - 1) // 2, "pair_"),
                  "log_scale": grads[-1]}
        return Tangents([], [], [], direct)

    def _envelope_proposal(self, dtype: torch.dtype) -> SlotProducts:
        """A mixture over states, determinants and TAILS of products of one density per orbital slot, symmetrised
        over each spin block (:class:`~qsolver.sampling.SlotProducts`): orbital i's envelope e ~ exp(-Σ_c a_c r_c)
        (or exp(-½ Σ β x²)) gives slot i a density with tails t times as wide in the exponent as e² for each t of
        TAILS (GAUSSIAN_TAILS), so that ψ²/p stays bounded (t > ½ in the mixture) while a core and a valence
        electron are drawn where their orbitals are."""
        c = self.config
        n_states = self.log_scale.shape[0]
        tails = torch.tensor(GAUSSIAN_TAILS if self.envelope is Gaussian else TAILS, dtype=dtype)
        rates = torch.exp(self.log_scale.detach()).to(dtype).reshape(n_states * c.determinants, c.particles, -1)
        rates = rates.repeat(len(tails), 1, 1)                            # (tails × states × determinants, N, C)
        tails = tails.to(rates.device).repeat_interleave(rates.shape[0] // len(tails))[:, None, None]
        weights = torch.full((rates.shape[0],), 1.0 / rates.shape[0], dtype=dtype, device=rates.device)
        centers = self.centers.to(dtype)
        if self.envelope is Gaussian:
            return SlotProducts(centers, torch.sqrt(tails / rates), weights, c.spins, kind="gaussian")
        # the centre of a slot's mixture by the envelope's mass there (∝ a_c^d), with a floor for every centre
        mass = rates ** c.dimension
        share = (1 - CENTRE_FLOOR) * mass / mass.sum(-1, keepdim=True) + CENTRE_FLOOR / rates.shape[-1]
        return SlotProducts(centers, tails / rates, weights, c.spins, centre_weights=share)

    @staticmethod
    def _shifted(base: SlotProducts, scales: torch.Tensor, weights: torch.Tensor, centres: torch.Tensor
                 ) -> SlotProducts:
        """``base`` with each slot's scales times e^δ, component weights ∝ w e^δ and centre shares ∝ share e^δ."""
        return SlotProducts(base.centers, base.scales * torch.exp(scales),
                            torch.softmax(torch.log(base.weights) + weights, 0), base.spins,
                            centre_weights=torch.softmax(torch.log(base.centre_weights) + centres, -1))

    def _fit_buffers(self) -> list[torch.Tensor]:
        """The fitted shifts δ: of log-scales, component logits and centre logits."""
        return [self.fit_scales, self.fit_weights, self.fit_centres]

    def proposal(self, dtype: torch.dtype, fixed_scale: float | None = None) -> SlotProducts | Blend:
        """The envelopes' slot products (:meth:`_envelope_proposal`); with ``fitted`` their blend, at share
        ENVELOPE_SHARE, with the same products shifted towards ψ² by :meth:`fit_proposal`."""
        base = self._envelope_proposal(dtype)
        if not self.config.fitted:
            return base
        return Blend(base, self._shifted(base, *(t.to(dtype) for t in self._fit_buffers())), ENVELOPE_SHARE)

    def fit_proposal(self, x: torch.Tensor, f: torch.Tensor, comm) -> None:
        """One step of the cross-entropy fit of the shifted slot products p_δ to ψ̄² = (1/L) Σ_l ψ_l²/‖ψ_l‖²:
        δ ← δ + FIT_RATE ∇_δ Σ_b w_b ln p_δ(x_b), w_b = (1/L) Σ_l f_lb²/Σ_b' f_lb'² for the batch x ~ p and
        f = ψ/√p (B, L) (sums over every rank), ascends E_ψ̄²[ln p_δ] = -KL(ψ̄² ‖ p_δ) + const. Skipped where
        the batch is not finite (the divergence check rewinds that step)."""
        if not self.config.fitted:
            return
        with torch.no_grad():
            power = f.detach() ** 2
            w = (power / comm.sum(power.sum(0))).mean(1)                     # (B,), summing to one over ranks
        shifts = [t.detach().to(x.dtype).requires_grad_(True) for t in self._fit_buffers()]
        loss = -(w * self._shifted(self._envelope_proposal(x.dtype), *shifts).log_prob(x)).sum()
        grads = [comm.sum(g) for g in torch.autograd.grad(loss, shifts)]
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            return
        with torch.no_grad():
            for t, g in zip(self._fit_buffers(), grads):
                t.sub_(FIT_RATE * g.to(t.dtype)).clamp_(-FIT_RANGE, FIT_RANGE)

    def extent(self) -> tuple[np.ndarray, np.ndarray] | None:
        c = self.config
        centers = self.centers.detach().cpu().numpy()
        scales = np.exp(self.log_scale.detach().cpu().numpy()).reshape(
            -1, len(c.centers) if self.envelope is Exponential else c.dimension)
        reach = self.envelope.reach(centers, scales)
        return centers.min(0) - reach, centers.max(0) + reach

    def symmetry_error(self, x: torch.Tensor, psi: torch.Tensor) -> float | None:
        """max |ψ(x) + ψ(Px)| / max |ψ| for P swapping the first two electrons of one spin (None without a pair)."""
        up, down = self.config.spins
        if max(up, down) < 2:
            return None
        first = 0 if up >= 2 else up
        order = list(range(self.config.particles))
        order[first], order[first + 1] = order[first + 1], order[first]
        with torch.no_grad():
            swapped = self(x[:, order])
        return float((psi + swapped).abs().max() / psi.abs().max())


def dets_config(system, cfg) -> DetsConfig:
    """Envelopes and initial length scales of N-electron states. Coulomb centres: orbital i of a spin starts at the
    hydrogen-like decay Z_eff/(2κν) of the i-th shell (made 20 % wider), Z_eff the charge less the electrons of
    lower shells; a state l > 0 starts with the outermost orbital l shells higher. Traps: the one-particle
    oscillator ground state for every orbital."""
    d, kappa, n, particles = system.dimension, system.kinetic, cfg.states, system.particles
    up, down = system.spin_sector
    k = max(1, cfg.determinants)
    envelope = choose_envelope(system, cfg.envelope, ENVELOPE_CHOICES)
    anti = cusp_slope(system.interaction, kappa, d, parallel=False)
    parallel = cusp_slope(system.interaction, kappa, d, parallel=True)
    common = dict(dimension=d, states=n, particles=particles, spin=system.spin, determinants=k, hidden=cfg.hidden,
                  layers=cfg.layers, activation=cfg.activation, envelope=envelope, pair_cusps=[anti, parallel],
                  pair_length=min(1.0, 1.0 / abs(anti)) if anti else 1.0,
                  # non-interacting electrons: their states are determinants, a pair correlation would only add noise
                  jastrow=0 if isinstance(system.interaction, NoInteraction) else cfg.jastrow,
                  backflow=0 if isinstance(system.interaction, NoInteraction) else cfg.backflow,
                  # around nuclei the MLPs reshape ψ far from its envelopes (a bond's ionic configurations); in a
                  # trap the envelopes' products already follow ψ², and the fit trades the ground state for the others
                  fitted=cfg.proposal == "auto" and envelope == Exponential.name)
    if envelope == Gaussian.name:
        harmonics = find(system.potential, Harmonic)
        if harmonics:
            omega = functools.reduce(np.hypot, (np.asarray(h.omega, dtype=float) for h in harmonics))
            beta, center = list(omega / math.sqrt(2 * kappa)), list(harmonics[0].center)
        else:
            scale = cfg.scale if cfg.scale > 0 else 1.0
            beta, center = [1.0 / scale**2] * d, [0.0] * d
        return DetsConfig(**common, centers=[center], cusps=[], init_scales=[beta * (k * particles)] * n,
                          feature_scales=[float(np.sqrt(np.mean(beta)))] * n)
    coulombs = find(system.potential, Coulomb)
    centers = [c for term in coulombs for c in term.centers]
    charges = [q for term in coulombs for q in term.charges]
    total = sum(max(q, 0.0) for q in charges) or 1.0
    share = [max(q, 0.0) / total for q in charges]
    cusps = [q / ((d - 1) * kappa) if d > 1 else 0.0 for q in charges]
    cusps = [c if abs(c) >= MIN_DECAY else 0.0 for c in cusps]
    scales, features = [], []
    for state in range(n):
        row = []
        for _ in range(k):
            for count, offset in ((up, 0), (down, up)):
                for i in range(count):
                    shell = i + (state if i == count - 1 and offset == 0 else 0)
                    z_eff = max(total - 2 * i, 1.0)                               # two electrons per lower shell
                    a = 0.8 * z_eff / (2 * kappa * hydrogen_nu(shell, d))
                    a = 1.0 / cfg.scale if cfg.scale > 0 else a
                    row += [max(a * w, MIN_DECAY) for w in share]
        scales.append(row)
        features.append(max(0.8 * total / (2 * kappa * hydrogen_nu(0, d)), MIN_DECAY))
    return DetsConfig(**common, centers=centers, cusps=cusps, init_scales=scales, feature_scales=features)
