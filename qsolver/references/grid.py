"""Grid reference: H = -κ∇² + V on the finite-difference grid of :mod:`qsolver.fd_grid`, d ≤ 3.

Extent. Boxes are the grid; a potential made only of oscillators or only of Coulomb centres takes closed-form
extents (turning point of the highest level + 5 lengths). Any other V places the walls itself
(:func:`qsolver.fd_grid.scan_extent`).

Accuracy. For smooth potentials levels converge like δ^p. At a Coulomb centre the cusp limits every
stencil: grids never put a node on the centre (even N, centre midway between nodes), Coulomb terms are
replaced by their exact cell averages (1/r integrated over each node's cell in closed form), and levels
then converge like h^q with q ≈ 1.6 in 2D (ground state, fitted in tests/test_grid.py) and 1.7-1.8 in 3D
(24-36 points, measured once); point values of V give q < 1 in 2D; a kink in V (exp(abs(x))) gives q ≈ 2.
The error estimate of each level is its resolution error (:func:`_resolution`: the changes at 5/6 and 2/3 of
the points give the observed order q, and the change at 5/6 is scaled by 1/(r^s - 1), r the spacing ratio, s =
q/2 clipped to [0.5, p/2], or to ≤ 1 with a Coulomb term: so the estimate errs on the safe side by ~2-5×), plus
the box error: the difference Δ with a solve on a box 0.8 times as wide (same nodes), scaled by 1/(exp(2A) - 1),
A the least WKB action of the level across the gap between the two walls (:func:`_gap_action`). 1D grids (ms per
solve) double their points from 400 until the resolution error is below 1e-10 relative (at most 6400).

Memory. A grid is refused (InputError, field ``reference.points``) when the matrix, the eigensolver's
blocks and the potential evaluation would exceed MEMORY_FRACTION of the available RAM (os.sysconf).
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..errors import InputError
from ..fd_grid import SCAN_START, GridOptions, Solve, make_axis, memory_bytes, sample_potential, scan_extent, solve_grid
from ..potentials import Box, Coulomb, Harmonic, find, hydrogen_nu, terms
from ..system import System
from .analytic import oscillator_levels
from .base import SHARED_OPTIONS, Reference, ReferenceStates
from .radial import coulomb_reference, single_centre

OPTION_KEYS = ("points", "extent", "order", "stretch")
ORDERS = (4, 6, 8)
COULOMB_ORDER = 1.0                       # assumed order with a Coulomb cusp (measured 1.5-2): conservative
DEFAULT_POINTS = {1: 400, 2: 160, 3: 48}
CHECKS = (5 / 6, 2 / 3)                   # points of the two resolution checks, relative
RATE_FLOOR = 0.5                          # least convergence order assumed in the resolution error
RESOLUTION_TARGET, MAX_POINTS_1D = 1e-10, 6400    # 1D grids double until that relative resolution error, or this
SHRINK = 0.8                              # box of the box-size check, relative (in u)
MEMORY_FRACTION = 0.5


def _bad(system: System, key: str, message: str) -> InputError:
    return InputError(message, source=system.source, field=f"reference.{key}")


def _default_extent(system: System, n_states: int, scan: bool = True) -> tuple[list[float], list[float], float, str]:
    """Half-widths, centre, stretch and a note on what they cover: from the box, the oscillators or the Coulomb
    centres when the potential is only of that kind, else from V itself (:func:`scan_extent`; with ``scan``
    False only the centre, V's lowest point, as when reference.extent is given)."""
    d, kappa = system.dimension, system.kinetic
    parts = terms(system.potential)
    boxes, oscillators = find(system.potential, Box), find(system.potential, Harmonic)
    coulombs = find(system.potential, Coulomb)
    if boxes:
        return [0.5 * s for s in boxes[0].lengths], list(boxes[0].center), 1.0, "the box"
    if len(oscillators) == len(parts):
        omega = [math.sqrt(sum(o.omega[i] ** 2 for o in oscillators)) for i in range(d)]
        top = oscillator_levels(omega, kappa, n_states)[-1]
        center = list(oscillators[0].center)
        lengths = [(2 * kappa) ** 0.25 / math.sqrt(w) for w in omega]   # oscillator lengths
        return ([math.sqrt(2 * top) / w + 5 * ell for w, ell in zip(omega, lengths)], center, 1.0,
                "turning points of the highest level + 5 oscillator lengths")
    charge = sum(q for t in coulombs for q in t.charges)
    if len(coulombs) == len(parts) and charge > 0 and d >= 2:
        centers = np.array([c for t in coulombs for c in t.centers], dtype=float)
        nu = hydrogen_nu(n_states - 1, d)
        decay = 2 * kappa * nu / charge                            # 1/k of the highest hydrogen level
        reach = 4 * kappa * nu**2 / charge + 5 * decay             # turning point + 5 decay lengths
        middle = centers.mean(axis=0)
        spread = float(np.abs(centers - middle).max())
        return [reach + spread] * d, middle.tolist(), 1.0, \
            "turning point of the highest hydrogen-like level + 5 decay lengths"
    if scan:
        return scan_extent(system, n_states)
    try:
        return [SCAN_START] * d, scan_extent(system, n_states)[1], 1.0, "centre of the walls placed from V"
    except InputError:                      # V binds too few states: centre on its lowest point within ±10 bohr
        region = sample_potential(system, np.zeros(d), np.full(d, SCAN_START), strict=False)
        lowest = np.unravel_index(np.argmin(np.where(np.isnan(region.values), np.inf, region.values)),
                                  region.values.shape)
        return [SCAN_START] * d, [float(x[i]) for x, i in zip(region.nodes, lowest)], 1.0, "V's lowest point"


def grid_options(system: System, n_states: int, options: dict) -> tuple[GridOptions, str]:
    """Checked options (``points``, ``extent``, ``order``, ``stretch``) over the system's defaults."""
    d = system.dimension
    if d > 3:
        raise _bad(system, "kind", f"a grid reference requested in {d} dimensions; grids cover d <= 3")
    if find(system.potential, Coulomb) and d == 1:
        raise _bad(system, "kind", "the 1D Coulomb problem is singular; no grid reference")
    for key in options:
        if key not in OPTION_KEYS:
            raise _bad(system, key, f"unknown grid option (known: {', '.join(OPTION_KEYS)})")
    extent, center, stretch, note = _default_extent(system, n_states, scan="extent" not in options)
    points = options.get("points", DEFAULT_POINTS[d])
    if isinstance(points, bool) or not isinstance(points, int) or points < 10:
        raise _bad(system, "points", f"must be an integer >= 10 (points per axis), got {points!r}")
    if "extent" in options:
        if find(system.potential, Box):
            raise _bad(system, "extent", "a box potential's grid is the box itself")
        value = options["extent"]
        value = [value] * d if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        if not isinstance(value, (list, tuple)) or len(value) != d or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
                for v in value):
            raise _bad(system, "extent", f"must be a positive number or {d} of them (half-widths, bohr), "
                                         f"got {options['extent']!r}")
        extent, note = [float(v) for v in value], "set by reference.extent"
    order = options.get("order", 8)
    if order not in ORDERS or isinstance(order, bool):
        raise _bad(system, "order", f"must be one of {ORDERS}, got {order!r}")
    if "stretch" in options:
        value = options["stretch"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 100:
            raise _bad(system, "stretch", f"must be a number from 1 (uniform) to 100, got {value!r}")
        if find(system.potential, Box) and value != 1:
            raise _bad(system, "stretch", "a box potential needs a uniform grid (stretch = 1)")
        stretch = float(value)
    if find(system.potential, Coulomb) and points % 2:
        points += 1                                     # even: no node on a centre at the grid's middle
    need, limit = memory_bytes(points, d, order, n_states), _memory_limit()
    if need > limit:
        raise _bad(system, "points", f"{points}^{d} points need about {need / 2**30:.1f} GiB, more than "
                                     f"{MEMORY_FRACTION:.0%} of the available memory ({limit / 2**30:.1f} GiB)")
    return GridOptions(points, extent, center, order, stretch), note


def _memory_limit() -> float:
    """MEMORY_FRACTION of the available physical memory (bytes)."""
    return MEMORY_FRACTION * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _gap_action(options: GridOptions, window: int, potential: np.ndarray, energies: np.ndarray,
                kinetic: float) -> np.ndarray:
    """Per level, the least WKB action ∫ √(max(P_a - E, 0)/κ) dx across the gap between the walls of the full
    box and of the middle ``window`` nodes, over both sides of every axis; P_a = min of V over the other axes (a
    lower envelope: the states decay at least this fast across the gap)."""
    d, n = len(options.extent), options.points
    grid = potential.reshape([n] * d)
    first = (n - window) // 2                                   # nodes 0..first-1 and first+window.. lie outside
    least = np.full(len(energies), np.inf)
    for a in range(d):
        profile = grid.min(axis=tuple(b for b in range(d) if b != a)) if d > 1 else grid
        weights = make_axis(options, a).weights
        for side in (slice(0, first), slice(first + window, n)):
            rate = np.sqrt(np.clip(profile[side][None, :] - energies[:, None], 0, None) / kinetic)
            least = np.minimum(least, rate @ weights[side])
    return least


def _resolution(system: System, n_states: int, options: GridOptions) -> tuple[Solve, np.ndarray, np.ndarray,
                                                                              list[int], float]:
    """The solve on ``options`` (N points per axis, spacing h) and its per-level resolution error. Solves on
    N_a ≈ 5N/6 and N_b ≈ 2N/3 points (spacings r_a h, r_b h) give δ_a = |E_a - E| and δ_b = |E_b - E_a|; for
    E(h) = E + C h^q their ratio is (r_b^q - r_a^q)/(r_a^q - 1), which fixes the observed order q, and the error
    is δ_a/(r_a^s - 1) with s = q/2 clipped to [RATE_FLOOR, p/2] (1 with a Coulomb term): half the observed order
    for safety, and honest where a kink in V (exp(abs(x))) cuts the order to ~2. Also returns s, the point
    counts and the seconds of the two checks."""
    counts = [options.points]
    for fraction in CHECKS:
        count = round(options.points * fraction)
        count += (count - options.points) % 2                    # same parity: same centre treatment
        counts.append(min(count, counts[-1] - 2))
    solves = [solve_grid(system, n_states, GridOptions(count, options.extent, options.center, options.order,
                                                       options.stretch)) for count in counts]
    step_a, step_b = (np.abs(solves[i + 1].energies - solves[i].energies) for i in range(2))
    r_a, r_b = ((counts[0] + 1) / (counts[i] + 1) for i in (1, 2))
    orders = np.linspace(0.05, 4 * options.order, 800)
    ratio = (r_b**orders - r_a**orders) / (r_a**orders - 1)          # rises with the order
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = np.interp(step_b / step_a, ratio, orders)
    assumed = COULOMB_ORDER if find(system.potential, Coulomb) else options.order / 2
    rate = np.clip(np.nan_to_num(observed / 2, nan=assumed), RATE_FLOOR, assumed)
    return solves[0], step_a / (r_a**rate - 1), rate, counts, solves[1].seconds + solves[2].seconds


def grid_reference(system: System, n_states: int, **options) -> Reference:
    """Lowest n_states levels on the grid, with per-level error estimates from a coarser grid (2/3 of the
    points, scaled by the observed order: :func:`_resolution`) and a smaller box (0.8 of the width in u, same
    nodes, scaled by the WKB decay across the gap: :func:`_gap_action`); a single Coulomb centre
    is solved by its radial equations instead (:mod:`.radial`)."""
    own = system.reference_options if system.reference == "grid" else {}     # [reference] keys of another kind
    options = {**{k: v for k, v in own.items() if k not in SHARED_OPTIONS}, **options}
    if single_centre(system) is not None:
        return coulomb_reference(system, n_states, options)
    opts, note = grid_options(system, n_states, options)
    d = system.dimension
    fine, resolution, rate, counts, seconds = _resolution(system, n_states, opts)
    # 1D solves take milliseconds: refine until the levels converge (kinks in V slow that to ~h²)
    while d == 1 and "points" not in options and opts.points < MAX_POINTS_1D and \
            np.any(resolution > RESOLUTION_TARGET * np.maximum(1.0, np.abs(fine.energies))):
        opts = GridOptions(2 * opts.points, opts.extent, opts.center, opts.order, opts.stretch)
        fine, resolution, rate, counts, seconds = _resolution(system, n_states, opts)
    if find(system.potential, Box):
        box_error, small = np.zeros(n_states), None
    else:
        window = round(opts.points * SHRINK)
        window -= (opts.points - window) % 2
        small = solve_grid(system, n_states, opts, window)
        action = _gap_action(opts, window, fine.potential, fine.energies, system.kinetic)
        box_error = np.abs(small.energies - fine.energies) / np.expm1(2 * action).clip(min=1.0)
    errors = resolution + box_error
    spacing = [float(np.diff(make_axis(opts, a).nodes).min()) for a in range(d)]
    method = (f"grid: {opts.order}th-order finite differences, {opts.points}^{d} points"
              f"{'' if opts.stretch == 1 else f' (stretch {opts.stretch:g})'}, box "
              f"{' × '.join(f'±{e:.3g}' for e in opts.extent)} bohr")
    details = {"points": opts.points, "extent": opts.extent, "center": opts.center, "order": opts.order,
               "stretch": opts.stretch, "extent_from": note, "min_spacing": spacing,
               "max_spacing": [float(np.diff(make_axis(opts, a).nodes).max()) for a in range(d)],
               "convergence_order": rate, "coarse_points": counts[1:],
               "resolution_errors": resolution, "box_errors": box_error,
               "seconds": {"fine": fine.seconds, "coarse": seconds,
                           "small_box": small.seconds if small else 0.0}}
    return Reference(fine.energies, method, float(errors.max()), details, errors,
                     ReferenceStates(fine.points, fine.weights, fine.values), kind="grid")

