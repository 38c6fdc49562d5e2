"""The NestedLoRA objective on Monte Carlo samples.

For a self-adjoint T and trial functions ψ_1..ψ_L, LoRA(ψ_1:k) = -2 Σ_{l≤k} ⟨ψ_l,Tψ_l⟩ + Σ_{l,m≤k} ⟨ψ_l,ψ_m⟩².
- joint nesting minimises Σ_k LoRA(ψ_1:k) = -2 Σ_l m_l ⟨ψ_l,Tψ_l⟩ + Σ_{l,m} m_max(l,m) ⟨ψ_l,ψ_m⟩², m_l = L - l
  (0-based l);
- sequential nesting moves ψ_k along -∂LoRA(ψ_1:k)/∂ψ_k = 4(Tψ_k - Σ_{m≤k} ⟨ψ_k,ψ_m⟩ ψ_m).
Both are realised as surrogate losses whose autograd gradient is exactly that update: Tψ enters detached
(∂⟨ψ,Tψ⟩ = 2⟨∂ψ,Tψ⟩ by self-adjointness, so no gradient flows through the Laplacian). Each squared
overlap ⟨ψ_l,ψ_m⟩² is the product of two independent half-batch estimates, which is unbiased.
Inner products are importance-weighted: ⟨f,g⟩ ≈ mean(w f g) with w = 1/p for samples x ~ p.
"""
from __future__ import annotations

import torch


def _gram(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """G_lm = mean_i w_i a_il b_im."""
    return (a * w[:, None]).T @ b / a.shape[0]


def nestedlora_loss(psi: torch.Tensor, t_psi: torch.Tensor, weights: torch.Tensor, nesting: str = "sequential",
                    split: bool = True) -> torch.Tensor:
    """Surrogate loss for ψ (B, L) with graph, Tψ (B, L) detached, importance weights w = 1/p (B,).

    ``split=False`` uses the whole batch for both factors of each squared overlap (biased by O(1/B); exact
    for quadrature weights, which the tests use).
    """
    n_states = psi.shape[1]
    linear = (weights[:, None] * psi * t_psi.detach()).mean(0)           # ⟨ψ_l, Tψ_l⟩ (grad on ψ only)
    half = psi.shape[0] // 2 if split else psi.shape[0]
    parts = ((slice(0, half), slice(half, 2 * half)) if split else (slice(None), slice(None)))
    if nesting == "joint":
        m = torch.arange(n_states, 0, -1, dtype=psi.dtype, device=psi.device)
        big_m = torch.minimum(m[:, None], m[None, :])                     # m_max(l,m) = L - max(l,m)
        g1 = _gram(psi[parts[0]], psi[parts[0]], weights[parts[0]])
        g2 = _gram(psi[parts[1]], psi[parts[1]], weights[parts[1]])
        return -4 * (m * linear).sum() + (big_m * g1 * g2).sum()
    if nesting == "sequential":
        lower = torch.tril(torch.ones(n_states, n_states, dtype=psi.dtype, device=psi.device))
        g1 = _gram(psi[parts[0]], psi[parts[0]].detach(), weights[parts[0]])  # ⟨ψ_k, sg ψ_m⟩
        g2 = _gram(psi[parts[1]], psi[parts[1]].detach(), weights[parts[1]])
        return -4 * linear.sum() + 2 * (lower * g1 * g2).sum()
    raise ValueError(f"unknown nesting '{nesting}' (sequential, joint)")


def lora_objective(gram: torch.Tensor, t_diag: torch.Tensor) -> torch.Tensor:
    """LoRA(ψ_1:L) = -2 Σ_l ⟨ψ_l,Tψ_l⟩ + Σ_lm ⟨ψ_l,ψ_m⟩² from the Gram matrix and the diagonal of ⟨ψ,Tψ⟩."""
    return -2 * t_diag.sum() + (gram**2).sum()
