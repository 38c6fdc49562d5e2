"""Checkpoints, resume, stop requests and divergence rewinds of the training engine."""
from __future__ import annotations

import math
import os
import shlex
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch

import qsolver
from qsolver import training
from qsolver.errors import InputError, Interrupted, TrainingDiverged
from qsolver.io import load_result, seal
from qsolver.parallel import Comm
from qsolver.validate import validate

# float64 training, few evaluation samples: a run of this size takes about a second
RUN = dict(steps=60, dtype="float64", eval_samples=2000, eval_blocks=10, progress=False, threads=1)


def _stop_after_first_step(model, step, seconds):
    """An evaluation hook that asks the run to stop, as Ctrl-C or a batch scheduler's SIGTERM would."""
    if step == 1:
        os.kill(os.getpid(), signal.SIGTERM)


def test_resume_after_sigterm_reproduces_the_uninterrupted_run(tmp_path):
    system = qsolver.load_system("harmonic_1d")
    whole = qsolver.solve(system, **RUN)
    ckpt = tmp_path / "run.ckpt.h5"
    with pytest.raises(Interrupted) as caught:
        qsolver.solve(system, checkpoint=ckpt, evaluate_at=[0.0], on_evaluate=_stop_after_first_step, **RUN)
    assert caught.value.signal_name == "SIGTERM" and caught.value.checkpoint == ckpt
    with h5py.File(ckpt) as f:
        stopped_at = int(f.attrs["step"])
    assert 0 < stopped_at < RUN["steps"]
    resumed = qsolver.solve(system, resume=ckpt, **RUN)
    assert resumed.diagnostics["resumed_at_step"] == stopped_at
    # the same arithmetic on the same machine: identical to the last bit (the issue asks 1e-12 in float64)
    np.testing.assert_array_equal(resumed.energies, whole.energies)
    np.testing.assert_array_equal(resumed.history["loss"], whole.history["loss"])
    np.testing.assert_array_equal(resumed.errors, whole.errors)          # the waypoints' bias estimate too
    for a, b in zip(resumed.model.parameters(), whole.model.parameters()):
        assert torch.equal(a, b)


def test_resume_with_adam_a_two_particle_system_and_the_default_dtype(tmp_path):
    """The optimiser's moments, a pair network's state and float32 training weights survive the file as well
    (the default dtype: identical numbers on the same machine and thread count)."""
    for name, extra in (("harmonic_2d", dict(optimizer="adam", states=3)), ("helium_singlet", dict(states=2)),
                        ("hydrogen_3d", dict(states=3, dtype="auto"))):
        system = qsolver.load_system(name)
        run = {**RUN, "steps": 30, **extra}
        whole = qsolver.solve(system, **run)
        ckpt = tmp_path / f"{name}.ckpt.h5"
        with pytest.raises(Interrupted):
            qsolver.solve(system, checkpoint=ckpt, evaluate_at=[0.0], on_evaluate=_stop_after_first_step, **run)
        resumed = qsolver.solve(system, resume=ckpt, **run)
        np.testing.assert_array_equal(resumed.energies, whole.energies)


def test_periodic_checkpoints_and_refusal_of_another_run(tmp_path):
    system = qsolver.load_system("harmonic_1d")
    ckpt = tmp_path / "c.ckpt.h5"
    qsolver.solve(system, checkpoint=ckpt, checkpoint_every=1e-9, **RUN)     # one after every step
    with h5py.File(ckpt) as f:
        assert int(f.attrs["step"]) == RUN["steps"]
    cfg = qsolver.solver.resolve_config(system, steps=60, dtype="float64", eval_samples=2000, eval_blocks=10, threads=1)
    kept = qsolver.checkpoint.read_checkpoint(ckpt, training.make_problem(system, cfg))
    assert [w["step"] for w in kept.waypoints] == [30, 45]          # the waypoints travel with the state
    damaged = tmp_path / "damaged.ckpt.h5"
    damaged.write_bytes(ckpt.read_bytes())
    with h5py.File(damaged, "r+") as f:
        f.attrs["waypoints"] = '[{"step": 30, "energies": [0.5], "sigma2": [0.1]}]'     # one number for 4 networks
    seal(damaged)
    with pytest.raises(InputError, match="field 'waypoints': must list .step, energies, sigma2. at increasing steps"):
        qsolver.checkpoint.read_checkpoint(damaged, training.make_problem(system, cfg))
    with pytest.raises(InputError, match="solver setting steps = 60 .this run: 80"):
        qsolver.solve(system, resume=ckpt, **{**RUN, "steps": 80})
    with pytest.raises(InputError, match="system 'harmonic_1d' .this run: 'harmonic_2d'; they differ in dimension"):
        qsolver.solve(qsolver.load_system("harmonic_2d"), resume=ckpt, **RUN)
    problem = training.make_problem(system, qsolver.solver.resolve_config(system, steps=60, dtype="float64",
                                                                          eval_samples=2000, eval_blocks=10,
                                                                          threads=1), Comm(0, 2))
    with pytest.raises(InputError, match="world size 1 .this run has 2"):
        qsolver.checkpoint.read_checkpoint(ckpt, problem)
    with h5py.File(ckpt, "r+") as f:
        f.attrs["version"] = "0.0.1"
    with pytest.raises(InputError, match="field 'version': does not match its checksum"):
        qsolver.solve(system, resume=ckpt, **RUN)
    seal(ckpt)              # as an older package would have written it
    with pytest.raises(InputError, match="package version '0.0.1'"):
        qsolver.solve(system, resume=ckpt, **RUN)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1.0
    with pytest.raises(InputError, match="not a qsolver checkpoint"):
        qsolver.solve(system, resume=foreign, **RUN)
    truncated = tmp_path / "truncated.ckpt.h5"
    truncated.write_bytes(ckpt.read_bytes()[:2000])
    with pytest.raises(InputError):
        qsolver.solve(system, resume=truncated, **RUN)


