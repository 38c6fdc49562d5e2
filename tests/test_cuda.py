"""Results whose model lives on a device: evaluation, saving, loading, plots and tables.

Tests marked ``cuda`` run only where torch sees a CUDA device (see conftest.py); the others check on the CPU
what the device path relies on: ``load_result(..., device=)``, a float32 model left as it is, and potential
constants built once per (device, dtype).
"""
from __future__ import annotations

import copy
import pickle
from dataclasses import asdict

import numpy as np
import pytest
import torch

import qsolver
from qsolver.compare import compare, default_kinds, gather
from qsolver.hamiltonian import hamiltonian
from qsolver.networks import build, choose
from qsolver.io import load_result, save_result
from qsolver.plots import energy_levels, training_curves, wavefunction_gallery
from qsolver.potentials import Coulomb, Harmonic
from qsolver.references import reference
from qsolver.result import Result

OSC = qsolver.load_system("harmonic_1d")         # levels n + ½ hartree


def untrained(system=OSC, states: int = 3) -> Result:
    """A result around freshly initialised networks (no training: these tests concern devices, not accuracy)."""
    cfg = qsolver.SolverConfig(states=states)
    model = build(choose(system).configure(system, cfg), generator=torch.Generator().manual_seed(0)).to(torch.float64)
    return Result(system, np.arange(states) + 0.5, np.full(states, 1e-3), model, np.eye(states), asdict(cfg))


# ---- on any machine ----

def test_load_result_on_the_cpu_round_trip(tmp_path):
    result = untrained()
    path = save_result(result, tmp_path / "osc.h5")
    x = np.linspace(-3, 3, 101)[:, None]
    for loaded in (load_result(path), load_result(path, device="cpu"), load_result(path, device=torch.device("cpu"))):
        assert all(p.device.type == "cpu" and p.dtype == torch.float64 for p in loaded.model.parameters())
        np.testing.assert_array_equal(loaded.wavefunctions(x), result.wavefunctions(x))   # weights stored exactly


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_load_result_onto_a_missing_device_is_not_reported_as_a_damaged_file(tmp_path):
    path = save_result(untrained(), tmp_path / "osc.h5")
    with pytest.raises((RuntimeError, AssertionError)) as info:     # torch's own "no CUDA" error
        load_result(path, device="cuda")
    assert not isinstance(info.value, qsolver.InputError)


def test_wavefunctions_of_a_float32_model_in_float64_leave_the_model_float32():
    result = untrained()
    x = np.linspace(-3, 3, 101)[:, None]
    expected = result.wavefunctions(x)
    result.model.to(torch.float32)
    values = result.wavefunctions(x)
    assert values.dtype == np.float64
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
    # the float64 copy evaluates the float32-rounded weights: agreement to float32 rounding of the weights
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)


def test_potential_constants_are_built_once_per_device_and_dtype():
    coulomb = Coulomb([1.0, 2.0], [[0.0, 0.0, -0.7], [0.0, 0.0, 0.7]])
    x = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    first = coulomb(x)
    cached = coulomb._tensors[("centers", x.device, x.dtype)]
    coulomb(x)
    assert coulomb._tensors[("centers", x.device, x.dtype)] is cached
    # bitwise the numbers of building the tensors on every call
    centers, charges = torch.as_tensor(coulomb.centers, dtype=x.dtype), torch.as_tensor(coulomb.charges, dtype=x.dtype)
    expected = -(charges / torch.linalg.vector_norm(x[:, None, :] - centers[None], dim=-1)).sum(-1)
    assert torch.equal(first, expected)
    coulomb(x.float())
    assert {key[2] for key in coulomb._tensors} == {torch.float64, torch.float32}


def test_potential_constant_cache_is_neither_copied_nor_pickled():
    harmonic = Harmonic([1.0, 2.0], [0.5, 0.0])
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    value = harmonic(x)
    for other in (copy.deepcopy(harmonic), copy.copy(harmonic), pickle.loads(pickle.dumps(harmonic))):
        assert "_tensors" not in vars(other) and other == harmonic
        assert torch.equal(other(x), value)


