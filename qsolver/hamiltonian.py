"""H = -κ Σ_i ∇_i² + Σ_i V(x_i) + Σ_{i<j} W(|x_i - x_j|) applied to trial functions on configurations x (B, N, d)
(hartree; bohr), for every N.

The Hamiltonian is a sum of terms, each a small pure function: the kinetic term (its Laplacian runs over all N·d
coordinates) and local terms t(x) (B,) that multiply ψ, here the one-body potential and the pair interaction.
Further terms (a field, a spin shift) are added with ``+``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch

from .laplacian import finite_difference_laplacian, hessian_trace

LocalTerm = Callable[[torch.Tensor], torch.Tensor]      # configurations (B, N, d) -> (B,) hartree


def one_body(potential: Callable[[torch.Tensor], torch.Tensor]) -> LocalTerm:
    """Σ_i V(x_i) for a one-particle potential V on points (M, d)."""

    def term(x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return potential(x.reshape(b * n, d)).reshape(b, n).sum(1)

    return term


def two_body(interaction: Callable[[torch.Tensor], torch.Tensor]) -> LocalTerm:
    """Σ_{i<j} W(|x_i - x_j|) for a pair interaction W on distances (M,)."""

    def term(x: torch.Tensor) -> torch.Tensor:
        i, j = torch.triu_indices(x.shape[1], x.shape[1], offset=1, device=x.device)
        r = torch.linalg.vector_norm(x[:, i] - x[:, j], dim=-1)            # (B, pairs)
        return interaction(r.reshape(-1)).reshape(r.shape).sum(1)

    return term


@dataclass(frozen=True)
class Hamiltonian:
    """H = -κ Σ_i ∇_i² + Σ_t t(x): the kinetic prefactor κ and the local terms."""

    kinetic: float
    local: tuple[LocalTerm, ...] = ()

    def __add__(self, term: LocalTerm) -> "Hamiltonian":
        return replace(self, local=self.local + (term,))

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_t t(x), (B,) hartree (zero without local terms)."""
        if not self.local:
            return x.new_zeros(x.shape[0])
        total = self.local[0](x)
        for term in self.local[1:]:
            total = total + term(x)
        return total

    def apply(self, model: torch.nn.Module, x: torch.Tensor, method: str = "forward", fd_step: float = 1e-2
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """ψ(x) and (Hψ)(x), both (B, L), without building a graph (Hψ is never differentiated).

        ``method``: "forward" (exact forward-Laplacian pass), "hessian" (exact torch.func Hessian trace) or "fd"
        (central differences of step ``fd_step``, O(h²) truncation error; for comparison only)."""
        shape = x.shape[1:]

        def flat_model(z: torch.Tensor) -> torch.Tensor:   # the cross-checks differentiate (B, N·d) inputs
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
            return psi, -self.kinetic * lap + self.potential(x)[:, None] * psi


def hamiltonian(system) -> Hamiltonian:
    """The system's H: kinetic term, one-body potential and, for several particles, the pair interaction."""
    h = Hamiltonian(system.kinetic) + one_body(system.potential)
    return h + two_body(system.interaction) if system.particles > 1 else h
