"""Figures of a result (matplotlib, PNG): wavefunction gallery, levels against the reference, training, absorption
spectrum; for two particles also the one-particle densities, the wavefunction with one particle held fixed, the
distributions of the inter-particle distance and the levels of several results (e.g. singlets and triplets) side by
side."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
import numpy as np  # noqa: E402

from .files import atomic_write  # noqa: E402
from .potentials import Coulomb, terms  # noqa: E402
from .references import Reference, ionization_threshold  # noqa: E402
from .result import Result  # noqa: E402
from .dipoles import HARTREE_EV  # noqa: E402
from .spectrum import Spectrum  # noqa: E402
from .validate import SPIN_LABELS, degeneracy_groups  # noqa: E402

ZOOM_WEIGHT = 0.995   # the zoomed panels hold this fraction of the plotted weight
DENSITY_RANGE = 1e-3  # density maps show three decades below each state's peak


def _save(fig, path: Path) -> Path:
    def write(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")

    try:
        return atomic_write(path, write)
    finally:
        plt.close(fig)


def _panels(n: int, width: float = 2.6, height: float = 2.5, blocks: int = 1):
    """A figure with one panel per state (4 or 6 to a row); ``blocks`` panels stacked per state. Returns the
    figure and, per state, its list of ``blocks`` axes; panels beyond n are switched off."""
    cols = min(n, 4 if n <= 8 else 6)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows * blocks, cols, figsize=(width * cols, height * rows * blocks), squeeze=False)
    per_state = [[axes[(i // cols) * blocks + b, i % cols] for b in range(blocks)] for i in range(rows * cols)]
    for extra in per_state[n:]:
        for ax in extra:
            ax.axis("off")
    return fig, per_state[:n]


def _state_title(result: Result, i: int) -> str:
    return f"{i}: E = {result.energies[i]:.5f}"


def _headline(fig, text: str) -> None:
    """Lay the panels out and put ``text`` above them, clear of the panel titles, wrapped to the figure's width."""
    fig.tight_layout()
    fig.suptitle(textwrap.fill(text, width=int(14 * fig.get_figwidth())), fontsize=9, y=1.0, va="bottom")


def _zoom_half(reach: np.ndarray, mass: np.ndarray) -> float:
    """Smallest half-width h (bohr) such that the points with ``reach`` ≤ h carry ZOOM_WEIGHT of ``mass``."""
    order = np.argsort(reach.ravel())
    cum = np.cumsum(mass.ravel()[order])
    if cum[-1] <= 0:
        return float(reach.max())
    return max(float(reach.ravel()[order][np.searchsorted(cum, ZOOM_WEIGHT * cum[-1])]), 1e-3 * float(reach.max()))


def _plane(lo: np.ndarray, hi: np.ndarray, base: np.ndarray, resolution: int) -> np.ndarray:
    """Points (resolution², d) of the plane spanned by the first two axes over [lo, hi] (bohr), the other
    coordinates taken from ``base``; ordered so that reshape(resolution, resolution) indexes (x, y)."""
    u, v = (np.linspace(lo[k], hi[k], resolution) for k in (0, 1))
    uu, vv = np.meshgrid(u, v, indexing="ij")
    pts = np.tile(np.asarray(base, dtype=float), (uu.size, 1))
    pts[:, 0], pts[:, 1] = uu.ravel(), vv.ravel()
    return pts


def _square_reach(lo: np.ndarray, hi: np.ndarray, center: np.ndarray, resolution: int) -> np.ndarray:
    """max(|x - c_x|, |y - c_y|) on the grid of :func:`_plane` (bohr)."""
    u, v = (np.linspace(lo[k], hi[k], resolution) - center[k] for k in (0, 1))
    return np.maximum.outer(np.abs(u), np.abs(v))