def test_cli_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    """The issue's scenario: kill -9 at an arbitrary moment, resume from the last checkpoint on disk."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = [sys.executable, "-m", "qsolver", "solve", "harmonic_1d", "--steps", "400", "--dtype", "float64",
              "--quiet", "--no-report"]
    whole = tmp_path / "whole.h5"
    subprocess.run(common + ["--out", str(whole)], check=True, env=env, capture_output=True)
    out = tmp_path / "killed.h5"
    ckpt = tmp_path / "killed.ckpt.h5"
    proc = subprocess.Popen(common + ["--out", str(out), "--checkpoint-every", "0.05"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists():
            with h5py.File(ckpt) as f:
                if int(f.attrs["step"]) >= 50:
                    break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists() and not out.exists()
    done = subprocess.run(common + ["--out", str(out), "--resume", str(ckpt)], env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert not ckpt.exists()                                  # the finished result supersedes it
    np.testing.assert_array_equal(load_result(out).energies, load_result(whole).energies)


def test_cli_ctrl_c_writes_a_checkpoint_and_says_how_to_resume(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "r.h5"
    ckpt = out.with_name("r.ckpt.h5")
    proc = subprocess.Popen([sys.executable, "-m", "qsolver", "solve", "harmonic_1d", "--steps", "100000",
                             "--quiet", "--no-report", "--out", str(out), "--checkpoint-every", "0.5"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:        # training is under way
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume with: qsolver solve harmonic_1d" in err and f"--resume {ckpt}" in err
    assert ckpt.exists() and not out.exists()
    with h5py.File(ckpt) as f:
        step, seconds = int(f.attrs["step"]), float(f.attrs["seconds"])
    # the printed command that evaluates the state as it stands: a budget already spent (a bound, which a resume
    # may change) ends training at once; the result is the checkpoint's weights at its step
    line = next(x for x in err.splitlines() if x.startswith("evaluate it as it stands: qsolver "))
    words = shlex.split(line.split(": ", 1)[1])[1:]
    assert words[-2:] == ["--set", f"budget={math.floor(seconds * 1000) / 1000:g}"]
    done = subprocess.run([sys.executable, "-m", "qsolver", *words], env=env, capture_output=True, text=True)
    assert done.returncode in (0, 4), done.stderr             # 4: half a second of training may fail the checks
    diag = load_result(out).diagnostics
    assert diag["steps_done"] == step and diag["stop_reason"] == "budget" and diag["resumed_at_step"] == step
    assert not ckpt.exists()


def _poison(first: int, last: float = float("inf")):
    """A natural step that writes NaN into the weights at its calls first..last (a diverging run)."""
    real = training.natural_step
    calls = {"n": 0}

    def step(model, *args, **kwargs):
        calls["n"] += 1
        out = real(model, *args, **kwargs)
        if first <= calls["n"] <= last:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return out

    return step


def test_a_non_finite_step_is_rewound_with_a_shorter_trust_region(monkeypatch):
    monkeypatch.setattr(training, "natural_step", _poison(25, 25))
    result = qsolver.solve(qsolver.load_system("harmonic_1d"), **{**RUN, "steps": 200, "damping": 1e-2})
    assert result.diagnostics["rewinds"] == [30]                # found at the next log point
    assert result.diagnostics["steps_done"] == 200
    assert "at steps 30" in validate(result).summary["rewinds"]
    # the networks start odd (lowest Ritz value near the first odd level 3/2); a clean 200-step run (damping 1e-2,
    # faster than the default in short runs) finds the ground level 1/2 to 4e-4, the rewound one (half the trust region from step 20 on) must still find it
    assert abs(result.energies[0] - 0.5) < 0.05


def test_persistent_divergence_stops_with_the_last_good_state(monkeypatch):
    monkeypatch.setattr(training, "natural_step", _poison(15))
    with pytest.raises(TrainingDiverged, match="after 5 rewinds") as caught:
        qsolver.solve(qsolver.load_system("harmonic_1d"), **RUN)
    result = caught.value.result
    assert len(result.diagnostics["rewinds"]) == training.MAX_REWINDS + 1
    assert result.diagnostics["steps_done"] == 10             # the last log point before the first failure
    assert np.all(np.isfinite(result.energies)) and "diverged" in result.diagnostics


@pytest.mark.cuda
def test_resume_on_the_gpu(tmp_path):
    """The CUDA generator's state and the device tensors go through the file as well (float64: to 1e-12)."""
    system = qsolver.load_system("hydrogen_3d")
    run = {**RUN, "device": "cuda", "n_states": 4}
    whole = qsolver.solve(system, **run)
    ckpt = tmp_path / "gpu.ckpt.h5"
    with pytest.raises(Interrupted):
        qsolver.solve(system, checkpoint=ckpt, evaluate_at=[0.0], on_evaluate=_stop_after_first_step, **run)
    resumed = qsolver.solve(system, resume=ckpt, **run)
    np.testing.assert_allclose(resumed.energies, whole.energies, rtol=0, atol=1e-12)
