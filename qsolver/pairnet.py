"""Two-particle eigenfunctions with exact exchange symmetry and exact cusps.

For configurations x = (x_1, x_2) (B, 2, d) each state is

    ψ_l(x_1, x_2) = Φ_l(x_1, x_2) + s Φ_l(x_2, x_1),   Φ_l(x_a, x_b) = g_l(u_l(x_a, x_b)) e_la(x_a) e_lb(x_b) J(r_12),

with s = +1 (spin singlets: symmetric spatial part) or s = -1 (triplets: antisymmetric), so the exchange symmetry
holds to rounding whatever the weights. g_l is one MLP per state; e_la and e_lb are one-particle envelopes with
their own learned scales (an inner and an outer electron: the symmetrised product is the "1s nℓ" structure);
J(r) = exp(γ r/(1 + r/ℓ)) is a fixed Jastrow factor whose slope γ at r = 0 is the Kato pair cusp of W = λ/r.

- ``exponential`` (Coulomb centres R_c with cusp slopes k_c = Z_c/((d-1)κ)): ln e(x) = Σ_c φ(|x - R_c|),
  φ(r) = -a r - (k - a) ℓ r/(ℓ + r) with ℓ = 1/|k|: slope -k at the nucleus (the exact electron–nucleus cusp, for
  every learned decay a) and decay exp(-a r) far away.
- ``gaussian`` (traps): ln e(x) = -½ Σ_i β_i (x_i - c_i)².
- ``box`` (infinite walls of sides L_i): e(x) = Π_i cos(π (x_i - c_i)/L_i), nothing learned; ψ vanishes on the walls.
The MLP inputs are smooth at every coalescence (scaled differences x_a - R_c, x_b - R_c, x_a - x_b and their
lengths through ρ(s) = s²/(1 + s), whose slope vanishes at s = 0), so the cusps of e and J are those of ψ.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .model import mlp_jet, mlp_layers, mlp_parameters


@dataclass
class PairConfig:
    """Architecture of the two-particle networks; with the weights it rebuilds the wavefunctions exactly."""

    dimension: int                   # per particle
    states: int
    hidden: int
    layers: int
    activation: str
    envelope: str                    # "exponential", "gaussian" or "box"
    centers: list[list[float]]       # Coulomb centres, or the trap centre
    cusps: list[float]               # k_c per centre (exponential), slope of ln ψ at the nucleus (1/bohr)
    init_scales: list[list[list[float]]]  # (states, 2, C) decays a or (states, 2, d) curvatures β; box: none
    feature_scales: list[list[float]]     # (states, 3): inverse length units of the a, b and pair inputs
    exchange: int                    # +1 symmetric (singlets), -1 antisymmetric (triplets)
    pair_cusp: float                 # γ of the Jastrow factor (1/bohr)
    pair_length: float = 1.0         # ℓ of the Jastrow factor (bohr)
    kind: str = "pair"
    lengths: list[float] = field(default_factory=list)   # box sides L_i (bohr), centred on centers[0]

    def to_dict(self) -> dict:
        return asdict(self)


def _rho(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ρ(s) = s²/(1 + s), ρ'(s)/s = (2 + s)/(1 + s)², ρ''(s) = 2/(1 + s)³ (the slope over s is finite at 0)."""
    one = 1 + s
    return s * s / one, (2 + s) / one**2, 2 / one**3


