"""The NestedLoRA objective on Monte Carlo samples.

For a self-adjoint T and trial functions ψ_1..ψ_L, LoRA(ψ_1:k) = -2 Σ_{l≤k} ⟨ψ_l,Tψ_l⟩ + Σ_{l,m≤k} ⟨ψ_l,ψ_m⟩².
- joint nesting minimises Σ_k LoRA(ψ_1:k) = -2 Σ_l m_l ⟨ψ_l,Tψ_l⟩ + Σ_{l,m} m_max(l,m) ⟨ψ_l,ψ_m⟩², m_l = L - l
  (0-based l);
- sequential nesting moves ψ_k along -∂LoRA(ψ_1:k)/∂ψ_k = 4(Tψ_k - Σ_{m≤k} ⟨ψ_k,ψ_m⟩ ψ_m).
Both are realised as surrogate losses whose autograd gradient is exactly that update: Tψ enters detached
(∂⟨ψ,Tψ⟩ = 2⟨∂ψ,Tψ⟩ by self-adjointness, so no gradient flows through the Laplacian). Each squared
overlap ⟨ψ_l,ψ_m⟩² is the product of two independent half-batch estimates, which is unbiased.
Inner products are importance-weighted: for samples x ~ p the inputs are f = ψ/√p, so that
⟨ψ_l,ψ_m⟩ ≈ mean(f_l f_m) (dividing by √p, not p, keeps far-tail samples finite in float32).
"""
from __future__ import annotations

import torch


def _gram(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """G_lm = mean_i a_il b_im."""
    return a.T @ b / a.shape[0]


def nestedlora_loss(f: torch.Tensor, t_f: torch.Tensor, nesting: str = "sequential", split: bool = True,
                    gram: torch.Tensor | None = None) -> torch.Tensor:
    """Surrogate loss for f = ψ/√p (B, L) with graph and (Tψ)/√p (B, L) detached.

    ``split=False`` uses the whole batch for both factors of each squared overlap (biased by O(1/B); exact
    for quadrature weights, which the tests use). ``gram`` (L, L), an estimate of ⟨ψ_l,ψ_m⟩ from samples
    independent of f, replaces the first factor of each squared overlap: the gradient stays unbiased, and
    with an exact Gram matrix its per-sample terms ∂ψ_k (Tψ_k - Σ_m G_km ψ_m) vanish at the optimum.
    """
    n_states = f.shape[1]
    linear = (f * t_f.detach()).mean(0)                                  # ⟨ψ_l, Tψ_l⟩ (grad on ψ only)
    if gram is not None:
        gram = gram.detach()
        if nesting == "joint":
            m = torch.arange(n_states, 0, -1, dtype=f.dtype, device=f.device)
            big_m = torch.minimum(m[:, None], m[None, :])
            return -4 * (m * linear).sum() + 2 * (big_m * gram * _gram(f, f)).sum()
        if nesting == "sequential":
            lower = torch.tril(torch.ones(n_states, n_states, dtype=f.dtype, device=f.device))
            return -4 * linear.sum() + 4 * (lower * gram * _gram(f, f.detach())).sum()
        raise ValueError(f"unknown nesting '{nesting}' (sequential, joint)")
    half = f.shape[0] // 2 if split else f.shape[0]
    parts = ((slice(0, half), slice(half, 2 * half)) if split else (slice(None), slice(None)))
    if nesting == "joint":
        m = torch.arange(n_states, 0, -1, dtype=f.dtype, device=f.device)
        big_m = torch.minimum(m[:, None], m[None, :])                     # m_max(l,m) = L - max(l,m)
        g1 = _gram(f[parts[0]], f[parts[0]])
        g2 = _gram(f[parts[1]], f[parts[1]])
        return -4 * (m * linear).sum() + (big_m * g1 * g2).sum()
    if nesting == "sequential":
        lower = torch.tril(torch.ones(n_states, n_states, dtype=f.dtype, device=f.device))
        g1 = _gram(f[parts[0]], f[parts[0]].detach())                    # ⟨ψ_k, sg ψ_m⟩
        g2 = _gram(f[parts[1]], f[parts[1]].detach())
        return -4 * linear.sum() + 2 * (lower * g1 * g2).sum()
    raise ValueError(f"unknown nesting '{nesting}' (sequential, joint)")


def lora_objective(gram: torch.Tensor, t_diag: torch.Tensor) -> torch.Tensor:
    """LoRA(ψ_1:L) = -2 Σ_l ⟨ψ_l,Tψ_l⟩ + Σ_lm ⟨ψ_l,ψ_m⟩² from the Gram matrix and the diagonal of ⟨ψ,Tψ⟩."""
    return -2 * t_diag.sum() + (gram**2).sum()
