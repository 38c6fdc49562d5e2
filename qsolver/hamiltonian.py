"""H = -κ∇² + V applied to trial functions on samples (hartree; x in bohr)."""
from __future__ import annotations

import torch

from .laplacian import finite_difference_laplacian, hessian_trace


def apply_hamiltonian(model: torch.nn.Module, potential, kinetic: float, x: torch.Tensor,
                      method: str = "forward", fd_step: float = 1e-2) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ψ(x) and (Hψ)(x), both (B, L), without building a graph (Hψ is never differentiated).

    ``method``: "forward" (exact forward-Laplacian pass), "hessian" (exact torch.func Hessian trace) or
    "fd" (central differences of step ``fd_step``, O(h²) truncation error; for comparison only).
    """
    with torch.no_grad():
        if method == "forward":
            psi, _, lap = model.jet(x)
        elif method == "hessian":
            psi = model(x)
            with torch.enable_grad():
                lap = hessian_trace(model, x).detach()
        elif method == "fd":
            psi = model(x)
            lap = finite_difference_laplacian(model, x, fd_step)
        else:
            raise ValueError(f"unknown Laplacian method '{method}' (forward, hessian, fd)")
        v = potential(x)
        return psi, -kinetic * lap + v[:, None] * psi
