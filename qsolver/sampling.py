"""Monte Carlo proposals with exact, normalised densities p(x) (x in bohr, p in bohr^-d).

Batch means of ψ_l ψ_m / p are then unbiased Lebesgue inner products ⟨ψ_l, ψ_m⟩. Three families:
- exponential mixtures, p(x) = Σ_k w_k exp(-|x - c_k|/s_k) / (S_{d-1} Γ(d) s_k^d), whose tails match
  bound states of Coulomb-like potentials (S_{d-1} = 2π^{d/2}/Γ(d/2) is the area of the unit sphere);
- Gaussian mixtures with diagonal covariances, for confining potentials;
- the uniform density on a box;
and, for two particles, mixtures of symmetrised products of such densities (exact, normalised in 2d dimensions
and symmetric under exchange); :class:`Blend` mixes two proposals.
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import torch


def _log_sphere_area(d: int) -> float:
    return math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)


def _radial_exponential(centers: torch.Tensor, scales: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One point per row of centres (n, d) from the radial exponential density of scale ``scales`` (n,):
    |x - c| ~ Gamma(d, s), a sum of d unit exponentials scaled, in a uniformly random direction."""
    n, d = centers.shape
    opts = dict(dtype=centers.dtype, device=centers.device)
    u = torch.rand(n, d, generator=generator, **opts).clamp_min(torch.finfo(centers.dtype).tiny)
    radius = -torch.log(u).sum(-1) * scales
    direction = torch.randn(n, d, generator=generator, **opts)
    direction = direction / torch.linalg.vector_norm(direction, dim=-1, keepdim=True)
    return centers + radius[:, None] * direction


