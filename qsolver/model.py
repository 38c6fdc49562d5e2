"""Neural eigenfunctions: ψ_l(x) = g_l(u_l(x)) · e_l(x), one small MLP g_l per state, all evaluated at once.

The envelope e_l fixes the asymptotics and the boundary conditions; the inputs u_l are coordinates in the
envelope's own length unit, so every state's network sees O(1) inputs however diffuse the state is:
- ``exponential`` (Coulomb centres R_c): e_l = Σ_c exp(-a_lc |x - R_c|), u_l = {a_lc (x - R_c), a_lc |x - R_c|};
  the |x - R_c| inputs let the network form the cusps;
- ``gaussian`` (confining potentials): e_l = exp(-½ Σ_i β_li (x_i - c_i)²), u_l = √β_l ⊙ (x - c);
- ``box`` (infinite well of sides L_i): e = Π_i cos(π (x_i - c_i)/L_i), u = 2(x - c)/L;
- ``none``: e = 1, u = x - c, optionally through F random Fourier features [cos 2πBu, sin 2πBu] with
  B ~ N(0, σ_F²) of shape (d, F/2) (the ICML paper's network; no asymptotics built in).
Decays a and curvatures β are learned (kept positive through their logarithms).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .laplacian import activation, activation_jet, product_jet


@dataclass
class ModelConfig:
    """Architecture of the per-state networks; with the weights it rebuilds the wavefunctions exactly."""

    dimension: int
    states: int
    hidden: int
    layers: int
    activation: str
    envelope: str                  # "exponential", "gaussian", "box" or "none"
    centers: list[list[float]]     # Coulomb centres, or the one centre of a gaussian or box envelope
    init_scales: list[list[float]]  # (states, centres) decays a, (states, d) curvatures β, or box lengths
    features: int = 0              # random Fourier features (envelope "none" only); 0 = raw coordinates
    feature_scale: float = 0.1     # σ_F of the Fourier frequencies (1/bohr)

    def to_dict(self) -> dict:
        return asdict(self)


def mlp_parameters(states: int, widths: list[int], generator: torch.Generator | None
                   ) -> tuple[nn.ParameterList, nn.ParameterList]:
    """Weights (L, fan_in, fan_out) and biases (L, 1, fan_out) of one MLP per state; weights ~ N(0, 1/fan_in)."""
    weights, biases = nn.ParameterList(), nn.ParameterList()
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        w = torch.randn(states, fan_in, fan_out, generator=generator, dtype=torch.float64)
        weights.append(nn.Parameter(w / math.sqrt(fan_in)))
        biases.append(nn.Parameter(torch.zeros(states, 1, fan_out, dtype=torch.float64)))
    return weights, biases


def mlp_layers(weights, biases, z: torch.Tensor, name: str
               ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Scalar outputs g (L, B) of the per-state MLPs at inputs z (L, B, F), with every linear layer's input z
    and output zW + b (the factors of the parameter Jacobian, see :mod:`qsolver.natural`)."""
    inputs, outputs = [], []
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        inputs.append(z)
        z = torch.baddbmm(b, z, w)
        outputs.append(z)
        if i < last:
            z = activation(z, name)
    return z[..., 0], inputs, outputs


def mlp_jet(weights, biases, value: torch.Tensor, grad: torch.Tensor, lap: torch.Tensor, name: str
            ) -> torch.Tensor:
    """Forward-Laplacian pass of the per-state MLPs: input jets value (L, B, F), gradient (L, B, D, F) and
    Laplacian (L, B, F) over D coordinates -> the output jet (L, B, D + 2)."""
    n_states, n, dims = grad.shape[:3]
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        value = torch.baddbmm(b, value, w)
        grad = torch.bmm(grad.reshape(n_states, n * dims, -1), w).reshape(n_states, n, dims, -1)
        lap = torch.bmm(lap, w)
        if i < last:
            value, grad, lap = activation_jet(value, grad, lap, name)
    return torch.cat([value, grad[..., 0], lap], dim=-1)