def test_potential_constants_made_under_inference_mode_serve_later_gradients():
    coulomb = Coulomb([1.0], [[0.0, 0.0]])
    x = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        coulomb(x.clone())
    y = x.clone().requires_grad_()
    coulomb(y).sum().backward()            # autograd saves the cached charges for the backward pass
    np.testing.assert_allclose(y.grad.numpy(), (x / x.norm(dim=1, keepdim=True) ** 3).numpy(), rtol=1e-12)


def test_two_particle_potential_energy_reuses_the_constants():
    helium = qsolver.load_system("helium_triplet")
    energy = hamiltonian(helium).potential
    x = torch.randn(32, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    energy(x)
    cache = dict(helium.potential._tensors)
    energy(x)
    assert all(helium.potential._tensors[k] is v for k, v in cache.items())


# ---- on a CUDA device ----

@pytest.mark.cuda
def test_coulomb_constants_live_on_the_device_of_the_samples():
    coulomb = Coulomb([1.0, 1.0], [[0.0, 0.0, -0.7], [0.0, 0.0, 0.7]])
    x = torch.randn(256, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    on_device = coulomb(x.cuda())
    key = ("centers", on_device.device, torch.float64)
    cached = coulomb._tensors[key]
    coulomb(x.cuda())
    assert cached.device.type == "cuda" and coulomb._tensors[key] is cached
    np.testing.assert_allclose(on_device.cpu().numpy(), coulomb(x).numpy(), rtol=1e-14)


@pytest.mark.cuda
def test_solve_on_cuda_then_save_load_plot_validate_and_compare(tmp_path):
    result = qsolver.solve(OSC, steps=50, device="cuda", eval_samples=2000, progress=False)
    assert next(result.model.parameters()).device.type == "cuda"
    n = result.n_states
    exact = reference(OSC, n).energies                       # 0.5, 1.5, 2.5, ...
    # 50 steps only exercise the device path, they do not converge. What holds for any trial span: Ritz values
    # bound the exact levels from above (Courant–Fischer), up to the Monte Carlo error of 2000 samples (5 of
    # the stated error bars, plus 0.05 hartree for the bias of the error estimate itself on so few samples).
    assert np.all(np.isfinite(result.energies)) and np.all(np.diff(result.energies) >= 0)
    assert np.all(result.energies >= exact - 5 * result.errors - 0.05)
    # Loose from above: tanh networks with zero biases start odd about the centre, so the Ritz ground value
    # starts at the lowest odd level (1.5); after 50 steps it must not lie above it by more than 0.5 hartree.
    assert result.energies[0] <= exact[1] + 0.5

    x = np.linspace(-4, 4, 201)[:, None]
    on_device = result.wavefunctions(x)
    assert isinstance(on_device, np.ndarray) and on_device.shape == (201, n)
    lo, hi = result.extent()
    assert np.all(np.isfinite(lo)) and np.all(hi > lo)

    path = save_result(result, tmp_path / "osc.h5", reference(OSC, n))
    for device in ("cpu", "cuda"):
        loaded = load_result(path, device=device)
        assert next(loaded.model.parameters()).device.type == device
        # float64 weights stored exactly; CPU and CUDA kernels may round differently in the last bits
        np.testing.assert_allclose(loaded.wavefunctions(x), on_device, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(loaded.energies, result.energies)

    loaded = load_result(path, device="cuda")
    for plot in (wavefunction_gallery, energy_levels, training_curves):
        assert plot(loaded, tmp_path / f"{plot.__name__}.png").stat().st_size > 0
    table = qsolver.validate(loaded)
    assert len(table.states) == n and "harmonic_1d" in table.to_markdown()
    refs, labels, unavailable = gather(OSC, n, default_kinds(OSC))
    comparison = compare(loaded, refs, labels, unavailable)
    assert "analytic" in comparison.with_states()             # the subspace distance evaluated the CUDA model
    assert all(np.isfinite(g["distance_analytic"]) for g in comparison.groups)
