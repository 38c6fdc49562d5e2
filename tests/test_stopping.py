"""The stopping rule of runs without a fixed step count, and the settings derived from the number of states:
the plateau test on synthetic series, the stages, a quickly converging run that stops by itself and says why
(in the result, the file and the command line), its bit-for-bit resume, the buffer and the operator's window."""
from __future__ import annotations

import dataclasses
import os
import signal

import numpy as np
import pytest
import torch

import qsolver
from qsolver import stopping, training
from qsolver.cli import main
from qsolver.errors import Interrupted
from qsolver.io import load_result
from qsolver.solver import resolve_config
from qsolver.stopping import buffer_states, levels, steady
from qsolver.training import operator_shift

# float64, few evaluation samples, three stages (step sizes 1, ½, ¼): a run of this size takes seconds
RUN = dict(states=2, dtype="float64", lr_final=0.25, eval_samples=2000, eval_blocks=10, progress=False, threads=1)


def _open_ended(name: str) -> qsolver.System:
    """A shipped system with the `steps` of its [solver] table removed: it runs until converged."""
    system = qsolver.load_system(name)
    return dataclasses.replace(system, solver={k: v for k, v in system.solver.items() if k != "steps"})


def _series(trend: np.ndarray, noise: float, seed: int = 0) -> list[np.ndarray]:
    """Rows (log points) of two states: ``trend`` plus Gaussian noise of standard deviation ``noise``."""
    rng = np.random.default_rng(seed)
    return list(np.stack([trend, trend + 1.0], 1) + noise * rng.standard_normal((len(trend), 2)))


def test_the_plateau_test_sees_trends_either_way_and_not_noise():
    n = 200
    t = np.arange(n)
    # noise alone passes with probability 1 - SETTLE_ALPHA = 90 % (Šidák over the columns): ≥ 40 of 50 seeds
    # (binomial mean 45, standard deviation 2.1)
    flat = [steady(_series(np.zeros(n), 1e-3, seed), 2) for seed in range(50)]
    assert sum(flat) >= 40
    # a decay still 10× the noise over the window, falling or rising (Ritz values rise as their bias shrinks)
    assert not steady(_series(-0.5 * np.exp(-t / 100), 1e-3), 2)
    assert not steady(_series(+0.5 * np.exp(-t / 100), 1e-3), 2)
    # the same decay long finished: steady
    assert steady(_series(-0.5 * np.exp(-t / 5), 1e-3), 2)
    # a slow logarithmic improvement, -0.01 ln(1 + t/10): still moving 400 log points into a stage (drift over
    # the window 2.2e-3 against block means' noise 4.5e-4), steady 3000 in (2.7e-4); a window growing with the
    # stage (a quarter of it) would see 2.9e-3 there, and the stage would never end
    slow = lambda rows: _series(-0.01 * np.log1p(np.arange(rows) / 10), 1e-3, seed=2)
    assert not steady(slow(400), 2) and steady(slow(3000), 2)
    # the threshold grows with the number of series tested together: 2.1 for one state, 3.2 for nine
    assert stopping.threshold(2) == pytest.approx(2.13, abs=0.01)
    assert stopping.threshold(18) == pytest.approx(3.25, abs=0.01)
    # too few rows for a window, or a non-finite value in it: not yet
    assert not steady(_series(np.zeros(stopping.SETTLE_POINTS - 1), 1e-3), 2)
    rows = _series(np.zeros(n), 1e-3)
    rows[-1] = np.array([np.nan, 0.0])
    assert not steady(rows, 2)
    # only the reported columns count: a buffer state still moving does not hold the run back
    rows = [np.append(r, 10.0 * i) for i, r in enumerate(_series(np.zeros(n), 1e-3, seed=1))]
    assert steady(rows, 2) == steady(_series(np.zeros(n), 1e-3, seed=1), 2)


