"""Figures of a result (matplotlib, PNG): wavefunction gallery, levels against the reference, training."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io import atomic_write  # noqa: E402
from .references import Reference  # noqa: E402
from .result import Result  # noqa: E402


def _save(fig, path: Path) -> Path:
    def write(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")

    try:
        return atomic_write(path, write)
    finally:
        plt.close(fig)


def wavefunction_gallery(result: Result, path: str | Path, resolution: int = 160) -> Path:
    """1D: φ_i(x) as lines; 2D: maps of φ_i; 3D: φ_i on the plane z = centre (bohr^(-d/2))."""
    d, n = result.system.dimension, result.n_states
    lo, hi = result.extent()
    if d == 1:
        x = np.linspace(lo[0], hi[0], 800)
        phi = result.wavefunctions(x[:, None])
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i in range(n):
            ax.plot(x, phi[:, i] + result.energies[i], lw=1.2, label=f"{i}: E={result.energies[i]:.5f}")
        ax.set(xlabel="x (bohr)", ylabel="φ(x) offset by E (hartree)", title=f"{result.system.name}: states")
        ax.legend(fontsize=6, ncol=2)
        return _save(fig, Path(path))
    def plane_points(lo_, hi_):
        u = np.linspace(lo_[0], hi_[0], resolution)
        v = np.linspace(lo_[1], hi_[1], resolution)
        uu, vv = np.meshgrid(u, v, indexing="ij")
        pts = np.zeros((uu.size, d))
        pts[:, 0], pts[:, 1] = uu.ravel(), vv.ravel()
        if d >= 3:
            pts[:, 2:] = 0.5 * (lo[2:] + hi[2:])
        return pts

    phi = result.wavefunctions(plane_points(lo, hi)).reshape(resolution, resolution, n)
    center = 0.5 * (lo + hi)
    u = np.linspace(lo[0], hi[0], resolution) - center[0]
    v = np.linspace(lo[1], hi[1], resolution) - center[1]
    reach = np.maximum.outer(np.abs(u), np.abs(v))              # square "radius" of each grid point
    cols = min(n, 4 if n <= 8 else 6)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.5 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        # zoom each panel to the square holding 99.5 % of the state's weight in this plane
        mass = phi[..., i] ** 2
        order = np.argsort(reach.ravel())
        cum = np.cumsum(mass.ravel()[order])
        half = reach.ravel()[order][np.searchsorted(cum, 0.995 * cum[-1])] if cum[-1] > 0 else reach.max()
        half = max(half, 1e-3 * reach.max())
        box_lo = np.maximum(center[:2] - half, lo[:2])
        box_hi = np.minimum(center[:2] + half, hi[:2])
        values = result.wavefunctions(plane_points(box_lo, box_hi))[:, i].reshape(resolution, resolution)
        lim = np.abs(values).max() or 1.0
        ax.imshow(values.T, origin="lower", extent=(box_lo[0], box_hi[0], box_lo[1], box_hi[1]), cmap="RdBu_r",
                  vmin=-lim, vmax=lim)
        ax.set_title(f"{i}: E = {result.energies[i]:.5f}", fontsize=8)
        ax.tick_params(labelsize=6)
    plane = "" if d == 2 else f" (slice z = {0.5 * (lo[2] + hi[2]):.2f})"
    fig.suptitle(f"{result.system.name}: learned states{plane}, x and y in bohr", fontsize=10)
    return _save(fig, Path(path))


def energy_levels(result: Result, path: str | Path, reference: Reference | None = None) -> Path:
    """Levels with error bars beside the reference, and the relative error per state on a log scale."""
    n = result.n_states
    idx = np.arange(n)
    fig, (ax1, ax2) = _two_axes(reference is not None)
    ax1.errorbar(idx, result.energies, yerr=result.errors, fmt="o", ms=4, capsize=2, label="NeuralSVD")
    if reference is not None:
        ref = np.asarray(reference.energies[:n])
        ax1.plot(idx, ref, "k_", ms=14, mew=1.5, label=reference.method)
        rel = np.abs(result.energies - ref) / np.abs(ref)
        ax2.semilogy(idx, rel, "o-", ms=4, label="|E - E_ref| / |E_ref|")
        ax2.semilogy(idx, 3 * result.errors / np.abs(ref), "x:", ms=4, label="3 σ / |E_ref|")
        ax2.set(xlabel="state", ylabel="relative error", title="error per state")
        ax2.legend(fontsize=8)
    ax1.set(xlabel="state", ylabel="energy (hartree)", title=f"{result.system.name}: levels")
    ax1.legend(fontsize=8)
    return _save(fig, Path(path))


def _two_axes(with_errors: bool):
    if with_errors:
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
        return fig, (a, b)
    fig, a = plt.subplots(figsize=(6, 4.5))
    return fig, (a, None)


def _rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    """Running median along axis 0 over ``window`` rows (trailing), to make noisy curves readable."""
    if len(values) < window:
        return values
    windows = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)
    return np.concatenate([values[: window - 1], np.median(windows, axis=-1)])


def training_curves(result: Result, path: str | Path, reference: Reference | None = None) -> Path:
    """LoRA objective and the running Rayleigh–Ritz energies (their relative error per degenerate group,
    when a reference exists) against step; running medians over 20 log points."""
    from .validate import degeneracy_groups

    h = result.history
    steps, loss = np.asarray(h["step"]), np.asarray(h["loss"])
    energies = np.asarray(h["energies"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    smooth = _rolling_median(loss, 20)
    ax1.plot(steps, smooth, lw=1)
    tail = smooth[len(smooth) // 20:]
    if len(tail):
        lo, hi = np.percentile(tail, [1, 99])
        ax1.set_ylim(lo - 0.1 * (hi - lo + 1e-12), hi + 0.1 * (hi - lo + 1e-12))
    ax1.set(xlabel="step", ylabel="LoRA objective (batch estimate)", title="objective (running median)")
    if reference is not None:
        ref = np.asarray(reference.energies[: energies.shape[1]])
        groups = degeneracy_groups(ref)
        rel = np.abs(energies - ref) / np.abs(ref)
        for g in np.unique(groups):
            ax2.semilogy(steps, _rolling_median(rel[:, groups == g].mean(1), 20), lw=1,
                         label=f"level {ref[groups == g][0]:.5g} (×{int((groups == g).sum())})")
        ax2.set(ylabel="mean relative error of running Ritz values")
        ax2.legend(fontsize=7)
    else:
        ax2.plot(steps, _rolling_median(energies, 20), lw=0.8)
        ax2.set(ylabel="running Ritz values (hartree)")
    ax2.set(xlabel="step", title="energies during training (batch moving averages)")
    return _save(fig, Path(path))


def comparison_figure(comparison, path: str | Path) -> Path:
    """Levels per method side by side with error bars (hartree), and |E(NeuralSVD) - E_ref| per state for each
    reference on a log scale, over the band of one NeuralSVD standard error."""
    e, sigma = comparison.energies, comparison.errors
    n = len(e)
    idx = np.arange(n)
    width = 0.7 / (len(comparison.labels) + 1)
    markers = "s^vDP*Xh"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    ax1.errorbar(idx - 0.35 + 0.5 * width, e, yerr=sigma, fmt="o", ms=4, capsize=2, color="C0",
                 label="NeuralSVD (± 1σ)")
    positive = [sigma[sigma > 0]]
    for k, (label, ref) in enumerate(zip(comparison.labels, comparison.references)):
        m = min(len(ref.energies), n)
        levels = np.asarray(ref.energies[:m], dtype=float)
        stated = np.array([r[f"error_{label}"] for r in comparison.states[:m]], dtype=float)
        marker, color = markers[k % len(markers)], f"C{k + 1}"
        ax1.errorbar(idx[:m] - 0.35 + (k + 1.5) * width, levels, yerr=stated, fmt=marker, ms=4, capsize=2,
                     color=color, label=f"{label} (± stated error)")
        diff = np.abs(e[:m] - levels)
        positive.append(diff[diff > 0])
        ax2.semilogy(idx[:m], np.where(diff > 0, diff, np.nan), marker + "-", ms=4, lw=1, color=color,
                     label=f"|E - E({label})|")
    values = np.concatenate(positive)
    floor = 0.3 * values.min() if len(values) else 1e-12
    ax2.fill_between(idx, floor, np.maximum(sigma, floor), color="0.85", step="mid", label="NeuralSVD 1σ")
    ax2.set_ylim(bottom=floor)
    ax1.set(xlabel="state", ylabel="energy (hartree)", title=f"{comparison.system}: levels by method")
    ax2.set(xlabel="state", ylabel="|E(NeuralSVD) - E_ref| (hartree)", title="difference per state")
    for ax in (ax1, ax2):
        ax.set_xticks(idx)
        ax.legend(fontsize=8)
    return _save(fig, Path(path))


def accuracy_curves(summary: dict, path: str | Path) -> Path:
    """Mean relative error of all states against training wall time, one line per preset (log-log), with
    the per-group errors of each checkpoint as faint lines; the benchmark target as a dashed line."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, curve in enumerate(summary["curves"]):
        color = f"C{i}"
        seconds = np.asarray(curve["seconds"])
        if not len(seconds):
            continue
        ax.loglog(seconds, curve["mean_rel_error"], "o-", color=color, label=f"{curve['preset']} (mean of all states)")
        groups = np.asarray(curve["group_rel_error"])
        for g in range(groups.shape[1]):
            ax.loglog(seconds, groups[:, g], "-", color=color, alpha=0.25, lw=0.8)
    ax.axhline(summary["target"], color="k", ls="--", lw=0.8, label=f"target {summary['target']:g}")
    ax.set_xlabel("training wall time (s)")
    ax.set_ylabel("relative eigenvalue error")
    ax.set_title(f"{summary['system']}: error against time ({summary['device']}, faint: per degenerate group)",
                 fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, Path(path))
