"""Exact Laplacians.

Jets carry a function's value, input gradient and Laplacian together: (f, [∂_1 f, ..., ∂_d f], ∇²f), or
stacked along a last axis of length d + 2. Pushing a jet through a layer is the forward-Laplacian pass:
- linear map W:    f → fW,  ∂f → (∂f)W,  ∇²f → (∇²f)W  (the bias touches the value only);
- activation σ:    f → σ(f), ∂f → σ'(f) ∂f, ∇²f → σ'(f) ∇²f + σ''(f) |∇f|².
``hessian_trace`` (torch.func, exact, slow) and ``finite_difference_laplacian`` (approximate) are kept as
cross-checks and for comparison with the ICML reference configuration.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch.func import jacfwd, jacrev, vmap

from .config import CHOICES


def _tanh(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t = torch.tanh(v)
    d1 = 1 - t * t
    return t, d1, -2 * t * d1


def _softplus(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = torch.sigmoid(v)
    return torch.nn.functional.softplus(v), s, s * (1 - s)


def _silu(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = torch.sigmoid(v)
    ds = s * (1 - s)
    return v * s, s + v * ds, ds * (2 + v * (1 - 2 * s))


_JETS = {"tanh": _tanh, "softplus": _softplus, "silu": _silu}
# one entry per allowed activation (config.CHOICES): an allowed name without its σ, σ', σ'' fails at import
ACTIVATIONS: dict[str, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {
    name: _JETS[name] for name in CHOICES["activation"]
}


def activation_jet(value: torch.Tensor, grad: torch.Tensor, lap: torch.Tensor, name: str
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """σ applied to a jet given as value (..., F), gradient (..., d, F) and Laplacian (..., F)."""
    s0, s1, s2 = ACTIVATIONS[name](value)
    return s0, s1.unsqueeze(-2) * grad, s1 * lap + s2 * (grad * grad).sum(-2)


def activation(v: torch.Tensor, name: str) -> torch.Tensor:
    """σ applied to plain values."""
    if name == "tanh":
        return torch.tanh(v)
    if name == "softplus":
        return torch.nn.functional.softplus(v)
    return torch.nn.functional.silu(v)


def product_jet(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Jet of f·g from jets (..., d + 2): ∇²(fg) = f∇²g + g∇²f + 2∇f·∇g."""
    fv, fg, fl = f[..., :1], f[..., 1:-1], f[..., -1:]
    gv, gg, gl = g[..., :1], g[..., 1:-1], g[..., -1:]
    return torch.cat([fv * gv, fv * gg + gv * fg, fv * gl + gv * fl + 2 * (fg * gg).sum(-1, keepdim=True)], -1)


def hessian_trace(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """∇²f at each row of x (N, d) for f mapping (N, d) -> (N, K); exact, by torch.func (N, K)."""

    def single(point: torch.Tensor) -> torch.Tensor:
        return f(point[None])[0]

    hess = vmap(jacfwd(jacrev(single)))(x)  # (N, K, d, d)
    return hess.diagonal(dim1=-2, dim2=-1).sum(-1)


def finite_difference_laplacian(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                                step: float) -> torch.Tensor:
    """Second-order central differences Σ_i [f(x + h e_i) + f(x - h e_i) - 2 f(x)] / h² (N, K)."""
    n, d = x.shape
    eye = torch.eye(d, dtype=x.dtype, device=x.device) * step
    shifted = torch.cat([x, (x[:, None, :] + eye).reshape(-1, d), (x[:, None, :] - eye).reshape(-1, d)])
    values = f(shifted)
    center, plus, minus = values[:n], values[n:n + n * d], values[n + n * d:]
    k = center.shape[-1]
    total = (plus.reshape(n, d, k) + minus.reshape(n, d, k)).sum(1) - 2 * d * center
    return total / step**2