def wavefunction_gallery(result: Result, path: str | Path, resolution: int = 160) -> Path:
    """1D: φ_i(x) as lines; 2D: maps of φ_i; 3D: φ_i on the plane z = centre (bohr^(-d/2)). Several particles:
    :func:`fixed_particle`."""
    if result.system.particles > 1:
        return fixed_particle(result, path)
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
    center = 0.5 * (lo + hi)
    phi = result.wavefunctions(_plane(lo, hi, center, resolution)).reshape(resolution, resolution, n)
    reach = _square_reach(lo, hi, center, resolution)
    fig, panels = _panels(n)
    for i, (ax,) in enumerate(panels):
        # zoom each panel to the square holding 99.5 % of the state's weight in this plane
        half = _zoom_half(reach, phi[..., i] ** 2)
        box_lo = np.maximum(center[:2] - half, lo[:2])
        box_hi = np.minimum(center[:2] + half, hi[:2])
        values = result.wavefunctions(_plane(box_lo, box_hi, center, resolution))[:, i].reshape(resolution,
                                                                                                 resolution)
        lim = np.abs(values).max() or 1.0
        ax.imshow(values.T, origin="lower", extent=(box_lo[0], box_hi[0], box_lo[1], box_hi[1]), cmap="RdBu_r",
                  vmin=-lim, vmax=lim)
        ax.set_title(_state_title(result, i), fontsize=8)
        ax.tick_params(labelsize=6)
    plane = "" if d == 2 else f" (slice z = {center[2]:.2f})"
    fig.suptitle(f"{result.system.name}: learned states{plane}, x and y in bohr", fontsize=10)
    return _save(fig, Path(path))


def default_fixed_position(result: Result) -> np.ndarray:
    """Where :func:`fixed_particle` holds particle 1 (bohr): 1 bohr along x off the first Coulomb centre (atoms,
    molecules), else the centre of the extent moved along x by a quarter of its half-width."""
    lo, hi = result.extent()
    coulomb = [t for t in terms(result.system.potential) if isinstance(t, Coulomb)]
    position = np.asarray(coulomb[0].centers[0], dtype=float) if coulomb else 0.5 * (lo + hi)
    position[0] += 1.0 if coulomb else 0.125 * (hi[0] - lo[0])
    return position


def _fixed_positions(result: Result, fixed: np.ndarray | list[float] | None) -> np.ndarray:
    """Where the first N - 1 particles are held (N - 1, d), bohr: as given (one position for two particles), else
    the first at :func:`default_fixed_position` and the others on the circle through it about the centre of the
    extent (the first two axes), evenly spaced."""
    if fixed is not None:
        return np.asarray(fixed, dtype=float).reshape(-1, result.system.dimension)
    first = default_fixed_position(result)
    others = result.system.particles - 1
    if others == 1 or result.system.dimension == 1:
        return first[None] + np.arange(others)[:, None] * np.eye(result.system.dimension)[0]
    lo, hi = result.extent()
    centre = 0.5 * (lo + hi)
    offset = first[:2] - centre[:2]
    turns = [np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
             for a in 2 * np.pi * np.arange(others) / others]
    positions = np.repeat(first[None], others, 0)
    positions[:, :2] = centre[:2] + np.stack([t @ offset for t in turns])
    return positions


