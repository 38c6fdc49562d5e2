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


def nesting_weights(n_states: int, nesting: str, dtype: torch.dtype, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(m, M): sequential m_l = 1, M_lm = [m ≤ l]; joint m_l = L - l, M_lm = m_max(l,m) = min(m_l, m_m)."""
    if nesting == "sequential":
        return (torch.ones(n_states, dtype=dtype, device=device),
                torch.tril(torch.ones(n_states, n_states, dtype=dtype, device=device)))
    if nesting == "joint":
        m = torch.arange(n_states, 0, -1, dtype=dtype, device=device)
        return m, torch.minimum(m[:, None], m[None, :])
    raise ValueError(f"unknown nesting '{nesting}' (sequential, joint)")


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
    m, big_m = nesting_weights(n_states, nesting, f.dtype, f.device)
    if gram is not None:
        gram = gram.detach()
        if nesting == "joint":
            return -4 * (m * linear).sum() + 2 * (big_m * gram * _gram(f, f)).sum()
        return -4 * linear.sum() + 4 * (big_m * gram * _gram(f, f.detach())).sum()
    half = f.shape[0] // 2 if split else f.shape[0]
    parts = ((slice(0, half), slice(half, 2 * half)) if split else (slice(None), slice(None)))
    if nesting == "joint":
        g1 = _gram(f[parts[0]], f[parts[0]])
        g2 = _gram(f[parts[1]], f[parts[1]])
        return -4 * (m * linear).sum() + (big_m * g1 * g2).sum()
    g1 = _gram(f[parts[0]], f[parts[0]].detach())                        # ⟨ψ_k, sg ψ_m⟩ (sequential)
    g2 = _gram(f[parts[1]], f[parts[1]].detach())
    return -4 * linear.sum() + 2 * (big_m * g1 * g2).sum()


def lora_objective(gram: torch.Tensor, t_diag: torch.Tensor) -> torch.Tensor:
    """LoRA(ψ_1:L) = -2 Σ_l ⟨ψ_l,Tψ_l⟩ + Σ_lm ⟨ψ_l,ψ_m⟩² from the Gram matrix and the diagonal of ⟨ψ,Tψ⟩."""
    return -2 * t_diag.sum() + (gram**2).sum()
