"""The natural-gradient step: its direction is NestedLoRA's, its Jacobians are exact, and it solves physics."""
import numpy as np
import pytest
import torch

import qsolver
from qsolver.errors import InputError
from qsolver.model import EigenNet, ModelConfig
from qsolver.natural import descent_direction, least_squares_step, per_state_jacobian
from qsolver.nestedlora import nestedlora_loss


def _model(states=3, dim=2):
    cfg = ModelConfig(dimension=dim, states=states, hidden=6, layers=2, activation="tanh", envelope="gaussian",
                      centers=[[0.0] * dim], init_scales=[[1.0] * dim] * states)
    return EigenNet(cfg, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("nesting", ["sequential", "joint"])
def test_direction_is_the_nestedlora_gradient(nesting):
    """∂loss/∂f_k (full-batch Gram, split=False) = -(4 m_k / B) r_k, m_k = 1 (sequential) or L - k (joint)."""
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(64, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    t_f = torch.randn(64, 4, generator=gen, dtype=torch.float64)
    (g,) = torch.autograd.grad(nestedlora_loss(f, t_f, nesting, split=False), f)
    m = torch.ones(4, dtype=torch.float64) if nesting == "sequential" else torch.arange(4, 0, -1).double()
    expected = -4 * m / f.shape[0] * descent_direction(f.detach(), t_f, nesting)
    assert torch.allclose(g, expected, rtol=1e-10, atol=1e-12)


def test_per_state_jacobian_matches_autograd():
    model = _model().double()
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    root_w = torch.rand(5, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64) + 0.5
    jac = per_state_jacobian(model, x, root_w)
    params = list(model.parameters())
    for l in range(3):
        for i in range(5):
            grads = torch.autograd.grad(model(x[i:i + 1])[0, l] * root_w[i, 0], params)
            row = torch.cat([g[l].reshape(-1) for g in grads])
            other = torch.cat([torch.cat([g[k].reshape(-1) for g in grads]) for k in range(3) if k != l])
            assert torch.allclose(jac[l, i], row, atol=1e-12)
            assert other.abs().max() == 0          # state l depends on its own slice only


def test_least_squares_step_reproduces_the_direction():
    """With more parameters than samples and no damping, J Δθ = r exactly (minimum-norm interpolation)."""
    gen = torch.Generator().manual_seed(4)
    jac = torch.randn(2, 8, 30, generator=gen, dtype=torch.float64)
    r = torch.randn(2, 8, generator=gen, dtype=torch.float64)
    delta = least_squares_step(jac, r, 0.0)
    assert torch.allclose((jac @ delta[..., None])[..., 0], r, atol=1e-9)
    damped = least_squares_step(jac, r, 1.0)
    assert damped.norm() < delta.norm()


def test_natural_optimizer_solves_the_oscillator():
    """1D oscillator (ω = 1, κ = ½), levels n + ½, after only 300 natural steps at batch 128. Measured for seeds
    0/1/2: the two lowest within 1e-3/1.2e-2/1.1e-2 hartree, all four within 0.04/0.51/0.12 (Adam after the same 300
    steps: 1.4-2.7 for n = 2 and 10-13 for n = 3). Tolerances are about 4× and 2× the worst seed, since float32
    trajectories differ between CPUs."""
    system = qsolver.load_system("harmonic_1d")
    result = qsolver.solve(system, n_states=4, steps=300, batch=128, optimizer="natural", progress=False,
                           eval_samples=40000, eval_blocks=20)
    error = np.abs(result.energies - (np.arange(4) + 0.5))
    assert error[:2].max() < 0.05
    assert error.max() < 1.0


def test_bad_trust_and_damping_are_refused():
    system = qsolver.load_system("harmonic_1d")
    with pytest.raises(InputError, match="trust"):
        qsolver.solve(system, steps=1, optimizer="natural", trust=0.0, progress=False)
    with pytest.raises(InputError, match="damping"):
        qsolver.solve(system, steps=1, optimizer="natural", damping=-1.0, progress=False)