def _pairs(fixed: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Configurations (M, N, d): particles 1..N-1 at ``fixed`` (N - 1, d), the last at each of ``points`` (M, d)."""
    held = np.broadcast_to(fixed, (len(points),) + fixed.shape)
    return np.concatenate([held, points[:, None, :]], axis=1)


def fixed_particle(result: Result, path: str | Path, fixed: np.ndarray | list[float] | None = None,
                   resolution: int = 120) -> Path:
    """Several particles: ψ_i(x_1, ..., x_N) (bohr^(-Nd/2)) with particles 1..N-1 held at ``fixed`` (bohr; default
    :func:`_fixed_positions`) and the last moving on the line (d = 1), or on the plane of the first two axes through
    the first fixed position (d ≥ 2: z = z_1 for d = 3), zoomed to the square about the centre of the extent that
    holds 99.5 % of ψ² of every state (and the fixed positions). One panel per state, a diverging colormap
    symmetric about 0; the fixed positions are marked ×."""
    held = _fixed_positions(result, fixed)
    fixed = held[0]
    d, n = result.system.dimension, result.n_states
    lo, hi = result.extent()
    where = "; ".join(", ".join(f"{c:.2f}" for c in p) for p in held)
    last, count = result.system.particles, len(held)
    who = "particle 1" if count == 1 else f"particles 1-{count}"
    if d == 1:
        x = np.linspace(lo[0], hi[0], 800)
        psi = result.wavefunctions(_pairs(held, x[:, None]))
        fig, panels = _panels(n, width=3.2, height=2.4)
        for i, (ax,) in enumerate(panels):
            ax.plot(x, psi[:, i], lw=1.2)
            ax.axhline(0.0, color="0.6", lw=0.6)
            for p in held:
                ax.axvline(p[0], color="k", ls=":", lw=0.8)
            ax.set_title(_state_title(result, i), fontsize=8)
            ax.set_xlabel(f"x_{last} (bohr)", fontsize=7)
            ax.tick_params(labelsize=6)
        _headline(fig, f"{result.system.name}: ψ against x_{last}, {who} fixed at {where} bohr (dotted)")
        return _save(fig, Path(path))
    center = 0.5 * (lo + hi)
    reach = _square_reach(lo, hi, center, resolution)
    coarse = result.wavefunctions(_pairs(held, _plane(lo, hi, fixed, resolution))).reshape(resolution, resolution, n)
    half = max([_zoom_half(reach, coarse[..., i] ** 2) for i in range(n)]
               + [1.2 * float(np.abs(held[:, :2] - center[:2]).max())])
    box_lo, box_hi = np.maximum(center[:2] - half, lo[:2]), np.minimum(center[:2] + half, hi[:2])
    psi = result.wavefunctions(_pairs(held, _plane(box_lo, box_hi, fixed, resolution)))
    fig, panels = _panels(n)
    for i, (ax,) in enumerate(panels):
        values = psi[:, i].reshape(resolution, resolution)
        lim = np.abs(values).max() or 1.0
        ax.imshow(values.T, origin="lower", extent=(box_lo[0], box_hi[0], box_lo[1], box_hi[1]), cmap="RdBu_r",
                  vmin=-lim, vmax=lim)
        ax.plot(held[:, 0], held[:, 1], "kx", ms=7, mew=1.5)
        ax.set_title(_state_title(result, i), fontsize=8)
        ax.tick_params(labelsize=6)
    plane = "" if d == 2 else f" on the plane z = {fixed[2]:.2f}" if d == 3 else " on the x-y plane through x_1"
    unit = f"bohr^-{d}" if last == 2 else f"bohr^-{last * d / 2:g}"
    _headline(fig, f"{result.system.name}: ψ ({unit}), {who} fixed at ({where}) bohr (×), particle {last}{plane}; "
                   f"x, y in bohr")
    return _save(fig, Path(path))


def _middle(values: np.ndarray, errors: np.ndarray, edges: np.ndarray):
    """Average over the middle cell(s) of the last axis (the two either side of the centre for an even count):
    values, standard errors (combined as if the cells were independent) and the slab's bounds (bohr)."""
    cells = len(edges) - 1
    idx = [cells // 2 - 1, cells // 2] if cells % 2 == 0 else [cells // 2]
    mean = values[..., idx].mean(-1)
    error = np.sqrt((errors[..., idx] ** 2).sum(-1)) / len(idx)
    return mean, error, (float(edges[idx[0]]), float(edges[idx[-1] + 1]))


def _cut(ax, x: np.ndarray, values: np.ndarray, errors: np.ndarray, label: str | None = None, color=None) -> None:
    """A line with its ±1 standard error band."""
    line, = ax.plot(x, values, lw=1.1, label=label, color=color)
    ax.fill_between(x, values - errors, values + errors, color=line.get_color(), alpha=0.3, lw=0)


def density_slices(result: Result, path: str | Path) -> Path:
    """Two particles, d ≤ 3: the one-particle density ρ_i (bohr^-d, ∫ ρ_i = 2) of each state from
    ``result.observables`` (cell averages). d = 1: ρ_i(x) with ±1 standard error bands. d = 2 (3): maps of ρ_i on the
    plane (on the slab of middle cells in z), and below each map the cut along x through the middle cells in y with
    ±1 standard error bands; zoomed to the square about the centre holding 99.5 % of each map's weight. Maps use
    logarithmic scales over DENSITY_RANGE of each peak."""
    obs = result.observables
    if "density" not in obs:
        raise ValueError("this result has no one-particle density (two particles, d ≤ 3)")
    edges = [np.asarray(e, dtype=float) for e in obs["density_edges"]]
    rho, err = np.asarray(obs["density"], dtype=float), np.asarray(obs["density_error"], dtype=float)
    d, n = len(edges), result.n_states
    mids = [0.5 * (e[1:] + e[:-1]) for e in edges]
    name = result.system.name
    if d == 1:
        center = 0.5 * (edges[0][0] + edges[0][-1])
        fig, panels = _panels(n, width=3.2, height=2.4)
        for i, (ax,) in enumerate(panels):
            _cut(ax, mids[0], rho[i], err[i])
            half = _zoom_half(np.abs(mids[0] - center), rho[i].clip(0))
            ax.set_xlim(center - half, center + half)
            ax.set_title(_state_title(result, i), fontsize=8)
            ax.set_xlabel("x (bohr)", fontsize=7)
            ax.tick_params(labelsize=6)
        _headline(fig, f"{name}: one-particle density ρ(x) (bohr^-1) ± 1 standard error")
        return _save(fig, Path(path))
    slab = ""
    if d == 3:
        rho, err, (z0, z1) = _middle(rho, err, edges[2])
        slab = f" averaged over the slab {z0:.2f} ≤ z ≤ {z1:.2f}"
    cut, cut_err, (y0, y1) = _middle(rho, err, edges[1])
    center = np.array([0.5 * (edges[0][0] + edges[0][-1]), 0.5 * (edges[1][0] + edges[1][-1])])
    reach = np.maximum.outer(np.abs(mids[0] - center[0]), np.abs(mids[1] - center[1]))
    fig, panels = _panels(n, width=2.8, height=2.3, blocks=2)
    for i, (top, bottom) in enumerate(panels):
        half = _zoom_half(reach, rho[i].clip(0))
        # logarithmic: an inner particle's density would otherwise hide the outer particle's shape
        peak = float(rho[i].max()) if rho[i].max() > 0 else 1.0
        image = top.imshow(rho[i].T.clip(DENSITY_RANGE * peak), origin="lower", cmap="viridis",
                           norm=LogNorm(vmin=DENSITY_RANGE * peak, vmax=peak),
                           extent=(edges[0][0], edges[0][-1], edges[1][0], edges[1][-1]))
        top.set(xlim=(center[0] - half, center[0] + half), ylim=(center[1] - half, center[1] + half))
        fig.colorbar(image, ax=top, shrink=0.8).ax.tick_params(labelsize=5)
        top.set_title(_state_title(result, i), fontsize=8)
        _cut(bottom, mids[0], cut[i], cut_err[i])
        bottom.set_yscale("log")
        bottom.set_ylim(DENSITY_RANGE * peak, 2 * peak)
        bottom.set_xlim(center[0] - half, center[0] + half)
        bottom.set_xlabel("x (bohr)", fontsize=7)
        for ax in (top, bottom):
            ax.tick_params(labelsize=6)
    _headline(fig, f"{name}: one-particle density ρ (bohr^-{d}, log scale){slab}, x and y in bohr; below: ρ along x for "
                   f"{y0:.2f} ≤ y ≤ {y1:.2f} ± 1 standard error")
    return _save(fig, Path(path))


def distance_distribution(result: Result, path: str | Path) -> Path:
    """Two particles: the distribution P_i(r_12) (bohr^-1, ∫ P_i dr = 1) of the distance between the particles
    in each state, bin averages from ``result.observables`` with ±1 standard error bands; r_12 in bohr, shown up
    to where every state has 99.9 % of its weight."""
    obs = result.observables
    edges = np.asarray(obs["distance_edges"], dtype=float)
    p, err = np.asarray(obs["distance"], dtype=float), np.asarray(obs["distance_error"], dtype=float)
    r = 0.5 * (edges[1:] + edges[:-1])
    cum = np.cumsum(p.clip(0) * np.diff(edges), axis=1)
    last = [int(np.searchsorted(c, 0.999 * c[-1])) if c[-1] > 0 else len(r) - 1 for c in cum]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i in range(result.n_states):
        _cut(ax, r, p[i], err[i], label=_state_title(result, i))
    ax.set_xlim(0.0, edges[min(max(last) + 2, len(edges) - 1)])
    ax.set(xlabel="r_12 (bohr)", ylabel="P(r_12) (bohr^-1)",
           title=f"{result.system.name}: distance between the particles (± 1 standard error)")
    ax.legend(fontsize=7)
    return _save(fig, Path(path))


def _column_label(result: Result) -> str:
    return f"{SPIN_LABELS.get(result.system.spin, f'2S = {result.system.spin}')}\n({result.system.name})"


def spin_levels(results: list[Result], references: list[Reference | None], path: str | Path,
                thresholds: list[float | None] | None = None) -> Path:
    """Levels of several results side by side (hartree), one column each titled by its spin (singlet/triplet)
    and system name: each NeuralSVD level a short bar with its error bar, the reference's levels (``references``
    aligned with ``results``, entries may be None; only as many as it lists) as black dashed bars beside it, and the
    continuum threshold of each column (``thresholds``, default :func:`qsolver.references.ionization_threshold`)
    as a labelled dashed line across the column."""
    if thresholds is None:
        thresholds = [ionization_threshold(r.system) for r in results]
    fig, ax = plt.subplots(figsize=(2.4 * len(results) + 2.0, 5.5))
    labelled = set()
    for k, (result, ref, thr) in enumerate(zip(results, references, thresholds)):
        n = result.n_states
        ax.hlines(result.energies, k - 0.38, k - 0.04, color="C0", lw=1.6, label=None if k else "NeuralSVD")
        ax.errorbar(np.full(n, k - 0.21), result.energies, yerr=result.errors, fmt="none", ecolor="C0",
                    capsize=3, lw=1)
        if ref is not None and len(ref.energies):
            method = textwrap.shorten(ref.method, 70) if ref.method not in labelled else None
            labelled.add(ref.method)
            ax.hlines(np.asarray(ref.energies[:n], dtype=float), k + 0.04, k + 0.38, colors="k", linestyles="--",
                      lw=1.2, label=method)
        if thr is not None and np.isfinite(thr):
            ax.hlines(thr, k - 0.45, k + 0.45, colors="C3", linestyles="--", lw=1.2)
            ax.annotate(f"threshold {thr:.4f}", (k + 0.45, thr), xytext=(0, 2), textcoords="offset points",
                        ha="right", va="bottom", fontsize=7, color="C3")
    ax.set_xticks(range(len(results)), [_column_label(r) for r in results], fontsize=8)
    ax.set_xlim(-0.6, len(results) - 0.4)
    ax.set(ylabel="energy (hartree)", title="levels by spin (red: continuum threshold)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    return _save(fig, Path(path))


def energy_levels(result: Result, path: str | Path, reference: Reference | None = None) -> Path:
    """Levels (hartree) with error bars beside the reference (as many as it lists) and the continuum threshold
    where it is finite, and the relative error per state with a reference level on a log scale."""
    n = result.n_states
    idx = np.arange(n)
    fig, (ax1, ax2) = _two_axes(reference is not None)
    ax1.errorbar(idx, result.energies, yerr=result.errors, fmt="o", ms=4, capsize=2, label="NeuralSVD")
    threshold = ionization_threshold(result.system)
    if threshold is not None and np.isfinite(threshold):
        ax1.axhline(threshold, color="C3", ls="--", lw=0.8, label=f"continuum threshold {threshold:.5g}")
    if reference is not None:
        m = min(n, len(reference.energies))
        ref = np.asarray(reference.energies[:m], dtype=float)
        ax1.plot(idx[:m], ref, "k_", ms=14, mew=1.5, label=reference.method)
        rel = np.abs(result.energies[:m] - ref) / np.abs(ref)
        ax2.semilogy(idx[:m], rel, "o-", ms=4, label="|E - E_ref| / |E_ref|")
        ax2.semilogy(idx[:m], 3 * result.errors[:m] / np.abs(ref), "x:", ms=4, label="3 σ / |E_ref|")
        ax2.set(xlabel="state", ylabel="relative error", title="error per state")
        ax2.legend(fontsize=8)
    for ax in (ax1, ax2) if ax2 is not None else (ax1,):
        ax.set_xticks(idx)
    ax1.set(xlabel="state", ylabel="energy (hartree)", title=f"{result.system.name}: levels")
    ax1.legend(fontsize=8)
    return _save(fig, Path(path))


def absorption_spectrum(spectrum: Spectrum, path: str | Path, width: float | None = None) -> Path:
    """Sticks at the excitation energies ΔE from the ground level (hartree; eV on the top axis), of height f with
    their error bars; with ``width`` (FWHM, hartree) also the Lorentzian-broadened spectrum
    σ(E) = Σ_j f_j (Γ/2π) / ((E - ΔE_j)² + Γ²/4) (hartree⁻¹, right axis; ∫ σ dE = Σ_j f_j)."""
    rows = spectrum.from_ground()
    energies = np.array([r["excitation"] for r in rows])
    strengths = np.array([r["strength"] for r in rows])
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if rows:
        ax.vlines(energies, 0, strengths, color="C0", lw=2, label="f (sticks)")
        ax.errorbar(energies, strengths, yerr=[r["error"] for r in rows], fmt="none", ecolor="k", capsize=3, lw=0.8)
        for r in rows:
            ax.annotate(r["states"], (r["excitation"], r["strength"]), textcoords="offset points", xytext=(3, 3),
                        fontsize=7)
    if rows and width is not None:
        pad = 5 * width + 0.05 * np.ptp(energies)
        grid = np.linspace(max(energies.min() - pad, 0.0), energies.max() + pad, 2000)
        gamma = 0.5 * width
        sigma = (strengths[None, :] * gamma / np.pi / ((grid[:, None] - energies[None, :]) ** 2 + gamma**2)).sum(1)
        twin = ax.twinx()
        twin.plot(grid, sigma, color="C1", lw=1, label=f"Lorentzian, FWHM {width:g} hartree")
        twin.set_ylabel("σ(E) (1/hartree)")
        twin.set_ylim(bottom=0)
        twin.legend(fontsize=8, loc="upper right")
    ax.set_ylim(bottom=0)
    ax.set(xlabel="excitation energy ΔE (hartree)", ylabel="oscillator strength f",
           title=f"{spectrum.system}: absorption from the ground level")
    top = ax.secondary_xaxis("top", functions=(lambda e: e * HARTREE_EV, lambda v: v / HARTREE_EV))
    top.set_xlabel("ΔE (eV)")
    if rows:
        ax.legend(fontsize=8, loc="upper left")
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
    """LoRA objective and the running Rayleigh–Ritz energies (their relative error per degenerate group of the
    states the reference lists, when a reference exists) against step; running medians over 20 log points."""
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
        rel = np.abs(energies[:, : len(ref)] - ref) / np.abs(ref)
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
