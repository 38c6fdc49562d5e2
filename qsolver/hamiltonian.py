"""H = -κ Σ_i ∇_i² + Σ_i V(x_i) + Σ_{i<j} W(|x_i - x_j|) applied to trial functions on configurations x (B, N, d)
(hartree; bohr), for every N.

The Hamiltonian is a sum of terms, each a small pure function: the kinetic term (its Laplacian runs over all N·d
coordinates), local terms t(x) (B,) that multiply ψ (the one-body potential, the pair interaction, a field), and
operator terms that act on ψ itself (the spin shift λ(Ŝ² - S(S+1))). Terms are added with ``+``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch

from .laplacian import finite_difference_laplacian, hessian_trace

LocalTerm = Callable[[torch.Tensor], torch.Tensor]      # configurations (B, N, d) -> (B,) hartree
# (network, configurations (B, N, d), ψ there (B, L)) -> the term applied to ψ, (B, L) hartree·ψ
OperatorTerm = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


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


def spin_squared(spins: tuple[int, int]) -> OperatorTerm:
    """Ŝ² on a spatial function whose first n_up electrons have spin up and the others spin down (S_z = (n_up -
    n_down)/2): Ŝ²ψ = [S_z(S_z + 1) + n_down] ψ - Σ_{i up, j down} ψ(P_ij x), P_ij swapping electrons i and j
    (dimensionless; its eigenvalues are S(S + 1))."""
    up, down = spins
    s_z = 0.5 * (up - down)
    swaps = [(i, j) for i in range(up) for j in range(up, up + down)]

    def term(model: torch.nn.Module, x: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        out = (s_z * (s_z + 1) + down) * psi
        for i, j in swaps:
            order = list(range(x.shape[1]))
            order[i], order[j] = j, i
            out = out - model(x[:, order])
        return out

    return term


def spin_eigenvalue(spin: int) -> float:
    """S(S + 1) of the total spin S = ``spin``/2 (2S as in PySCF), Ŝ²'s eigenvalue on those states."""
    return 0.25 * spin * (spin + 2)


def spin_shift(spins: tuple[int, int], spin: int, strength: float) -> OperatorTerm:
    """λ (Ŝ² - S(S + 1)) with S = ``spin``/2: zero on states of total spin S, λ(S'(S' + 1) - S(S + 1)) > 0 on those of
    higher S' (the only others in the S_z = S sector), which it moves up by that much (hartree)."""
    s2 = spin_squared(spins)
    target = spin_eigenvalue(spin)

    def term(model: torch.nn.Module, x: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        return strength * (s2(model, x, psi) - target * psi)

    return term


@dataclass(frozen=True)
class Hamiltonian:
    """H = -κ Σ_i ∇_i² + Σ_t t(x) + Σ_o o: the kinetic prefactor κ, the local terms and the operator terms."""

    kinetic: float
    local: tuple[LocalTerm, ...] = ()
    operators: tuple[OperatorTerm, ...] = ()
    spin_penalty: float = 0.0     # λ of a spin shift among the operators (hartree): a device of training, not physics

    def __add__(self, term: LocalTerm) -> "Hamiltonian":
        return replace(self, local=self.local + (term,))

    def with_operator(self, term: OperatorTerm) -> "Hamiltonian":
        return replace(self, operators=self.operators + (term,))

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
            h_psi = -self.kinetic * lap + self.potential(x)[:, None] * psi
            for term in self.operators:
                h_psi = h_psi + term(model, x, psi)
            return psi, h_psi


def hamiltonian(system, shift: float = 0.0) -> Hamiltonian:
    """The system's H: kinetic term, one-body potential and, for several particles, the pair interaction; with
    ``shift`` λ > 0 and electrons of both spins also λ(Ŝ² - S(S+1)), which keeps other spins out of the lowest
    levels."""
    h = Hamiltonian(system.kinetic) + one_body(system.potential)
    if system.particles > 1:
        h = h + two_body(system.interaction)
    if shift > 0 and min(system.spin_sector) > 0:
        h = replace(h.with_operator(spin_shift(system.spin_sector, system.spin, shift)), spin_penalty=shift)
    return h
