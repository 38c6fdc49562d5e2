"""Finite-difference grid: H = -κ∇² + V for one particle on a (mapped) tensor-product grid, d ≤ 3, its lowest
eigenpairs, and walls placed from V. The grid reference (:mod:`qsolver.references.grid`) adds error estimates;
the one-particle network fits its envelopes to the coarse states (:func:`coarse_states`).

Method. Each axis carries nodes x_i = g(u_i) on a uniform grid u_i = -1 + iδ (δ = 2/(N+1), i = 1..N) with
Dirichlet walls at u = ±1; g(u) = c + L (u + a u³)/(1 + a) puts the walls at c ± L (bohr) and makes the
spacing grow from the centre to the walls by ``stretch`` = 1 + 3a (a = 0: uniform). For φ = √J ψ (J = g')
the 1D kinetic operator is -d²/dx² = J^(-1/2) D^T J_mid^(-1) D J^(-1/2) / δ², D a staggered first difference
of order p (4, 6 or 8) with odd reflection at the walls (ψ = 0 there); the d-dimensional Hamiltonian is
the Kronecker sum κ Σ_a K_a + diag(V), a sparse symmetric matrix. Finite differences rather than a sinc
basis keep H sparse (O(M p d) entries for M points) and its boundary exact for boxes; the mapping (option
``stretch``) buys resolution at the grid's centre without a uniformly fine grid. A single Coulomb centre is not
solved by the grid reference but by its radial equations (:mod:`qsolver.references.radial`: one dimension
instead of d, so far finer); several centres keep this grid.

Eigensolver (:func:`_eigenpairs`): dense ``eigh`` up to DENSE_MAX points; in 1D shift-invert Lanczos (banded
LU); else LOBPCG preconditioned by (H₀ - σ)^(-1), H₀ = Σ_a (κK_a + v_a) the separable part of H (V along the
axis lines through its lowest node), diagonalised axis by axis and exact for separable V whatever its range
(steep exponential walls included, on which a kinetic-only preconditioner stalls), starting from H₀'s lowest
eigenvectors. Should it stall, shift-invert Lanczos takes over up to SHIFT_INVERT_MAX points (its sparse LU fills
in, so it is the fallback, not the first choice, beyond 1D), then InputError. The timings behind these choices are
in results/bench/README.md, "Constants chosen by hand timings".

Walls from V (:func:`scan_extent`). V is sampled on a region (±10 bohr first) and the levels estimated on a
coarse grid; while the highest wanted level reaches V's lowest value on the region's edge the region grows (×4, re-centred on
V's lowest point) up to ±1e4 bohr, beyond which V is taken to bind too few states (InputError naming
reference.extent: unbounded below, or levelling off). The walls then go where the WKB action from the outermost
turning points of that level (+ a margin), ∫ √((P_a - E)/κ) dx with P_a the minimum of V over the other axes,
reaches WALL_ACTION = 15 (ψ ~ e^-15 at the wall, level shifts ~e^-30); levels are re-estimated in that box and
the walls re-placed until they move by < 5%. V must be defined (not nan, not -inf) where it is sampled.
"""
from __future__ import annotations

import itertools
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sl
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch

from .errors import InputError
from .potentials import Box, Coulomb, terms
from .system import System

RESTART, MAX_RESTARTS = 100, 20             # LOBPCG iterations per restart (each restart drops its search
                                            # directions: fewer are faster, results/bench/README.md), restarts
TOLERANCE = 1e-5                          # LOBPCG residual |Hψ - Eψ|: energy error ~ residual²/gap ≲ 1e-9
STALLED = 1e-4                            # residual accepted when LOBPCG stalls: energy error ≲ 1e-8/gap
DENSE_MAX = 1500                          # grid points up to which a dense eigh beats any iteration
SHIFT_INVERT_MAX = 40000                  # points up to which the shift-invert fallback's sparse LU fits (2D)
SCAN_POINTS = {1: 4001, 2: 401, 3: 81}    # nodes per axis on which V is sampled to place the walls
SCAN_SOLVE_POINTS = {1: 200, 2: 36, 3: 10}    # points per axis of the coarse level estimates (dense eigh)
SCAN_START, SCAN_GROWTH, SCAN_MAX = 10.0, 4.0, 1e4     # bohr: first half-width of the sampled region, growth, last
MAX_SCANS = 16
WALL_ACTION = 15.0                        # ∫ √((V - E)/κ) dx from a turning point to a wall: ψ there ~ e^-15
COARSE_POINTS = {1: 200, 2: 48, 3: 20}    # points per axis of the coarse states (level counts, envelope fits)


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


class NotConverged(Exception):
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
                raise NotConverged(f"LOBPCG broke down ({exc})") from None
        order = np.argsort(energies)
        energies, vectors = energies[order], vectors[:, order]
        wanted = vectors[:, :n_states]
        residual = np.linalg.norm(matrix @ wanted - wanted * energies[:n_states], axis=0)
        if residual.max() < TOLERANCE:
            return energies, vectors
    if residual.max() < STALLED:
        return energies, vectors
    raise NotConverged(f"LOBPCG stopped at residual {residual.max():.1e} after {MAX_RESTARTS * RESTART} "
                        "iterations")


def _shift_invert(matrix: sp.csr_matrix, potential: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Lanczos on (H - σ)^(-1) by a sparse LU, σ = min V - max(1, |min V|/10) below the whole spectrum
    (κK ≥ 0): the eigenvalues nearest σ are the lowest."""
    low = float(potential.min())
    sigma = low - max(1.0, 0.1 * abs(low))
    try:
        energies, vectors = sla.eigsh(matrix, k=count, sigma=sigma, which="LM", tol=1e-12)
    except (sla.ArpackError, MemoryError, RuntimeError) as exc:
        raise NotConverged(f"shift-invert Lanczos failed ({exc})") from None
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
        except NotConverged as exc:
            raise InputError(f"the eigensolver did not converge on {size} grid points ({exc}); try other "
                             "reference.points", source=system.source, field="reference.points") from None
    separable = _Separable(axes, system.kinetic, potential)
    failures = []
    try:
        return _lobpcg(hamiltonian, separable.lowest(block), separable.inverse(n_states), n_states)
    except NotConverged as exc:
        failures.append(str(exc))
    if size <= SHIFT_INVERT_MAX:
        try:
            return _shift_invert(hamiltonian, potential, block)
        except NotConverged as exc:
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


@dataclass
class _Region:
    """V (hartree, shape (n_1, .., n_d); +inf where it overflows) on a uniform grid of nodes (bohr) per axis."""

    nodes: list[np.ndarray]
    values: np.ndarray


def sample_potential(system: System, center: np.ndarray, half: np.ndarray, strict: bool = True) -> _Region:
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


def scan_extent(system: System, n_states: int) -> tuple[list[float], list[float], float, str]:
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
        region = sample_potential(system, center, half)
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


def coarse_states(system: System, n_states: int) -> Solve:
    """Lowest n_states eigenpairs on a coarse grid (COARSE_POINTS per axis, 8th order: cheap) between walls placed
    from V (:func:`scan_extent`); InputError where V binds fewer states or is undefined where it is sampled."""
    half, center, stretch, _ = scan_extent(system, n_states)
    return solve_grid(system, n_states, GridOptions(COARSE_POINTS[system.dimension], half, center, 8, stretch))
