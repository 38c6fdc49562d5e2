"""Proposal densities are normalised and match their samplers."""
import math

import numpy as np
import pytest
import torch

from qsolver.sampling import Blend, ExponentialMixture, GaussianMixture, SlotProducts, UniformBox

torch.set_default_dtype(torch.float64)


def proposals(d):
    centers = torch.tensor([[0.0] * d, [1.0] + [0.5] * (d - 1)])
    return [ExponentialMixture(centers, torch.tensor([0.7, 2.0])),
            GaussianMixture(centers, torch.tensor([[0.5] * d, [1.5] * d])),
            UniformBox(torch.zeros(d), torch.tensor([2.0, 3.0, 1.0][:d]))]


@pytest.mark.parametrize("d", [1, 2])
def test_densities_integrate_to_one(d):
    # quadrature on a fine grid wide enough for every density here
    axis = torch.linspace(-40, 40, 4001 if d == 1 else 1601)
    h = float(axis[1] - axis[0])
    grid = torch.stack(torch.meshgrid(*[axis] * d, indexing="ij"), -1).reshape(-1, d)
    for p in proposals(d)[:2]:
        total = torch.exp(p.log_prob(grid)).sum() * h**d
        assert abs(float(total) - 1) < 2e-3, type(p).__name__


@pytest.mark.parametrize("d", [1, 2, 3])
def test_importance_sampling_is_unbiased(d):
    # E_p[f/p] = ∫ f for f = exp(-|x - a|²), whose integral is π^{d/2}
    g = torch.Generator().manual_seed(3)
    a = torch.full((d,), 0.3)
    for p in proposals(d)[:2]:
        x = p.sample(200_000, g)
        values = torch.exp(-((x - a) ** 2).sum(-1) - p.log_prob(x))
        est, se = float(values.mean()), float(values.std() / math.sqrt(len(values)))
        assert abs(est - math.pi ** (d / 2)) < 4 * se + 1e-12, type(p).__name__


def test_box_sampler_stays_inside_and_density_is_inverse_volume():
    g = torch.Generator().manual_seed(0)
    p = UniformBox(torch.tensor([1.0, -1.0]), torch.tensor([2.0, 4.0]))
    x = p.sample(10000, g)
    assert (x[:, 0] > 0).all() and (x[:, 0] < 2).all() and (x[:, 1] > -3).all() and (x[:, 1] < 1).all()
    assert np.allclose(torch.exp(p.log_prob(x)).numpy(), 1 / 8)


def test_weighted_exponential_mixture_is_normalised_and_unbiased():
    g = torch.Generator().manual_seed(4)
    p = ExponentialMixture(torch.zeros(3, 2), torch.tensor([0.5, 2.0, 6.0]), torch.tensor([0.6, 0.3, 0.1]))
    axis = torch.linspace(-90, 90, 1801)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    assert abs(float(torch.exp(p.log_prob(grid)).sum() * (axis[1] - axis[0]) ** 2) - 1) < 3e-3
    x = p.sample(200_000, g)
    values = torch.exp(-(x**2).sum(-1) - p.log_prob(x))
    assert abs(float(values.mean()) - math.pi) < 4 * float(values.std()) / math.sqrt(len(values))


def test_non_finite_scales_give_nan_samples_not_an_exception():
    # A step that leaves the envelopes' log-scales NaN makes the softmax weights NaN; the samples must come back NaN
    # (the training loop's divergence check then rewinds the step), not raise inside torch.multinomial.
    nan = torch.tensor([float("nan"), float("nan")])
    p = ExponentialMixture(torch.zeros(2, 3), nan, torch.softmax(nan, 0))
    x = p.sample(64, torch.Generator().manual_seed(0))
    assert x.shape == (64, 3) and torch.isnan(x).all()


def slot_products(kind):
    """Three components of four slots (three up, one down), two centres or one trap, random scales and weights."""
    g = torch.Generator().manual_seed(7)
    weights = torch.softmax(torch.randn(3, generator=g), 0)
    if kind == "gaussian":
        return SlotProducts(torch.zeros(1, 2), 0.4 + torch.rand(3, 4, 2, generator=g), weights, (3, 1),
                            kind="gaussian")
    return SlotProducts(torch.tensor([[0.0, 0.0], [0.0, 1.5]]), 0.3 + torch.rand(3, 4, 2, generator=g), weights,
                        (3, 1), centre_weights=torch.softmax(torch.randn(3, 4, 2, generator=g), -1))


@pytest.mark.parametrize("kind", ["exponential", "gaussian", "blend"])
def test_slot_products_sampler_matches_its_density(kind):
    # E_s[q/p] = ∫ q (s/p) is 1 for every normalised q only if the sampler's density s is p: three Gaussian
    # products q of different widths (4 electrons in 2D, normalised in 8 dimensions); a blend of the two kinds at
    # share 0.3 checks Blend's sampler against its density
    p = Blend(slot_products("exponential"), slot_products("gaussian"), 0.3) if kind == "blend" else slot_products(kind)
    assert p.sample(1, torch.Generator().manual_seed(0)).shape == (1, 4, 2)      # one member draws nothing
    x = p.sample(200_000, torch.Generator().manual_seed(8))
    log_p = p.log_prob(x)
    for width in (0.8, 1.0, 1.5):
        log_q = (-0.5 * (x / width) ** 2 - math.log(width) - 0.5 * math.log(2 * math.pi)).sum((-1, -2))
        ratio = torch.exp(log_q - log_p)
        assert abs(float(ratio.mean()) - 1) < 4 * float(ratio.std()) / math.sqrt(len(ratio)), width


@pytest.mark.parametrize("kind", ["exponential", "gaussian"])
def test_slot_products_are_symmetric_within_a_spin_block_only(kind):
    p = slot_products(kind)
    x = p.sample(1000, torch.Generator().manual_seed(9))
    log_p = p.log_prob(x)
    for order in ([1, 0, 2, 3], [2, 1, 0, 3], [1, 2, 0, 3]):           # exchanges and a cycle of the up electrons
        assert torch.allclose(p.log_prob(x[:, order]), log_p, atol=1e-12)
    assert not torch.allclose(p.log_prob(x[:, [3, 1, 2, 0]]), log_p)   # an up and the down electron: not a symmetry
