"""Monte Carlo proposals with exact, normalised densities p(x) (x in bohr, p in bohr^-d).

Batch means of ψ_l ψ_m / p are then unbiased Lebesgue inner products ⟨ψ_l, ψ_m⟩. Three families:
- exponential mixtures, p(x) = Σ_k w_k exp(-|x - c_k|/s_k) / (S_{d-1} Γ(d) s_k^d), whose tails match
  bound states of Coulomb-like potentials (S_{d-1} = 2π^{d/2}/Γ(d/2) is the area of the unit sphere);
- Gaussian mixtures with diagonal covariances, for confining potentials;
- the uniform density on a box;
and, for two particles, the product p(x_1, x_2) = q(x_1) q(x_2) of one such density (exact, normalised in 2d
dimensions and symmetric under exchange).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def _log_sphere_area(d: int) -> float:
    return math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)


@dataclass
class ExponentialMixture:
    """Mixture of radial exponential densities with centres (K, d), scales (K,) and weights (K,) summing
    to one (equal weights when None)."""

    centers: torch.Tensor
    scales: torch.Tensor
    weights: torch.Tensor | None = None

    def _weights(self) -> torch.Tensor:
        k = self.centers.shape[0]
        if self.weights is None:
            return torch.full((k,), 1.0 / k, dtype=self.centers.dtype, device=self.centers.device)
        return self.weights

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        k, d = self.centers.shape
        opts = dict(dtype=self.centers.dtype, device=self.centers.device)
        pick = torch.multinomial(self._weights(), n, replacement=True, generator=generator)
        # |x - c| ~ Gamma(d, s): a sum of d unit exponentials, scaled
        u = torch.rand(n, d, generator=generator, **opts).clamp_min(torch.finfo(self.centers.dtype).tiny)
        radius = -torch.log(u).sum(-1) * self.scales[pick]
        direction = torch.randn(n, d, generator=generator, **opts)
        direction = direction / torch.linalg.vector_norm(direction, dim=-1, keepdim=True)
        return self.centers[pick] + radius[:, None] * direction

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        k, d = self.centers.shape
        dist = torch.linalg.vector_norm(x[:, None, :] - self.centers[None], dim=-1)
        log_norm = _log_sphere_area(d) + math.lgamma(d) + d * torch.log(self.scales)
        return torch.logsumexp(-dist / self.scales - log_norm + torch.log(self._weights()), dim=-1)


@dataclass
class GaussianMixture:
    """Equal-weight mixture of Gaussians with centres (K, d) and standard deviations (K, d)."""

    centers: torch.Tensor
    sigmas: torch.Tensor

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        k, d = self.centers.shape
        pick = torch.randint(k, (n,), generator=generator, device=self.centers.device)
        z = torch.randn(n, d, generator=generator, dtype=self.centers.dtype, device=self.centers.device)
        return self.centers[pick] + z * self.sigmas[pick]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        k, d = self.centers.shape
        z = (x[:, None, :] - self.centers[None]) / self.sigmas[None]
        log_q = -0.5 * (z**2).sum(-1) - torch.log(self.sigmas).sum(-1) - 0.5 * d * math.log(2 * math.pi)
        return torch.logsumexp(log_q, dim=-1) - math.log(k)


@dataclass
class UniformBox:
    """Uniform density on the box center ± lengths/2."""

    center: torch.Tensor
    lengths: torch.Tensor

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(n, self.center.shape[0], generator=generator, dtype=self.center.dtype,
                       device=self.center.device)
        return self.center + (u - 0.5) * self.lengths

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full(x.shape[:1], -float(torch.log(self.lengths).sum()), dtype=x.dtype, device=x.device)


@dataclass
class PairProduct:
    """p(x_1, x_2) = q(x_1) q(x_2) for configurations (B, 2, d), with q a one-particle proposal."""

    one: ExponentialMixture | GaussianMixture

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        x = self.one.sample(2 * n, generator)
        return x.reshape(n, 2, x.shape[-1])

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.one.log_prob(x.reshape(-1, x.shape[-1])).reshape(x.shape[0], 2).sum(1)


Proposal = ExponentialMixture | GaussianMixture | UniformBox | PairProduct
