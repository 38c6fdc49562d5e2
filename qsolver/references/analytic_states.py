"""Closed-form eigenfunctions of H = -κ∇² + V on quadrature rules, for the analytic reference.

Each family evaluates its lowest n states at any points (N, d) (bohr) as an array (N, n) in bohr^(-d/2),
in the order of the analytic levels, and carries a product quadrature rule ∫ f dx ≈ Σ_k w_k f(x_k) that
integrates products of its states exactly (oscillator, hydrogen) or to rounding (box):

- oscillator: ψ = Π_i a_i^(-½) h_{n_i}((x_i - c_i)/a_i), a_i² = √(2κ)/ω_i, h_k the Hermite functions;
  Gauss–Hermite points per axis;
- box: ψ = Π_i √(2/L_i) sin(π n_i (x_i - c_i + L_i/2)/L_i); Gauss–Legendre points per axis;
- hydrogen-like (d = 2, 3): ψ = R_nℓ(r) Y_ℓm, R ∝ ρ^ℓ e^(-ρ/2) L_{n-ℓ-1}^(2ℓ+d-2)(ρ), ρ = Z r/(κν),
  ν = n + (d-3)/2 (decay √(-E/κ) = Z/(2κν)); generalised Gauss–Laguerre in r × uniform angles (2D) or
  Gauss–Legendre in cos θ × uniform φ (3D).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..potentials import Box, Coulomb, Harmonic
from .base import ReferenceStates
from .quanta import box_quanta, oscillator_quanta

AXIS_POINTS = {1: 64, 2: 40, 3: 20}     # quadrature points per axis for product rules (at least)
RADIAL_POINTS = 96      # radial Gauss–Laguerre points (at least; 16 per shell beyond 6)


def _product_rule(axes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Tensor product of 1D rules (nodes, weights) -> points (M, d), weights (M,)."""
    nodes = np.stack(np.meshgrid(*[a for a, _ in axes], indexing="ij"), axis=-1).reshape(-1, len(axes))
    weights = np.ones(1)
    for _, w in axes:
        weights = np.multiply.outer(weights, w).ravel()
    return nodes, weights


def _axis_points(dimension: int, highest: int) -> int:
    """Points per axis: the default for this dimension, or more when a state needs them."""
    return max(AXIS_POINTS.get(dimension, 8), highest)


def hermite_functions(xi: np.ndarray, kmax: int) -> np.ndarray:
    """h_k(ξ) = (2^k k! √π)^(-½) H_k(ξ) e^(-ξ²/2), k = 0..kmax, shape (len(ξ), kmax+1), by the stable
    recurrence h_{k+1} = √(2/(k+1)) ξ h_k - √(k/(k+1)) h_{k-1}."""
    out = np.empty((len(xi), kmax + 1))
    out[:, 0] = math.pi ** -0.25 * np.exp(-0.5 * xi**2)
    if kmax >= 1:
        out[:, 1] = math.sqrt(2.0) * xi * out[:, 0]
    for k in range(1, kmax):
        out[:, k + 1] = math.sqrt(2 / (k + 1)) * xi * out[:, k] - math.sqrt(k / (k + 1)) * out[:, k - 1]
    return out


@dataclass
class OscillatorStates:
    """Eigenfunctions of -κ∇² + ½ Σ ω_i² (x_i - c_i)², lengths a_i = (√(2κ)/ω_i)^½ (bohr)."""

    omega: list[float]
    center: list[float]
    kinetic: float
    n: int

    def __post_init__(self) -> None:
        self.quanta = np.array(oscillator_quanta(self.omega, self.kinetic, self.n))
        self.scale = np.sqrt(math.sqrt(2 * self.kinetic) / np.asarray(self.omega, dtype=float))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.ones((len(x), self.n))
        for i, (c, a) in enumerate(zip(self.center, self.scale)):
            h = hermite_functions((x[:, i] - c) / a, int(self.quanta[:, i].max())) / math.sqrt(a)
            out *= h[:, self.quanta[:, i]]
        return out

    def rule(self) -> tuple[np.ndarray, np.ndarray]:
        """Gauss–Hermite per axis, x = c + a ξ, weight a w e^(ξ²): exact for the products of the states."""
        d = len(self.omega)
        axes = []
        for i, (c, a) in enumerate(zip(self.center, self.scale)):
            xi, w = special.roots_hermite(_axis_points(d, int(self.quanta[:, i].max()) + 1))
            axes.append((c + a * xi, a * np.exp(np.log(w) + xi**2)))
        return _product_rule(axes)


