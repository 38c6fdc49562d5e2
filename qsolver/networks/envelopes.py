"""Envelopes: the factor of each state that fixes its asymptotics and boundary conditions, shared by every network.

Each kind is one object with the same members, so networks, proposals and extents call methods instead of
switching on the kind's name:
- ``exponential`` (Coulomb centres R_c): one particle e_l = Σ_c exp(-a_lc |x - R_c|); several particles
  ln e = Σ_i Σ_c φ(|x_i - R_c|), φ(r) = -a r - (k - a) ℓ r/(ℓ + r), ℓ = 1/|k|: the exact Kato slope -k at each
  nucleus for every learned decay a, and exp(-a r) far away;
- ``gaussian`` (traps, formulas): ln e = -½ Σ_i β_i (x_i - c_i)² per particle;
- ``box`` (infinite walls of sides L_i): w = Π_{particles, i} cos(π (x_i - c_i)/L_i), nothing learned;
- ``none``: e = 1 (the ICML paper's network), sampled by a fixed Gaussian.
Decays a and curvatures β are learned through their logarithms (``log_scale``). Jets are (value, ∂_1..∂_D, ∇²)
over the D coordinates of a configuration.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import InputError
from ..potentials import Box, Coulomb, Harmonic, find
from ..sampling import (ExponentialMixture, GaussianMixture, PairMixture, SingleParticle, UniformBox)

# p ∝ e^(2/PAIR_TAIL) per particle for products over particles: 2 would give the one-particle rule (tails twice as
# wide in the exponent); 4/3 keeps the importance weights of a pair of exponentials bounded with a larger effective
# sample fraction (the derivation is in docs/how-it-works.md)
PAIR_TAIL = 4.0 / 3.0
FLAT_SIGMA = 16.0        # bohr: the fixed Gaussian of a network without an envelope, unless the settings give one


class Exponential:
    name = "exponential"
    learned = True

    @staticmethod
    def inputs(x: torch.Tensor, centers: torch.Tensor, with_derivatives: bool, cusps: list[float] = ()
               ) -> torch.Tensor:
        """One particle's MLP inputs {x - R_c, |x - R_c|} as jets (B, d + 2, C(d + 1)), or values (B, C(d + 1)):
        the distances let the network form the cusps. With ``cusps`` (k_c per centre, built into the envelope) the
        smoothed distances ρ(r) = r²/(ℓ + r), ℓ = 1/k_c, instead: no kink at a nucleus, so g leaves the cusp exact."""
        n, d = x.shape
        dx = x[:, None, :] - centers[None]                             # (B, C, d)
        r = torch.linalg.vector_norm(dx, dim=-1, keepdim=True)          # (B, C, 1)
        if cusps:
            ell = 1.0 / torch.tensor(cusps, dtype=x.dtype, device=x.device)[None, :, None]
            slope_over_r = (r + 2 * ell) / (ell + r) ** 2                   # ρ'(r)/r, finite at the nucleus
            radial, unit, radial_lap = r**2 / (ell + r), dx * slope_over_r, 2 * ell**2 / (ell + r) ** 3 + \
                (d - 1) * slope_over_r
        else:
            radial, unit, radial_lap = r, dx / r, (d - 1) / r
        values = torch.cat([dx, radial], dim=-1).reshape(n, -1)
        if not with_derivatives:
            return values
        n_c = centers.shape[0]
        eye = torch.eye(d, dtype=x.dtype, device=x.device).expand(n, n_c, d, d)
        grads = torch.cat([eye, unit[..., None]], dim=-1)                # (B, C, d, d + 1)
        laps = torch.cat([torch.zeros_like(dx), radial_lap], dim=-1)      # (B, C, d + 1)
        grads = grads.permute(0, 2, 1, 3).reshape(n, d, -1)
        return torch.cat([values[:, None], grads, laps.reshape(n, 1, -1)], dim=1)

    @staticmethod
    def input_scales(log_scale: torch.Tensor, dimension: int) -> torch.Tensor:
        """Per-state multipliers a_lc of each centre's d + 1 inputs, (L, 1|B, C(d + 1))."""
        return torch.exp(log_scale).repeat_interleave(dimension + 1, dim=-1)

    @staticmethod
    def product(x: torch.Tensor, centers: torch.Tensor, log_scale: torch.Tensor, with_derivatives: bool,
                cusps: list[float] = ()):
        """e_l(x) = Σ_c exp(φ_lc(|x - R_c|)) for one particle x (B, d): jets (L, B, d + 2), or values (L, B); φ = -a r,
        or with ``cusps`` (one centre) φ = -a r - (k - a) ℓ r/(ℓ + r), ℓ = 1/k: slope -k at the nucleus (Kato's
        cusp, exact), decay a far out."""
        d = x.shape[1]
        a = torch.exp(log_scale)                                        # (L, 1, C)
        dx = x[:, None, :] - centers[None]                              # (B, C, d)
        r = torch.linalg.vector_norm(dx, dim=-1)[None]                  # (1, B, C)
        if cusps:
            k = torch.tensor(cusps, dtype=x.dtype, device=x.device)
            ell = 1.0 / k
            phi = -a * r - (k - a) * ell * r / (ell + r)
            slope, curv = -a - (k - a) * ell**2 / (ell + r) ** 2, 2 * (k - a) * ell**2 / (ell + r) ** 3
            e = torch.exp(phi)                                          # (L, B, C)
            if not with_derivatives:
                return e.sum(-1)
            grad = ((e * slope)[..., None] * (dx / r[0, ..., None])[None]).sum(2)
            lap = (e * (slope**2 + curv + (d - 1) * slope / r)).sum(-1)
            return torch.cat([e.sum(-1)[..., None], grad, lap[..., None]], dim=-1)
        e = torch.exp(-a * r)                                           # (L, B, C)
        if not with_derivatives:
            return e.sum(-1)
        grad = (-(a * e)[..., None] * (dx / r[0, ..., None])[None]).sum(2)  # (L, B, d)
        lap = (e * (a**2 - a * (d - 1) / r)).sum(-1)
        return torch.cat([e.sum(-1)[..., None], grad, lap[..., None]], dim=-1)

    @staticmethod
    def log_product(x: torch.Tensor, centers: torch.Tensor, cusps: torch.Tensor, log_scale: torch.Tensor,
                    with_derivatives: bool):
        """ln e = Σ_i Σ_c φ_ic(|x_i - R_c|) for configurations x (B, N, d), decays a (L, 1|B, N·C) per particle slot
        and centre: values (L, B); with derivatives also gradients (L, B, N·d) and Laplacians (L, B)."""
        n, particles, d = x.shape
        dx = x[:, :, None, :] - centers[None, None]                     # (B, N, C, d)
        r = torch.linalg.vector_norm(dx, dim=-1)                        # (B, N, C)
        k = cusps
        ell = 1.0 / torch.where(k == 0, torch.ones_like(k), k.abs())
        a = torch.exp(log_scale).reshape(log_scale.shape[0], log_scale.shape[1], particles, -1)   # (L, 1|B, N, C)
        value = (-a * r[None] - (k - a) * ell * r[None] / (ell + r[None])).sum((-1, -2))
        if not with_derivatives:
            return value
        slope = -a - (k - a) * ell**2 / (ell + r[None]) ** 2                   # φ'(r)
        curv = 2 * (k - a) * ell**2 / (ell + r[None]) ** 3                    # φ''(r)
        unit = dx / r[..., None]
        grad = (slope[..., None] * unit[None]).sum(-2).reshape(a.shape[0], n, particles * d)
        lap = (curv + (d - 1) * slope / r[None]).sum((-1, -2))
        return value, grad, lap

    @staticmethod
    def density(centers: torch.Tensor, log_scale: torch.Tensor, dimension: int) -> ExponentialMixture:
        """One component per state and centre with tails twice as wide in the exponent as ψ² (weights ψ²/p bounded),
        weighted ∝ a^(d-1): a hydrogen-like shell holds ∝ ν^(d-1) states of decay a ∝ 1/ν, so every shell gets a
        similar share of the samples (equal weights starve the compact low states)."""
        states = log_scale.shape[0]
        # normalised in log space: a^(d-1) itself overflows (or underflows) for extreme decays
        weights = torch.softmax((dimension - 1) * log_scale.reshape(-1), 0).to(centers.dtype)
        return ExponentialMixture(centers.repeat(states, 1), 1.0 / torch.exp(log_scale).to(centers.dtype).reshape(-1),
                                  weights)

    @staticmethod
    def pair_density(centers: torch.Tensor, log_scale: torch.Tensor) -> PairMixture:
        """Far from the nuclei ψ decays like exp(-A r) per particle slot, A = Σ_c a_c: each centre's component decays
        like exp(-2A r/PAIR_TAIL)."""
        scales = torch.exp(log_scale).to(centers.dtype).reshape(log_scale.shape[0], 2, -1)
        return PairMixture(centers, PAIR_TAIL / (2 * scales.sum(-1)))

    @staticmethod
    def reach(centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Half-width (bohr, per axis) beyond the centres that holds the states: 6/a for the slowest decay."""
        return np.full(centers.shape[1], 6.0 / scales.min())

    @staticmethod
    def length_unit(scales: list[float]) -> float:
        return 1.0 / max(scales)


class Gaussian:
    name = "gaussian"
    learned = True

    @staticmethod
    def inputs(x: torch.Tensor, centers: torch.Tensor, with_derivatives: bool) -> torch.Tensor:
        return _offsets(x, centers, with_derivatives)

    @staticmethod
    def input_scales(log_scale: torch.Tensor, dimension: int) -> torch.Tensor:
        """√β_l: each state's inputs in its own length unit, (L, 1|B, d)."""
        return torch.exp(0.5 * log_scale)

    @staticmethod
    def product(x: torch.Tensor, centers: torch.Tensor, log_scale: torch.Tensor, with_derivatives: bool):
        """e_l(x) = exp(-½ Σ_i β_li (x_i - c_i)²) for one particle x (B, d): jets (L, B, d + 2), or values (L, B)."""
        beta = torch.exp(log_scale)                                     # (L, 1, d)
        dx = x - centers[0]                                             # (B, d)
        e = torch.exp(-0.5 * (beta * dx[None] ** 2).sum(-1))
        if not with_derivatives:
            return e
        grad = -beta * dx[None] * e[..., None]
        lap = e * ((beta * dx[None]) ** 2 - beta).sum(-1)
        return torch.cat([e[..., None], grad, lap[..., None]], dim=-1)

    @staticmethod
    def log_product(x: torch.Tensor, centers: torch.Tensor, cusps: torch.Tensor, log_scale: torch.Tensor,
                    with_derivatives: bool):
        """ln e = -½ Σ_i Σ_a β_ia (x_ia - c_a)² for configurations (B, N, d), curvatures (L, 1|B, N·d)."""
        n, particles, d = x.shape
        scales = torch.exp(log_scale).reshape(log_scale.shape[0], log_scale.shape[1], particles, -1)   # (L, ·, N, d)
        dx = x - centers[0]                                             # (B, N, d)
        value = -0.5 * (scales * dx[None] ** 2).sum((-1, -2))
        if not with_derivatives:
            return value
        grad = (-scales * dx[None]).reshape(scales.shape[0], n, particles * d)
        lap = -scales.sum((-1, -2)).expand(-1, n)
        return value, grad, lap

    @staticmethod
    def density(centers: torch.Tensor, log_scale: torch.Tensor, dimension: int) -> GaussianMixture:
        """One Gaussian per state with the variance of its envelope squared times two: σ = 1/√β."""
        return GaussianMixture(centers.expand(log_scale.shape[0], -1),
                               1.0 / torch.sqrt(torch.exp(log_scale).to(centers.dtype)))

    @staticmethod
    def pair_density(centers: torch.Tensor, log_scale: torch.Tensor) -> PairMixture:
        """p like exp(-β x²/PAIR_TAIL) per particle slot."""
        scales = torch.exp(log_scale).to(centers.dtype).reshape(log_scale.shape[0], 2, -1)
        return PairMixture(centers[:1], torch.sqrt(PAIR_TAIL / (2 * scales)), kind="gaussian")

    @staticmethod
    def reach(centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """4/√β per axis for the widest state."""
        return 4.0 / np.sqrt(scales.min(0))

    @staticmethod
    def length_unit(scales: list[float]) -> float:
        return 1.0 / math.sqrt(max(scales))


class Walls:
    """The box: w vanishes on the walls; the MLP's inputs are 2(x - c)/L."""

    name = "box"
    learned = False

    @staticmethod
    def inputs(x: torch.Tensor, centers: torch.Tensor, with_derivatives: bool) -> torch.Tensor:
        return _offsets(x, centers, with_derivatives)

    @staticmethod
    def input_scales(lengths: torch.Tensor, states: int) -> torch.Tensor:
        return (2.0 / lengths).expand(states, 1, -1)

    @staticmethod
    def walls(x: torch.Tensor, center: torch.Tensor, lengths: torch.Tensor, with_derivatives: bool):
        """w = Π_{p,i} cos(k_i (x_pi - c_i)), k_i = π/L_i, for configurations (B, N, d): values (B,); with derivatives
        also gradients (B, N·d), ∂w/∂x_pi = -k_i sin(·) Π_{others} cos (no division: w vanishes on the walls), and
        Laplacians -N Σ_i k_i² w."""
        k = torch.pi / lengths
        phase = (k * (x - center)).reshape(x.shape[0], -1)                         # (B, N·d)
        cos = torch.cos(phase)
        w = cos.prod(-1)
        if not with_derivatives:
            return w
        k_all = k.repeat(x.shape[1])
        others = torch.stack([torch.cat([cos[:, :j], cos[:, j + 1:]], 1).prod(-1) for j in range(cos.shape[1])], -1)
        return w, -k_all * torch.sin(phase) * others, -(k_all**2).sum() * w

    @staticmethod
    def density(center: torch.Tensor, lengths: torch.Tensor) -> UniformBox:
        return UniformBox(center, lengths)

    @staticmethod
    def pair_density(centers: torch.Tensor, lengths: torch.Tensor) -> PairMixture:
        return PairMixture(centers[:1], lengths.expand(1, 2, -1), kind="box")

    @staticmethod
    def length_unit(lengths: list[float]) -> float:
        """Half the shortest side (the inputs are 2(x - c)/L)."""
        return 0.5 * min(lengths)


class Flat:
    """No envelope: e = 1, inputs x - c (or their random Fourier features); sampled by a fixed Gaussian."""

    name = "none"
    learned = False

    @staticmethod
    def inputs(x: torch.Tensor, centers: torch.Tensor, with_derivatives: bool) -> torch.Tensor:
        return _offsets(x, centers, with_derivatives)

    @staticmethod
    def density(center: torch.Tensor, sigma: float | None) -> GaussianMixture:
        return GaussianMixture(center, torch.full_like(center, sigma or FLAT_SIGMA))

    @staticmethod
    def length_unit(scales: list[float]) -> float:
        return 1.0


ENVELOPES = {kind.name: kind for kind in (Exponential, Gaussian, Walls, Flat)}


def _offsets(x: torch.Tensor, centers: torch.Tensor, with_derivatives: bool) -> torch.Tensor:
    """x - c as jets (B, d + 2, d) (unit gradients, no Laplacian), or values (B, d)."""
    n, d = x.shape
    dx = x - centers[0]
    if not with_derivatives:
        return dx
    eye = torch.eye(d, dtype=x.dtype, device=x.device).expand(n, d, d)
    zero = torch.zeros(n, 1, d, dtype=x.dtype, device=x.device)
    return torch.cat([dx[:, None, :], eye, zero], dim=1)


def choose_envelope(system, setting: str, allowed: tuple[str, ...]) -> str:
    """The envelope for ``system``: with "auto" the walls of a box, Gaussian for traps and formulas, exponential for
    Coulomb centres alone; a setting outside ``allowed``, or the box without (or other than for) a box potential,
    is refused naming the field."""
    pot = system.potential
    boxes, harmonics, coulombs = find(pot, Box), find(pot, Harmonic), find(pot, Coulomb)
    if setting == "auto":
        return "box" if boxes else "gaussian" if harmonics or not coulombs else "exponential"
    if setting not in allowed:
        raise InputError(f"this network takes the envelopes {', '.join(allowed)}, not '{setting}'",
                         source=system.source, field="envelope")
    if (setting == "box") != bool(boxes) and (setting == "box" or "none" not in allowed):
        raise InputError("the box envelope is for (and, with several particles, required by) a box potential",
                         source=system.source, field="envelope")
    return setting


def one_particle_density(envelope: str, centers: torch.Tensor, log_scale: torch.Tensor | None,
                         lengths: torch.Tensor | None, dimension: int, fixed_scale: float | None):
    """The sampling density of one particle matched to its envelope, or a fixed Gaussian of ``fixed_scale`` bohr,
    as configurations (B, 1, d)."""
    kind = ENVELOPES[envelope]
    if fixed_scale is not None or kind is Flat:
        return SingleParticle(Flat.density(centers[:1], fixed_scale))
    if kind is Walls:
        return SingleParticle(Walls.density(centers[0], lengths))
    return SingleParticle(kind.density(centers, log_scale, dimension))
