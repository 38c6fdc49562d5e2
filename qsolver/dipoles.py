"""Transition dipoles and oscillator strengths of the Ritz states, on the samples of a Rayleigh–Ritz estimate.

With x ~ p and f_l = ψ_l/√p (as for S_lm = mean(f_l f_m)), D_lm = mean(f_l f_m X) estimates ⟨ψ_l|X|ψ_m⟩, where
X = Σ_k x_k sums the coordinates of all particles (bohr; a vector over the d axes; the electrons' charge -1 drops
out of every |d|²). The Ritz states φ_i = Σ_m ψ_m C_mi then have d_ij = (Cᵀ D C)_ij / √(n_i n_j), n_i = (Cᵀ S C)_ii
(1 on the samples that gave C; on fresh samples it removes their Monte Carlo error of the norm).

Oscillator strength (dimensionless) of i → j for H = -κ Σ_k ∇_k² + V (mass m = 1/(2κ)) in d dimensions:
    f_ij = (E_j - E_i) |d_ij|² / (κ d) = (2m/d) ΔE |d_ij|²        (3D, κ = ½: f = (2/3) ΔE |d|²),
normalised by the Thomas–Reiche–Kuhn sum rule Σ_j f_ij = N over the whole spectrum: per axis a,
[H, X_a] = -2κ Σ_k ∂_{k,a}, so Σ_j (E_j - E_i) |⟨i|X_a|j⟩|² = ½ ⟨i|[X_a, [H, X_a]]|i⟩ = κN, and d axes give κNd.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .parallel import Comm, draw

HARTREE_EV = 27.211386245988     # eV per hartree (CODATA 2018)


@dataclass
class Dipoles:
    """d_ij of the Ritz states (bohr), their jackknife standard errors and the delete-one-block replicates."""

    values: np.ndarray        # (L, L, d)
    errors: np.ndarray        # (L, L, d)
    replicates: np.ndarray    # (blocks, L, L, d): the estimate without each block in turn

    def first(self, n: int) -> Dipoles:
        """The dipoles among the first ``n`` states (the reported ones of a span with extra networks)."""
        return Dipoles(self.values[:n, :n], self.errors[:n, :n], self.replicates[:, :n, :n])


def dipole_sums(f: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """Σ_samples f_l f_m X (L, L, d) over a chunk: f = ψ/√p (B, L), configurations x (B, N, d)."""
    total = x.sum(1).to(f.dtype)
    return torch.stack([(f * total[:, k:k + 1]).T @ f for k in range(total.shape[1])], -1).cpu().numpy()


def _state_dipoles(vectors: np.ndarray, s: np.ndarray, d: np.ndarray) -> np.ndarray:
    """d_ij = (Cᵀ D C)_ij / √(n_i n_j) from S (L, L) and D (L, L, d); nan for a state of zero norm."""
    with np.errstate(divide="ignore", invalid="ignore"):
        norms = np.sqrt(((s @ vectors) * vectors).sum(0))
        rotated = vectors.T @ np.moveaxis(d, -1, 0) @ vectors          # per axis: O(L³), not einsum's O(L⁴)
        return np.moveaxis(rotated, 0, -1) / np.outer(norms, norms)[..., None]


def transition_dipoles(vectors: np.ndarray, s_blocks: np.ndarray, d_blocks: np.ndarray) -> Dipoles:
    """The Ritz states' dipoles from block means S_b (blocks, L, L) and D_b (blocks, L, L, d) of equal-sized blocks,
    with delete-one-block jackknife errors. The Ritz vectors are held fixed (as for ⟨Ŝ²⟩ in
    :func:`qsolver.estimation.spin_of_states`): re-solved per replicate they would rotate the states inside a
    degenerate level at random, and the per-state dipoles with them; the noise of the vectors themselves (mixing
    of levels, of order noise/gap) is not in the error."""
    n = len(s_blocks)
    s_all, d_all = s_blocks.sum(0), d_blocks.sum(0)
    values = _state_dipoles(vectors, s_all / n, d_all / n)
    replicates = np.stack([_state_dipoles(vectors, (s_all - s_blocks[b]) / (n - 1), (d_all - d_blocks[b]) / (n - 1))
                           for b in range(n)])
    errors = np.sqrt((n - 1) / n * ((replicates - replicates.mean(0)) ** 2).sum(0))
    return Dipoles(values, errors, replicates)


def oscillator_strengths(energies: np.ndarray, dipoles: np.ndarray, kinetic: float) -> np.ndarray:
    """f_ij = (E_j - E_i) |d_ij|² / (κ d) (see the module docstring) for dipoles (..., L, L, d); negative for
    emission (E_j < E_i), as the sum rule counts it."""
    e = np.asarray(energies, dtype=float)
    return (e[None, :] - e[:, None]) * (dipoles**2).sum(-1) / (kinetic * dipoles.shape[-1])


def level_strengths(energies: np.ndarray, dipoles: np.ndarray, groups: np.ndarray, kinetic: float) -> np.ndarray:
    """Oscillator strengths between levels (..., G, G): f_GH = (Ē_H - Ē_G) Σ_{i∈G, j∈H} |d_ij|² / (κ d |G|), summed
    over the final level's states and averaged over the initial level's, with Ē a level's mean energy.
    Σ_{i∈G, j∈H} |d_ij|² = ‖P_G X P_H‖² does not depend on the basis inside either level (nor, with the mean energies,
    does f_GH), so neither does the result; for one-state levels it is f_ij."""
    labels, index = np.unique(np.asarray(groups), return_inverse=True)
    member = np.zeros((len(index), len(labels)))
    member[np.arange(len(index)), index] = 1.0
    size = member.sum(0)
    level = (member.T @ np.asarray(energies, dtype=float)) / size
    squared = member.T @ (dipoles**2).sum(-1) @ member
    return (level[None, :] - level[:, None]) * squared / (kinetic * dipoles.shape[-1] * size[:, None])


def jackknife_error(replicates: np.ndarray) -> np.ndarray:
    """Standard error from delete-one-block replicates (blocks, ...): √((n-1)/n Σ_b (r_b - r̄)²)."""
    n = len(replicates)
    return np.sqrt((n - 1) / n * ((replicates - replicates.mean(0)) ** 2).sum(0))


def transitions(energies: np.ndarray, dipoles: Dipoles, kinetic: float) -> dict[str, np.ndarray]:
    """What a result stores: the states' dipoles (bohr), their errors and replicates, and f_ij with its errors."""
    strengths = oscillator_strengths(energies, dipoles.replicates, kinetic)
    return {"dipoles": dipoles.values, "dipole_errors": dipoles.errors, "dipole_replicates": dipoles.replicates,
            "oscillator_strengths": oscillator_strengths(energies, dipoles.values, kinetic),
            "oscillator_strength_errors": jackknife_error(strengths)}


