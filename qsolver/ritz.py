"""Rayleigh–Ritz on the learned span, with jackknife error bars.

With fresh samples x ~ p and w = 1/p, S_lm = mean(w ψ_l ψ_m) and H_lm = mean(w ψ_l (Hψ)_m) estimate
⟨ψ_l,ψ_m⟩ and ⟨ψ_l,H ψ_m⟩; the Ritz values solve H v = E S v. H is symmetrised, ½(H + Hᵀ), so the Ritz vectors come
out S-orthonormal; if the span is invariant under H the error this leaves in the Ritz values is second
order in the sampling noise of S (near zero-variance), so the statistical error shrinks with the error
of the learned span. Ritz values bound the exact levels from above
(Hylleraas–Undheim–MacDonald) up to that statistical error. Where the trained operator carries a spin shift
λ(Ŝ² - S(S+1)) ≥ 0, the Ritz states are those of the shifted operator and each one's energy is ⟨H⟩ without the
shift (:func:`jackknife_ritz`): lower than its Ritz value by λ(⟨Ŝ²⟩ - S(S+1)), the share of other spins it holds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESIDUAL_LIMIT = 0.2      # σ_i above this fraction of the spectrum's scale: not an eigenstate (qsolver.checks)


@dataclass
class RitzSolution:
    energies: np.ndarray      # (L,) ascending, hartree
    vectors: np.ndarray       # (L, L): column i gives state i as Σ_m ψ_m v_mi, normalised in the S metric


def rayleigh_ritz(s: np.ndarray, h: np.ndarray, rcond: float = 1e-12) -> RitzSolution:
    """Solve H v = E S v by canonical orthogonalisation (directions of S below rcond·max are dropped), after
    scaling every function to unit norm, D = diag(S)^(-1/2): networks whose norms differ by many orders (far
    apart nuclei) are then not dropped as if they were linearly dependent."""
    s, h = 0.5 * (s + s.T), 0.5 * (h + h.T)
    norms = np.sqrt(np.abs(np.diag(s)))
    unit = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
    s, h = s * np.outer(unit, unit), h * np.outer(unit, unit)
    evals, evecs = np.linalg.eigh(s)
    keep = evals > rcond * evals.max()
    x = evecs[:, keep] / np.sqrt(evals[keep])
    e, y = np.linalg.eigh(x.T @ h @ x)
    v = unit[:, None] * (x @ y)
    energies = np.full(s.shape[0], np.nan)
    energies[: keep.sum()] = e
    vectors = np.zeros_like(s)
    vectors[:, : keep.sum()] = v
    return RitzSolution(energies, vectors)


def expectations(vectors: np.ndarray, s: np.ndarray, a: np.ndarray) -> np.ndarray:
    """⟨A⟩_i = v_iᵀ A v_i / v_iᵀ S v_i of each Ritz state from its vector and the matrices (..., L, L) of S and A."""
    sym = 0.5 * (a + a.swapaxes(-1, -2))
    with np.errstate(invalid="ignore", divide="ignore"):          # dropped directions (zero vectors) give nan
        return np.einsum("...mi,...mn,...ni->...i", vectors, sym, vectors) / \
            np.einsum("...mi,...mn,...ni->...i", vectors, s, vectors)


def jackknife_ritz(s_blocks: np.ndarray, h_blocks: np.ndarray, penalty_blocks: np.ndarray | None = None
                   ) -> tuple[RitzSolution, np.ndarray, np.ndarray]:
    """Ritz solution of the trained operator H from block sums (n_blocks, L, L), each state's energy and the
    delete-one-block jackknife standard errors of those energies.

    With ``penalty_blocks`` (the matrix of a part P of H that only steers training, the spin shift) the energy of
    Ritz state i is ⟨H - P⟩_i = E_i - ⟨P⟩_i, the physical energy of the state the trained operator selected;
    without, it is the Ritz value E_i."""
    n = s_blocks.shape[0]
    p_blocks = np.zeros_like(s_blocks) if penalty_blocks is None else penalty_blocks
    s_all, h_all, p_all = s_blocks.sum(0), h_blocks.sum(0), p_blocks.sum(0)

    def energies(s: np.ndarray, h: np.ndarray, p: np.ndarray) -> tuple[RitzSolution, np.ndarray]:
        sol = rayleigh_ritz(s, h)
        return sol, sol.energies - expectations(sol.vectors, s, p)

    full, e = energies(s_all / n, h_all / n, p_all / n)
    reps = np.stack([energies((s_all - s_blocks[b]) / (n - 1), (h_all - h_blocks[b]) / (n - 1),
                              (p_all - p_blocks[b]) / (n - 1))[1] for b in range(n)])
    errors = np.sqrt((n - 1) / n * ((reps - reps.mean(0)) ** 2).sum(0))
    return full, e, errors


def residual_norms(solution: RitzSolution, s: np.ndarray, h: np.ndarray, h2: np.ndarray) -> np.ndarray:
    """σ_i = ‖(H - E_i) φ_i‖ (hartree) of each Ritz state φ_i = Σ_m ψ_m v_mi, from S, H and
    H2_lm = ⟨Hψ_l, Hψ_m⟩: σ_i² = vᵢᵀ (H2 - 2 E_i H + E_i² S) vᵢ."""
    h = 0.5 * (h + h.T)
    out = np.full(len(solution.energies), np.nan)
    for i, e in enumerate(solution.energies):
        if np.isfinite(e):
            v = solution.vectors[:, i]
            out[i] = np.sqrt(max(v @ (h2 - 2 * e * h + e * e * s) @ v, 0.0))
    return out


def span_errors(energies: np.ndarray, residuals: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Kato–Temple estimate of how far each Ritz value sits above its level: σ_i² / Δ_i.

    Kato–Temple: if (α, β) holds the Ritz value ρ and exactly one eigenvalue λ, then
    ρ - σ²/(β - ρ) ≤ λ ≤ ρ + σ²/(ρ - α). Here Δ_i is the distance to the nearest other Ritz value farther
    than σ_i away (closer ones cannot be told apart from level i), or to the continuum threshold V_∞,
    whichever is closer; with no such neighbour Δ_i = σ_i, which is Weinstein's bound |ρ - λ| ≤ σ.
    The neighbouring exact levels are only estimated (by their own Ritz values), so this is an estimate of
    the learned span's error, not a rigorous bound.
    """
    out = np.full(len(energies), np.nan)
    for i, (e, sigma) in enumerate(zip(energies, residuals)):
        if not (np.isfinite(e) and np.isfinite(sigma)):
            continue
        gaps = np.abs(np.delete(energies, i) - e)
        gaps = gaps[np.isfinite(gaps) & (gaps > sigma)]
        if threshold is not None and np.isfinite(threshold) and threshold > e:
            gaps = np.append(gaps, threshold - e)
        gap = gaps.min() if gaps.size else sigma
        out[i] = min(sigma * sigma / max(gap, 1e-300), sigma)
    return out