@dataclass
class BoxStates:
    """Eigenfunctions √(2/L_i) sin(π n_i u_i / L_i) of -κ∇² in a box, u_i = x_i - c_i + L_i/2 ∈ [0, L_i]."""

    lengths: list[float]
    center: list[float]
    kinetic: float
    n: int

    def __post_init__(self) -> None:
        self.quanta = np.array(box_quanta(self.lengths, self.kinetic, self.n))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.ones((len(x), self.n))
        for i, (c, length) in enumerate(zip(self.center, self.lengths)):
            u = (x[:, i] - c + 0.5 * length)[:, None]
            inside = (u >= 0) & (u <= length)
            out *= np.where(inside, math.sqrt(2 / length) * np.sin(math.pi * self.quanta[:, i] * u / length), 0.0)
        return out

    def rule(self) -> tuple[np.ndarray, np.ndarray]:
        """Gauss–Legendre per axis on [c - L/2, c + L/2]; sines of frequency ≤ 2 n_max π/L converge to
        rounding with 3 n_max + 16 points."""
        d = len(self.lengths)
        axes = []
        for i, (c, length) in enumerate(zip(self.center, self.lengths)):
            t, w = special.roots_legendre(_axis_points(d, 3 * int(self.quanta[:, i].max()) + 16))
            axes.append((c + 0.5 * length * t, 0.5 * length * w))
        return _product_rule(axes)


def _real_harmonics(dimension: int, ell: int, angles: np.ndarray) -> np.ndarray:
    """Real harmonics of degree ℓ normalised on the unit circle (2D, angles (N, 1) = φ) or sphere (3D,
    angles (N, 2) = (cos θ, φ)); shape (N, 2ℓ+1) in 3D, (N, 1 or 2) in 2D."""
    if dimension == 2:
        phi = angles[:, 0]
        if ell == 0:
            return np.full((len(phi), 1), 1 / math.sqrt(2 * math.pi))
        return np.stack([np.cos(ell * phi), np.sin(ell * phi)], axis=1) / math.sqrt(math.pi)
    cos_t, phi = angles[:, 0], angles[:, 1]
    out = []
    for m in range(-ell, ell + 1):
        k = abs(m)
        norm = math.sqrt((2 * ell + 1) / (4 * math.pi) * math.factorial(ell - k) / math.factorial(ell + k))
        legendre = norm * special.lpmv(k, ell, cos_t)
        out.append(legendre if m == 0 else math.sqrt(2) * legendre * (np.cos(k * phi) if m > 0 else np.sin(k * phi)))
    return np.stack(out, axis=1)


