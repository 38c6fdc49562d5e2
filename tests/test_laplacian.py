"""Exact Laplacians against closed forms (float64, 1e-10) and against each other."""
import math

import pytest
import torch

from qsolver.hamiltonian import Hamiltonian, one_body
from qsolver.laplacian import finite_difference_laplacian, hessian_trace
from qsolver.networks.one import OneConfig, OneParticleNet
from qsolver.potentials import Harmonic

torch.set_default_dtype(torch.float64)


def points(n, d, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, d, generator=g, dtype=torch.float64)


def test_hessian_trace_closed_forms():
    x = points(50, 3)
    # f = sin(x) cos(2y) exp(z): ∇²f = (-1 - 4 + 1) f
    f = lambda p: (torch.sin(p[:, 0]) * torch.cos(2 * p[:, 1]) * torch.exp(p[:, 2]))[:, None]
    assert torch.allclose(hessian_trace(f, x), -4 * f(x), atol=1e-10, rtol=0)
    # f = exp(-a r²) in 3D: ∇²f = (4a²r² - 6a) f
    a = 0.7
    g = lambda p: torch.exp(-a * (p**2).sum(-1))[:, None]
    r2 = (x**2).sum(-1, keepdim=True)
    assert torch.allclose(hessian_trace(g, x), (4 * a**2 * r2 - 6 * a) * g(x), atol=1e-10, rtol=0)
    # f = exp(-r) in 3D: ∇²f = (1 - 2/r) f
    h = lambda p: torch.exp(-torch.linalg.vector_norm(p, dim=-1))[:, None]
    r = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    assert torch.allclose(hessian_trace(h, x), (1 - 2 / r) * h(x), atol=1e-10, rtol=0)


def test_finite_differences_converge_at_second_order():
    x = points(20, 2)
    f = lambda p: (torch.sin(p[:, 0]) * torch.cos(2 * p[:, 1]))[:, None]
    exact = -5 * f(x)
    e1 = (finite_difference_laplacian(f, x, 1e-2) - exact).abs().max()
    e2 = (finite_difference_laplacian(f, x, 5e-3) - exact).abs().max()
    assert 3.5 < e1 / e2 < 4.5


def model(envelope, d, states=3, centers=None, scales=None, seed=0):
    centers = centers or [[0.1 * (i + 1) for i in range(d)]]
    scales = scales or ([[0.8] * len(centers)] * states if envelope == "exponential" else
                        [[1.5] * d] if envelope == "box" else [[0.6 + 0.2 * i for i in range(d)]] * states)
    cfg = OneConfig(d, states, 12, 2, "tanh", envelope, centers, scales)
    return OneParticleNet(cfg, generator=torch.Generator().manual_seed(seed))


def on_points(m):
    """The one-particle network as a function of points (N, d) (it takes configurations (N, 1, d))."""
    return lambda p: m(p[:, None, :])


def assert_jet_exact(m, x):
    """The network's forward-Laplacian jet at points x (N, d): values as forward, Laplacians as torch.func's
    Hessian trace and gradients as its Jacobian, to 1e-10."""
    value, grad, lap = m.jet(x[:, None])
    assert torch.allclose(value, m(x[:, None]), atol=1e-12, rtol=0)
    assert torch.allclose(lap, hessian_trace(on_points(m), x), atol=1e-10, rtol=0)
    auto_grad = torch.func.vmap(torch.func.jacrev(lambda p: m(p[None, None])[0]))(x)   # (N, L, d)
    assert torch.allclose(grad, auto_grad, atol=1e-10, rtol=0)