class PairNet(nn.Module):
    """L two-particle trial functions; ``forward`` gives values (B, L), ``jet`` values, gradients over the 2d
    coordinates (B, L, 2d) and Laplacians (B, L)."""

    def __init__(self, config: PairConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = c = config
        self.register_buffer("centers", torch.tensor(c.centers, dtype=torch.float64))
        self.register_buffer("cusps", torch.tensor(c.cusps or [0.0] * len(c.centers), dtype=torch.float64))
        self.register_buffer("feature_scales", torch.tensor(c.feature_scales, dtype=torch.float64))
        if c.envelope == "box":
            self.register_buffer("lengths", torch.tensor(c.lengths, dtype=torch.float64))
        else:
            self.log_scale = nn.Parameter(torch.log(torch.tensor(c.init_scales, dtype=torch.float64)).flatten(1))
        n_in = (2 * len(c.centers) + 1) * (c.dimension + 1)
        self.weights, self.biases = mlp_parameters(c.states, [n_in] + [c.hidden] * c.layers + [1], generator)

    # ---- differences: each input vector is x_i - x_j or x_i - R_c, with its sign pattern over the particles ----
    def _vectors(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Difference vectors v (B, K, d) in the order [a - R_c..., b - R_c..., a - b], their lengths (B, K) and
        ∂v/∂x_particle as signs (K, 2)."""
        n_c = self.centers.shape[0]
        to_centres = x[:, :, None, :] - self.centers[None, None]                     # (B, 2, C, d)
        v = torch.cat([to_centres.reshape(x.shape[0], 2 * n_c, -1), (x[:, 0] - x[:, 1])[:, None]], 1)
        signs = torch.zeros(2 * n_c + 1, 2, dtype=x.dtype, device=x.device)
        signs[:n_c, 0], signs[n_c:2 * n_c, 1], signs[-1] = 1.0, 1.0, torch.tensor([1.0, -1.0])
        return v, torch.linalg.vector_norm(v, dim=-1), signs

    def _input_scales(self) -> torch.Tensor:
        """Inverse length unit per state and input vector (L, K)."""
        n_c = self.centers.shape[0]
        s = self.feature_scales
        return torch.cat([s[:, :1].expand(-1, n_c), s[:, 1:2].expand(-1, n_c), s[:, 2:]], 1)

    def _inputs(self, x: torch.Tensor, with_derivatives: bool):
        """MLP inputs per state [s v, ρ(s|v|)] for every vector: values (L, B, F); with derivatives also the
        gradients (L, B, 2d, F) and Laplacians (L, B, F)."""
        n, _, d = x.shape
        v, r, signs = self._vectors(x)
        s = self._input_scales()[:, None, :]                                          # (L, 1, K)
        sv = s[..., None] * v[None]                                                   # (L, B, K, d)
        sr = s * r[None]
        rho, slope_over_s, curv = _rho(sr)
        n_states, k = s.shape[0], v.shape[1]
        value = torch.cat([sv, rho[..., None]], -1).reshape(n_states, n, -1)
        if not with_derivatives:
            return value
        # ∂(s v_m)/∂x_{p,m'} = s σ_kp δ_mm';  ∂ρ(s|v|)/∂x_p = σ_kp s² ρ'(s r)/(s r) v
        eye = torch.eye(d, dtype=x.dtype, device=x.device)
        lin = s[..., None, None, None] * signs[None, None, :, :, None, None] * eye            # (L, 1, K, 2, d, d)
        lin = lin.expand(n_states, n, k, 2, d, d)
        rad = (s**2 * slope_over_s)[..., None, None] * signs[None, None, :, :, None] * v[None, :, :, None, :]
        grad = torch.cat([lin, rad[..., None]], -1)                                   # (L, B, K, 2, d, d + 1)
        grad = grad.permute(0, 1, 3, 4, 2, 5).reshape(n_states, n, 2 * d, -1)
        # ∇²ρ(s|v|) = (Σ_p σ_kp²) s² (ρ''(s r) + (d - 1) ρ'(s r)/(s r))
        weight = (signs**2).sum(-1)                                                   # (K,)
        lap_rad = weight * s**2 * (curv + (d - 1) * slope_over_s)
        lap = torch.cat([torch.zeros_like(sv), lap_rad[..., None]], -1).reshape(n_states, n, -1)
        return value, grad, lap

    def _log_envelope(self, x: torch.Tensor, log_scale: torch.Tensor | None, with_derivatives: bool):
        """ln e_a(x_a) + ln e_b(x_b) + ln J(r_ab) (box: ln J alone): values (L | 1, B); with derivatives also
        gradients (L | 1, B, 2d) and Laplacians (L | 1, B). ``log_scale`` is (L, 1, P) or a per-sample copy (L, B, P)."""
        c = self.config
        n, _, d = x.shape
        if c.envelope == "box":
            value, grad, lap = x.new_zeros(1, n), x.new_zeros(1, n, 2 * d), x.new_zeros(1, n)
        elif c.envelope == "gaussian":
            scales = torch.exp(log_scale).reshape(log_scale.shape[0], log_scale.shape[1], 2, -1)   # (L, 1|B, 2, d)
            dx = x - self.centers[0]                                                  # (B, 2, d)
            value = -0.5 * (scales * dx[None] ** 2).sum((-1, -2))
            grad = (-scales * dx[None]).reshape(scales.shape[0], n, 2 * d)
            lap = -scales.sum((-1, -2)).expand(-1, n)
        else:
            dx = x[:, :, None, :] - self.centers[None, None]                          # (B, 2, C, d)
            r = torch.linalg.vector_norm(dx, dim=-1)                                  # (B, 2, C)
            k = self.cusps
            ell = 1.0 / torch.where(k == 0, torch.ones_like(k), k.abs())
            a = torch.exp(log_scale).reshape(log_scale.shape[0], log_scale.shape[1], 2, -1)   # (L, 1|B, 2, C)
            value = (-a * r[None] - (k - a) * ell * r[None] / (ell + r[None])).sum((-1, -2))
            if with_derivatives:
                slope = -a - (k - a) * ell**2 / (ell + r[None]) ** 2                    # φ'(r)
                curv = 2 * (k - a) * ell**2 / (ell + r[None]) ** 3                     # φ''(r)
                unit = dx / r[..., None]
                grad = (slope[..., None] * unit[None]).sum(-2).reshape(a.shape[0], n, 2 * d)
                lap = (curv + (d - 1) * slope / r[None]).sum((-1, -2))
        gamma, ell12 = c.pair_cusp, c.pair_length
        if gamma:
            v = x[:, 0] - x[:, 1]
            r12 = torch.linalg.vector_norm(v, dim=-1)
            value = value + gamma * r12 / (1 + r12 / ell12)
            if with_derivatives:
                slope = gamma / (1 + r12 / ell12) ** 2
                curv = -2 * gamma / (ell12 * (1 + r12 / ell12) ** 3)
                unit = v / r12[:, None]
                grad = grad + torch.cat([slope[:, None] * unit, -slope[:, None] * unit], -1)
                lap = lap + 2 * (curv + (d - 1) * slope / r12)
        if not with_derivatives:
            return value
        return value, grad, lap

    def _walls(self, x: torch.Tensor, with_derivatives: bool):
        """w = Π_{p,i} cos(k_i (x_pi - c_i)), k_i = π/L_i: values (B,); with derivatives also gradients (B, 2d),
        ∂w/∂x_pi = -k_i sin(·) Π_{others} cos (no division: w vanishes on the walls), and Laplacians -2 Σ_i k_i² w."""
        k = torch.pi / self.lengths
        phase = (k * (x - self.centers[0])).reshape(x.shape[0], -1)                   # (B, 2d)
        cos = torch.cos(phase)
        w = cos.prod(-1)
        if not with_derivatives:
            return w
        k2 = k.repeat(2)
        others = torch.stack([torch.cat([cos[:, :j], cos[:, j + 1:]], 1).prod(-1) for j in range(cos.shape[1])], -1)
        return w, -k2 * torch.sin(phase) * others, -(k2**2).sum() * w

    def _envelope(self, x: torch.Tensor, log_scale: torch.Tensor | None, with_derivatives: bool):
        """E = e_a(x_a) e_b(x_b) J(r_ab) (times the walls' w for a box): values (L | 1, B); with derivatives also
        gradients (L | 1, B, 2d) and Laplacians, by ∇E = E ∇ln E and ∇²E = E (∇²ln E + |∇ln E|²)."""
        if not with_derivatives:
            value = torch.exp(self._log_envelope(x, log_scale, False))
            return value * self._walls(x, False) if self.config.envelope == "box" else value
        ln_e, ln_grad, ln_lap = self._log_envelope(x, log_scale, True)
        e = torch.exp(ln_e)
        grad, lap = e[..., None] * ln_grad, e * (ln_lap + (ln_grad**2).sum(-1))
        if self.config.envelope != "box":
            return e, grad, lap
        w, w_grad, w_lap = self._walls(x, True)
        return e * w, grad * w[:, None] + e[..., None] * w_grad, lap * w + 2 * (grad * w_grad).sum(-1) + e * w_lap

    def _both_orders(self, x: torch.Tensor) -> torch.Tensor:
        """The batch followed by the same configurations with the particles swapped (2B, 2, d)."""
        return torch.cat([x, x.flip(1)])

    def _combine(self, phi: torch.Tensor) -> torch.Tensor:
        """ψ = Φ(x) + s Φ(Px) from Φ on the doubled batch (L, 2B, ...) -> (L, B, ...)."""
        n = phi.shape[1] // 2
        return phi[:, :n] + self.config.exchange * phi[:, n:]

    # ---- public evaluation ----
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ψ_l(x) for configurations x (B, 2, d) -> (B, L)."""
        return self.layers(x)[0]

    def layers(self, x: torch.Tensor, log_scale: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """ψ (B, L) with every linear layer's input and output over the doubled batch (L, 2B, ·): each sample's
        Jacobian is the sum of its two orderings' (see :mod:`qsolver.natural`). ``log_scale`` (L, B, P), a
        per-sample copy of the learned log-scales, gives per-sample derivatives by them."""
        both = self._both_orders(x)
        if log_scale is not None:
            log_scale = torch.cat([log_scale, log_scale], 1)
        elif hasattr(self, "log_scale"):
            log_scale = self.log_scale[:, None, :]
        g, inputs, outputs = mlp_layers(self.weights, self.biases, self._inputs(both, False),
                                        self.config.activation)
        phi = g * self._envelope(both, log_scale, False)
        return self._combine(phi).T, inputs, outputs

    def jet(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ψ (B, L), ∇ψ (B, L, 2d) over (x_1, x_2) and ∇²ψ (B, L), by one forward-Laplacian pass."""
        n, _, d = x.shape
        both = self._both_orders(x)
        g = mlp_jet(self.weights, self.biases, *self._inputs(both, True), self.config.activation)
        log_scale = self.log_scale[:, None, :] if hasattr(self, "log_scale") else None
        e, e_grad, e_lap = self._envelope(both, log_scale, True)
        g_val, g_grad, g_lap = g[..., 0], g[..., 1:-1], g[..., -1]
        # Φ = g E:  ∇Φ = E ∇g + g ∇E,  ∇²Φ = E ∇²g + 2 ∇g·∇E + g ∇²E
        value = g_val * e
        grad = e[..., None] * g_grad + g_val[..., None] * e_grad
        lap = e * g_lap + 2 * (g_grad * e_grad).sum(-1) + g_val * e_lap
        # the swapped half was differentiated by its own (swapped) coordinates: swap the gradient blocks back
        grad = torch.cat([grad[:, :n], grad[:, n:].reshape(-1, n, 2, d).flip(2).reshape(-1, n, 2 * d)], 1)
        psi, grad, lap = self._combine(value), self._combine(grad), self._combine(lap)
        return psi.T, grad.transpose(0, 1), lap.T
