"""Rayleigh–Ritz on the learned span, with jackknife error bars.

With fresh samples x ~ p and w = 1/p, S_lm = mean(w ψ_l ψ_m) and H_lm = mean(w ψ_l (Hψ)_m) estimate
⟨ψ_l,ψ_m⟩ and ⟨ψ_l,H ψ_m⟩; the Ritz values solve H v = E S v. H is symmetrised, ½(H + Hᵀ), so the Ritz vectors come
out S-orthonormal; if the span is invariant under H the error this leaves in the Ritz values is second
order in the sampling noise of S (near zero-variance), so the statistical error shrinks with the error
of the learned span. Ritz values bound the exact levels from above
(Hylleraas–Undheim–MacDonald) up to that statistical error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RitzSolution:
    energies: np.ndarray      # (L,) ascending, hartree
    vectors: np.ndarray       # (L, L): column i gives state i as Σ_m ψ_m v_mi, normalised in the S metric


def rayleigh_ritz(s: np.ndarray, h: np.ndarray, rcond: float = 1e-12) -> RitzSolution:
    """Solve H v = E S v by canonical orthogonalisation (directions of S below rcond·max are dropped)."""
    s, h = 0.5 * (s + s.T), 0.5 * (h + h.T)
    evals, evecs = np.linalg.eigh(s)
    keep = evals > rcond * evals.max()
    x = evecs[:, keep] / np.sqrt(evals[keep])
    e, y = np.linalg.eigh(x.T @ h @ x)
    v = x @ y
    energies = np.full(s.shape[0], np.nan)
    energies[: keep.sum()] = e
    vectors = np.zeros_like(s)
    vectors[:, : keep.sum()] = v
    return RitzSolution(energies, vectors)


def jackknife_ritz(s_blocks: np.ndarray, h_blocks: np.ndarray) -> tuple[RitzSolution, np.ndarray]:
    """Ritz solution from block sums (n_blocks, L, L) and delete-one-block jackknife standard errors."""
    n = s_blocks.shape[0]
    s_all, h_all = s_blocks.sum(0), h_blocks.sum(0)
    full = rayleigh_ritz(s_all / n, h_all / n)
    reps = np.stack([rayleigh_ritz((s_all - s_blocks[b]) / (n - 1), (h_all - h_blocks[b]) / (n - 1)).energies
                     for b in range(n)])
    errors = np.sqrt((n - 1) / n * ((reps - reps.mean(0)) ** 2).sum(0))
    return full, errors