@pytest.mark.parametrize("activation", ["tanh", "softplus", "silu"])
@pytest.mark.parametrize("envelope", ["exponential", "gaussian", "box"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_forward_laplacian_matches_hessian_trace(envelope, d, activation):
    m = model(envelope, d)
    m.config.activation = activation
    x = points(16, d, scale=0.4)
    assert_jet_exact(m, x)


def envelope_only(m):
    """Make g ≡ 1 so that ψ is the envelope alone."""
    with torch.no_grad():
        m.weights[-1].zero_()
        m.biases[-1].fill_(1.0)
    return m


def test_forward_laplacian_of_envelopes_closed_form():
    # two Coulomb centres: ψ = Σ_c exp(-a_c r_c), ∇²ψ = Σ_c (a_c² - a_c (d-1)/r_c) exp(-a_c r_c)
    centers = [[0.0, 0.0, 0.0], [1.0, -0.5, 0.3]]
    m = envelope_only(model("exponential", 3, states=1, centers=centers, scales=[[0.9, 0.4]]))
    x = points(40, 3, scale=2.0)
    _, _, lap = m.jet(x[:, None])
    expected = 0
    for c, a in zip(centers, [0.9, 0.4]):
        r = torch.linalg.vector_norm(x - torch.tensor(c), dim=-1)
        expected = expected + (a**2 - 2 * a / r) * torch.exp(-a * r)
    assert torch.allclose(lap[:, 0], expected, atol=1e-10, rtol=0)
    # anisotropic Gaussian: ψ = exp(-½ Σ β_i x_i²), ∇²ψ = (Σ β_i² x_i² - Σ β_i) ψ
    m = envelope_only(model("gaussian", 2, states=1, centers=[[0.0, 0.0]], scales=[[0.5, 2.0]]))
    x = points(40, 2)
    beta = torch.tensor([0.5, 2.0])
    psi = torch.exp(-0.5 * (beta * x**2).sum(-1))
    _, _, lap = m.jet(x[:, None])
    assert torch.allclose(lap[:, 0], ((beta * x) ** 2).sum(-1) * psi - beta.sum() * psi, atol=1e-10, rtol=0)
    # box of sides L: ψ = Π cos(π x_i / L_i), ∇²ψ = -Σ (π/L_i)² ψ
    m = envelope_only(model("box", 2, states=1, centers=[[0.0, 0.0]], scales=[[2.0, 3.0]]))
    x = points(40, 2, scale=0.5)
    _, _, lap = m.jet(x[:, None])
    psi = torch.cos(math.pi * x[:, 0] / 2) * torch.cos(math.pi * x[:, 1] / 3)
    assert torch.allclose(lap[:, 0], -((math.pi / 2) ** 2 + (math.pi / 3) ** 2) * psi, atol=1e-10, rtol=0)


def test_hamiltonian_methods_agree():
    m = model("gaussian", 2, states=4)
    x = points(32, 2)
    h = Hamiltonian(0.5) + one_body(Harmonic([1.0, 1.3], [0.0, 0.0]))
    x = x[:, None]
    psi, h_forward = h.apply(m, x, "forward")
    _, h_hessian = h.apply(m, x, "hessian")
    _, h_fd = h.apply(m, x, "fd", fd_step=1e-3)
    assert torch.allclose(h_forward, h_hessian, atol=1e-10, rtol=0)
    assert torch.allclose(h_forward, h_fd, atol=1e-4, rtol=0)
    # H acting on the exact oscillator ground state gives E ψ with E = ½(ω_x + ω_y)
    m = envelope_only(model("gaussian", 2, states=1, centers=[[0.0, 0.0]], scales=[[1.0, 1.3]]))
    psi, h_psi = h.apply(m, x, "forward")
    assert torch.allclose(h_psi, 0.5 * (1.0 + 1.3) * psi, atol=1e-12, rtol=0)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_fourier_feature_network_jet_matches_hessian_trace(d):
    # the ICML network: no envelope, random Fourier features [cos 2πBx, sin 2πBx], softplus MLP
    cfg = OneConfig(d, 3, 12, 3, "softplus", "none", [[0.2] * d], [[1.0] * d] * 3, features=32,
                      feature_scale=0.3)
    m = OneParticleNet(cfg, generator=torch.Generator().manual_seed(3))
    x = points(16, d, scale=2.0)
    assert_jet_exact(m, x)


def test_fourier_features_need_envelope_none():
    with pytest.raises(ValueError):
        OneParticleNet(OneConfig(2, 2, 8, 2, "tanh", "gaussian", [[0.0, 0.0]], [[1.0, 1.0]] * 2, features=16))


@pytest.mark.parametrize("d", [2, 3])
def test_exact_cusp_network_jet_and_local_energy(d):
    """`cusp = "exact"`: the forward Laplacian and gradient of the network with the cusp built in (smoothed distance
    input, envelope slope -k at the nucleus) match torch.func; and with random biases (so ψ(R) ≠ 0) the local energy
    (-κ∇²ψ - Z/r ψ)/ψ stays finite at the nucleus, k = Z/((d - 1)κ), where the learned-cusp network's diverges
    as 1/r."""
    z, kappa, centre = 2.0, 0.5, [0.1] * d
    k = z / ((d - 1) * kappa)
    local = {}
    for cusps in ([], [k]):
        cfg = OneConfig(d, 3, 12, 2, "tanh", "exponential", [centre], [[0.8]] * 3, cusps=cusps)
        m = OneParticleNet(cfg, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            for b in m.biases:
                b.copy_(torch.randn(b.shape, generator=torch.Generator().manual_seed(1)))
        x = points(16, d, scale=0.4)
        assert_jet_exact(m, x)
        direction = torch.nn.functional.normalize(torch.arange(1.0, d + 1), dim=0)
        r = torch.tensor([1e-4, 1e-7])
        near = torch.tensor(centre) + r[:, None] * direction
        psi, _, lap = m.jet(near[:, None])
        local[bool(cusps)] = (-kappa * lap - z / r[:, None] * psi) / psi           # (2, L)
    assert torch.all((local[True][1] - local[True][0]).abs() < 0.1)               # finite: what moves is O(r)
    assert torch.all((local[False][1] / local[False][0]).abs() > 100)             # 1/r: a thousandfold
