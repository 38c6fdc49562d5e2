"""Grid reference: H = -κ∇² + V discretised by finite differences on a (mapped) tensor-product grid, d ≤ 3.

Method. Each axis carries nodes x_i = g(u_i) on a uniform grid u_i = -1 + iδ (δ = 2/(N+1), i = 1..N) with
Dirichlet walls at u = ±1; g(u) = c + L (u + a u³)/(1 + a) puts the walls at c ± L (bohr) and makes the
spacing grow from the centre to the walls by ``stretch`` = 1 + 3a (a = 0: uniform). For φ = √J ψ (J = g')
the 1D kinetic operator is -d²/dx² = J^(-1/2) D^T J_mid^(-1) D J^(-1/2) / δ², D a staggered first difference
of order p (4, 6 or 8) with odd reflection at the walls (ψ = 0 there); the d-dimensional Hamiltonian is
the Kronecker sum κ Σ_a K_a + diag(V), a sparse symmetric matrix. Finite differences rather than a sinc
basis keep H sparse (O(M p d) entries for M points) and its boundary exact for boxes; the mapping (option
``stretch``) buys resolution at the grid's centre without a uniformly fine grid. A single Coulomb centre is not
solved here but by its radial equations (:mod:`.radial`, levels to ~1e-11); several centres keep this grid.

Eigensolver (:func:`_eigenpairs`): dense ``eigh`` up to DENSE_MAX points; in 1D shift-invert Lanczos (banded
LU); else LOBPCG preconditioned by (H₀ - σ)^(-1), H₀ = Σ_a (κK_a + v_a) the separable part of H (V along the
axis lines through its lowest node), diagonalised axis by axis and exact for separable V whatever its range (an
exponential wall of 1e17 hartree included; the kinetic-only preconditioner stalled there), starting from H₀'s
lowest eigenvectors. Should it stall, shift-invert Lanczos takes over up to SHIFT_INVERT_MAX points (sparse LU
fill-in: 7 s on 160² points, and 284 s on a 40³ grid, where LOBPCG takes seconds), then InputError.

Extent. Boxes are the grid; a potential made only of oscillators or only of Coulomb centres takes closed-form
extents (turning point of the highest level + 5 lengths). Any other V places the walls itself
(:func:`_scan_extent`): V is sampled on a region (±10 bohr first) and the levels estimated on a coarse grid;
while the highest wanted level reaches V's lowest value on the region's edge the region grows (×4, re-centred on
V's lowest point) up to ±1e4 bohr, beyond which V is taken to bind too few states (InputError naming
reference.extent: unbounded below, or levelling off). The walls then go where the WKB action from the outermost
turning points of that level (+ a margin), ∫ √((P_a - E)/κ) dx with P_a the minimum of V over the other axes,
reaches WALL_ACTION = 15 (ψ ~ e^-15 at the wall, level shifts ~e^-30); levels are re-estimated in that box and
the walls re-placed until they move by < 5%. V must be defined (not nan, not -inf) where it is sampled.

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

import itertools
import math
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sl
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch

from ..errors import InputError
from ..potentials import Box, Coulomb, Harmonic, find, hydrogen_nu, terms
from ..system import System
from .analytic import oscillator_levels
from .base import Reference, ReferenceStates
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
RESTART, MAX_RESTARTS = 100, 20             # LOBPCG iterations per restart (measured: 2.6× faster than 40 on a
                                            # 40³ Mexican hat), restarts
TOLERANCE = 1e-5                          # LOBPCG residual |Hψ - Eψ|: energy error ~ residual²/gap ≲ 1e-9
STALLED = 1e-4                            # residual accepted when LOBPCG stalls: energy error ≲ 1e-8/gap
DENSE_MAX = 1500                          # grid points up to which a dense eigh (< 1 s) beats any iteration
SHIFT_INVERT_MAX = 40000                  # points up to which the shift-invert fallback's sparse LU fits (2D)
SCAN_POINTS = {1: 4001, 2: 401, 3: 81}    # nodes per axis on which V is sampled to place the walls
SCAN_SOLVE_POINTS = {1: 200, 2: 36, 3: 10}    # points per axis of the coarse level estimates (dense eigh)
SCAN_START, SCAN_GROWTH, SCAN_MAX = 10.0, 4.0, 1e4     # bohr: first half-width of the sampled region, growth, last
MAX_SCANS = 16
WALL_ACTION = 15.0                        # ∫ √((V - E)/κ) dx from a turning point to a wall: ψ there ~ e^-15


@dataclass
class GridOptions:
    """Points per axis, half-widths and centre (bohr), difference order, spacing stretch."""

    points: int
    extent: list[float]
    center: list[float]
    order: int
    stretch: float


@dataclass
class Axis:
    """One axis: nodes x (N,), weights J δ (N,), cell edges (N+1,) and the 1D matrix of -d²/dx² (sparse)."""

    nodes: np.ndarray
    weights: np.ndarray
    edges: np.ndarray
    laplacian: sp.csr_matrix


@dataclass
class Solve:
    energies: np.ndarray
    values: np.ndarray
    points: np.ndarray
    weights: np.ndarray
    seconds: float
    potential: np.ndarray          # V at the points (hartree)


def staggered_coefficients(order: int) -> np.ndarray:
    """Weights w_k of f'(0) ≈ Σ_k w_k f(k - ½) / δ, k = 1 - p/2 .. p/2 (exact for polynomials of degree p)."""
    offsets = np.arange(1 - order // 2, order // 2 + 1) - 0.5
    vandermonde = np.vander(offsets, increasing=True).T
    rhs = np.zeros(order)
    rhs[1] = 1.0
    return np.linalg.solve(vandermonde, rhs)


def make_axis(options: GridOptions, axis: int, window: int | None = None) -> Axis:
    """Axis ``axis`` of the grid; ``window`` keeps only the middle ``window`` nodes, walls one step
    beyond them (same mapping, same nodes: the smaller box of the box-size check)."""
    n = options.points
    a = (options.stretch - 1) / 3
    delta = 2 / (n + 1)
    keep = n if window is None else window
    first = (n - keep) // 2 + 1
    u = -1 + delta * np.arange(first, first + keep)
    u_mid = -1 + delta * (np.arange(first, first + keep + 1) - 0.5)
    scale, center = options.extent[axis], options.center[axis]
    jac = scale * (1 + 3 * a * u**2) / (1 + a)
    jac_mid = scale * (1 + 3 * a * u_mid**2) / (1 + a)
    coeffs = staggered_coefficients(options.order)
    half = options.order // 2
    rows, cols, vals = [], [], []
    for m in range(keep + 1):                       # midpoint m - ½ between nodes m - 1 and m (0-based)
        for k, w in zip(range(1 - half, half + 1), coeffs):
            j = m + k - 1                           # node index; reflect oddly about the walls at -1, keep
            if j < -1:
                rows.append(m), cols.append(-j - 2), vals.append(-w)
            elif keep < j < 2 * keep + 1:
                rows.append(m), cols.append(2 * keep - j), vals.append(-w)
            elif 0 <= j < keep:
                rows.append(m), cols.append(j), vals.append(w)
    diff = sp.csr_matrix((vals, (rows, cols)), shape=(keep + 1, keep))      # duplicates are summed
    left = sp.diags(1 / np.sqrt(jac))
    lap = left @ diff.T @ sp.diags(1 / jac_mid) @ diff @ left / delta**2
    return Axis(center + scale * (u + a * u**3) / (1 + a), jac * delta,
                center + scale * (u_mid + a * u_mid**3) / (1 + a), sp.csr_matrix(lap))


def _coulomb_cell_integral(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """∫ dx / |x| over the boxes [lo, hi] (rows, d = 2 or 3), from the closed-form antiderivative."""
    d = lo.shape[1]
    total = np.zeros(lo.shape[0])
    for corner in itertools.product((0, 1), repeat=d):
        x = [np.where(c, hi[:, i], lo[:, i]) for i, c in enumerate(corner)]
        sign = (-1) ** (d - sum(corner))
        total += sign * (_antiderivative_2d(*x) if d == 2 else _antiderivative_3d(*x))
    return total


def _times_asinh(a: np.ndarray, b: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """a asinh(b / √c2), with the limit 0 where a = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = a * np.arcsinh(b / np.sqrt(c2))
    return np.where(a == 0, 0.0, value)


def _antiderivative_2d(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """F with ∂²F/∂x∂y = 1/√(x² + y²)."""
    return _times_asinh(x, y, x * x) + _times_asinh(y, x, y * y)


def _antiderivative_3d(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """F with ∂³F/∂x∂y∂z = 1/r: Σ_cyc [yz asinh(x/√(y²+z²)) - ½x² atan(yz/(x r))]."""
    r = np.sqrt(x * x + y * y + z * z)
    out = np.zeros_like(r)
    for a, b, c in ((x, y, z), (y, z, x), (z, x, y)):
        out += _times_asinh(b * c, a, b * b + c * c)
        with np.errstate(divide="ignore", invalid="ignore"):
            out -= np.where(a == 0, 0.0, 0.5 * a * a * np.arctan(b * c / (a * r)))
    return out


def potential_values(system: System, axes: list[Axis]) -> np.ndarray:
    """V at the nodes (hartree, C order): Coulomb terms as exact cell averages, box terms 0 (the grid is
    the box), every other term evaluated at the nodes in float64; InputError where V is not finite."""
    values = _potential_at(system, [ax.nodes for ax in axes], [ax.edges for ax in axes])
    if not np.all(np.isfinite(values)):
        points = np.stack([m.ravel() for m in np.meshgrid(*[ax.nodes for ax in axes], indexing="ij")], axis=-1)
        bad = points[~np.isfinite(values)][0]
        raise InputError(f"the potential is not finite at the grid point {bad.tolist()} bohr; choose other "
                         "reference.points or reference.extent", source=system.source, field="potential")
    return values


def _potential_at(system: System, nodes: list[np.ndarray], edges: list[np.ndarray]) -> np.ndarray:
    """V (hartree, C order) on the tensor grid of ``nodes`` per axis, Coulomb terms averaged over the cells
    between ``edges`` (one more than nodes per axis); values may be inf or nan."""
    mesh = np.meshgrid(*nodes, indexing="ij")
    points = np.stack([m.ravel() for m in mesh], axis=-1)
    lo = np.stack([m.ravel() for m in np.meshgrid(*[e[:-1] for e in edges], indexing="ij")], axis=-1)
    hi = np.stack([m.ravel() for m in np.meshgrid(*[e[1:] for e in edges], indexing="ij")], axis=-1)
    volume = np.prod(hi - lo, axis=1)
    values = np.zeros(points.shape[0])
    others = []
    for term in terms(system.potential):
        if isinstance(term, Coulomb):
            for charge, center in zip(term.charges, term.centers):
                c = np.asarray(center)
                values -= charge * _coulomb_cell_integral(lo - c, hi - c) / volume
        elif not isinstance(term, Box):
            others.append(term)
    with torch.no_grad():
        x = torch.as_tensor(points, dtype=torch.float64)
        for term in others:
            with np.errstate(invalid="ignore"):                 # inf - inf is nan: reported by the callers
                values += np.asarray(term(x).detach().cpu().numpy(), dtype=np.float64).reshape(-1)
    return values


def kinetic_matrix(axes: list[Axis], kinetic: float) -> sp.csr_matrix:
    """κ Σ_a I ⊗ .. ⊗ K_a ⊗ .. ⊗ I, K_a the 1D matrices of -d²/dx² (C order of the nodes)."""
    total = None
    for a, ax in enumerate(axes):
        factors = [sp.identity(len(b.nodes), format="csr") for b in axes]
        factors[a] = ax.laplacian
        term = factors[0]
        for f in factors[1:]:
            term = sp.kron(term, f, format="csr")
        total = term if total is None else total + term
    return (kinetic * total).tocsr()


class _Separable:
    """H₀ = Σ_a (κK_a + diag v_a), the separable part of the grid Hamiltonian: v_a is V along the axis-a line
    through the lowest node c, less (d-1)/d V(c), so that H₀ = H when V is a sum of one-axis terms. Each
    h_a = κK_a + diag v_a = Q_a Λ_a Q_aᵀ is diagonalised once; H₀'s eigenpairs are the sums Σ_a Λ_a and the
    products ⊗_a Q_a."""

    def __init__(self, axes: list[Axis], kinetic: float, potential: np.ndarray) -> None:
        self.shape = tuple(len(ax.nodes) for ax in axes)
        grid = potential.reshape(self.shape)
        lowest = np.unravel_index(np.argmin(grid), self.shape)
        self.eig = []
        for a, ax in enumerate(axes):
            line = list(lowest)
            line[a] = slice(None)
            v = grid[tuple(line)] - (len(axes) - 1) / len(axes) * grid[lowest]
            self.eig.append(np.linalg.eigh(kinetic * ax.laplacian.toarray() + np.diag(v)))
        self.levels = sum(np.meshgrid(*[lam for lam, _ in self.eig], indexing="ij"))

    def _rotate(self, x: np.ndarray, transpose: bool) -> np.ndarray:
        for a, (_, q) in enumerate(self.eig):
            x = np.moveaxis(np.tensordot(q.T if transpose else q, x, axes=(1, a)), 0, a)
        return x

    def lowest(self, count: int) -> np.ndarray:
        """The ``count`` lowest eigenvectors of H₀ (M, count): the starting block of LOBPCG."""
        picks = np.argsort(self.levels, axis=None)[:count]
        out = np.zeros((*self.shape, count))
        out[(*np.unravel_index(picks, self.shape), np.arange(count))] = 1.0
        return self._rotate(out, transpose=False).reshape(-1, count)

    def inverse(self, n_states: int) -> sla.LinearOperator:
        """(H₀ - σ)^(-1), σ below H₀'s lowest level by the width of its lowest n_states levels: LOBPCG's
        preconditioner (exact for separable V, whatever its range; walls of 1e17 hartree included)."""
        flat = np.sort(self.levels, axis=None)
        low, high = flat[0], flat[min(n_states, flat.size - 1)]
        denominator = self.levels - (low - max(high - low, 1e-6 * (1 + abs(low))))
        size = flat.size

        def apply(block: np.ndarray) -> np.ndarray:
            x = self._rotate(block.reshape(*self.shape, -1), transpose=True) / denominator[..., None]
            return self._rotate(x, transpose=False).reshape(size, -1)

        return sla.LinearOperator((size, size), matvec=apply, matmat=apply, dtype=np.float64)


def block_size(n_states: int) -> int:
    """LOBPCG block: the wanted states plus guard vectors (degenerate shells may straddle n_states)."""
    return n_states + max(4, n_states // 2)


def memory_bytes(points: int, dimension: int, order: int, n_states: int) -> int:
    """Bytes of the sparse matrix (CSR: 12 per entry), LOBPCG's blocks (~12 of M × block float64s) and the
    potential evaluation (~8 arrays of M × d)."""
    m = points**dimension
    entries = m * (1 + 2 * (order - 1) * dimension)
    return 12 * entries + 8 * m * (12 * block_size(n_states) + 8 * dimension)


class _NotConverged(Exception):
    """An iterative eigensolver stopped short of TOLERANCE."""


def _lobpcg(matrix: sp.csr_matrix, guess: np.ndarray, preconditioner: sla.LinearOperator,
            n_states: int) -> tuple[np.ndarray, np.ndarray]:
    """LOBPCG in restarts of RESTART iterations until the lowest n_states residuals are below TOLERANCE
    (guard vectors inside a degenerate shell may converge much later; they only need to span it), or below
    STALLED after the last restart."""
    vectors = guess
    for _ in range(MAX_RESTARTS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)       # "not reaching the requested tolerance"
            warnings.simplefilter("ignore", sl.LinAlgWarning)  # ill-conditioned Gram blocks: the residuals judge
            try:
                energies, vectors = sla.lobpcg(matrix, vectors, M=preconditioner, tol=TOLERANCE, largest=False,
                                               maxiter=RESTART)
            except np.linalg.LinAlgError as exc:              # its Rayleigh-Ritz Gram matrix lost definiteness
                raise _NotConverged(f"LOBPCG broke down ({exc})") from None
        order = np.argsort(energies)
        energies, vectors = energies[order], vectors[:, order]
        wanted = vectors[:, :n_states]
        residual = np.linalg.norm(matrix @ wanted - wanted * energies[:n_states], axis=0)
        if residual.max() < TOLERANCE:
            return energies, vectors
    if residual.max() < STALLED:
        return energies, vectors
    raise _NotConverged(f"LOBPCG stopped at residual {residual.max():.1e} after {MAX_RESTARTS * RESTART} "
                        "iterations")


def _shift_invert(matrix: sp.csr_matrix, potential: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Lanczos on (H - σ)^(-1) by a sparse LU, σ = min V - max(1, |min V|/10) below the whole spectrum
    (κK ≥ 0): the eigenvalues nearest σ are the lowest."""
    low = float(potential.min())
    sigma = low - max(1.0, 0.1 * abs(low))
    try:
        energies, vectors = sla.eigsh(matrix, k=count, sigma=sigma, which="LM", tol=1e-12)
    except (sla.ArpackError, MemoryError, RuntimeError) as exc:
        raise _NotConverged(f"shift-invert Lanczos failed ({exc})") from None
    order = np.argsort(energies)
    return energies[order], vectors[:, order]


def _eigenpairs(system: System, hamiltonian: sp.csr_matrix, axes: list[Axis], potential: np.ndarray,
                n_states: int) -> tuple[np.ndarray, np.ndarray]:
    """The lowest eigenpairs (at least n_states, ascending) of the grid matrix. Dense ``eigh`` up to DENSE_MAX
    points; in 1D shift-invert Lanczos (the banded LU is cheap; LAPACK's banded eigensolver forms an N×N matrix);
    else LOBPCG preconditioned by the separable part of H and started from its eigenvectors, then shift-invert
    Lanczos up to SHIFT_INVERT_MAX points; InputError (reference.points) when every method fails, never a
    RuntimeError."""
    size = hamiltonian.shape[0]
    block = min(block_size(n_states), size)
    if size <= DENSE_MAX:
        return sl.eigh(hamiltonian.toarray(), subset_by_index=(0, block - 1))
    if len(axes) == 1:                  # a banded matrix: its sparse LU has no fill-in
        try:
            return _shift_invert(hamiltonian, potential, block)
        except _NotConverged as exc:
            raise InputError(f"the eigensolver did not converge on {size} grid points ({exc}); try other "
                             "reference.points", source=system.source, field="reference.points") from None
    separable = _Separable(axes, system.kinetic, potential)
    failures = []
    try:
        return _lobpcg(hamiltonian, separable.lowest(block), separable.inverse(n_states), n_states)
    except _NotConverged as exc:
        failures.append(str(exc))
    if size <= SHIFT_INVERT_MAX:
        try:
            return _shift_invert(hamiltonian, potential, block)
        except _NotConverged as exc:
            failures.append(str(exc))
    raise InputError(f"the eigensolver did not converge on {size} grid points ({'; '.join(failures)}); "
                     f"try fewer reference.points (up to {DENSE_MAX} points in all are solved directly) or a "
                     "smaller reference.extent", source=system.source, field="reference.points")


def solve_grid(system: System, n_states: int, options: GridOptions, window: int | None = None) -> Solve:
    """Lowest n_states eigenpairs of the discretised H; values ψ(x_k) orthonormal under the weights."""
    start = time.perf_counter()
    axes = [make_axis(options, a, window) for a in range(system.dimension)]
    potential = potential_values(system, axes)
    hamiltonian = kinetic_matrix(axes, system.kinetic) + sp.diags(potential)
    size = hamiltonian.shape[0]
    if n_states > size:
        raise InputError(f"{n_states} states need at least as many grid points, got {size}",
                         source=system.source, field="reference.points")
    energies, vectors = _eigenpairs(system, hamiltonian.tocsr(), axes, potential, n_states)
    weights = np.prod(np.stack(np.meshgrid(*[ax.weights for ax in axes], indexing="ij"), -1), -1).ravel()
    points = np.stack([m.ravel() for m in np.meshgrid(*[ax.nodes for ax in axes], indexing="ij")], -1)
    values = vectors[:, :n_states] / np.sqrt(weights)[:, None]
    return Solve(energies[:n_states], values, points, weights, time.perf_counter() - start, potential)


def _bad(system: System, key: str, message: str) -> InputError:
    return InputError(message, source=system.source, field=f"reference.{key}")


def _default_extent(system: System, n_states: int, scan: bool = True) -> tuple[list[float], list[float], float, str]:
    """Half-widths, centre, stretch and a note on what they cover: from the box, the oscillators or the Coulomb
    centres when the potential is only of that kind, else from V itself (:func:`_scan_extent`; with ``scan``
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
        return _scan_extent(system, n_states)
    try:
        return [SCAN_START] * d, _scan_extent(system, n_states)[1], 1.0, "centre of the walls placed from V"
    except InputError:                      # V binds too few states: centre on its lowest point within ±10 bohr
        region = _sample(system, np.zeros(d), np.full(d, SCAN_START), strict=False)
        lowest = np.unravel_index(np.argmin(np.where(np.isnan(region.values), np.inf, region.values)),
                                  region.values.shape)
        return [SCAN_START] * d, [float(x[i]) for x, i in zip(region.nodes, lowest)], 1.0, "V's lowest point"


@dataclass
class _Region:
    """V (hartree, shape (n_1, .., n_d); +inf where it overflows) on a uniform grid of nodes (bohr) per axis."""

    nodes: list[np.ndarray]
    values: np.ndarray


def _sample(system: System, center: np.ndarray, half: np.ndarray, strict: bool = True) -> _Region:
    """V on SCAN_POINTS nodes per axis over center ± half (walls included), Coulomb terms as cell averages;
    with ``strict``, InputError (field potential) where V is nan or -inf."""
    count = SCAN_POINTS[system.dimension]
    nodes = [c + h * np.linspace(-1, 1, count) for c, h in zip(center, half)]
    edges = [np.concatenate(([x[0] - h / (count - 1)], 0.5 * (x[1:] + x[:-1]), [x[-1] + h / (count - 1)]))
             for x, h in zip(nodes, half)]
    values = _potential_at(system, nodes, edges).reshape([count] * system.dimension)
    if strict:
        _check_defined(system, nodes, values)
    return _Region(nodes, values)


def _check_defined(system: System, nodes: list[np.ndarray], values: np.ndarray) -> None:
    """InputError (field potential) at the first node where V is nan or -inf, or when V is +inf everywhere; +inf
    elsewhere is a wall and allowed."""
    bad = np.isnan(values) | (values == -np.inf)
    if bad.any():
        where = [float(x[i]) for x, i in zip(nodes, np.unravel_index(np.flatnonzero(bad)[0], values.shape))]
        raise InputError(f"the potential is {values[bad][0]} at x = {where} bohr: the grid reference needs V "
                         "defined and bounded below everywhere the states reach (use reference.extent to keep "
                         "the grid inside the region where it is)", source=system.source, field="potential")
    if not np.isfinite(values).any():
        raise InputError(f"the potential overflows (+inf) at every point sampled within {nodes[0][0]:.3g} .. "
                         f"{nodes[0][-1]:.3g} bohr along x: no state fits", source=system.source, field="potential")


def _quick_levels(system: System, n_states: int, center: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Lowest n_states levels (hartree) on a coarse grid with walls at center ± half: estimates that place the
    walls. V is capped 1e4 kinetic units κ/h² above its minimum (a wall is a wall beyond that), which keeps
    overflowing exponentials and huge boxes solvable."""
    d = system.dimension
    points = max(SCAN_SOLVE_POINTS[d], 2 * math.ceil((2 * n_states) ** (1 / d) / 2))
    options = GridOptions(points, list(half), list(center), 8, 1.0)
    axes = [make_axis(options, a) for a in range(d)]
    values = _potential_at(system, [ax.nodes for ax in axes], [ax.edges for ax in axes])
    _check_defined(system, [ax.nodes for ax in axes], values.reshape([points] * d))
    spacing = min(float(ax.weights.min()) for ax in axes)
    values = np.minimum(values, values.min() + 1e4 * system.kinetic / spacing**2)
    hamiltonian = (kinetic_matrix(axes, system.kinetic) + sp.diags(values)).tocsr()
    return _eigenpairs(system, hamiltonian, axes, values, n_states)[0][:n_states]


def _walls(region: _Region, energy: float, kappa: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Per axis, the wall positions (lo, hi) where the WKB action ∫ √((P_a - E)/κ) dt, counted outward from the
    outermost turning points, reaches WALL_ACTION; P_a(t) = min of V over the other axes, a lower envelope, so
    that the states decay at least this fast. None when the sampled region ends first."""
    d = len(region.nodes)
    lo, hi = [], []
    for a, t in enumerate(region.nodes):
        profile = region.values.min(axis=tuple(b for b in range(d) if b != a)) if d > 1 else region.values
        inside = np.flatnonzero(profile < energy)
        first, last = (inside[0], inside[-1]) if inside.size else (np.argmin(profile),) * 2
        # action of each step, from the value at its inner node (the smaller one on a rising wall: conservative)
        rate = np.sqrt(np.clip(profile - energy, 0, None) / kappa) * (t[1] - t[0])
        right = np.flatnonzero(np.cumsum(rate[last:-1]) >= WALL_ACTION)
        left = np.flatnonzero(np.cumsum(rate[first:0:-1]) >= WALL_ACTION)
        if right.size == 0 or left.size == 0:
            return None
        lo.append(t[first - 1 - left[0]])
        hi.append(t[last + 1 + right[0]])
    return np.array(lo), np.array(hi)


def _edge(region: _Region) -> float:
    """V's lowest value on the boundary of the sampled region (hartree)."""
    return min(float(np.moveaxis(region.values, a, 0)[[0, -1]].min()) for a in range(region.values.ndim))


def _target(level: float, region: _Region) -> float:
    """The energy the walls are placed for: the level plus 10% of its height above min V, but at most halfway up
    to V's lowest value on the region's edge (a level just below a plateau of V must stay below it)."""
    margin, edge = 0.1 * (level - float(region.values.min())), _edge(region)
    return level + (min(margin, 0.5 * (edge - level)) if edge > level else margin)


def _scan_extent(system: System, n_states: int) -> tuple[list[float], list[float], float, str]:
    """Walls from V: sample V over a region (±SCAN_START bohr first) and estimate the levels on a coarse grid
    there; while the highest wanted level reaches V's lowest value on the region's edge, the walls and not V hold
    the states, so the region grows (×SCAN_GROWTH, re-centred on V's lowest point) up to ±SCAN_MAX (then
    InputError: V binds fewer states). Then place the walls for the highest level E plus a margin (:func:`_walls`),
    re-estimate the levels in that box and repeat, each time sampling V around the new box, until the walls
    move by less than 5%."""
    d, kappa = system.dimension, system.kinetic
    center, half = np.zeros(d), np.full(d, SCAN_START)
    energy, bound, box = None, 0, None
    for _ in range(MAX_SCANS):
        region = _sample(system, center, half)
        if energy is None:
            levels = _quick_levels(system, n_states, center, half)
            edge = _edge(region)
            bound = max(bound, int(np.sum(levels < edge)))
            if levels[-1] >= edge:
                if half.max() >= SCAN_MAX:
                    raise InputError(
                        f"fewer than the {n_states} states asked for lie below V's lowest value on the edge of a "
                        f"±{half.max():.3g} bohr region ({edge:.3g} hartree; coarse estimates put {bound} level(s) "
                        "there): V is unbounded below or levels off, and states above that value are box states, "
                        "not bound ones. Ask for fewer states, add a confining term, or set reference.extent to "
                        "solve in a box", source=system.source, field="reference.extent")
                lowest = np.unravel_index(np.argmin(region.values), region.values.shape)
                center = np.array([x[i] for x, i in zip(region.nodes, lowest)])
                half = half * SCAN_GROWTH
                continue
            energy = _target(float(levels[-1]), region)
        walls = _walls(region, energy, kappa)
        if walls is None:                           # the decay beyond the turning points needs more room
            half = half * SCAN_GROWTH
            if half.max() > SCAN_GROWTH * SCAN_MAX:
                raise InputError(f"the highest level asked for (about {levels[-1]:.4g} hartree) lies too close to "
                                 f"V's values far out for walls within ±{SCAN_MAX:g} bohr (its state is too "
                                 "extended, or not bound); ask for fewer states or set reference.extent",
                                 source=system.source, field="reference.extent")
            continue
        settled = box is not None and np.allclose(walls, box, rtol=0, atol=0.05 * float(np.max(box[1] - box[0])))
        box = walls
        if settled:
            break
        levels = _quick_levels(system, n_states, 0.5 * (box[0] + box[1]), 0.5 * (box[1] - box[0]))
        energy = _target(float(levels[-1]), region)
        center, half = 0.5 * (box[0] + box[1]), box[1] - box[0]      # sample around the box, twice its width
    if box is None:
        raise InputError("could not place the grid's walls from V; set reference.extent", source=system.source,
                         field="reference.extent")
    lo, hi = box
    return ((0.5 * (hi - lo)).tolist(), (0.5 * (hi + lo)).tolist(), 1.0,
            f"V: walls where the WKB decay from the turning points of E = {energy:.4g} hartree (highest level + "
            f"10% of its height above min V) reaches e^-{WALL_ACTION:g}")


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
    options = {**{k: v for k, v in own.items() if k != "literature"}, **options}
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
                     ReferenceStates(fine.points, fine.weights, fine.values))
