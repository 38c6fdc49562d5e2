"""Natural-gradient (Gauss–Newton) steps for NestedLoRA, one state at a time.

In function space NestedLoRA moves state k along its descent direction r_k = Tψ_k - Σ_m w_km ⟨ψ_k,ψ_m⟩ ψ_m
(sequential nesting: w_km = 1 for m ≤ k, else 0; joint nesting: w_km = min(m_k, m_m)/m_k, m_k = L - k). A
first-order optimiser follows the parameter gradient Jᵀr instead, which moves the diffuse, nearly degenerate
outer states at a rate set by their small relative gaps. Here each state's parameters take the step Δθ_k that
reproduces r_k best on the batch, in the metric of the samples (x ~ p, f = ψ/√p, so the batch mean is the
Lebesgue inner product):

    Δθ_k = J_kᵀ (J_k J_kᵀ + ε I)⁻¹ r_k,   J_k = ∂f_k(x_i)/∂θ_k  (B × P_k),

the minimum-norm least-squares solution (B × B solve; ε = damping × mean diag J_k J_kᵀ). J_k J_kᵀ is built from
layer factors without forming J_k (:class:`Tangents`), so a step costs O(L B² width) + O(L B³). The step is scaled
by η, which follows the solver's cosine schedule from 1 (so that the Monte Carlo noise of r_k averages out at the
end), and the Coulomb term makes r_k large and rough near a nucleus, so it is then shortened to a trust region:
the predicted change of the state, ‖J_k Δθ_k‖, is at most ``trust`` × ‖f_k‖ on the batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .model import EigenNet
from .pairnet import PairNet
from .nestedlora import nesting_weights
from .parallel import Comm


def descent_direction(f: torch.Tensor, t_f: torch.Tensor, nesting: str,
                      gram: torch.Tensor | None = None) -> torch.Tensor:
    """r_k(x_i)/√p(x_i) (B, L) from f = ψ/√p and t_f = Tψ/√p (both (B, L)); ⟨ψ_k,ψ_m⟩ from ``gram`` (L, L)
    when given (independent samples), else from the same batch."""
    gram = f.T @ f / f.shape[0] if gram is None else gram
    m, big_m = nesting_weights(f.shape[1], nesting, f.dtype, f.device)
    weights = big_m / m[:, None]
    return t_f - f @ (weights * gram).T


@dataclass
class Tangents:
    """Factors of the per-sample, per-state Jacobian J_l = ∂f_l(x_i)/∂θ_l of a network per state.

    For a linear layer z → zW + b the row of J for W is the outer product z_i ⊗ g_i, with
    g_i = ∂f_l(x_i)/∂(zW + b)_i (one backward pass gives g for all samples, as f_l(x_i) depends on sample i only), so
    J Jᵀ = Σ_layers (Z Zᵀ + 1) ⊙ (G Gᵀ) + S Sᵀ without forming J (S: derivatives by the envelope log-scales).
    When each sample passes the network ``copies`` times (ψ = Φ(x) ± Φ(Px)), its Jacobian row is the sum over its
    passes, so the kernel over all passes is summed in blocks (:meth:`fold`) and Jᵀc repeats c per pass.
    """

    inputs: list[torch.Tensor]      # z per layer, (L, nB, fan_in)
    signals: list[torch.Tensor]     # g per layer, (L, nB, fan_out)
    scales: torch.Tensor | None     # ∂f_l(x_i)/∂ log_scale_lc, (L, B, C); None without learned scales
    copies: int = 1                 # passes per sample (2 for a symmetrised two-particle state), stacked on B

    def fold(self, k: torch.Tensor) -> torch.Tensor:
        """Sum a kernel over the passes of each pair of samples: (L, nB, nB) -> (L, B, B)."""
        n_states, m = k.shape[:2]
        n = m // self.copies
        return k.reshape(n_states, self.copies, n, self.copies, n).sum((1, 3))


def tangents(model: EigenNet | PairNet, x: torch.Tensor, root_w: torch.Tensor) -> Tangents:
    """Jacobian factors of f = ψ·root_w at the samples x (B, d) or configurations (B, 2, d); root_w (B, 1). One forward and one backward
    pass: the log-scales enter as a per-sample copy, whose gradient is then their per-sample derivative."""
    per_sample = None
    if hasattr(model, "log_scale"):
        log_scale = model.log_scale.detach()
        per_sample = log_scale[:, None, :].expand(-1, x.shape[0], -1).clone().requires_grad_(True)
    psi, inputs, outputs = model.layers(x, per_sample)
    wrt = outputs + ([per_sample] if per_sample is not None else [])
    grads = torch.autograd.grad((psi * root_w).sum(), wrt)
    scales = grads[-1] if per_sample is not None else None
    return Tangents([z.detach() for z in inputs], list(grads[:len(outputs)]), scales,
                    copies=inputs[0].shape[1] // x.shape[0])


def gather_tangents(t: Tangents, comm: Comm) -> Tangents:
    """The factors of the whole batch from every rank's (data-parallel steps): each pass's block of samples is
    concatenated over ranks in rank order, so the result is laid out as one process's factors of the global batch."""
    def whole(z: torch.Tensor) -> torch.Tensor:
        n_states, m, width = z.shape
        per_pass = z.reshape(n_states, t.copies, m // t.copies, width)
        return comm.gather(per_pass, 2).reshape(n_states, -1, width)

    return Tangents([whole(z) for z in t.inputs], [whole(g) for g in t.signals],
                    None if t.scales is None else comm.gather(t.scales, 1), t.copies)


def kernel(t: Tangents) -> torch.Tensor:
    """J Jᵀ per state, (L, B, B)."""
    n_states, n = t.signals[0].shape[:2]
    k = t.signals[0].new_zeros(n_states, n, n)
    if t.scales is not None:         # spread over the passes: folding the c² blocks of (S/c)(S/c)ᵀ gives S Sᵀ
        per_pass = t.scales.repeat(1, t.copies, 1) / t.copies
        k.baddbmm_(per_pass, per_pass.transpose(1, 2))
    for z, g in zip(t.inputs, t.signals):                  # in place: the (L, B, B) buffers dominate the cost
        k.addcmul_(torch.baddbmm(k.new_ones(()), z, z.transpose(1, 2)), g @ g.transpose(1, 2))
    return t.fold(k) if t.copies > 1 else k


def pull_back(t: Tangents, coef: torch.Tensor) -> dict[str, torch.Tensor]:
    """Jᵀ c per state for coefficients c (L, B), as updates named like the model's parameters."""
    out = {}
    coef_passes = coef.repeat(1, t.copies)
    for j, (z, g) in enumerate(zip(t.inputs, t.signals)):
        weighted = coef_passes[..., None] * g
        out[f"weights.{j}"] = z.transpose(1, 2) @ weighted
        out[f"biases.{j}"] = weighted.sum(1, keepdim=True)
    if t.scales is not None:
        out["log_scale"] = (t.scales * coef[..., None]).sum(1)
    return out


def solve_kernel(k: torch.Tensor, r: torch.Tensor, damping: float) -> torch.Tensor:
    """c (L, B) = (K + ε I)⁻¹ r per state, ε = damping × mean diag K; then Δθ = Jᵀ c.

    Cholesky in K's precision: the condition number is at most B/damping (2.6e6 at the defaults, inside float32's
    1/ε ≈ 8e6); a state whose factorisation fails is solved again in float64."""
    eps = damping * k.diagonal(dim1=1, dim2=2).mean(-1)
    damped = k + eps[:, None, None] * torch.eye(k.shape[1], dtype=k.dtype, device=k.device)
    factor, info = torch.linalg.cholesky_ex(damped)
    coef = torch.cholesky_solve(r[..., None].to(k.dtype), factor)[..., 0]
    failed = info > 0
    if failed.any():
        exact = torch.linalg.solve_ex(damped[failed].double(), r[failed].double()[..., None])[0]
        coef[failed] = exact[..., 0].to(k.dtype)                                # non-finite where singular
    return coef


def _coefficients(t: Tangents, direction: torch.Tensor, f: torch.Tensor, step: float, trust: float,
                  damping: float) -> tuple[torch.Tensor, torch.Tensor]:
    """c (L, B) with Δθ = Jᵀc for the states in t, and the trust-region factor applied to each (L,)."""
    k = kernel(t)
    coef = step * solve_kernel(k, direction.T, damping)
    coef = torch.where(torch.isfinite(coef).all(1, keepdim=True), coef, 0.0)   # a state with a failed solve waits
    change = (k @ coef[..., None])[..., 0].norm(dim=1)                     # ‖J Δθ‖ on the batch
    clip = torch.clamp(trust * f.T.norm(dim=1) / change.clamp_min(torch.finfo(k.dtype).tiny), max=1.0)
    return coef * clip[:, None], clip


def _states(t: Tangents, index: torch.Tensor) -> Tangents:
    """The factors of some states only."""
    return Tangents([z[index] for z in t.inputs], [g[index] for g in t.signals],
                    None if t.scales is None else t.scales[index], t.copies)


def natural_step(model: EigenNet | PairNet, x: torch.Tensor, root_w: torch.Tensor, direction: torch.Tensor,
                 f: torch.Tensor, step: float, trust: float, damping: float, comm: Comm = Comm()) -> torch.Tensor:
    """Apply ``step`` × Δθ_k (see the module docstring), shortened to the trust region, to the model in place;
    returns the scale applied to Δθ_k per state (L,).

    Data-parallel (``comm.world`` > 1): x, root_w, direction and f are this rank's part of the batch. The Jacobian
    factors, r and f of all ranks are gathered (Σ_layers L·B·(fan_in + fan_out), + L·B·C for the scales, + 2·L·B
    numbers per step), each rank builds the B×B kernels of ⌈L/W⌉ states and solves them, and the coefficients
    (L·B numbers) are gathered: every rank then takes the same step, the exact step of the whole batch."""
    t = tangents(model, x, root_w)
    if comm.world == 1:
        coef, clip = _coefficients(t, direction, f, step, trust, damping)
    else:
        t, direction, f = gather_tangents(t, comm), comm.gather(direction, 0), comm.gather(f, 0)
        n_states = direction.shape[1]
        per = -(-n_states // comm.world)
        mine = torch.arange(comm.rank * per, min((comm.rank + 1) * per, n_states), device=direction.device)
        part, part_clip = _coefficients(_states(t, mine), direction[:, mine], f[:, mine], step, trust, damping)
        block = torch.zeros(per, direction.shape[0] + 1, dtype=part.dtype, device=part.device)
        block[: len(mine)] = torch.cat([part, part_clip[:, None]], 1)
        whole = comm.gather(block, 0)[:n_states]                    # the ranks' blocks are in state order
        coef, clip = whole[:, :-1], whole[:, -1]
    updates = pull_back(t, coef)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(updates[name])
    return step * clip
