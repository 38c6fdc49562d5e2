"""Grid reference for one Coulomb centre: H = -κ∇² - Z/|x - R| (d = 2, 3; hartree, bohr) by its radial equations.

Method. Around a single centre H commutes with rotations: ψ = r^ℓ g(r) Y_ℓ (Y_ℓ the real harmonics of degree ℓ,
harmonic_count(ℓ, d) of them) turns Hψ = Eψ into the D-dimensional radial equation
-κ (g'' + (D-1)/r g') - (Z/r) g = E g, D = 2ℓ + d, one per ℓ. Each is solved by the Jacobi–Galerkin method of
:mod:`.trap`: g on 0 ≤ r ≤ R_max, g(R_max) = 0, expanded in (1 - x) q_k(x), x = 2r/R_max - 1, q_k orthonormal
Jacobi polynomials of weight (1-x)²(1+x)^(D-1), all integrals exact by Gauss–Jacobi quadrature (r·(Z/r) is a
constant). Regular solutions are power series in r, cusp included, so the variational levels converge geometrically
with the number N of polynomials, where Cartesian finite differences stall at the cusp (order ~1.6, :mod:`.grid`).
The levels of all ℓ are merged and each is repeated by its degeneracy harmonic_count(ℓ, d); ℓ grows until its
lowest level (which rises with ℓ: the centrifugal barrier) lies above the n-th level found.

Extent. R_max = r_t + WALLS/k, r_t = 4κν²/Z the outer turning point and k = Z/(2κν) the decay rate of the highest
level asked for (ν its effective principal number, from the shell structure). k₀R_max then depends on d and the
number of states only, and so does the default N = 24 + 3⌈√(k₀R_max)⌉ (k₀ the ground state's decay). Measured
(one core): hydrogen_2d, 16 states, N = 66 on r ≤ 189 bohr: levels within 8e-13 relative, 0.05 s; hydrogen_3d,
14 states, N = 51 on r ≤ 78 bohr: 2e-13, 0.03 s; N from 60 to 240 changes no level by more than 3e-11 (rounding:
the kinetic matrix grows like N⁴).

Error. Per level the change with ⌈5N/6⌉ polynomials (nested spaces, geometric convergence: it bounds the error of
the smaller basis; with far too few ``points``, before convergence sets in, it can fall short), plus the box
error: the change Δ with the wall at 0.8 R_max, scaled by 1/(exp(2A) - 1), A the WKB action
∫ √((-Z/r - E)/κ) dr between the two walls (the centrifugal term, left out, only speeds the decay), plus
1000 ε max|E| for rounding (ROUNDING).
"""
from __future__ import annotations

import itertools
import math
import time

import numpy as np
import scipy.linalg as sl
import scipy.special as ss

from ..errors import InputError
from ..potentials import Coulomb, harmonic_count, hydrogen_nu, terms
from ..system import System
from .analytic_states import _product_rule, _real_harmonics
from .base import Reference, ReferenceStates
from .trap import _orthonormal_jacobi, radial_hamiltonian

OPTION_KEYS = ("points", "extent")
WALLS = 20.0                # decay lengths 1/k of the highest level between its turning point and the wall
COARSE = 5 / 6              # polynomials of the resolution check, relative
SHRINK = 0.8                # wall radius of the box-size check, relative
ACTION_SAMPLES = 400
# float64 floor, relative to the largest |eigenvalue| of the radial matrix: quadrature and recurrences leave ~1e-11
# hartree (measured: 9e-12 below the exact 2D hydrogen ground state at N = 75, R_max = 261 bohr, κ = 1, a sign that
# truncation, variational, cannot give); 1000 ε max|E| = 1.6e-11 there
ROUNDING = 1000 * np.finfo(float).eps


def single_centre(system: System) -> tuple[float, list[float]] | None:
    """(Z, centre) when the potential is Coulomb terms on one centre only (charges summed) in d = 2 or 3."""
    parts = terms(system.potential)
    if system.dimension not in (2, 3) or not parts or not all(isinstance(t, Coulomb) for t in parts):
        return None
    centres = {tuple(float(v) for v in c) for t in parts for c in t.centers}
    if len(centres) != 1:
        return None
    return float(sum(q for t in parts for q in t.charges)), list(centres.pop())


