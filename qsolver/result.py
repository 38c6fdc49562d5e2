"""The outcome of a solve: energies with error bars, wavefunctions as callables, history and diagnostics."""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field

import numpy as np
import torch

from .networks import Network
from .system import System


# points per forward pass of wavefunctions(): each holds about (2 layers + 1) W numbers per point and state, so a
# chunk no larger than the evaluation's (qsolver.memory.EVAL_CHUNK, with its jets of 3 D W + 6 W) stays below the
# evaluation's peak for any number of states; a fixed count of points did not (50 states in 3D: 2.2 times it)
WAVEFUNCTION_CHUNK = 4096


@dataclass
class Result:
    """Energies (hartree, ascending) with error bars, and the learned states.

    ``errors`` = 2 √(stat² + bias²): the jackknife standard error of the Monte Carlo estimate and the estimated
    remaining error of the learned span; ``diagnostics`` holds both and the Kato–Temple bound σ²/Δ (``span_errors``).
    Files saved before the bias column have ``errors`` = √(stat² + span²) and no ``bias_errors``.

    State i is φ_i(x) = Σ_m ψ_m(x) C_mi, with ψ the trained networks and C the Rayleigh–Ritz vectors;
    the φ_i are normalised to ∫ φ_i² dx = 1 (up to Monte Carlo error) and their signs are arbitrary.
    For two particles ``observables`` holds the one-particle densities and the distributions of the distance
    between the particles, with their statistical errors (see :mod:`qsolver.observables`).
    ``transitions`` holds the states' transition dipoles d_ij = ⟨φ_i|Σ_k x_k|φ_j⟩ (bohr), their errors and jackknife
    replicates, and the oscillator strengths f_ij = (E_j - E_i)|d_ij|²/(κd) (see :mod:`qsolver.dipoles`); it is
    empty for results saved before they were estimated.
    :func:`qsolver.io.save_result` writes a result to HDF5 and :func:`qsolver.io.load_result` reads it back.
    """

    system: System
    energies: np.ndarray
    errors: np.ndarray
    model: Network
    coefficients: np.ndarray
    config: dict
    history: dict[str, np.ndarray] = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    observables: dict = field(default_factory=dict)   # two particles: densities and r_12 distributions
    transitions: dict = field(default_factory=dict)   # dipoles and oscillator strengths (qsolver.dipoles)

    @property
    def n_states(self) -> int:
        return len(self.energies)

    def wavefunctions(self, x) -> np.ndarray:
        """φ_i(x) = Σ_m ψ_m(x) C_mi at configurations x (M, N, d) of N particles (bohr; one particle also takes points
        (M, d)), as a float64 array (M, n_states) in bohr^(-d·N/2); evaluated in float64 on the model's device."""
        points = torch.as_tensor(np.asarray(x, dtype=np.float64))
        d, n = self.system.dimension, self.system.particles
        if n == 1 and points.ndim == 2 and points.shape[1] == d:
            points = points[:, None, :]
        if points.ndim != 3 or tuple(points.shape[1:]) != (n, d):
            wanted = f"(M, {d}) or (M, 1, {d})" if n == 1 else f"(M, {n}, {d})"
            raise ValueError(f"points must have shape {wanted}, got {tuple(points.shape)}")
        model = self._float64_model()
        weight = next(itertools.chain(model.parameters(), model.buffers()), None)
        device = weight.device if weight is not None else torch.device("cpu")
        out = []
        with torch.no_grad():
            for chunk in torch.split(points, WAVEFUNCTION_CHUNK):
                out.append(model(chunk.to(device)).cpu().numpy())
        return np.concatenate(out) @ self.coefficients

    def _float64_model(self) -> Network:
        """The model itself when it is float64 (as :func:`qsolver.solve` and :func:`qsolver.io.load_result` leave
        it), else a float64 copy on the same device: converting in place would change the dtype of a model the
        caller may still train."""
        if all(p.dtype == torch.float64 for p in self.model.parameters()):
            return self.model
        return copy.deepcopy(self.model).to(torch.float64)

    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned box (bohr) of one particle's coordinates holding the states (the network's envelopes), or
        ± 2σ of the fixed Gaussian proposal around the first centre for a network without an envelope."""
        box = self.model.extent()
        if box is not None:
            return box
        centre = np.asarray(self.model.config.centers[0], dtype=float)
        reach = 2.0 * float(self.config.get("proposal_scale", 16.0))
        return centre - reach, centre + reach
