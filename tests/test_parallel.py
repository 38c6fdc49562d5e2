"""Data-parallel training over torch.distributed (gloo, two CPU processes launched by torchrun)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qsolver
from qsolver.io import load_result
from qsolver.validate import validate

WORKER = Path(__file__).with_name("parallel_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           *args], env=ENV, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("name", ["harmonic_2d", "helium_singlet"])
def test_two_ranks_in_slice_mode_take_the_single_process_steps(tmp_path, name):
    """Each rank takes its half of the samples one process draws: after 20 float64 steps the (averaged)
    parameters agree with the single process to 1e-10 (only the summation order of the Gram matrices and
    of the gathered kernel differs), and so do the evaluated energies."""
    out = tmp_path / "rank0.npz"
    run = _torchrun(str(WORKER), name, str(out), "slice")
    assert run.returncode == 0, run.stderr[-3000:]
    parallel = np.load(out)
    single = qsolver.solve(qsolver.load_system(name), steps=20, dtype="float64", eval_samples=2000, eval_blocks=10,
                           progress=False, threads=1)
    params = np.concatenate([p.detach().reshape(-1).numpy() for p in single.model.parameters()])
    assert int(parallel["world"]) == 2
    np.testing.assert_allclose(parallel["params"], params, rtol=0, atol=1e-10)
    np.testing.assert_allclose(parallel["energies"], single.energies, rtol=1e-10, atol=1e-10)


def test_torchrun_solve_reaches_the_single_process_accuracy(tmp_path):
    """`torchrun --nproc-per-node 2 -m qsolver solve harmonic_1d`: each rank draws its own 128 samples per step;
    the 1D oscillator's four levels to 1e-3 relative, as the single-process test asks."""
    out = tmp_path / "h.h5"
    run = _torchrun("-m", "qsolver", "solve", "harmonic_1d", "--quiet", "--no-report", "--out", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("saved") == 1                      # only rank 0 writes and prints
    result = load_result(out)
    assert result.diagnostics["world"] == 2
    rel = np.array([row["rel_error"] for row in validate(result).states])
    assert rel.max() <= 1e-3, rel