class EigenNet(nn.Module):
    """L trial functions ψ_l; ``forward`` gives values (B, L), ``jet`` values, gradients and Laplacians."""

    def __init__(self, config: ModelConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("centers", torch.tensor(c.centers, dtype=torch.float64))
        scales = torch.tensor(c.init_scales, dtype=torch.float64)
        if c.envelope == "box":
            self.register_buffer("lengths", scales[0].clone())
        elif c.envelope != "none":
            self.log_scale = nn.Parameter(torch.log(scales))
        if c.features and (c.envelope != "none" or c.features % 2):
            raise ValueError("Fourier features need envelope 'none' and an even count")
        if c.features:
            freq = torch.randn(c.dimension, c.features // 2, generator=generator, dtype=torch.float64)
            self.register_buffer("fourier", 2 * math.pi * c.feature_scale * freq)
        n_in = self.centers.shape[0] * (c.dimension + 1) if c.envelope == "exponential" else c.dimension
        n_in = c.features or n_in
        self.weights, self.biases = mlp_parameters(c.states, [n_in] + [c.hidden] * c.layers + [1], generator)

    # ---- inputs and envelope as jets (component axis: [value, ∂_1..∂_d, ∇²]) ----
    def _log_scale(self, per_sample: torch.Tensor | None) -> torch.Tensor | None:
        """Log-decays or log-curvatures as (L, 1, C), or the given per-sample copy (L, B, C)."""
        if per_sample is not None:
            return per_sample
        return self.log_scale[:, None, :] if hasattr(self, "log_scale") else None

    def _feature_scales(self, log_scale: torch.Tensor | None) -> torch.Tensor:
        """Per-state multipliers of the base inputs, (L, 1, F) (or (L, B, F) for per-sample log-scales)."""
        c = self.config
        if c.envelope == "exponential":
            return torch.exp(log_scale).repeat_interleave(c.dimension + 1, dim=-1)
        if c.envelope == "gaussian":
            return torch.exp(0.5 * log_scale)
        if c.envelope == "none":
            return torch.ones(c.states, 1, c.features or c.dimension, dtype=self.centers.dtype,
                              device=self.centers.device)
        return (2.0 / self.lengths).expand(c.states, 1, -1)

    def _base_jet(self, x: torch.Tensor, with_derivatives: bool) -> torch.Tensor:
        """Base inputs as jets (B, d + 2, F), or values only (B, F)."""
        n, d = x.shape
        if self.config.features:                                        # [cos z, sin z], z = (x - c) B
            z = (x - self.centers[0]) @ self.fourier
            cos, sin = torch.cos(z), torch.sin(z)
            if not with_derivatives:
                return torch.cat([cos, sin], dim=-1)
            grads = torch.cat([-sin[:, None, :] * self.fourier, cos[:, None, :] * self.fourier], dim=-1)
            k2 = (self.fourier**2).sum(0)
            return torch.cat([torch.cat([cos, sin], -1)[:, None], grads, torch.cat([-k2 * cos, -k2 * sin], -1)[:, None]],
                             dim=1)
        if self.config.envelope != "exponential":
            dx = x - self.centers[0]
            if not with_derivatives:
                return dx
            eye = torch.eye(d, dtype=x.dtype, device=x.device).expand(n, d, d)
            zero = torch.zeros(n, 1, d, dtype=x.dtype, device=x.device)
            return torch.cat([dx[:, None, :], eye, zero], dim=1)
        dx = x[:, None, :] - self.centers[None]                        # (B, C, d)
        r = torch.linalg.vector_norm(dx, dim=-1, keepdim=True)          # (B, C, 1)
        values = torch.cat([dx, r], dim=-1).reshape(n, -1)
        if not with_derivatives:
            return values
        n_c = self.centers.shape[0]
        eye = torch.eye(d, dtype=x.dtype, device=x.device).expand(n, n_c, d, d)
        grads = torch.cat([eye, (dx / r)[..., None]], dim=-1)           # (B, C, d, d + 1)
        laps = torch.cat([torch.zeros_like(dx), (d - 1) / r], dim=-1)  # (B, C, d + 1)
        grads = grads.permute(0, 2, 1, 3).reshape(n, d, -1)
        return torch.cat([values[:, None], grads, laps.reshape(n, 1, -1)], dim=1)

    def _envelope(self, x: torch.Tensor, with_derivatives: bool, log_scale: torch.Tensor | None) -> torch.Tensor:
        """e_l(x) as jets (L, B, d + 2), or values (L, B)."""
        c = self.config
        d = c.dimension
        if c.envelope == "none":
            one = torch.ones(c.states, x.shape[0], 1, dtype=x.dtype, device=x.device)
            return torch.cat([one, torch.zeros(c.states, x.shape[0], d + 1, dtype=x.dtype, device=x.device)], -1) \
                if with_derivatives else one[..., 0]
        if c.envelope == "exponential":
            a = torch.exp(log_scale)                                    # (L, 1, C)
            dx = x[:, None, :] - self.centers[None]                     # (B, C, d)
            r = torch.linalg.vector_norm(dx, dim=-1)                    # (B, C)
            e = torch.exp(-a * r[None])                                 # (L, B, C)
            if not with_derivatives:
                return e.sum(-1)
            grad = (-(a * e)[..., None] * (dx / r[..., None])[None]).sum(2)  # (L, B, d)
            lap = (e * (a**2 - a * (d - 1) / r[None])).sum(-1)
            return torch.cat([e.sum(-1)[..., None], grad, lap[..., None]], dim=-1)
        if c.envelope == "gaussian":
            beta = torch.exp(log_scale)                                 # (L, 1, d)
            dx = x - self.centers[0]                                    # (B, d)
            e = torch.exp(-0.5 * (beta * dx[None] ** 2).sum(-1))
            if not with_derivatives:
                return e
            grad = -beta * dx[None] * e[..., None]
            lap = e * ((beta * dx[None]) ** 2 - beta).sum(-1)
            return torch.cat([e[..., None], grad, lap[..., None]], dim=-1)
        k = math.pi / self.lengths                                      # box, (d,)
        phase = k * (x - self.centers[0])
        cos, sin = torch.cos(phase), torch.sin(phase)
        e = cos.prod(-1)                                                # (B,)
        if not with_derivatives:
            return e.expand(c.states, -1)
        others = torch.stack([torch.cat([cos[:, :i], cos[:, i + 1:]], 1).prod(-1) for i in range(d)], -1)
        grad = -k * sin * others
        lap = -(k**2).sum() * e
        jet = torch.cat([e[:, None], grad, lap[:, None]], dim=-1)
        return jet.expand(c.states, -1, -1)

    # ---- public evaluation ----
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ψ_l(x) for x (B, d) -> (B, L)."""
        return self.layers(x)[0]

    def layers(self, x: torch.Tensor, log_scale: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """ψ (B, L) with every linear layer's input z (L, B, fan_in) and output zW + b (L, B, fan_out).

        ``log_scale`` (L, B, C), a per-sample copy of the learned log-scales, gives per-sample derivatives by them."""
        log_scale = self._log_scale(log_scale)
        z = self._base_jet(x, False)[None] * self._feature_scales(log_scale)          # (L, B, F)
        g, inputs, outputs = mlp_layers(self.weights, self.biases, z, self.config.activation)
        return (g * self._envelope(x, False, log_scale)).T, inputs, outputs

    def jet(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ψ (B, L), ∇ψ (B, L, d) and ∇²ψ (B, L) by one forward-Laplacian pass."""
        n, d = x.shape
        base = self._base_jet(x, True)                                  # (B, d + 2, F)
        log_scale = self._log_scale(None)
        scales = self._feature_scales(log_scale)                        # (L, 1, F)
        value = base[None, :, 0] * scales                               # (L, B, F)
        grad = base[None, :, 1:-1] * scales[:, :, None]                 # (L, B, d, F)
        lap = base[None, :, -1] * scales
        g = mlp_jet(self.weights, self.biases, value, grad, lap, self.config.activation)   # (L, B, d + 2)
        psi = product_jet(g, self._envelope(x, True, log_scale))
        return psi[..., 0].T, psi[..., 1:-1].transpose(0, 1), psi[..., -1].T
