"""The NestedLoRA surrogate gradients against autograd of the objectives they stand for."""
import pytest
import torch

from qsolver.nestedlora import nestedlora_loss

torch.set_default_dtype(torch.float64)


def setup(n=30, states=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g)
    t = (a + a.T) / 2                              # symmetric operator on n quadrature points
    psi = torch.randn(n, states, generator=g, requires_grad=True)
    return t, psi, None


def lora(psi, t, k):
    """LoRA(ψ_1:k) = -2 Σ_l ⟨ψ_l,Tψ_l⟩ + Σ_lm ⟨ψ_l,ψ_m⟩² with ⟨f,g⟩ = mean(f g)."""
    n = psi.shape[0]
    p = psi[:, :k]
    return -2 * torch.einsum("il,ij,jl->", p, t, p) / n + ((p.T @ p / n) ** 2).sum()


def surrogate_grad(psi, t, weights, nesting):
    t_psi = (t @ psi).detach()                     # (Tψ)(x_i) = Σ_j T_ij ψ(x_j)
    loss = nestedlora_loss(psi, t_psi, nesting, split=False)     # quadrature: p uniform, f = ψ
    (grad,) = torch.autograd.grad(loss, psi)
    return grad


def test_joint_gradient_equals_autograd_of_joint_objective():
    t, psi, w = setup()
    objective = sum(lora(psi, t, k) for k in range(1, psi.shape[1] + 1))
    (expected,) = torch.autograd.grad(objective, psi)
    assert torch.allclose(surrogate_grad(psi, t, w, "joint"), expected, atol=1e-12, rtol=1e-10)


def test_sequential_gradient_of_mode_k_is_that_of_lora_1_to_k():
    t, psi, w = setup()
    got = surrogate_grad(psi, t, w, "sequential")
    for k in range(1, psi.shape[1] + 1):
        (expected,) = torch.autograd.grad(lora(psi, t, k), psi)
        assert torch.allclose(got[:, k - 1], expected[:, k - 1], atol=1e-12, rtol=1e-10)


def test_fixed_point_is_scaled_top_eigenvectors():
    t, psi, w = setup()
    n = t.shape[0]
    evals, evecs = torch.linalg.eigh(t)            # eigenpairs of f -> Σ_j T_ij f_j
    top = torch.flip(torch.arange(n)[-4:], [0])
    optimum = (evecs[:, top] * torch.sqrt(n * evals[top])).requires_grad_(True)  # ⟨ψ_l,ψ_l⟩ = λ_l
    for nesting in ("joint", "sequential"):
        assert surrogate_grad(optimum, t, w, nesting).abs().max() < 1e-10


def test_split_estimate_of_squared_overlaps_is_unbiased():
    # ψ on 5 support points with probabilities p; batches drawn from p
    g = torch.Generator().manual_seed(1)
    p = torch.tensor([0.1, 0.2, 0.3, 0.25, 0.15])
    values = torch.randn(5, 2, generator=g)
    exact = ((values.T @ values) ** 2).sum()      # ⟨f,g⟩ = Σ_x f(x) g(x) (counting measure)
    zero_t = torch.zeros(8, 2)
    split, joint = [], []
    for _ in range(20000):
        idx = torch.multinomial(p, 8, replacement=True, generator=g)
        f = values[idx] / torch.sqrt(p[idx])[:, None]            # f = ψ/√p
        split.append(nestedlora_loss(f, zero_t, "joint", split=True) / 2)
        joint.append(nestedlora_loss(f, zero_t, "joint", split=False) / 2)
    # with zero T and two states, joint weights M = [[2,1],[1,1]]: compare the same weighted sum
    m = torch.tensor([[2.0, 1.0], [1.0, 1.0]])
    exact = (m * (values.T @ values) ** 2).sum() / 2
    split, joint = torch.stack(split), torch.stack(joint)
    se = split.std() / len(split) ** 0.5
    assert abs(split.mean() - exact) < 4 * se
    assert joint.mean() - exact > 10 * joint.std() / len(joint) ** 0.5   # squaring one batch is biased up


@pytest.mark.parametrize("nesting", ["sequential", "joint"])
def test_external_gram_factor_gives_the_same_expected_gradient(nesting):
    # With the Gram factor G from independent samples, the surrogate's gradient is linear in G; at the exact
    # G it must equal the gradient of the split-batch surrogate in expectation. On a quadrature (split=False,
    # exact inner products) both are deterministic, so they must agree to rounding.
    torch.manual_seed(0)
    n, states = 64, 3
    w = torch.randn(states, 5, dtype=torch.float64, requires_grad=True)
    basis = torch.randn(n, 5, dtype=torch.float64)
    t = torch.randn(n, states, dtype=torch.float64)
    f = basis @ w.T
    (g_ref,) = torch.autograd.grad(nestedlora_loss(f, t, nesting, split=False), w)
    f = basis @ w.T
    gram = (f.T @ f / n).detach()
    (g_ext,) = torch.autograd.grad(nestedlora_loss(f, t, nesting, split=False, gram=gram), w)
    assert torch.allclose(g_ext, g_ref, atol=1e-12, rtol=1e-12)
