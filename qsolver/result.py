"""The outcome of a solve: energies with error bars, wavefunctions as callables, history and diagnostics."""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field

import numpy as np
import torch

from .model import EigenNet
from .pairnet import PairNet
from .system import System


@dataclass
class Result:
    """Energies (hartree, ascending) with error bars, and the learned states.

    ``errors`` = √(stat² + span²): the jackknife standard error of the Monte Carlo estimate and the
    Kato–Temple estimate σ²/Δ of how far the learned span puts each level too high (both in ``diagnostics``).

    State i is φ_i(x) = Σ_m ψ_m(x) C_mi, with ψ the trained networks and C the Rayleigh–Ritz vectors;
    the φ_i are normalised to ∫ φ_i² dx = 1 (up to Monte Carlo error) and their signs are arbitrary.
    For two particles ``observables`` holds the one-particle densities and the distributions of the distance
    between the particles, with their statistical errors (see :mod:`qsolver.observables`).
    :func:`qsolver.io.save_result` writes a result to HDF5 and :func:`qsolver.io.load_result` reads it back.
    """

    system: System
    energies: np.ndarray
    errors: np.ndarray
    model: EigenNet | PairNet
    coefficients: np.ndarray
    config: dict
    history: dict[str, np.ndarray] = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    observables: dict = field(default_factory=dict)   # two particles: densities and r_12 distributions

    @property
    def n_states(self) -> int:
        return len(self.energies)

    def wavefunctions(self, x) -> np.ndarray:
        """φ_i(x) = Σ_m ψ_m(x) C_mi at points x (N, d) for one particle or configurations (N, 2, d) for two (bohr),
        as a float64 array (N, n_states) in bohr^(-d·particles/2); evaluated in float64 on the model's device."""
        points = torch.as_tensor(np.asarray(x, dtype=np.float64))
        d, n = self.system.dimension, self.system.particles
        shape = (d,) if n == 1 else (n, d)
        if points.ndim != 1 + len(shape) or tuple(points.shape[1:]) != shape:
            raise ValueError(f"points must have shape (N, {', '.join(map(str, shape))}), got {tuple(points.shape)}")
        model = self._float64_model()
        weight = next(itertools.chain(model.parameters(), model.buffers()), None)
        device = weight.device if weight is not None else torch.device("cpu")
        out = []
        with torch.no_grad():
            for chunk in torch.split(points, 65536):      # chunks bound the device memory of large grids
                out.append(model(chunk.to(device)).cpu().numpy())
        return np.concatenate(out) @ self.coefficients

    def _float64_model(self) -> EigenNet | PairNet:
        """The model itself when it is float64 (as :func:`qsolver.solve` and :func:`qsolver.io.load_result` leave
        it), else a float64 copy on the same device: converting in place would change the dtype of a model the
        caller may still train."""
        if all(p.dtype == torch.float64 for p in self.model.parameters()):
            return self.model
        return copy.deepcopy(self.model).to(torch.float64)

    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned box (bohr) holding the states: the box itself, centres ± 4/√β for Gaussian
        envelopes, centres ± 6/a for exponential ones (a = the smallest learned decay), or ± 2σ of the
        fixed Gaussian proposal without an envelope."""
        model = self.model
        centers = model.centers.detach().cpu().numpy()
        kind = model.config.envelope
        if kind == "box":
            half = 0.5 * model.lengths.detach().cpu().numpy()
            return centers[0] - half, centers[0] + half
        if kind == "none":                     # no envelope: two standard deviations of the fixed proposal
            reach = 2.0 * float(self.config.get("proposal_scale", 16.0))
            return centers[0] - reach, centers[0] + reach
        scales = np.exp(model.log_scale.detach().cpu().numpy())
        if isinstance(model, PairNet):         # per state and particle slot: the slowest decay sets the reach
            scales = scales.reshape(-1, centers.shape[0] if kind == "exponential" else centers.shape[1])
        reach = 4.0 / np.sqrt(scales.min(0)) if kind == "gaussian" else np.full(centers.shape[1], 6.0 / scales.min())
        return centers.min(0) - reach, centers.max(0) + reach
