"""HDF5 round trip: a reloaded result reproduces energies and wavefunction values (float64, 1e-12)."""
import h5py
import numpy as np
import pytest
import torch

import qsolver
from qsolver.io import load_result


@pytest.fixture(scope="module")
def short_result():
    system = qsolver.load_system("harmonic_2d")
    return qsolver.solve(system, n_states=3, steps=30, progress=False, eval_samples=4000, eval_blocks=8)


def test_round_trip(short_result, tmp_path):
    reference = qsolver.references.reference(short_result.system, 3)
    path = qsolver.save_result(short_result, tmp_path / "r.h5", reference)
    again = load_result(path)
    x = np.random.default_rng(0).normal(size=(500, 2)) * 2
    assert np.allclose(again.wavefunctions(x), short_result.wavefunctions(x), atol=1e-12, rtol=0)
    assert np.array_equal(again.energies, short_result.energies)
    assert np.array_equal(again.errors, short_result.errors)
    assert again.system.to_dict() == short_result.system.to_dict()
    assert np.array_equal(again.history["energies"], short_result.history["energies"])
    assert again.config == short_result.config
    with h5py.File(path) as f:
        assert f.attrs["format"] == "qsolver-result"
        assert "hartree" in f.attrs["units"]
        assert f["grid/values"].shape == (3, 128, 128)
        assert np.allclose(f["reference/energies"][()], [1.0, 2.0, 2.0])
        assert f["reference"].attrs["kind"] == "analytic"
        assert f["model/weights.0"].dtype == np.float64
    assert [p.name for p in tmp_path.iterdir()] == ["r.h5"]     # no temporary file left behind


def test_grid_values_match_wavefunctions(short_result, tmp_path):
    path = qsolver.save_result(short_result, tmp_path / "r.h5")
    with h5py.File(path) as f:
        x, y, values = f["grid/x"][()], f["grid/y"][()], f["grid/values"][()]
    pts = np.array([[x[10], y[70]], [x[64], y[64]]])
    direct = short_result.wavefunctions(pts)
    assert np.allclose(values[:, [10, 64], [70, 64]].T, direct, atol=1e-6)


def test_callable_potential_result_saves_and_reloads(tmp_path):
    system = qsolver.System("quartic", 1, lambda x: (x**4).sum(-1), solver={"envelope": "gaussian"}, reference="none")
    result = qsolver.solve(system, n_states=2, steps=10, progress=False, eval_samples=2000, eval_blocks=4)
    again = load_result(qsolver.save_result(result, tmp_path / "q.h5"))
    x = np.linspace(-2, 2, 50)[:, None]
    assert np.allclose(again.wavefunctions(x), result.wavefunctions(x), atol=1e-12, rtol=0)
    with pytest.raises(RuntimeError, match="callable"):
        again.system.potential(torch.zeros(3, 1))


def test_unwritable_path_leaves_nothing(short_result, tmp_path):
    target = tmp_path / "ro"
    target.mkdir()
    target.chmod(0o500)
    try:
        import os

        if os.access(target, os.W_OK):   # root ignores permissions: use a path under a file instead
            bad = tmp_path / "file"
            bad.write_text("x")
            dest = bad / "r.h5"
        else:
            dest = target / "r.h5"
        with pytest.raises(qsolver.InputError):
            qsolver.save_result(short_result, dest)
        assert not any(target.iterdir())
    finally:
        target.chmod(0o700)


def test_paper_network_result_round_trips_and_plots(tmp_path):
    # the ICML network (no envelope, Fourier features, softplus) must save, reload and plot like the others
    from qsolver import plots
    from qsolver.config import PRESETS

    settings = {**PRESETS["paper"], "hidden": 8, "features": 16, "eval_samples": 2000, "eval_blocks": 4}
    result = qsolver.solve(qsolver.load_system("hydrogen_2d"), n_states=2, steps=3, progress=False, **settings)
    path = qsolver.save_result(result, tmp_path / "paper.h5")
    back = qsolver.load_result(path)
    x = np.random.default_rng(0).normal(scale=5.0, size=(50, 2))
    np.testing.assert_allclose(back.wavefunctions(x), result.wavefunctions(x), rtol=1e-12, atol=1e-14)
    assert plots.wavefunction_gallery(back, tmp_path / "states.png").stat().st_size > 0
