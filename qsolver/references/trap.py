"""Two particles in an isotropic trap: H = Σ_i (-κ∇_i² + ½ω²|x_i - c|²) + W(|x_1 - x_2|), d = 1, 2, 3.

Units: hartree, bohr. Separation: R = (x_1 + x_2)/2 and r = x_1 - x_2 give
H = [-(κ/2)∇_R² + ω²|R|²] + [-2κ∇_r² + ω²r²/4 + W(r)]. The centre of mass is a d-dimensional oscillator
with levels Ω(N + d/2), Ω = ω√(2κ), shell N holding C(N+d-1, d-1) states. The relative motion splits into angular
momenta ℓ (harmonic_count(ℓ, d) states each; in 1D the two parities, ℓ = 0 even and ℓ = 1 odd); with
ψ = r^ℓ g(r) Y_ℓ the radial equation is the D-dimensional one -2κ (g'' + (D-1)/r g') + (ω²r²/4 + W) g = E g,
D = 2ℓ + d. Exchange x_1 ↔ x_2 is r → -r, of parity (-1)^ℓ: singlets (spin 0) take even ℓ, triplets (spin 2)
odd ℓ. A level is E_COM + E_rel, repeated by both degeneracies.

Method. g lives on 0 ≤ r ≤ R_max with g(R_max) = 0, expanded in φ_k = (1 - x) q_k(x), x = 2r/R_max - 1, q_k the
orthonormal Jacobi polynomials of weight (1-x)²(1+x)^(D-1): the basis is orthonormal in ∫ g² r^(D-1) dr and the
spaces are nested in N. Kinetic (∫ 2κ g'² r^(D-1) dr) and oscillator matrix elements are polynomial, exact by
Gauss-Jacobi quadrature; W uses 2N Gauss-Jacobi points of weight (1+x)^(D-2) on r W(r) (D ≥ 2), exact for W = λ/r.
Regular solutions are power series in r, the 1/r cusp included (polynomials in r hold its odd powers, which an
expansion in r² lacks), so the variational levels converge geometrically in N: Taut's harmonium to 1e-14 hartree
with 30 polynomials, where finite-difference grids converge algebraically at the cusp (:mod:`.grid`).

Extent. R_max = r_t + 6b, r_t the outer turning point of ω²r²/4 + W at the highest relative energy kept and
b = (2√(2κ)/ω)^(1/2) the relative oscillator length: the wavefunction falls below e^-18 before the wall, so the
wall shifts levels by < 1e-15 hartree. Default N = 10 + ⌈(R_max/b)²/2⌉ polynomials: errors ≤ 4e-11 hartree for
the free oscillator (ω = ½..3, D = 1..6, up to 25 radial nodes) and changes ≤ 4e-11 with W = 1/r when the wall
moves out by 3b and N grows by 40 (measured once).

Error. Per level |E_N - E_N'|, N' = ⌈5N/6⌉ on the same box: with nested spaces and geometric convergence this is
the error of E_N' and bounds that of E_N (with far too few ``points``, before convergence sets in, it can fall
short); plus 10 ε max|eig H| for rounding (the kinetic matrix grows like N⁴; levels stop converging near 1e-11
hartree at N = 40..160).
"""
from __future__ import annotations

import itertools
import math
import time

import numpy as np
import scipy.linalg as sl
import scipy.special as ss
import torch

from ..errors import InputError
from ..potentials import Harmonic, harmonic_count, terms
from .base import Reference

WALL_LENGTHS = 6.0          # oscillator lengths between the highest turning point and the wall
COARSE = 5 / 6              # polynomials of the resolution check, relative
ROUNDING = 10 * np.finfo(float).eps
TURNING_SAMPLES = 4000


class InteractionError(ValueError):
    """W(r) returned values that are not finite, or not of the shape of r."""


