"""Two-particle observables of the learned states, estimated from importance-weighted samples.

With x = (x_1, x_2) ~ p and w_i = φ_i(x)²/p(x) (so that E_p[w_i] = ∫ φ_i² = 1):
- one-particle density ρ_i(y) = 2 ∫ φ_i(y, x')² dx' (bohr^-d, ∫ ρ_i = 2), as cell averages on a grid of cells
  (d ≤ 3): ρ_i(cell) = E_p[w_i (1[x_1 ∈ cell] + 1[x_2 ∈ cell])] / (E_p[w_i] · volume);
- distribution of the inter-particle distance P_i(r) = ∫ φ_i² δ(r - |x_1 - x_2|) dx (bohr^-1, ∫ P_i dr = 1), as
  bin averages.
Both are ratio estimates (normalised by the batch mean of w_i, which removes the Monte Carlo error of the norm);
their statistical errors are the standard errors of the means over independent batches.
"""
from __future__ import annotations

import numpy as np
import torch

DENSITY_CELLS = {1: 200, 2: 64, 3: 24}   # cells per axis: 24³ keeps a file of 9 states near 1 MB
DISTANCE_BINS = 120


def _histograms(points: np.ndarray, weights: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Weighted histograms of points (N, k) for each column of weights (N, L): (L, cells...)."""
    return np.stack([np.histogramdd(points, bins=edges, weights=weights[:, i])[0] for i in range(weights.shape[1])])


def pair_observables(wavefunctions, proposal, n_samples: int, generator: torch.Generator,
                     lo: np.ndarray, hi: np.ndarray, batches: int = 10, chunk: int = 20000) -> dict:
    """Densities and r_12 distributions (see the module docstring) from ``n_samples`` configurations of
    ``proposal``; ``wavefunctions`` maps configurations (N, 2, d) as a float64 array to φ (N, L); the density
    grid covers the box [lo, hi] (bohr) per axis, the distances [0, |hi - lo|]."""
    d = len(lo)
    cells = DENSITY_CELLS.get(d)
    edges = [np.linspace(lo[k], hi[k], cells + 1) for k in range(d)] if cells else None
    r_edges = np.linspace(0.0, float(np.linalg.norm(np.asarray(hi) - np.asarray(lo))), DISTANCE_BINS + 1)
    per_batch = max(1, n_samples // batches)
    dens, dist, norms = [], [], []
    for _ in range(batches):
        rho, pr, norm = 0.0, 0.0, 0.0
        done = 0
        while done < per_batch:
            n = min(chunk, per_batch - done)
            x = proposal.sample(n, generator)
            w_root = torch.exp(-0.5 * proposal.log_prob(x)).double().cpu().numpy()[:, None]
            xs = x.double().cpu().numpy()
            w = (wavefunctions(xs) * w_root) ** 2                                         # (n, L)
            norm = norm + w.sum(0)
            if edges is not None:
                rho = rho + _histograms(xs[:, 0], w, edges) + _histograms(xs[:, 1], w, edges)
            pr = pr + _histograms(np.linalg.norm(xs[:, 0] - xs[:, 1], axis=-1)[:, None], w, [r_edges])
            done += n
        dens.append(rho)
        dist.append(pr)
        norms.append(norm)
    norms = np.asarray(norms)                                                             # (batches, L)
    out = {"distance_edges": r_edges}
    widths = np.diff(r_edges)
    p = np.stack(dist) / norms[:, :, None] / widths                                        # (batches, L, bins)
    out["distance"], out["distance_error"] = p.mean(0), p.std(0, ddof=1) / np.sqrt(batches)
    if edges is not None:
        volume = np.prod([e[1] - e[0] for e in edges])
        shape = (batches, norms.shape[1]) + (1,) * d
        rho = np.stack(dens) / norms.reshape(shape) / volume
        out["density_edges"] = edges
        out["density"], out["density_error"] = rho.mean(0), rho.std(0, ddof=1) / np.sqrt(batches)
    return out