def spectrum_scale(energies: np.ndarray) -> float:
    """(E_max - E_min) + |E_min| of the finite energies (nan when there are none): the scale residuals and error
    bars are measured against."""
    e = np.asarray(energies, dtype=float)
    e = e[np.isfinite(e)]
    return float(np.ptp(e) + abs(e.min())) if e.size else float("nan")


def not_eigenstates(energies: np.ndarray, residuals: np.ndarray) -> list[int]:
    """Indices of the states whose residual σ_i exceeds RESIDUAL_LIMIT times the spectrum's scale
    (E_max - E_min) + |E_min|: Weinstein's interval E_i ± σ_i then spans too much of the spectrum to name a level."""
    e, sigma = np.asarray(energies, dtype=float), np.asarray(residuals, dtype=float)
    finite = np.isfinite(e)
    if not finite.any():
        return []
    scale = spectrum_scale(e)
    return [int(i) for i in np.flatnonzero(finite & np.isfinite(sigma) & (sigma > RESIDUAL_LIMIT * scale))]


def denoised_residuals(s_blocks: np.ndarray, h_blocks: np.ndarray, h2_blocks: np.ndarray) -> np.ndarray:
    """σ_i² = ‖(H - E_i)φ_i‖² with the sampling noise's share removed (hartree²; ≥ 0, nan where not finite).

    The Ritz vectors fitted to N samples mix in other states of the span by O(N^(-1/2)), which adds O(1/N) to the
    measured σ² (:func:`residual_norms`): in converged runs it is most of it (σ shrinks as the samples grow). The
    delete-one-block jackknife removes the 1/N term: n σ²(all) - (n - 1) mean_b σ²(without block b). What is left
    is the part of Hφ outside the span, which is what the span's error is made of."""
    n = s_blocks.shape[0]
    s_all, h_all, h2_all = s_blocks.sum(0), h_blocks.sum(0), h2_blocks.sum(0)

    def sigma2(s, h, h2):
        sol = rayleigh_ritz(s, h)
        return residual_norms(sol, s, h, h2) ** 2

    full = sigma2(s_all / n, h_all / n, h2_all / n)
    reps = np.stack([sigma2((s_all - s_blocks[b]) / (n - 1), (h_all - h_blocks[b]) / (n - 1),
                            (h2_all - h2_blocks[b]) / (n - 1)) for b in range(n)])
    return np.maximum(n * full - (n - 1) * reps.mean(0), 0.0)


def bias_errors(energies: np.ndarray, sigma2: np.ndarray, residuals: np.ndarray,
                threshold: float | None = None) -> np.ndarray:
    """Estimate of how far each Ritz value lies above its level from the de-noised residual
    (:func:`denoised_residuals`): the Kato–Temple σ²/Δ of :func:`span_errors` with σ² de-noised, Δ from the
    measured residuals as there (hartree; nan where not finite)."""
    span = span_errors(energies, residuals, threshold)
    ratio = np.where(residuals > 0, sigma2 / np.where(residuals > 0, residuals, 1.0) ** 2, 0.0)
    return np.minimum(span * ratio, span)
