"""Final estimation: Rayleigh–Ritz energies of the trained span with error bars and sampling diagnostics."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .config import SolverConfig, gaussian_width
from .dipoles import dipole_sums, transition_dipoles
from .extrapolation import WAYPOINT_SHARE
from .hamiltonian import Hamiltonian, spin_eigenvalue, spin_squared
from .networks import Network
from .parallel import Comm, draw
from .ritz import bias_errors, denoised_residuals, expectations, jackknife_ritz, residual_norms, span_errors
from .system import System
from .threshold import spectrum_edge


def evaluate(model: Network, system: System, cfg: SolverConfig, gen: torch.Generator,
             dtype: torch.dtype, hamiltonian: Hamiltonian, chunk: int = 4096, comm: Comm = Comm()) -> dict:
    """Rayleigh–Ritz with ``cfg.eval_samples`` fresh samples in ``cfg.eval_blocks`` blocks.

    The energies are ⟨H⟩ of the trained operator's Ritz states; where that operator holds a spin shift they are its
    Ritz values less λ(⟨Ŝ²⟩_i - S(S+1)) (``spin_penalty``), so a state's small share of another spin selected out
    by the shift does not raise its energy by λ times that share. Three uncertainty columns per state: the jackknife standard error (``stat_errors``), the estimated remaining
    error of the learned span (``bias_errors``: Kato–Temple with the residual's sampling noise removed,
    :func:`qsolver.ritz.bias_errors`, from the de-noised σ_i² in ``denoised_sigma2``; the solver replaces it by
    variance extrapolation where training left waypoints, :mod:`qsolver.extrapolation`) and the Kato–Temple/Weinstein
    bound σ_i²/Δ_i (``span_errors``, :func:`qsolver.ritz.span_errors`); the headline ``errors`` =
    :func:`headline_errors` of the first two.

    Also reports the effective sample size per state, ESS_l = (Σ w ψ_l²)² / Σ (w ψ_l²)² / N, and the
    deviation of the trained networks' normalised Gram matrix from the identity (their orthogonality), and the
    Ritz states' transition dipoles on the same samples, D_lm = mean(f_l f_m Σ_k x_k) rotated by the Ritz vectors
    (:mod:`qsolver.dipoles`).
    Data-parallel: each rank draws 1/W of every block and the block sums are all-reduced.
    """
    n_states, n_blocks = model.config.states, cfg.eval_blocks          # every trained network
    symmetry = None
    exact = "hessian" if cfg.laplacian == "hessian" else "forward"   # finite differences only for training
    per_block = max(1, cfg.eval_samples // n_blocks // comm.world)           # this rank's share of a block
    proposal = model.proposal(dtype, gaussian_width(cfg))
    # ⟨ψ_l|Ŝ²|ψ_m⟩ where both spins are present: each state's total spin, measured on the same samples
    s2 = spin_squared(system.spin_sector) if system.particles > 1 and min(system.spin_sector) > 0 else None
    s2_blocks = np.zeros((n_blocks, n_states, n_states))
    s_blocks = np.zeros((n_blocks, n_states, n_states))
    h_blocks = np.zeros((n_blocks, n_states, n_states))
    d_blocks = np.zeros((n_blocks, n_states, n_states, system.dimension))
    h2 = np.zeros((n_blocks, n_states, n_states))
    w1 = np.zeros(n_states)
    w2 = np.zeros(n_states)
    unit = None           # the ESS is scale-free: f² in units of the first chunk's largest, as (f²)² may overflow
    for b in range(n_blocks):
        done = 0
        while done < per_block:
            n = min(chunk, per_block - done)
            x = draw(proposal, n, gen, comm)
            root_w = torch.exp(-0.5 * proposal.log_prob(x))[:, None]
            psi, h_psi = hamiltonian.apply(model, x, exact)
            if b == 0 and done == 0:          # the exchange symmetry as built (None for one particle)
                symmetry = model.symmetry_error(x, psi)
            f, hf = psi * root_w, h_psi * root_w
            s_blocks[b] += (f.T @ f).cpu().numpy()
            h_blocks[b] += (f.T @ hf).cpu().numpy()
            d_blocks[b] += dipole_sums(f, x)
            h2[b] += (hf.T @ hf).cpu().numpy()
            if s2 is not None:
                with torch.no_grad():
                    s2_blocks[b] += (f.T @ (s2(model, x, psi) * root_w)).cpu().numpy()
            mass = (f * f).double().cpu().numpy()
            if unit is None:            # the same on every rank, so that the ranks' sums add up
                unit = max(comm.max(float(mass.max())), np.finfo(np.float64).tiny)
            mass /= unit
            w1 += mass.sum(0)
            w2 += (mass**2).sum(0)
            done += n
    if comm.world > 1:
        sums = [torch.from_numpy(a) for a in (s_blocks, h_blocks, h2, w1, w2, s2_blocks, d_blocks)]
        s_blocks, h_blocks, h2, w1, w2, s2_blocks, d_blocks = (comm.sum(t).numpy() for t in sums)
        symmetry = None if symmetry is None else comm.max(symmetry)
        per_block *= comm.world
    s_blocks /= per_block
    h_blocks /= per_block
    d_blocks /= per_block
    s2_blocks /= per_block
    # the spin shift selects the states; their energies are ⟨H⟩ without it (qsolver.ritz.jackknife_ritz)
    penalty = None
    if s2 is not None and hamiltonian.spin_penalty:
        penalty = hamiltonian.spin_penalty * (s2_blocks - spin_eigenvalue(system.spin) * s_blocks)
    solution, energies, stat_errors = jackknife_ritz(s_blocks, h_blocks, penalty)
    s = s_blocks.mean(0)
    h2 /= per_block
    residuals = residual_norms(solution, s, h_blocks.mean(0), h2.mean(0))
    span = span_errors(solution.energies, residuals, spectrum_edge(system))
    sigma2 = denoised_residuals(s_blocks, h_blocks, h2)
    bias = bias_errors(solution.energies, sigma2, residuals, spectrum_edge(system))
    errors = headline_errors(stat_errors, bias)
    norm = np.sqrt(np.diag(s))
    raw_gram = s / np.outer(norm, norm)
    final_gram = solution.vectors.T @ s @ solution.vectors
    return {"energies": energies, "errors": errors, "vectors": solution.vectors,
            "dipoles": transition_dipoles(solution.vectors, s_blocks, d_blocks),
            "diagnostics": {"eval_samples": per_block * n_blocks, "stat_errors": stat_errors,
                            "residuals": residuals, "span_errors": span,
                            "bias_errors": bias, "denoised_sigma2": sigma2,
                            "ess_fraction": w1**2 / w2 / (per_block * n_blocks),
                            "raw_gram_deviation": float(np.abs(raw_gram - np.eye(n_states)).max()),
                            "gram_deviation": float(np.abs(final_gram - np.eye(n_states)).max()),
                            **({"exchange_symmetry_error": symmetry} if symmetry is not None else {}),
                            **(spin_of_states(solution.vectors, s_blocks, s2_blocks) if s2 is not None else {}),
                            **({"spin_penalty": solution.energies - energies} if penalty is not None else {})}}


def waypoint(model: Network, system: System, cfg: SolverConfig, dtype: torch.dtype, hamiltonian: Hamiltonian,
             generator: torch.Generator, comm: Comm = Comm()) -> dict:
    """The Ritz values and de-noised σ_i² (hartree²) of ``model`` on 1/WAYPOINT_SHARE of the final evaluation's
    samples, from ``generator``: a point on the line of :func:`qsolver.extrapolation.extrapolated_bias`."""
    share = replace(cfg, eval_samples=max(cfg.eval_samples // WAYPOINT_SHARE, 2 * cfg.eval_blocks))
    est = evaluate(model, system, share, generator, dtype, hamiltonian, comm=comm)
    return {"energies": est["energies"].tolist(), "sigma2": est["diagnostics"]["denoised_sigma2"].tolist()}


HEADLINE_FACTOR = 2.0    # the headline ± is this many combined standard errors: ~95 % for Gaussian noise


def headline_errors(stat: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The error bar reported as ±: HEADLINE_FACTOR · √(stat² + bias²), the jackknife standard error and the
    estimated remaining error of the span (:func:`qsolver.ritz.bias_errors`); the Kato–Temple bound stays a
    separate column (``span_errors``), as it is 10–1000× the actual error of converged levels."""
    return HEADLINE_FACTOR * np.sqrt(stat**2 + np.nan_to_num(bias, nan=0.0) ** 2)


