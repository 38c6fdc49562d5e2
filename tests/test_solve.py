"""End-to-end solves (fast ones; the long physics runs are in test_physics_slow.py)."""
import os
import signal

import numpy as np
import pytest

import qsolver
from qsolver.training import operator_shift
from qsolver.validate import validate


def test_harmonic_1d_four_states_to_1e_3():
    # The 1D oscillator's lowest four levels 0.5, 1.5, 2.5, 3.5 hartree; tolerance 1e-3 relative per state
    # (issue requirement). The shipped defaults (3000 natural-gradient steps) take about 40 s of training on one
    # core of the 2-core CI machine and reach 1.6e-5 on the weakest state with seed 0; one thread keeps the
    # reduction order, hence the numbers, identical from run to run.
    result = qsolver.solve(qsolver.load_system("harmonic_1d"), progress=False, threads=1)
    table = validate(result)
    rel = np.array([row["rel_error"] for row in table.states])
    assert rel.max() <= 1e-3, table.to_markdown()
    # Ritz values bound the exact levels from above (up to the sampling error of the estimate)
    assert all(row["energy"] >= row["reference"] - 3 * row["error"] for row in table.states), table.to_markdown()
    # learned states are orthonormal: MC check on a fine grid
    x = np.linspace(-9, 9, 6001)[:, None]
    phi = result.wavefunctions(x)
    gram = phi.T @ phi * (x[1, 0] - x[0, 0])
    assert np.abs(gram - np.eye(4)).max() < 2e-2


def test_same_seed_same_numbers_and_different_seed_differs():
    system = qsolver.load_system("harmonic_2d")
    kw = dict(n_states=3, steps=40, progress=False, eval_samples=4000, eval_blocks=8)
    a = qsolver.solve(system, seed=5, **kw)
    b = qsolver.solve(system, seed=5, **kw)
    c = qsolver.solve(system, seed=6, **kw)
    assert np.array_equal(a.energies, b.energies) and np.array_equal(a.errors, b.errors)
    assert not np.array_equal(a.energies, c.energies)


def test_energies_ascending_and_shapes():
    system = qsolver.load_system("hydrogen_2d")
    r = qsolver.solve(system, n_states=5, steps=20, progress=False, eval_samples=4000, eval_blocks=8)
    assert r.energies.shape == (5,) and r.errors.shape == (5,)
    assert np.all(np.diff(r.energies) >= 0)
    assert r.wavefunctions(np.zeros((7, 2)) + 0.3).shape == (7, 5)
    with pytest.raises(ValueError):
        r.wavefunctions(np.zeros((7, 3)))


def test_ctrl_c_stops_cleanly_and_keeps_what_was_learned():
    def press_ctrl_c(model, step, seconds):
        if step == 1:                        # the hook is also called once more at the end
            os.kill(os.getpid(), signal.SIGINT)

    # the hook runs after step 1; the request is seen after the step in flight (2), which completes
    r = qsolver.solve(qsolver.load_system("harmonic_1d"), steps=1000, progress=False, eval_samples=4000,
                      eval_blocks=8, evaluate_at=[0.0], on_evaluate=press_ctrl_c)
    assert r.diagnostics["interrupted"] and r.diagnostics["steps_done"] == 2
    assert np.all(np.isfinite(r.energies))


def test_operator_shift_rule():
    # c = E_top + ¼ (E_top - E_min), E_top = min(E_max, V_∞): Coulomb (V_∞ = 0) and confining (V_∞ = ∞); while
    # every Ritz value is bound, c stays within 0.05 (V_∞ - E_min) of the threshold
    c, s = operator_shift(np.array([-1.0, -0.5]), 0.0, None)
    assert np.isclose(c, -0.5 + 0.25 * 0.5) and np.isclose(s, 1 / (c + 1.0))
    c, s = operator_shift(np.array([-1.0, -0.1]), 0.0, None)
    assert np.isclose(c, 0.05) and np.isclose(s, 1 / 1.05)
    c, _ = operator_shift(np.array([-1.0, 0.3]), 0.0, None)
    assert np.isclose(c, 0.25)
    c, s = operator_shift(np.array([1.0, 3.0]), float("inf"), None)
    assert np.isclose(c, 3.5) and np.isclose(s, 1 / 2.5)
    c, _ = operator_shift(np.array([1.0, 3.0]), float("inf"), 10.0)
    assert c == 10.0


def test_float64_training_works_end_to_end():
    r = qsolver.solve(qsolver.load_system("hydrogen_3d"), n_states=2, steps=20, dtype="float64", progress=False,
                      eval_samples=4000, eval_blocks=8)
    assert r.diagnostics["train_dtype"] == "float64"
    assert next(r.model.parameters()).dtype.is_floating_point and np.all(np.isfinite(r.energies))
    assert r.energies[0] > -0.5 - 5 * r.errors[0]      # Ritz values bound the exact -1/2 from above


def test_extra_states_are_trained_but_not_reported():
    # 200 steps with damping 1e-2 (faster than the default 1e-4 in short runs) find the oscillator's lowest levels
    # ½ and 3/2 to about 1e-3 (seed 0); the two extra networks only enlarge the span whose lowest Ritz values are
    # reported
    r = qsolver.solve(qsolver.load_system("harmonic_1d"), n_states=2, extra_states=2, steps=200, damping=1e-2,
                      progress=False, eval_samples=8000, eval_blocks=8, threads=1)
    assert r.energies.shape == (2,) and r.coefficients.shape == (4, 2) and r.model.config.states == 4
    assert len(r.diagnostics["stat_errors"]) == 2
    np.testing.assert_allclose(r.energies, [0.5, 1.5], atol=2e-2)
    assert r.wavefunctions(np.zeros((3, 1))).shape == (3, 2)


def test_a_span_with_a_repeated_network_flags_its_missing_energy():
    """Two identical networks span one direction: Rayleigh–Ritz has no second level, and the result says so."""
    import torch

    from qsolver.solver import finish, resolve_config
    from qsolver.training import init_state, make_problem

    system = qsolver.load_system("harmonic_1d")
    problem = make_problem(system, resolve_config(system, states=2, eval_samples=4000, eval_blocks=8))
    state = init_state(problem)
    with torch.no_grad():
        for avg in state.averaged:           # every parameter is stacked per state on its first axis
            avg[1] = avg[0]
    result = finish(state, problem)
    assert np.isfinite(result.energies[0]) and not np.isfinite(result.energies[1])
    assert result.diagnostics["non_finite_energies"] == 1
    assert "1 state(s) without a finite energy" in validate(result).summary["non_finite_energies"]