def _log_radial(dist: torch.Tensor, scales: torch.Tensor, d: int) -> torch.Tensor:
    """log of exp(-r/s) / (S_{d-1} Γ(d) s^d) at distances r (broadcast against the scales s)."""
    return -dist / scales - (_log_sphere_area(d) + math.lgamma(d) + d * torch.log(scales))


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
        # NaN weights (a step that left the log-scales non-finite) draw uniformly: the samples, NaN themselves, then
        # reach the training loop's divergence check and its rewind instead of raising inside multinomial
        pick = torch.multinomial(torch.nan_to_num(self._weights(), nan=1.0), n, replacement=True, generator=generator)
        return _radial_exponential(self.centers[pick], self.scales[pick], generator)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        k, d = self.centers.shape
        dist = torch.linalg.vector_norm(x[:, None, :] - self.centers[None], dim=-1)
        return torch.logsumexp(_log_radial(dist, self.scales, d) + torch.log(self._weights()), dim=-1)


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
class PairMixture:
    """p(x_1, x_2) = (1/K) Σ_k ½ [g_k1(x_1) g_k2(x_2) + g_k2(x_1) g_k1(x_2)] for configurations (B, 2, d): one
    symmetrised product per pair of one-particle densities (a state's inner and outer particle). Each g_ks is an
    equal-weight mixture over the centres R_c (C, d) of radial exponentials of scale ``scales[k, s]`` (bohr); with
    ``kind = "gaussian"`` one Gaussian at R_0 of standard deviations ``scales[k, s]`` (d,); with ``"box"`` the
    uniform density on the box R_0 ± scales[k, s]/2."""

    centers: torch.Tensor
    scales: torch.Tensor            # (K, 2) exponential scales, or (K, 2, d) standard deviations or box sides
    kind: str = "exponential"

    def _one(self, slot_scales: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, d = slot_scales.shape[0], self.centers.shape[1]
        opts = dict(dtype=self.centers.dtype, device=self.centers.device)
        if self.kind == "gaussian":
            return self.centers[0] + torch.randn(n, d, generator=generator, **opts) * slot_scales
        if self.kind == "box":
            return self.centers[0] + (torch.rand(n, d, generator=generator, **opts) - 0.5) * slot_scales
        pick = torch.randint(self.centers.shape[0], (n,), generator=generator, device=self.centers.device)
        return _radial_exponential(self.centers[pick], slot_scales, generator)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        pair = torch.randint(self.scales.shape[0], (n,), generator=generator, device=self.centers.device)
        x = torch.stack([self._one(self.scales[pair, 0], generator), self._one(self.scales[pair, 1], generator)], 1)
        swap = torch.rand(n, generator=generator, dtype=self.centers.dtype, device=self.centers.device) < 0.5
        return torch.where(swap[:, None, None], x.flip(1), x)

    def _log_one(self, x: torch.Tensor) -> torch.Tensor:
        """log g_ks(x) for points x (N, d): (N, K, 2)."""
        d = x.shape[-1]
        if self.kind == "box":
            inside = ((x[:, None, None, :] - self.centers[0]).abs() <= 0.5 * self.scales[None]).all(-1)
            return torch.where(inside, -torch.log(self.scales).sum(-1), -torch.inf)
        if self.kind == "gaussian":
            z = (x[:, None, None, :] - self.centers[0]) / self.scales[None]
            return -0.5 * (z**2).sum(-1) - torch.log(self.scales).sum(-1) - 0.5 * d * math.log(2 * math.pi)
        dist = torch.linalg.vector_norm(x[:, None, :] - self.centers[None], dim=-1)          # (N, C)
        log_q = _log_radial(dist[:, None, None, :], self.scales[None, :, :, None], d)       # (N, K, 2, C)
        return torch.logsumexp(log_q, dim=-1) - math.log(self.centers.shape[0])

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self._log_one(x[:, 0]), self._log_one(x[:, 1])                                # (N, K, 2)
        direct, crossed = a[..., 0] + b[..., 1], a[..., 1] + b[..., 0]
        both = torch.logaddexp(direct, crossed) - math.log(2.0)
        return torch.logsumexp(both, dim=-1) - math.log(self.scales.shape[0])


@dataclass
class SingleParticle:
    """A one-particle density over configurations (B, 1, d) of one particle."""

    density: ExponentialMixture | GaussianMixture | UniformBox

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.density.sample(n, generator)[:, None, :]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.density.log_prob(x[:, 0])


@dataclass
class IndependentElectrons:
    """p(x) = Π_j q(x_j) over configurations (B, N, d): every particle drawn independently from one density q,
    exact, normalised in N·d dimensions and symmetric under every permutation of the particles."""

    density: ExponentialMixture | GaussianMixture
    particles: int

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.density.sample(n * self.particles, generator).reshape(n, self.particles, -1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.density.log_prob(x.reshape(-1, x.shape[-1])).reshape(x.shape[:2]).sum(1)


@functools.lru_cache(maxsize=16)   # asked for at every step's log-density
def _permutations(n: int, device) -> torch.Tensor:
    """All n! orderings of range(n), (n!, n)."""
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.long, device=device).reshape(-1, n)


@dataclass
class SlotProducts:
    """p(x) = Σ_k w_k Π_b (1/n_b!) Σ_{σ ∈ S(n_b)} Π_{i ∈ b} g_ki(x_σ(i)) over configurations (B, N, d): a mixture
    of products of one-electron densities g_ki, one per slot i (an orbital's), symmetrised over the electrons of
    each spin block b (the first ``spins[0]`` electrons, then the rest). Exact, normalised in N·d dimensions and
    symmetric under every same-spin exchange, like |ψ|²; unlike independent electrons it keeps "two electrons in
    the core, one outside" together. Each g_ki is a mixture over the centres R_c (C, d) with weights
    ``weights[k, i]`` (C,) of radial exponentials of scale ``scales[k, i]`` (C,) (bohr), or with ``kind =
    "gaussian"`` one Gaussian at R_0 of standard deviations ``scales[k, i]`` (d,)."""

    centers: torch.Tensor
    scales: torch.Tensor             # (K, N, C) exponential scales or (K, N, d) standard deviations
    weights: torch.Tensor            # (K,) component weights summing to one
    spins: tuple[int, int]
    centre_weights: torch.Tensor | None = None     # (K, N, C), each row summing to one (exponential kind)
    kind: str = "exponential"

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        k, slots = self.scales.shape[:2]
        opts = dict(dtype=self.centers.dtype, device=self.centers.device)
        # NaN weights (non-finite envelopes) draw uniformly; the NaN samples then reach the divergence check
        pick = torch.multinomial(torch.nan_to_num(self.weights, nan=1.0), n, replacement=True, generator=generator)
        scales = self.scales[pick].reshape(n * slots, -1)
        if self.kind == "gaussian":
            x = self.centers[0] + torch.randn(n * slots, scales.shape[-1], generator=generator, **opts) * scales
        else:
            rows = torch.nan_to_num(self.centre_weights[pick].reshape(n * slots, -1), nan=1.0)
            centre = torch.multinomial(rows, 1, generator=generator)[:, 0]
            x = _radial_exponential(self.centers[centre], scales.gather(1, centre[:, None])[:, 0], generator)
        x = x.reshape(n, slots, -1)
        up = self.spins[0]
        order = torch.cat([torch.rand(n, up, generator=generator, **opts).argsort(1),
                           up + torch.rand(n, slots - up, generator=generator, **opts).argsort(1)], 1)
        return x.gather(1, order[..., None].expand_as(x))     # a random order of the slots within each spin block

    def _log_slots(self, x: torch.Tensor) -> torch.Tensor:
        """log g_ki(x_j) for every component k, slot i and electron j: (B, K, N, N)."""
        d = x.shape[-1]
        if self.kind == "gaussian":
            z = (x[:, None, None, :, :] - self.centers[0]) / self.scales[None, :, :, None, :]
            return (-0.5 * (z**2).sum(-1) - torch.log(self.scales).sum(-1)[None, :, :, None]
                    - 0.5 * d * math.log(2 * math.pi))
        dist = torch.linalg.vector_norm(x[:, :, None, :] - self.centers, dim=-1)          # (B, N, C)
        log_q = _log_radial(dist[:, None, None], self.scales[None, :, :, None], d)       # (B, K, N_slot, N, C)
        return torch.logsumexp(log_q + torch.log(self.centre_weights)[None, :, :, None], dim=-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        log_g = self._log_slots(x)
        total = torch.log(self.weights)
        for start, count in ((0, self.spins[0]), (self.spins[0], self.spins[1])):
            if count == 0:
                continue
            block = log_g[:, :, start:start + count, start:start + count]                 # (B, K, n, n)
            perms = _permutations(count, x.device)                                        # (P, n)
            slot = torch.arange(count, device=x.device)
            terms = block[:, :, slot, perms].sum(-1)                                      # (B, K, P)
            total = total + torch.logsumexp(terms, dim=-1) - math.lgamma(count + 1)
        return torch.logsumexp(total, dim=-1)


@dataclass
class Blend:
    """p = a p_1 + (1 - a) p_2 for two normalised proposals over the same configurations and a share a in (0, 1):
    normalised, and ψ²/p ≤ (ψ²/p_1)/a wherever p_1 bounds the importance weights."""

    first: "Proposal"
    second: "Proposal"
    share: float

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        pick = torch.rand(n, generator=generator, device=generator.device) < self.share
        x = None
        for member, mine in ((self.first, pick), (self.second, ~pick)):
            count = int(mine.sum())
            if count:                   # a member's sampler refuses zero samples
                part = member.sample(count, generator)
                x = part.new_empty((n, *part.shape[1:])) if x is None else x
                x[mine] = part
        return x

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logaddexp(self.first.log_prob(x) + math.log(self.share),
                               self.second.log_prob(x) + math.log1p(-self.share))


Proposal = SingleParticle | PairMixture | IndependentElectrons | SlotProducts | Blend
