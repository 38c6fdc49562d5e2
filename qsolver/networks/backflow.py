"""Permutation-equivariant (backflow) inputs of N-electron orbitals and the exact jets of determinants whose every
entry may depend on every electron.

Electron j's backflow inputs are sums over the other electrons k of the same spin, and separately of the other spin,
of smooth pair functions g(v) = [w, v w], w = 1/(1 + |v|²), v = σ(x_j - x_k), at a few inverse lengths σ. A sum over
a spin group is symmetric in its members, so exchanging two electrons of one spin exchanges their rows of inputs
and leaves every other row as it was: a determinant of orbitals of these rows stays antisymmetric. g is analytic in
v (no |v|), so the orbitals add no cusp at coalescence; the Jastrow factor keeps the exact one.
"""
from __future__ import annotations

import torch


def pair_function(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """g(v) = [w, v_1 w, …, v_d w], w = 1/(1 + |v|²), for v (..., d): values (..., d + 1), gradients by v
    (..., d, d + 1) and Laplacians by v (..., d + 1):
    ∇w = -2 v w², ∇²w = -2d w² + 8|v|² w³; ∂_b(v_a w) = δ_ab w - 2 v_a v_b w², ∇²(v_a w) = v_a (8|v|² w³ - 2(d + 2) w²)."""
    d = v.shape[-1]
    q = (v * v).sum(-1, keepdim=True)
    w = 1.0 / (1.0 + q)
    value = torch.cat([w, v * w], -1)
    eye = torch.eye(d, dtype=v.dtype, device=v.device)
    grad_w = -2 * v * w**2                                                   # (..., d)
    grad_vw = eye * w[..., None] - 2 * (v[..., :, None] * v[..., None, :]) * (w**2)[..., None]   # [b, a]
    grad = torch.cat([grad_w[..., None], grad_vw], -1)
    lap = torch.cat([-2 * d * w**2 + 8 * q * w**3, v * (8 * q * w**3 - 2 * (d + 2) * w**2)], -1)
    return value, grad, lap


def backflow_inputs(x: torch.Tensor, scales: torch.Tensor, up: int, with_derivatives: bool):
    """Each electron's sums Σ_{k ≠ j, same spin} g(σ(x_j - x_k)) and Σ_{k, other spin} g(σ(x_j - x_k)) for every
    inverse length σ of ``scales`` (L, S) (1/bohr), x (B, N, d), the first ``up`` electrons of spin up: values
    (L, B·N, F), F = 2S(d + 1); with derivatives also gradients by all N·d coordinates (L, B·N, N·d, F) (∂/∂x_j =
    σ ∂_v, ∂/∂x_k = -σ ∂_v) and Laplacians over all of them (L, B·N, F) (2σ² ∇_v² per pair)."""
    n, particles, d = x.shape
    spin = torch.arange(particles, device=x.device) < up
    same = spin[:, None] == spin[None, :]
    others = ~torch.eye(particles, dtype=torch.bool, device=x.device)
    masks = torch.stack([same & others, ~same]).to(x.dtype)                  # (2, N_j, N_k)
    n_states, n_scales = scales.shape
    sigma = scales[:, :, None, None, None, None]                             # (L, S, 1, 1, 1, 1)
    v = sigma * (x[:, :, None, :] - x[:, None, :, :])                        # (L, S, B, N_j, N_k, d)
    g, g_grad, g_lap = pair_function(v) if with_derivatives else (pair_function(v)[0], None, None)
    # (L, S, B, N_j, N_k, F') summed over k per spin group -> (L, B, N_j, S, 2, F') -> (L, B·N, F)
    value = torch.einsum("lsbjkf,gjk->lbjsgf", g, masks).reshape(n_states, n * particles, -1)
    if not with_derivatives:
        return value
    width = value.shape[-1]
    # ∂ by x_j's coordinates: σ Σ_k m_jk ∂_v g_jk; by x_k's: -σ m_jk ∂_v g_jk (k ≠ j: masks are zero on the diagonal)
    scaled = sigma[..., None] * g_grad                                        # (L, S, B, N_j, N_k, d, F')
    by_k = -torch.einsum("lsbjkcf,gjk->lbjkcsgf", scaled, masks)             # (L, B, N_j, N_k, d, S, 2, F')
    by_j = torch.einsum("lsbjkcf,gjk->lbjcsgf", scaled, masks)               # (L, B, N_j, d, S, 2, F')
    index = torch.arange(particles, device=x.device)
    by_k[:, :, index, index] = by_j
    grad = by_k.reshape(n_states, n * particles, particles * d, width)
    lap = torch.einsum("lsbjkf,gjk->lbjsgf", 2 * scales[:, :, None, None, None, None]**2 * g_lap, masks)
    return value, grad, lap.reshape(n_states, n * particles, width)


def spread(grad: torch.Tensor, particles: int) -> torch.Tensor:
    """Gradients of each electron's rows by its own d coordinates, (L, B·N, d, F), as gradients by all N·d
    coordinates (L, B·N, N·d, F), zero for the other electrons."""
    n_states, points, d, width = grad.shape
    out = grad.new_zeros(n_states, points // particles, particles, particles, d, width)
    index = torch.arange(particles, device=grad.device)
    out[:, :, index, index] = grad.reshape(n_states, -1, particles, d, width)
    return out.reshape(n_states, points, particles * d, width)


def det_jet(a: torch.Tensor, grad: torch.Tensor, lap: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """det A, its gradient and Laplacian for matrices A (..., n, n) whose entries have gradients (..., D, n, n) by D
    coordinates (the batch axes of ``a`` before D) and Laplacians (..., n, n). With A = U Σ Vᵀ and Y = Uᵀ ∂A V,
    det(A + t∂A) = det U det V det(Σ + tY), whose t and t² coefficients give ∂ det = ε Σ_i P_i Y_ii and
    ∂² det = Σ_ij C_ij ∂²A_ij + 2 ε Σ_{i<j} P_ij (Y_ii Y_jj - Y_ij Y_ji), P_i (P_ij) the product of the σ other
    than σ_i (σ_i, σ_j), ε = det U det V, C the cofactors: finite and exact where A is singular. Returns det
    (...), gradient (..., D), Laplacian (...)."""
    n = a.shape[-1]
    u, s, vh = torch.linalg.svd(a)
    sign = torch.linalg.det(u) * torch.linalg.det(vh)                        # (...)
    eye = torch.eye(n, dtype=torch.bool, device=a.device)
    # P_i and P_ij: products of σ_k over k ∉ {i} and k ∉ {i, j}, by replacing the excluded σ with ones
    single = torch.where(eye, torch.ones_like(s)[..., None, :], s[..., None, :]).prod(-1)           # (..., n)
    excluded = eye[:, None, :] | eye[None, :, :]                                                    # [i, j, k]
    pairs = torch.where(excluded, torch.ones_like(s)[..., None, None, :], s[..., None, None, :]).prod(-1)
    det = sign * s.prod(-1)
    y = u.transpose(-1, -2)[..., None, :, :] @ grad @ vh.transpose(-1, -2)[..., None, :, :]          # (..., D, n, n)
    diag = torch.diagonal(y, dim1=-2, dim2=-1)                                                      # (..., D, n)
    first = sign[..., None] * (diag * single[..., None, :]).sum(-1)                                 # (..., D)
    second = diag[..., :, None] * diag[..., None, :] - y * y.transpose(-1, -2)                      # (..., D, n, n)
    mixed = sign * (pairs[..., None, :, :] * second).sum((-1, -2, -3))       # Σ_{i≠j} = 2 Σ_{i<j}; diagonal 0
    cof = sign[..., None, None] * (u * single[..., None, :]) @ vh
    return det, first, (cof * lap).sum((-1, -2)) + mixed