def _jacobi_recurrence(a: float, b: float, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Monic Jacobi recurrence p_{k+1} = (x - α_k) p_k - β_k p_{k-1} for weight (1-x)^a (1+x)^b (a + b > 0):
    α_0..α_{n-1}, β_1..β_n and μ_0 = ∫ weight."""
    k = np.arange(n, dtype=float)
    s = 2 * k + a + b
    alpha = (b * b - a * a) / (s * (s + 2))
    k = k + 1
    s = 2 * k + a + b
    beta = 4 * k * (k + a) * (k + b) * (k + a + b) / (s * s * (s + 1) * (s - 1))
    mu0 = 2 ** (a + b + 1) * math.gamma(a + 1) * math.gamma(b + 1) / math.gamma(a + b + 2)
    return alpha, beta, mu0


def _orthonormal_jacobi(x: np.ndarray, a: float, b: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Values and derivatives (n, len(x)) of the orthonormal polynomials q_0..q_{n-1} of weight (1-x)^a (1+x)^b,
    by the three-term recurrence (stable, unlike sums of powers)."""
    alpha, beta, mu0 = _jacobi_recurrence(a, b, n)
    q, dq = np.zeros((n, x.size)), np.zeros((n, x.size))
    q[0] = 1 / math.sqrt(mu0)
    for k in range(n - 1):
        back = math.sqrt(beta[k - 1]) if k else 0.0
        q[k + 1] = ((x - alpha[k]) * q[k] - back * q[k - 1]) / math.sqrt(beta[k])
        dq[k + 1] = (q[k] + (x - alpha[k]) * dq[k] - back * dq[k - 1]) / math.sqrt(beta[k])
    return q, dq


def evaluate_interaction(interaction, r: np.ndarray) -> np.ndarray:
    """W(r) in hartree at distances r (bohr), through the torch callable in float64; InteractionError if not finite."""
    values = interaction(torch.as_tensor(r, dtype=torch.float64))
    values = np.asarray(torch.as_tensor(values, dtype=torch.float64).detach().cpu().numpy(), dtype=float)
    if values.shape not in (r.shape, ()):
        raise InteractionError(f"the interaction W(r) returned shape {values.shape} for r of shape {r.shape}")
    values = np.broadcast_to(values, r.shape)
    if not np.all(np.isfinite(values)):
        bad = r[~np.isfinite(values)][0]
        raise InteractionError(f"the interaction W(r) is not finite at r = {bad:.6g} bohr")
    return values


def radial_hamiltonian(big_d: int, kinetic: float, omega: float, interaction, extent: float,
                       points: int) -> np.ndarray:
    """Matrix of -2κ(g'' + (D-1)/r g') + (ω²r²/4 + W) g (hartree) in the orthonormal basis φ_k = (1-x) q_k,
    k < points, of functions on 0 ≤ r ≤ extent vanishing at the wall."""
    half = extent / 2
    x, w = ss.roots_jacobi(points + 2, 0, big_d - 1)            # exact for the polynomial terms
    q, dq = _orthonormal_jacobi(x, 2, big_d - 1, points)
    phi, dphi = (1 - x) * q, (1 - x) * dq - q
    r = half * (1 + x)
    hamiltonian = 2 * kinetic / half**2 * (dphi * w) @ dphi.T + (phi * (w * omega**2 * r**2 / 4)) @ phi.T
    # W's weight takes one power of r less (D ≥ 2): r W(r) is then a polynomial for Coulomb, smooth otherwise
    shift = 1 if big_d >= 2 else 0
    x, w = ss.roots_jacobi(2 * points, 0, big_d - 1 - shift)
    q, _ = _orthonormal_jacobi(x, 2, big_d - 1, points)
    phi, r = (1 - x) * q, half * (1 + x)
    values = evaluate_interaction(interaction, r) * (1 + x) ** shift
    return hamiltonian + (phi * (w * values)) @ phi.T


def radial_levels(big_d: int, kinetic: float, omega: float, interaction, extent: float,
                  points: int) -> tuple[np.ndarray, float]:
    """All ``points`` eigenvalues (ascending, hartree) of the radial matrix, and the rounding floor 10 ε max|E|."""
    energies = sl.eigvalsh(radial_hamiltonian(big_d, kinetic, omega, interaction, extent, points))
    return energies, ROUNDING * float(np.abs(energies).max())


def relative_length(kinetic: float, omega: float) -> float:
    """Oscillator length (bohr) of the relative motion -2κ∇² + ω²r²/4: (2√(2κ)/ω)^(1/2)."""
    return math.sqrt(2 * math.sqrt(2 * kinetic) / omega)


def turning_point(kinetic: float, omega: float, interaction, energy: float) -> float:
    """Outermost r (bohr) with ω²r²/4 + W(r) ≤ energy, sampled up to twice the free turning point + 10 lengths."""
    top = 4 * math.sqrt(max(energy, 0.0)) / omega + 10 * relative_length(kinetic, omega)
    r = np.linspace(top / TURNING_SAMPLES, top, TURNING_SAMPLES)
    allowed = omega**2 * r**2 / 4 + evaluate_interaction(interaction, r) <= energy
    return float(r[allowed].max()) if allowed.any() else 0.0


def sector_ells(dimension: int, spin: int):
    """Relative angular momenta of a spin sector: even ℓ for singlets, odd for triplets (1D: the parity only)."""
    first = spin // 2
    return iter([first]) if dimension == 1 else itertools.count(first, 2)


def relative_spectrum(dimension: int, kinetic: float, omega: float, interaction, spin: int, cut: float,
                      points: int | None) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], dict]:
    """Relative levels ≤ cut (hartree) per ℓ of the sector with their errors, and the discretisation used."""
    length = relative_length(kinetic, omega)
    extent = turning_point(kinetic, omega, interaction, cut) + WALL_LENGTHS * length
    fine = points or 10 + math.ceil((extent / length) ** 2 / 2)
    coarse = math.ceil(COARSE * fine)
    spectrum = {}
    for ell in sector_ells(dimension, spin):
        big_d = 2 * ell + dimension
        energies, rounding = radial_levels(big_d, kinetic, omega, interaction, extent, fine)
        kept = energies[energies <= cut]
        if kept.size == 0:          # the lowest level grows with ℓ (centrifugal barrier): no higher ℓ fits
            break
        check, _ = radial_levels(big_d, kinetic, omega, interaction, extent, coarse)
        errors = np.full(kept.size, np.inf)
        both = min(kept.size, coarse)
        errors[:both] = np.abs(check[:both] - kept[:both]) + rounding
        spectrum[ell] = (kept, errors)
    return spectrum, {"points": fine, "coarse_points": coarse, "extent": extent, "relative_cut": cut}