def test_stages_halve_the_step_size_down_to_lr_final():
    assert levels(0.02) == [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.02]
    assert levels(0.25) == [1.0, 0.5, 0.25]
    assert levels(1.0) == [1.0]
    assert levels(0.0)[-1] == stopping.SMALLEST          # a cosine to 0 has no last level: the smallest stage
    cfg = qsolver.SolverConfig(lr_final=0.25, max_steps=1000)
    state = training.TrainingState(None, [], None, None)
    assert training.step_decay(state, cfg) == pytest.approx(1.0, abs=1e-5)
    state.plateaus = [400]
    assert training.step_decay(state, cfg) == pytest.approx(0.5, abs=1e-5)
    # the cap bounds the step sizes by the cosine of the fraction used: the last steps are at lr_final
    state.plateaus, state.step = [], 999
    assert training.step_decay(state, cfg) == pytest.approx(0.25)
    state.step, state.seconds = 10, 99.9
    assert training.step_decay(state, dataclasses.replace(cfg, budget=100.0)) == pytest.approx(0.25, abs=1e-5)


def test_a_quickly_converging_run_stops_by_itself_and_says_why(tmp_path, capsys):
    system = _open_ended("harmonic_1d")
    result = qsolver.solve(system, **RUN)
    diag = result.diagnostics
    assert diag["stop_reason"] == "converged"
    plateaus = diag["plateau_steps"]
    assert len(plateaus) == len(levels(RUN["lr_final"])) and plateaus == sorted(plateaus)
    # each stage lasts at least the test's window; the run ends at the last plateau, far below the cap
    assert np.all(np.diff([0, *plateaus]) >= stopping.SETTLE_POINTS * stopping.LOG_EVERY)
    assert diag["steps_done"] == plateaus[-1] < result.config["max_steps"] and result.config["steps"] is None
    # converged: the oscillator's ½, 3/2 within 1e-3 (a 3000-step fixed schedule reaches 1e-5; this one stops at a
    # step size of ¼ and trains a few hundred steps per stage)
    np.testing.assert_allclose(result.energies, [0.5, 1.5], atol=1e-3)
    path = qsolver.save_result(result, tmp_path / "osc.h5")
    stored = load_result(path).diagnostics
    assert stored["stop_reason"] == "converged" and stored["plateau_steps"] == plateaus
    assert "stopped" in qsolver.validate(load_result(path)).summary
    assert main(["validate", str(path)]) == 0
    assert f"stopped: converged: the Ritz values and residuals levelled off" in capsys.readouterr().out


def test_fixed_steps_and_the_cap_are_reported_as_such():
    fixed = qsolver.solve(qsolver.load_system("harmonic_1d"), **{**RUN, "steps": 20})
    assert fixed.diagnostics["stop_reason"] == "steps" and "plateau_steps" not in fixed.diagnostics
    capped = qsolver.solve(_open_ended("harmonic_1d"), **{**RUN, "max_steps": 30})
    assert capped.diagnostics["stop_reason"] == "cap" and capped.diagnostics["steps_done"] == 30
    assert capped.diagnostics["plateau_steps"] == []


def _stop_now(model, step, seconds):
    os.kill(os.getpid(), signal.SIGTERM)


def test_an_open_ended_run_resumes_bit_for_bit(tmp_path, monkeypatch):
    """The plateaus, the running ⟨Hψ,Hψ⟩ and the logged residuals travel with the checkpoint: a run stopped
    midway (after some plateaus, wherever the clock puts it) and resumed ends as the uninterrupted one. Stages of
    at least 320 steps (two log points per block) keep the runs short."""
    monkeypatch.setattr(stopping, "SETTLE_POINTS", 32)
    system = _open_ended("harmonic_1d")
    whole = qsolver.solve(system, **RUN)
    ckpt = tmp_path / "open.ckpt.h5"
    with pytest.raises(Interrupted):
        qsolver.solve(system, checkpoint=ckpt, evaluate_at=[0.6 * whole.diagnostics["train_seconds"]],
                      on_evaluate=_stop_now, **RUN)
    # the bounds may change on resume: a cap already passed evaluates the state as it stands
    early = qsolver.solve(system, resume=ckpt, **{**RUN, "max_steps": 1})
    assert early.diagnostics["steps_done"] == early.diagnostics["resumed_at_step"] > 1
    assert early.diagnostics["stop_reason"] == "cap"
    resumed = qsolver.solve(system, resume=ckpt, **RUN)
    assert 0 < resumed.diagnostics["resumed_at_step"] < whole.diagnostics["steps_done"]
    assert resumed.diagnostics["plateau_steps"] == whole.diagnostics["plateau_steps"]
    np.testing.assert_array_equal(resumed.energies, whole.energies)
    np.testing.assert_array_equal(resumed.history["residuals"], whole.history["residuals"])
    for a, b in zip(resumed.model.parameters(), whole.model.parameters()):
        assert torch.equal(a, b)