def _options(system: System, n_states: int, charge: float, options: dict) -> tuple[int, float, str]:
    """Checked ``points`` (polynomials per ℓ) and ``extent`` (wall radius, bohr), else their defaults."""
    def bad(key: str, message: str) -> InputError:
        return InputError(message, source=system.source, field=f"reference.{key}")

    for key in options:
        if key not in OPTION_KEYS:
            raise bad(key, f"a single Coulomb centre is solved by its radial equations, which take only "
                           f"{' and '.join(OPTION_KEYS)} (polynomials per angular momentum, wall radius in bohr); "
                           f"'{key}' does not apply")
    if charge <= 0:
        raise InputError(f"a single Coulomb centre of total charge {charge:g} binds no state; no grid reference",
                         source=system.source, field="potential.charges")
    d, kappa = system.dimension, system.kinetic
    nu = hydrogen_nu(n_states - 1, d)
    extent = 4 * kappa * nu**2 / charge + WALLS * 2 * kappa * nu / charge
    note = f"turning point of the highest level + {WALLS:g} decay lengths"
    if "extent" in options:
        value = options["extent"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise bad("extent", f"must be a positive number (the wall radius around the Coulomb centre, bohr), "
                                f"got {value!r}")
        extent, note = float(value), "set by reference.extent"
    ground_decay = charge / (2 * kappa * hydrogen_nu(0, d))
    points = options.get("points", 24 + 3 * math.ceil(math.sqrt(ground_decay * extent)))
    if isinstance(points, bool) or not isinstance(points, int) or points < 8:
        raise bad("points", f"must be an integer >= 8 (polynomials per angular momentum), got {points!r}")
    return points, extent, note


def _radial(d: int, ell: int, kappa: float, charge: float, extent: float,
            points: int) -> tuple[np.ndarray, np.ndarray]:
    """Levels (hartree, ascending) and coefficient vectors of -κ(g'' + (D-1)/r g') - Z g/r = E g, D = 2ℓ + d."""
    # radial_hamiltonian's kinetic term is -2κ'(...), written for relative motion: κ' = κ/2 gives -κ(...)
    matrix = radial_hamiltonian(2 * ell + d, kappa / 2, 0.0, lambda r: -charge / r, extent, points)
    return sl.eigh(matrix)


def _wall_action(kappa: float, charge: float, inner: float, outer: float, energies: np.ndarray) -> np.ndarray:
    """∫_inner^outer √(max(-Z/r - E, 0)/κ) dr per level (trapezoid rule on ACTION_SAMPLES points)."""
    r = np.linspace(inner, outer, ACTION_SAMPLES)
    rate = np.sqrt(np.clip(-charge / r[None, :] - energies[:, None], 0, None) / kappa)
    return 0.5 * (rate[:, 1:] + rate[:, :-1]).sum(axis=1) * (r[1] - r[0])


def _states(d: int, centre: list[float], extent: float, points: int, picks: list[tuple[int, int, int]],
            vectors: dict[int, np.ndarray]) -> ReferenceStates:
    """The picked states (ℓ, k, j): r^ℓ g_ℓk(r) Y_ℓj on Gauss–Jacobi radii (weight r^(d-1), exact for products of
    the radial functions) × an angular rule exact for harmonics of degree ≤ 2 ℓ_max (as the analytic states)."""
    ell_max = max(ell for ell, _, _ in picks)
    half = extent / 2
    x, w = ss.roots_jacobi(points + ell_max + 2, 0, d - 1)
    radii, radial_w = half * (1 + x), half**d * w
    n_phi = max(4 * ell_max + 8, 32 if d == 2 else 24)
    phi = 2 * math.pi * np.arange(n_phi) / n_phi
    if d == 2:
        angles, angle_w = phi[:, None], np.full(n_phi, 2 * math.pi / n_phi)
        unit = np.stack([np.cos(phi), np.sin(phi)], axis=1)
    else:
        cos_t, w_t = ss.roots_legendre(max(ell_max + 4, 12))
        angles, angle_w = _product_rule([(cos_t, w_t), (phi, np.full(n_phi, 2 * math.pi / n_phi))])
        sin_t = np.sqrt(1 - angles[:, 0] ** 2)
        unit = np.stack([sin_t * np.cos(angles[:, 1]), sin_t * np.sin(angles[:, 1]), angles[:, 0]], axis=1)
    radial, harmonics = {}, {}
    for ell in {ell for ell, _, _ in picks}:
        big_d = 2 * ell + d
        q, _ = _orthonormal_jacobi(x, 2, big_d - 1, points)
        # g = (R/2)^(-D/2) Σ_i c_i (1 - x) q_i: unit norm in ∫ g² r^(D-1) dr; ψ's radial part is r^ℓ g
        radial[ell] = radii[:, None] ** ell * half ** (-big_d / 2) * ((1 - x) * q).T @ vectors[ell]
        harmonics[ell] = _real_harmonics(d, ell, angles)
    values = np.stack([np.multiply.outer(radial[ell][:, k], harmonics[ell][:, j]).ravel() for ell, k, j in picks],
                      axis=1)
    points_out = np.asarray(centre) + (radii[:, None, None] * unit[None]).reshape(-1, d)
    return ReferenceStates(points_out, np.multiply.outer(radial_w, angle_w).ravel(), values)


def coulomb_reference(system: System, n_states: int, options: dict) -> Reference:
    """Lowest n_states levels of -κ∇² - Z/|x - R| (one centre, d = 2, 3) from the radial equation of each ℓ,
    with per-level errors (fewer polynomials, a smaller wall radius) and the states on a polar quadrature rule."""
    start = time.perf_counter()
    charge, centre = single_centre(system)
    d, kappa = system.dimension, system.kinetic
    points, extent, note = _options(system, n_states, charge, options)
    coarse = math.ceil(COARSE * points)
    levels, vectors, checks = [], {}, {}
    for ell in itertools.count():
        energies, coefficients = _radial(d, ell, kappa, charge, extent, points)
        if len(levels) >= n_states and energies[0] > levels[n_states - 1][0]:
            break                                 # every higher ℓ starts higher still
        if ell > n_states:
            raise InputError(f"only {len(levels)} bound levels (E < 0) fit within r <= {extent:.3g} bohr, fewer "
                             f"than the {n_states} asked for; raise reference.extent", source=system.source,
                             field="reference.extent")
        bound = energies[: n_states][energies[: n_states] < 0]
        vectors[ell] = coefficients[:, : bound.size]
        checks[ell] = (_radial(d, ell, kappa, charge, extent, coarse)[0][: bound.size],      # fewer polynomials
                       _radial(d, ell, kappa, charge, SHRINK * extent, points)[0][: bound.size],  # nearer wall
                       ROUNDING * float(np.abs(energies).max()))
        levels = sorted(levels + [(float(e), ell, k, j) for k, e in enumerate(bound)
                                  for j in range(harmonic_count(ell, d))])
    levels = levels[:n_states]
    energies = np.array([e for e, _, _, _ in levels])
    fewer = np.array([checks[ell][0][k] for _, ell, k, _ in levels])
    smaller = np.array([checks[ell][1][k] for _, ell, k, _ in levels])
    rounding = np.array([checks[ell][2] for _, ell, _, _ in levels])
    resolution = np.abs(fewer - energies)
    action = _wall_action(kappa, charge, SHRINK * extent, extent, energies)
    box_error = np.abs(smaller - energies) / np.expm1(2 * action).clip(min=1.0)
    errors = resolution + box_error + rounding
    ell_max = max(ell for _, ell, _, _ in levels)
    method = (f"grid: radial equation per angular momentum about the single Coulomb centre (Jacobi-Galerkin, "
              f"{points} polynomials in r on r <= {extent:.3g} bohr, l = 0..{ell_max}), levels repeated by their "
              f"angular degeneracy")
    details = {"points": points, "extent": extent, "center": centre, "charge": charge, "extent_from": note,
               "coarse_points": coarse, "labels": [(ell, k, j) for _, ell, k, j in levels],
               "resolution_errors": resolution, "box_errors": box_error, "seconds": time.perf_counter() - start}
    states = _states(d, centre, extent, points, [(ell, k, j) for _, ell, k, j in levels], vectors)
    return Reference(energies, method, float(errors.max()), details, errors, states, kind="grid")