def coverage(actual: np.ndarray, bars: np.ndarray) -> float:
    """Fraction of levels whose actual error |E - E_exact| is at most the error bar."""
    actual, bars = np.asarray(actual, dtype=float), np.asarray(bars, dtype=float)
    return float(np.mean(actual <= bars)) if actual.size else float("nan")


def bar_ratio(actual: np.ndarray, bars: np.ndarray) -> float:
    """median(error bar) / median(actual error): 1 for bars the size of the errors, ≫ 1 for bars far too wide."""
    median = float(np.median(np.asarray(actual, dtype=float)))
    return float(np.median(np.asarray(bars, dtype=float))) / median if median > 0 else float("inf")


def spin_of_states(vectors: np.ndarray, s_blocks: np.ndarray, s2_blocks: np.ndarray) -> dict:
    """⟨Ŝ²⟩_i = c_iᵀ Ŝ² c_i / c_iᵀ S c_i of each Ritz state over all blocks, with the standard error of its per-block
    values (blocks of independent samples; the Ritz vectors held fixed)."""
    blocks = expectations(vectors, s_blocks, s2_blocks)               # Ŝ² is self-adjoint: symmetrised there
    return {"spin_squared": expectations(vectors, s_blocks.mean(0), s2_blocks.mean(0)),
            "spin_squared_errors": blocks.std(0, ddof=1) / np.sqrt(len(blocks))}
