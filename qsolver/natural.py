"""Natural-gradient (Gauss–Newton) steps for NestedLoRA, one state at a time.

In function space NestedLoRA moves state k along its descent direction r_k = Tψ_k - Σ_m w_km ⟨ψ_k,ψ_m⟩ ψ_m
(sequential nesting: w_km = 1 for m ≤ k, else 0; joint nesting: w_km = min(m_k, m_m)/m_k, m_k = L - k). A
first-order optimiser follows the parameter gradient Jᵀr instead, which moves the diffuse, nearly degenerate
outer states at a rate set by their small relative gaps. Here each state's parameters take the step Δθ_k that
reproduces r_k best on the batch, in the metric of the samples (x ~ p, f = ψ/√p, so the batch mean is the
Lebesgue inner product):

    Δθ_k = J_kᵀ (J_k J_kᵀ + ε I)⁻¹ r_k,   J_k = ∂f_k(x_i)/∂θ_k  (B × P_k),

the minimum-norm least-squares solution (B × B solve; ε = damping × mean diag J_k J_kᵀ). J_k J_kᵀ is built from
layer factors without forming J_k (:class:`~qsolver.networks.Tangents`), so a step costs O(L B² width) + O(L B³). The step is scaled
by η, which follows the solver's cosine schedule from 1 (so that the Monte Carlo noise of r_k averages out at the
end), and the Coulomb term makes r_k large and rough near a nucleus, so it is then shortened to a trust region:
the predicted change of the state, ‖J_k Δθ_k‖, is at most ``trust`` × ‖f_k‖ on the batch.
"""
from __future__ import annotations

import torch

from .nestedlora import nesting_weights
from .networks import Network, Tangents
from .parallel import Comm


def descent_direction(f: torch.Tensor, t_f: torch.Tensor, nesting: str,
                      gram: torch.Tensor | None = None) -> torch.Tensor:
    """r_k(x_i)/√p(x_i) (B, L) from f = ψ/√p and t_f = Tψ/√p (both (B, L)); ⟨ψ_k,ψ_m⟩ from ``gram`` (L, L)
    when given (independent samples), else from the same batch."""
    gram = f.T @ f / f.shape[0] if gram is None else gram
    m, big_m = nesting_weights(f.shape[1], nesting, f.dtype, f.device)
    weights = big_m / m[:, None]
    return t_f - f @ (weights * gram).T


def gather_tangents(t: Tangents, comm: Comm) -> Tangents:
    """The factors of the whole batch from every rank's (data-parallel steps): each pass's block of samples is
    concatenated over ranks in rank order, so the result is laid out as one process's factors of the global batch."""
    def whole(z: torch.Tensor) -> torch.Tensor:
        n_states, m, width = z.shape
        per_pass = z.reshape(n_states, t.copies, m // t.copies, width)
        return comm.gather(per_pass, 2).reshape(n_states, -1, width)

    return Tangents([whole(z) for z in t.inputs], [whole(g) for g in t.signals], t.layer_names,
                    {k: comm.gather(v, 1) for k, v in t.direct.items()}, t.copies)


def kernel(t: Tangents) -> torch.Tensor:
    """J Jᵀ per state, (L, B, B)."""
    if t.signals:
        n_states, n = t.signals[0].shape[:2]                  # every pass of every sample
        k = t.signals[0].new_zeros(n_states, n, n)
    else:
        block = next(iter(t.direct.values()))
        k = block.new_zeros(block.shape[0], block.shape[1] * t.copies, block.shape[1] * t.copies)
    if t.direct:                      # one product for all blocks: D Dᵀ = Σ_blocks D_b D_bᵀ
        whole = torch.cat(list(t.direct.values()), -1) if len(t.direct) > 1 else next(iter(t.direct.values()))
        if t.copies > 1:              # spread over the passes: folding the c² blocks of (D/c)(D/c)ᵀ gives D Dᵀ
            whole = whole.repeat(1, t.copies, 1) / t.copies
        k.baddbmm_(whole, whole.transpose(1, 2))
    for z, g in zip(t.inputs, t.signals):                  # in place: the (L, B, B) buffers dominate the cost
        k.addcmul_(torch.baddbmm(k.new_ones(()), z, z.transpose(1, 2)), g @ g.transpose(1, 2))
    return t.fold(k) if t.copies > 1 else k


def pull_back(t: Tangents, coef: torch.Tensor) -> dict[str, torch.Tensor]:
    """Jᵀ c per state for coefficients c (L, B), as updates named like the model's parameters."""
    out = {}
    coef_passes = coef.repeat(1, t.copies)
    for (weight, bias), z, g in zip(t.layer_names, t.inputs, t.signals):
        weighted = coef_passes[..., None] * g
        out[weight] = z.transpose(1, 2) @ weighted
        out[bias] = weighted.sum(1, keepdim=True)
    for name, block in t.direct.items():
        out[name] = (block * coef[..., None]).sum(1)
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


def natural_step(model: Network, x: torch.Tensor, root_w: torch.Tensor, direction: torch.Tensor,
                 f: torch.Tensor, step: float, trust: float, damping: float, comm: Comm = Comm()) -> torch.Tensor:
    """Apply ``step`` × Δθ_k (see the module docstring), shortened to the trust region, to the model in place;
    returns the scale applied to Δθ_k per state (L,).

    Data-parallel (``comm.world`` > 1): x, root_w, direction and f are this rank's part of the batch. The Jacobian
    factors, r and f of all ranks are gathered (Σ_layers L·B·(fan_in + fan_out), + L·B·C for the scales, + 2·L·B
    numbers per step), each rank builds the B×B kernels of ⌈L/W⌉ states and solves them, and the coefficients
    (L·B numbers) are gathered: every rank then takes the same step, the exact step of the whole batch."""
    t = model.tangents(x, root_w)
    if comm.world == 1:
        coef, clip = _coefficients(t, direction, f, step, trust, damping)
    else:
        t, direction, f = gather_tangents(t, comm), comm.gather(direction, 0), comm.gather(f, 0)
        n_states = direction.shape[1]
        per = -(-n_states // comm.world)
        mine = torch.arange(comm.rank * per, min((comm.rank + 1) * per, n_states), device=direction.device)
        part, part_clip = _coefficients(t.states(mine), direction[:, mine], f[:, mine], step, trust, damping)
        block = torch.zeros(per, direction.shape[0] + 1, dtype=part.dtype, device=part.device)
        block[: len(mine)] = torch.cat([part, part_clip[:, None]], 1)
        whole = comm.gather(block, 0)[:n_states]                    # the ranks' blocks are in state order
        coef, clip = whole[:, :-1], whole[:, -1]
    updates = pull_back(t, coef)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(updates[name].reshape(p.shape))
    return step * clip