def test_the_buffer_grows_with_the_number_of_states_below_a_continuum_only():
    counts = [buffer_states(n, 0.0) for n in range(1, 101)]
    assert counts[:9] == [0] * 9                          # up to nine states (every N-electron system shipped): none
    assert np.all(np.diff(counts) >= 0) and np.all(np.diff(counts) <= 1)
    assert buffer_states(16, 0.0) == 4 and buffer_states(36, 0.0) == 14   # 36: about 2D hydrogen's next shell (13)
    assert buffer_states(36, None) == 14                  # V_∞ not known (a formula): a continuum may lie above
    assert buffer_states(36, float("inf")) == 0           # confining: no continuum, the window alone
    hydrogen = qsolver.load_system("hydrogen_2d")
    assert resolve_config(hydrogen, states=36).extra_states == 14
    assert resolve_config(hydrogen, states=36, extra_states=3).extra_states == 3     # a given count is kept
    assert training.make_problem(hydrogen, qsolver.SolverConfig(states=20)).network_cfg.states == 20 + 6
    oscillator = qsolver.load_system("harmonic_3d")
    assert resolve_config(oscillator).extra_states == 0 and resolve_config(oscillator, extra_states=2).extra_states == 2
    assert training.make_problem(oscillator, qsolver.SolverConfig(states=20)).network_cfg.states == 20


def test_the_window_is_measured_from_the_top_reported_level():
    ritz = np.array([-1.0, -0.5, -0.4, 2.0, 3.0])          # two buffer states far above the three reported
    inf = float("inf")
    # no buffer: the former rule, c = E_top + ¼ (E_top - E_min)
    assert operator_shift(ritz, inf, None)[0] == pytest.approx(3.0 + 0.25 * 4.0)
    assert operator_shift(ritz, inf, None, reported=5)[0] == pytest.approx(4.0)
    # with the buffer the reported levels keep their margin and the buffer's top one a positive eigenvalue
    c, s = operator_shift(ritz, inf, None, reported=3)
    assert c == pytest.approx(max(-0.4 + 0.25 * 0.6, 3.0 + 0.05 * 4.0))
    assert s * (c - 3.0) > 0 and s * (c - ritz.min()) == pytest.approx(1.0)
    ritz = np.array([-1.0, -0.5, -0.45, -0.44, -0.43])     # a buffer just above the reported: the ¼ margin rules
    assert operator_shift(ritz, inf, None, reported=3)[0] == pytest.approx(-0.45 + 0.25 * 0.55)
    # a given shift_margin fixes c = E_top + m (E_top - E_min); the collapse boost multiplies the margins
    assert operator_shift(ritz, inf, None, margin=0.5)[0] == pytest.approx(-0.43 + 0.5 * 0.57)
    assert operator_shift(ritz, inf, None, reported=3, boost=2.0)[0] == pytest.approx(-0.45 + 0.5 * 0.55)
    # Coulomb: every reported Ritz value bound, so c stays capped just above the threshold, even while a buffer
    # state is still in the continuum; an unbound reported state lifts the cap (c = 0 + ¼ (0 - E_min))
    assert operator_shift(np.array([-1.0, -0.1, -0.05]), 0.0, None, reported=2)[0] == pytest.approx(0.05)
    assert operator_shift(np.array([-1.0, -0.1, 0.02]), 0.0, None, reported=2)[0] == pytest.approx(0.05)
    assert operator_shift(np.array([-1.0, -0.1, 0.02]), 0.0, None)[0] == pytest.approx(0.25)
