"""Natural-gradient (Gauss–Newton) steps for NestedLoRA, one state at a time.

In function space NestedLoRA moves state k along its descent direction r_k = Tψ_k - Σ_m w_km ⟨ψ_k,ψ_m⟩ ψ_m
(sequential nesting: w_km = 1 for m ≤ k, else 0; joint nesting: w_km = min(m_k, m_m)/m_k, m_k = L - k). A
first-order optimiser follows the parameter gradient Jᵀr instead, which moves the diffuse, nearly degenerate
outer states at a rate set by their small relative gaps. Here each state's parameters take the step Δθ_k that
reproduces r_k best on the batch, in the metric of the samples (x ~ p, f = ψ/√p, so the batch mean is the
Lebesgue inner product):

    Δθ_k = J_kᵀ (J_k J_kᵀ + ε I)⁻¹ r_k,   J_k = ∂f_k(x_i)/∂θ_k  (B × P_k),

the minimum-norm least-squares solution (B × B solve; ε = damping × mean diag J_k J_kᵀ). The Coulomb term makes
r_k large and rough near a nucleus, so the step is then shortened to a trust region: the predicted change of the
state, ‖J_k Δθ_k‖, is at most ``trust`` × ‖f_k‖ on the batch.
"""
from __future__ import annotations

import torch
from torch.func import functional_call, grad, vmap

from .nestedlora import nesting_weights


def descent_direction(f: torch.Tensor, t_f: torch.Tensor, nesting: str,
                      gram: torch.Tensor | None = None) -> torch.Tensor:
    """r_k(x_i)/√p(x_i) (B, L) from f = ψ/√p and t_f = Tψ/√p (both (B, L)); ⟨ψ_k,ψ_m⟩ from ``gram`` (L, L)
    when given (independent samples), else from the same batch."""
    gram = f.T @ f / f.shape[0] if gram is None else gram
    m, big_m = nesting_weights(f.shape[1], nesting, f.dtype, f.device)
    weights = big_m / m[:, None]
    return t_f - f @ (weights * gram).T


def per_state_jacobian(model: torch.nn.Module, x: torch.Tensor, root_w: torch.Tensor) -> torch.Tensor:
    """J (L, B, P): ∂f_l(x_i)/∂θ_l for a model whose parameters all carry the state index first, so that
    state l's output depends on slice l of each parameter only (one network per state)."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def total(prm: dict, point: torch.Tensor) -> torch.Tensor:
        return functional_call(model, prm, (point[None],)).sum()

    per_sample = vmap(grad(total), in_dims=(None, 0))(params, x)        # name -> (B, L, ...)
    n, n_states = x.shape[0], next(iter(params.values())).shape[0]
    jac = torch.cat([per_sample[name].reshape(n, n_states, -1) for name in params], dim=-1)
    return (jac * root_w[:, :, None]).transpose(0, 1)


def least_squares_step(jac: torch.Tensor, r: torch.Tensor, damping: float) -> torch.Tensor:
    """Δθ (L, P) = Jᵀ (J Jᵀ + ε I)⁻¹ r per state, for J (L, B, P) and r (L, B); ε = damping × mean diag J Jᵀ."""
    kernel = jac @ jac.transpose(1, 2)
    eps = damping * kernel.diagonal(dim1=1, dim2=2).mean(-1)
    eye = torch.eye(jac.shape[1], dtype=kernel.dtype, device=kernel.device)
    coef = torch.linalg.solve(kernel + eps[:, None, None] * eye, r[..., None])
    return (jac.transpose(1, 2) @ coef)[..., 0]


def natural_step(model: torch.nn.Module, x: torch.Tensor, root_w: torch.Tensor, direction: torch.Tensor,
                 f: torch.Tensor, trust: float, damping: float) -> torch.Tensor:
    """Apply Δθ_k (see the module docstring) to the model in place; returns the step scale per state (L,)."""
    jac = per_state_jacobian(model, x, root_w).double()                     # (L, B, P)
    delta = least_squares_step(jac, direction.T.double(), damping)
    change = (jac @ delta[..., None])[..., 0].norm(dim=1)
    scale = torch.clamp(trust * f.T.double().norm(dim=1) / change.clamp_min(1e-300), max=1.0)
    delta = delta * scale[:, None]
    with torch.no_grad():
        start = 0
        for p in model.parameters():
            size = p[0].numel()
            p.add_(delta[:, start:start + size].reshape(p.shape).to(p.dtype))
            start += size
    return scale