def combine(spectrum: dict[int, tuple[np.ndarray, np.ndarray]], dimension: int, quantum: float,
            cut: float) -> list[tuple[float, float, tuple[int, int, int]]]:
    """Levels E_COM(N) + E_rel(ℓ, k) ≤ cut, one entry per state, as (energy, error, (N, ℓ, k)), ascending."""
    levels = []
    for ell, (energies, errors) in spectrum.items():
        multiplicity = harmonic_count(ell, dimension)         # 1 for either parity in 1D
        for k, (energy, error) in enumerate(zip(energies, errors)):
            for shell in itertools.count():
                total = quantum * (shell + dimension / 2) + energy
                if total > cut:
                    break
                states = math.comb(shell + dimension - 1, dimension - 1) * multiplicity
                levels += [(float(total), float(error), (shell, ell, k))] * states
    return sorted(levels)


def trap_levels(dimension: int, kinetic: float, omega: float, interaction, spin: int, n: int,
                points: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Lowest n levels (hartree, ascending, repeated by degeneracy) of two spin-½ fermions of total spin
    ``spin`` = 2S in ½ω²|x - c|² with pair interaction W(r) (torch callable), their error estimates, and details
    (``labels``: (N_com, ℓ, k) per level; polynomials, extent in bohr, seconds). In 1D singlets W must be
    integrable at r = 0 (not 1/r): the method cannot tell, and its error estimate is then meaningless."""
    if dimension not in (1, 2, 3):
        raise ValueError(f"dimension must be 1, 2 or 3, got {dimension!r}")
    if spin not in (0, 2):
        raise ValueError(f"spin (2S) of two spin-1/2 particles must be 0 or 2, got {spin!r}")
    if not (kinetic > 0 and omega > 0 and n >= 1):
        raise ValueError(f"need kinetic > 0, omega > 0 and n >= 1, got {kinetic!r}, {omega!r}, {n!r}")
    if points is not None and points < 8:
        raise ValueError(f"points must be at least 8, got {points!r}")
    start = time.perf_counter()
    quantum = math.sqrt(2 * kinetic) * omega
    com = quantum * dimension / 2
    # start two quanta above the free sector's ground level; widen until n states lie below the cut
    cut, step = quantum * (spin // 2 + dimension / 2 + 2), 2 * quantum
    while True:
        spectrum, details = relative_spectrum(dimension, kinetic, omega, interaction, spin, cut, points)
        levels = combine(spectrum, dimension, quantum, com + cut)
        if len(levels) >= n:
            break
        cut, step = cut + step, 2 * step
    levels = levels[:n]
    details.update(labels=[label for _, _, label in levels], seconds=time.perf_counter() - start)
    return np.array([e for e, _, _ in levels]), np.array([err for _, err, _ in levels]), details


def _trap(system) -> tuple[float, list[float]]:
    """ω and centre of the system's potential; InputError unless it is one isotropic oscillator."""
    parts = terms(system.potential)
    if len(parts) != 1 or not isinstance(parts[0], Harmonic) or \
            not all(math.isclose(w, parts[0].omega[0], rel_tol=1e-12) for w in parts[0].omega):
        raise InputError("the trap reference needs an isotropic harmonic potential (one 'harmonic' term with "
                         "the same omega on every axis)", source=system.source, field="potential")
    return float(parts[0].omega[0]), list(parts[0].center)


def trap_reference(system, n: int) -> Reference:
    """Lowest n levels of a two-particle ``system`` (duck-typed: particles, spin, dimension, kinetic, potential,
    interaction, source) by separating centre of mass and relative motion."""
    if system.particles != 2:
        raise InputError(f"the trap reference treats two particles, got {system.particles}", source=system.source,
                         field="particles")
    omega, center = _trap(system)
    if system.dimension == 1 and system.spin == 0 and getattr(system.interaction, "kind", None) == "coulomb":
        # 1/|x| is not integrable in 1D: even (singlet) relative states have no finite energy
        raise InputError("the 1D Coulomb interaction is singular for singlets; no trap reference",
                         source=system.source, field="interaction")
    try:
        energies, errors, details = trap_levels(system.dimension, system.kinetic, omega, system.interaction,
                                                system.spin, n)
    except InteractionError as exc:
        raise InputError(str(exc), source=system.source, field="interaction") from None
    method = (f"separable trap: centre of mass + relative radial equation (Jacobi-Galerkin, "
              f"{details['points']} polynomials on r <= {details['extent']:.3g} bohr)")
    details.update(omega=omega, center=center, spin=system.spin)
    return Reference(energies, method, float(errors.max()), details, errors, kind="grid")
