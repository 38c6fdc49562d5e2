"""H = Σ_i (-κ∇_i² + V(x_i)) + Σ_{i<j} W(|x_i - x_j|) applied to trial functions on samples (hartree; x in bohr).

One particle: x (B, d). Two particles: configurations x (B, 2, d); the Laplacian runs over all 2d coordinates.
"""
from __future__ import annotations

from typing import Callable

import torch

from .laplacian import finite_difference_laplacian, hessian_trace


def potential_energy(system) -> Callable[[torch.Tensor], torch.Tensor]:
    """The system's potential energy as a function of samples: V(x) for x (B, d), or
    V(x_1) + V(x_2) + W(|x_1 - x_2|) for configurations (B, 2, d); (B,) hartree."""
    if system.particles == 1:
        return system.potential

    def energy(x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        one_body = system.potential(x.reshape(b * n, d)).reshape(b, n).sum(1)
        return one_body + system.interaction(torch.linalg.vector_norm(x[:, 0] - x[:, 1], dim=-1))

    return energy


def apply_hamiltonian(model: torch.nn.Module, potential, kinetic: float, x: torch.Tensor,
                      method: str = "forward", fd_step: float = 1e-2) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ψ(x) and (Hψ)(x), both (B, L), without building a graph (Hψ is never differentiated).

    ``potential`` maps the samples to (B,) (see :func:`potential_energy`). ``method``: "forward" (exact
    forward-Laplacian pass), "hessian" (exact torch.func Hessian trace) or "fd" (central differences of step
    ``fd_step``, O(h²) truncation error; for comparison only).
    """
    shape = x.shape[1:]

    def flat_model(z: torch.Tensor) -> torch.Tensor:   # the cross-checks differentiate (N, D) inputs
        return model(z.reshape(-1, *shape))

    with torch.no_grad():
        if method == "forward":
            psi, _, lap = model.jet(x)
        elif method == "hessian":
            psi = model(x)
            with torch.enable_grad():
                lap = hessian_trace(flat_model, x.reshape(x.shape[0], -1)).detach()
        elif method == "fd":
            psi = model(x)
            lap = finite_difference_laplacian(flat_model, x.reshape(x.shape[0], -1), fd_step)
        else:
            raise ValueError(f"unknown Laplacian method '{method}' (forward, hessian, fd)")
        v = potential(x)
        return psi, -kinetic * lap + v[:, None] * psi
