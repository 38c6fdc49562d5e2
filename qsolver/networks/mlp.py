"""One small MLP per state, evaluated for all states at once, and the Jacobian factors the natural step needs.

Weights are (L, fan_in, fan_out) and biases (L, 1, fan_out), named ``weights.j`` and ``biases.j`` in the networks
that use them; inputs are (L, B, F) and outputs the scalars g_l (L, B).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from ..laplacian import activation, activation_jet
from .base import Tangents


def mlp_parameters(states: int, widths: list[int], generator: torch.Generator | None
                   ) -> tuple[nn.ParameterList, nn.ParameterList]:
    """Weights (L, fan_in, fan_out) and biases (L, 1, fan_out) of one MLP per state; weights ~ N(0, 1/fan_in)."""
    weights, biases = nn.ParameterList(), nn.ParameterList()
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        w = torch.randn(states, fan_in, fan_out, generator=generator, dtype=torch.float64)
        weights.append(nn.Parameter(w / math.sqrt(fan_in)))
        biases.append(nn.Parameter(torch.zeros(states, 1, fan_out, dtype=torch.float64)))
    return weights, biases


def mlp_outputs(weights, biases, z: torch.Tensor, name: str, record: list | None = None) -> torch.Tensor:
    """Outputs (L, B, fan_out) of the per-state MLPs at inputs z (L, B, F); with ``record``, every linear layer's
    (input z, output zW + b) is appended to it (the factors of the parameter Jacobian)."""
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        out = torch.baddbmm(b, z, w)
        if record is not None:
            record.append((z, out))
        z = activation(out, name) if i < last else out
    return z


def mlp_layers(weights, biases, z: torch.Tensor, name: str
               ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Scalar outputs g (L, B) of the per-state MLPs at inputs z (L, B, F), with every linear layer's input z
    and output zW + b (the factors of the parameter Jacobian, see :class:`~qsolver.networks.base.Tangents`)."""
    record: list = []
    g = mlp_outputs(weights, biases, z, name, record)
    return g[..., 0], [r[0] for r in record], [r[1] for r in record]


def row_jacobians(record: list, signals: list[torch.Tensor], rows: int, prefix: str = "") -> dict[str, torch.Tensor]:
    """Per-sample Jacobians (L, B, P) of f by the weights and biases of a per-state MLP that every sample passes in
    ``rows`` rows (sample-major, B·rows): ∂f/∂W = Σ_r z_r ⊗ g_r and ∂f/∂b = Σ_r g_r, from each layer's recorded
    (input z, output) and g = ∂f/∂output; named ``{prefix}weights.j`` and ``{prefix}biases.j``."""
    out = {}
    for j, ((z, _), g) in enumerate(zip(record, signals)):
        n_states = z.shape[0]
        z, g = z.reshape(n_states, -1, rows, z.shape[-1]), g.reshape(n_states, -1, rows, g.shape[-1])
        out[f"{prefix}weights.{j}"] = torch.einsum("lbri,lbro->lbio", z, g).reshape(n_states, z.shape[1], -1)
        out[f"{prefix}biases.{j}"] = g.sum(2)
    return out


def mlp_jet(weights, biases, value: torch.Tensor, grad_: torch.Tensor, lap: torch.Tensor, name: str
            ) -> torch.Tensor:
    """Forward-Laplacian pass of the per-state MLPs: input jets value (L, B, F), gradient (L, B, D, F) and
    Laplacian (L, B, F) over D coordinates -> the output jet (L, B, D + 2)."""
    n_states, n, dims = grad_.shape[:3]
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        value = torch.baddbmm(b, value, w)
        grad_ = torch.bmm(grad_.reshape(n_states, n * dims, -1), w).reshape(n_states, n, dims, -1)
        lap = torch.bmm(lap, w)
        if i < last:
            value, grad_, lap = activation_jet(value, grad_, lap, name)
    return torch.cat([value, grad_[..., 0], lap], dim=-1)


def mlp_tangents(model: nn.Module, x: torch.Tensor, root_w: torch.Tensor, per_sample: str | None = "log_scale"
                 ) -> Tangents:
    """Jacobian factors of f = ψ·root_w at configurations x (B, N, d), root_w (B, 1), for a network whose
    ``layers(x, copy)`` returns ψ with every linear layer's input and output over its passes. One forward and one
    backward pass: the parameter named ``per_sample`` (the envelopes' log-scales, (L, P)) enters as a per-sample
    copy (L, B, P), whose gradient is then its per-sample derivative."""
    copy = None
    if per_sample is not None and hasattr(model, per_sample):
        copy = getattr(model, per_sample).detach()[:, None, :].expand(-1, x.shape[0], -1).clone().requires_grad_(True)
    psi, inputs, outputs = model.layers(x, copy)
    wrt = outputs + ([copy] if copy is not None else [])
    grads = torch.autograd.grad((psi * root_w).sum(), wrt)
    names = [(f"weights.{j}", f"biases.{j}") for j in range(len(outputs))]
    direct = {per_sample: grads[-1]} if copy is not None else {}
    return Tangents([z.detach() for z in inputs], list(grads[:len(outputs)]), names, direct,
                    copies=inputs[0].shape[1] // x.shape[0])


def jacobian_tangents(model: nn.Module, x: torch.Tensor, root_w: torch.Tensor) -> Tangents:
    """Per-sample Jacobians of f = ψ·root_w by every parameter, (L, B, P) each, by torch.func, for a network without
    layer factors. Every parameter has the state axis first and f_l depends on θ_l only, so the per-sample gradient
    of Σ_l f_l(x_i) holds ∂f_l(x_i)/∂θ_l in row l."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def total(p: dict, xi: torch.Tensor, wi: torch.Tensor) -> torch.Tensor:
        return (functional_call(model, p, (xi[None],)) * wi).sum()

    per_sample = vmap(grad(total), in_dims=(None, 0, 0))(params, x, root_w)      # name -> (B, L, ...)
    direct = {name: g.transpose(0, 1).reshape(g.shape[1], g.shape[0], -1) for name, g in per_sample.items()}
    return Tangents([], [], [], direct)