def sample_dipoles(model: torch.nn.Module, proposal, vectors: np.ndarray, samples: int, blocks: int,
                   gen: torch.Generator, chunk: int = 4096, comm: Comm = Comm()) -> Dipoles:
    """The dipoles of the states φ_i = Σ_m ψ_m C_mi (``vectors`` C) of ``model`` (a network, or any module mapping
    configurations (B, N, d) to ψ (B, L)) on ``samples`` fresh samples of ``proposal`` in ``blocks`` jackknife
    blocks: forward passes only, for a saved result (whose Ritz vectors are kept)."""
    weight = next(model.parameters(), None)
    dtype = weight.dtype if weight is not None else torch.float64
    per_block = max(1, samples // blocks // comm.world)
    n_states = vectors.shape[0]
    s_blocks, d_blocks = np.zeros((blocks, n_states, n_states)), None
    with torch.no_grad():
        for b in range(blocks):
            done = 0
            while done < per_block:
                n = min(chunk, per_block - done)
                x = draw(proposal, n, gen, comm)
                f = model(x.to(dtype)) * torch.exp(-0.5 * proposal.log_prob(x)).to(dtype)[:, None]
                sums = dipole_sums(f, x)
                if d_blocks is None:
                    d_blocks = np.zeros((blocks,) + sums.shape)
                s_blocks[b] += (f.T @ f).cpu().numpy()
                d_blocks[b] += sums
                done += n
    if comm.world > 1:
        s_blocks, d_blocks = (comm.sum(torch.from_numpy(a)).numpy() for a in (s_blocks, d_blocks))
        per_block *= comm.world
    return transition_dipoles(vectors, s_blocks / per_block, d_blocks / per_block)
