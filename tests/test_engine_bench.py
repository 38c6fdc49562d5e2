"""Benchmarks of the training engine: step cost against the state count, and the data-parallel traffic model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import qsolver
from qsolver import bench
from qsolver.scaling import communication_model, time_to
from qsolver.solver import resolve_config
from qsolver.training import init_state, make_problem


def test_step_costs_reports_every_count_and_a_fitted_exponent():
    summary = bench.step_costs(qsolver.load_system("harmonic_1d"), states=(2, 4), steps=2, warmup=1)
    assert [r["states"] for r in summary["rows"]] == [2, 4]
    assert all(r["seconds_per_step"] > 0 for r in summary["rows"])
    assert np.isfinite(summary["exponent"])
    assert "a = " in bench.step_costs_markdown(summary)


@pytest.mark.parametrize("name", ["harmonic_2d", "hydrogen_3d", "helium_singlet"])
def test_communication_model_counts_what_a_step_gathers(name):
    """The model's gathered numbers equal the sizes of the Jacobian factors a step really builds (plus r and f)."""
    system = qsolver.load_system(name)
    cfg = resolve_config(system, states=3, batch=16)
    problem = make_problem(system, cfg)
    state = init_state(problem)
    x = state.model.proposal(torch.float32).sample(cfg.batch, state.generator)
    t = state.model.tangents(x, torch.ones(cfg.batch, 1))
    built = sum(z.numel() for z in t.inputs) + sum(g.numel() for g in t.signals)
    built += sum(block.numel() for block in t.direct.values()) + 2 * cfg.states * cfg.batch
    built += 4 * (cfg.batch + 1)                  # coefficients and trust factors of 3 states padded to 2 per rank
    model = communication_model(system, cfg, world=2)
    assert model["gathered_numbers"] == built
    assert model["received_bytes"] == pytest.approx(built / 2 * 4)


def test_time_to_target_interpolates_in_log_error():
    curve = {"seconds": [1.0, 2.0, 4.0], "mean_rel_error": [1e-1, 1e-2, 1e-4]}
    assert time_to(curve, 1e-3) == pytest.approx(3.0)
    assert time_to(curve, 1e-5) is None