@dataclass
class HydrogenStates:
    """Eigenfunctions of -κ∇² - Z/|x - R| in d = 2 or 3 dimensions, shells n = 1, 2, ... in the order of
    the levels -Z²/(4κν²), within a shell ℓ = 0..n-1 and then the real harmonics of degree ℓ."""

    charge: float
    center: list[float]
    kinetic: float
    dimension: int
    n: int

    def __post_init__(self) -> None:
        d, labels, shell = self.dimension, [], 1
        while len(labels) < self.n:
            for ell in range(shell):
                count = 2 * ell + 1 if d == 3 else min(2 * ell + 1, 2)
                labels += [(shell, ell, j) for j in range(count)]
            shell += 1
        self.labels = labels[: self.n]

    def _nu(self, shell: int) -> float:
        return shell + 0.5 * (self.dimension - 3)

    def radial(self, shell: int, ell: int, r: np.ndarray) -> np.ndarray:
        """R_nℓ(r) = N ρ^ℓ e^(-ρ/2) L_k^(α)(ρ), ρ = Z r/(κν), k = n-ℓ-1, α = 2ℓ+d-2, normalised so that
        ∫ R² r^(d-1) dr = 1: N² = k! / (c^d Γ(k+α+1) 2ν), c = κν/Z."""
        d, nu = self.dimension, self._nu(shell)
        c = self.kinetic * nu / self.charge
        k, alpha = shell - ell - 1, 2 * ell + d - 2
        log_norm = 0.5 * (math.lgamma(k + 1) - d * math.log(c) - math.lgamma(k + alpha + 1) - math.log(2 * nu))
        rho = r / c
        return math.exp(log_norm) * rho**ell * np.exp(-0.5 * rho) * special.eval_genlaguerre(k, alpha, rho)

    def _polar(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = x - np.asarray(self.center, dtype=float)
        r = np.linalg.norm(y, axis=1)
        if self.dimension == 2:
            return r, np.arctan2(y[:, 1], y[:, 0])[:, None]
        cos_t = np.divide(y[:, 2], r, out=np.ones_like(r), where=r > 0)
        return r, np.stack([cos_t, np.arctan2(y[:, 1], y[:, 0])], axis=1)

    def _evaluate(self, r: np.ndarray, angles: np.ndarray) -> np.ndarray:
        out = np.empty((len(r), self.n))
        harmonics: dict[int, np.ndarray] = {}
        for col, (shell, ell, j) in enumerate(self.labels):
            if ell not in harmonics:
                harmonics[ell] = _real_harmonics(self.dimension, ell, angles)
            out[:, col] = self.radial(shell, ell, r) * harmonics[ell][:, j]
        return out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._evaluate(*self._polar(x))

    def rule(self) -> tuple[np.ndarray, np.ndarray]:
        """Generalised Gauss–Laguerre (weight t^(d-1) e^(-t)) in t = β r, β = Z/(κ ν_max) the decay of the
        most diffuse products (exact for them; the compact low shells converge to ~1e-13 with 16 points per
        shell), times an angular rule exact for harmonics of degree ≤ 2 ℓ_max."""
        d = self.dimension
        shell_max = max(s for s, _, _ in self.labels)
        ell_max = max(ell for _, ell, _ in self.labels)
        beta = self.charge / (self.kinetic * self._nu(shell_max))
        t, w = special.roots_genlaguerre(max(RADIAL_POINTS, 16 * shell_max), d - 1)
        radii, radial_w = t / beta, np.exp(np.log(w) + t) / beta**d
        n_phi = max(4 * ell_max + 8, 32 if d == 2 else 24)
        phi = 2 * math.pi * np.arange(n_phi) / n_phi
        if d == 2:
            angles, angle_w = phi[:, None], np.full(n_phi, 2 * math.pi / n_phi)
        else:
            cos_t, w_t = special.roots_legendre(max(ell_max + 4, 12))
            angles, angle_w = _product_rule([(cos_t, w_t), (phi, np.full(n_phi, 2 * math.pi / n_phi))])
        r_all = np.repeat(radii, len(angles))
        ang_all = np.tile(angles, (len(radii), 1))
        weights = np.multiply.outer(radial_w, angle_w).ravel()
        if d == 2:
            unit = np.stack([np.cos(ang_all[:, 0]), np.sin(ang_all[:, 0])], axis=1)
        else:
            sin_t = np.sqrt(1 - ang_all[:, 0] ** 2)
            unit = np.stack([sin_t * np.cos(ang_all[:, 1]), sin_t * np.sin(ang_all[:, 1]), ang_all[:, 0]], axis=1)
        return np.asarray(self.center, dtype=float) + r_all[:, None] * unit, weights


def closed_form_states(term, dimension: int, kinetic: float, n: int):
    """The family of closed-form states for a single potential term, or None (hydrogen-like in d ≥ 4)."""
    if isinstance(term, Harmonic):
        return OscillatorStates(list(term.omega), list(term.center), kinetic, n)
    if isinstance(term, Box):
        return BoxStates(list(term.lengths), list(term.center), kinetic, n)
    if isinstance(term, Coulomb) and dimension in (2, 3):
        return HydrogenStates(term.charges[0], list(term.centers[0]), kinetic, dimension, n)
    return None


def reference_states(family) -> ReferenceStates:
    """The family's states on its own quadrature rule (orthonormal under its weights)."""
    points, weights = family.rule()
    return ReferenceStates(points, weights, family(points))
