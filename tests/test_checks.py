"""No silently missed level: residual and level-count checks (qsolver.checks), and the adaptive shift margin that
cures the trap they catch (qsolver.training.norm_ratios / margin_boost)."""
from __future__ import annotations

import glob

import numpy as np
import pytest
import torch

import qsolver
from qsolver import cli, training
from qsolver.checks import EXIT_FLAGGED, check_levels, count_reference, skipped_levels, unbound_states, wide_errors
from qsolver.io import load_result
from qsolver.references import ionization_threshold, system_reference
from qsolver.ritz import not_eigenstates
from qsolver.validate import validate

OSCILLATOR = """
name = "oscillator_expression"
dimension = 1
[potential]
kind = "expression"
expr = "0.5*x**2"
[solver]
states = 4
[reference]
kind = "grid"
"""
# Tiny damping and a short schedule: with the shift margin held fixed, seed 1's fourth network loses its level
# (two networks settle on n = 2, the shift falls below n = 3 and the fourth decays); measured in 1000 steps with
# the unit Gaussian envelope (scale = 1, the oscillator's own; the envelopes fitted to a formula start each network
# closer to its state and change the trajectory).
TRAP = dict(steps=1000, seed=1, damping=1e-4, scale=1.0, eval_samples=20000, progress=False, threads=1)


def test_skipped_levels_counts_levels_below_each_learned_one():
    levels = np.array([0.5, 1.5, 2.5, 3.5])
    errors = np.full(4, 1e-4)
    assert skipped_levels(np.array([0.5, 1.5, 2.5, 3.5001]), errors, levels) == 0
    assert skipped_levels(np.array([0.5, 1.5, 3.5, 4.5]), errors, levels) == 1          # 2.5 skipped
    # a top state off by less than 3 error bars is not a skipped level
    assert skipped_levels(np.array([0.5, 1.5, 2.5, 3.6]), np.full(4, 0.05), levels) == 0
    # a degenerate top shell counts as one level per state
    shell = np.array([-0.5, -0.125, -0.125, -0.125, -0.125])
    assert skipped_levels(shell + 1e-5, np.full(5, 1e-5), shell) == 0
    # a 2D oscillator after 200 steps (seed 0, its bars): the three-fold level 3 missed, states 3-6 near 4; the top
    # state's bar (± 1.8) hides it, the fourth state's (± 0.16) does not
    trap = np.array([1.055, 2.005, 2.01, 3.998, 4.079, 4.148, 4.252, 5.481, 5.779, 6.497])
    bars = np.array([0.883, 0.002, 0.173, 0.161, 0.446, 0.795, 1.322, 1.556, 2.441, 1.767])
    assert skipped_levels(trap, bars, np.array([1.0, 2, 2, 3, 3, 3, 4, 4, 4, 4])) == 3


def test_not_eigenstates_uses_the_spectrum_scale():
    energies = np.array([0.5, 1.5, 2.5, 14.1])
    assert not_eigenstates(energies, np.array([0.01, 0.02, 0.02, 7.0])) == [3]
    assert not_eigenstates(energies, np.array([0.01, 0.02, 0.02, 0.5])) == []


@pytest.fixture(scope="module")
def oscillator(tmp_path_factory):
    path = tmp_path_factory.mktemp("sys") / "oscillator.toml"
    path.write_text(OSCILLATOR)
    return qsolver.load_system(path)


def test_a_trapped_run_is_flagged_and_the_adaptive_margin_cures_it(oscillator, tmp_path, monkeypatch, capsys):
    """Held fixed, the margin lets the fourth network collapse: its residual and the coarse grid's level count
    both flag it, and `qsolver validate` exits with EXIT_FLAGGED. With the adaptive margin the same seed and
    schedule learn all four levels n + 1/2 to 1e-2 and nothing is flagged."""
    cured = qsolver.solve(oscillator, **TRAP)
    with monkeypatch.context() as m:
        m.setattr(training, "margin_boost", lambda boost, ratios, before: 1.0)
        trapped = qsolver.solve(oscillator, **TRAP)
    grid = count_reference(trapped)
    np.testing.assert_allclose(grid.energies, [0.5, 1.5, 2.5, 3.5], rtol=1e-3)      # the coarse grid is accurate
    check = check_levels(trapped, grid)
    assert check.flagged and check.not_eigenstates
    assert "not eigenstates" in check.summary()
    path = tmp_path / "trapped.h5"
    qsolver.save_result(trapped, path)
    assert load_result(path).diagnostics["not_eigenstates"] == check.not_eigenstates     # said in the file
    assert cli.main(["validate", str(path)]) == EXIT_FLAGGED
    assert "FLAGGED" in capsys.readouterr().err

    np.testing.assert_allclose(cured.energies, [0.5, 1.5, 2.5, 3.5], rtol=1e-2)
    assert not check_levels(cured, count_reference(cured)).flagged
    assert "not_eigenstates" not in cured.diagnostics


def test_a_skipped_level_is_flagged_in_the_validation_table():
    """A spectrum that jumps over n = 2 of the 1D oscillator (the analytic reference) is flagged, by the count."""
    result = qsolver.solve(qsolver.load_system("harmonic_1d"), steps=20, eval_samples=2000, eval_blocks=10,
                           progress=False, threads=1)
    result.energies = np.array([0.5, 1.5, 3.5, 4.5])
    result.errors = np.full(4, 1e-3)
    result.diagnostics["residuals"] = np.full(4, 1e-2)
    table = validate(result, system_reference(result.system, 4))
    assert table.check.skipped == 1 and not table.check.not_eigenstates
    assert table.to_markdown().count("**FLAGGED**") == 1


def test_a_collapsed_effective_sample_fraction_is_flagged():
    """A fixed Gaussian proposal of σ = 0.15 bohr under oscillator states of width ~0.7 bohr leaves ψ²/p heavy-tailed:
    the effective sample fraction of the states falls to 0.002–0.01 (measured; a matched proposal keeps 0.2–0.4)
    and the check names the networks below 0.01."""
    result = qsolver.solve(qsolver.load_system("harmonic_1d"), steps=20, eval_samples=4000, eval_blocks=10,
                           progress=False, threads=1, proposal="gaussian", proposal_scale=0.15, damping=1e-2)
    check = check_levels(result, None)
    low = [i for i, f in enumerate(result.diagnostics["ess_fraction"]) if f < 0.01]
    assert low and check.collapsed == low and check.flagged
    assert any("effective sample fraction" in m for m in check.messages())


@pytest.mark.parametrize("path", sorted(p for p in glob.glob("results/*/*.h5") if not p.endswith(".ckpt.h5")))
def test_committed_results_pass_both_checks(path):
    """Clean runs of the shipped systems are not flagged: residuals for all, and the level count where the
    reference is analytic (the others need minutes of FCI on a fresh machine)."""
    result = load_result(path)
    assert not_eigenstates(result.energies, result.diagnostics["residuals"]) == []
    if result.system.reference == "analytic":
        assert not check_levels(result, system_reference(result.system, result.n_states)).flagged


def test_bench_seeds_tabulates_each_seed_against_the_reference(tmp_path):
    """`qsolver bench seeds` (two short seeds in a worker process): each row's errors are those of its energies
    against the oscillator's n + ½, the flagged count matches the rows, the coverage of the stored bars is counted
    against those levels, the bias rule replays from what each row keeps, the JSON and Markdown are written, and
    `bench calibration` reads every level back."""
    import json

    from qsolver.bench import calibration_bench

    bench = tmp_path / "bench"
    code = cli.main(["bench", "seeds", "harmonic_1d", "--seeds", "2", "--seed", "3", "--steps", "60",
                     "--set", "eval_samples=2000", "--set", "eval_blocks=4", "--quiet", "--out", str(bench)])
    assert code == 0
    (path,) = bench.glob("seeds_harmonic_1d*.json")
    summary = json.loads(path.read_text())
    assert [r["seed"] for r in summary["seeds"]] == [3, 4]
    levels = np.arange(4) + 0.5
    for row in summary["seeds"]:
        rel = np.abs(np.array(row["energies"]) - levels) / levels
        assert np.isclose(row["mean_rel_error"], rel.mean()) and np.isclose(row["max_rel_error"], rel.max())
    means = [r["mean_rel_error"] for r in summary["seeds"]]
    assert np.isclose(summary["worst_over_median"], max(means) / np.median(means))
    assert summary["flagged_runs"] == sum(r["flagged"] for r in summary["seeds"])
    actual = np.abs(np.array([r["energies"] for r in summary["seeds"]]) - levels)
    bars = np.array([r["errors"] for r in summary["seeds"]])
    assert np.allclose(bars, 2 * np.hypot([r["stat_errors"] for r in summary["seeds"]],
                                          [r["bias_errors"] for r in summary["seeds"]]))
    assert np.isclose(summary["coverage"], np.mean(actual <= bars))
    # each row keeps what the bias rule read: replaying the rule gives the stored bars back
    from qsolver.seeds import replayed_bars
    for row in summary["seeds"]:
        assert len(row["rule_inputs"]["waypoint_energies"]) == 2
        bias, errors = replayed_bars(row)
        assert np.allclose(bias, row["bias_errors"], rtol=1e-12) and np.allclose(errors, row["errors"], rtol=1e-12)
    table = path.with_suffix(".md").read_text()
    assert table.count("\n| 3 |") + table.count("\n| 4 |") == 2
    calibration = calibration_bench(tmp_path, runs=(), log=lambda *_: None)     # no committed results in tmp_path
    assert calibration["all"]["levels"] == 8 and np.isclose(calibration["all"]["coverage"], summary["coverage"])
    # a short fresh run keeps its levels and the rule's inputs: replayed, they give its rows' bars back
    calibration = calibration_bench(tmp_path, runs=(("harmonic_1d", 60, (0,)),), log=lambda *_: None)
    (short,) = calibration["short_runs"]
    rows = [r for r in calibration["rows"] if r["case"] == short["case"]]
    bias, errors = replayed_bars(short)
    assert short["levels"] == levels.tolist() and len(rows) == 4
    assert np.allclose(bias, [r["bias"] for r in rows], rtol=1e-12)
    assert np.allclose(errors, [r["headline"] for r in rows], rtol=1e-12)


def test_calibration_counts_the_quoted_levels_of_a_partly_quoted_result(tmp_path):
    """A committed result whose file quotes fewer levels than its states (as beryllium quotes its ground level
    only) enters `bench calibration` with those levels: its actual errors against them, its stored bars."""
    from qsolver.bench import calibration_bench
    from qsolver.io import save_result

    system = qsolver.load_system("harmonic_1d")
    system.reference_options = {"literature": {"source": "n + ½", "levels": [0.5, 1.5]}}
    result = qsolver.solve(system, n_states=3, steps=60, eval_samples=2000, seed=0, progress=False)
    save_result(result, tmp_path / "osc" / "osc.h5")
    calibration = calibration_bench(tmp_path, runs=(), log=lambda *_: None)
    rows = calibration["rows"]
    assert [r["case"] for r in rows] == ["osc (committed, 2 of 3 levels quoted)"] * 2
    assert np.allclose([r["actual"] for r in rows], np.abs(result.energies[:2] - [0.5, 1.5]))
    assert np.allclose([r["headline"] for r in rows], result.errors[:2])


COMMITTED = "results/harmonic_1d/harmonic_1d.h5"


def _edited(tmp_path, name: str, edit) -> str:
    """A committed result changed by ``edit`` and written by save_result, as a run that went wrong would write it."""
    result = load_result(COMMITTED)
    edit(result)
    return str(qsolver.save_result(result, tmp_path / f"{name}.h5"))


def _nan_energies(result):
    result.energies = np.array([np.nan, np.inf, *result.energies[2:]])


def _nan_weights(result):
    with torch.no_grad():
        for p in result.model.parameters():
            p.fill_(float("nan"))


@pytest.mark.parametrize("edit, what", [(_nan_energies, "energies of state(s) 0, 1"),
                                        (_nan_weights, "network weights")])
def test_non_finite_results_are_flagged_by_validate_compare_and_plot(tmp_path, capsys, edit, what):
    """Energies [nan, inf] or NaN weights: never "passed". The table flags them (states "not finite"), and
    validate, compare and plot print FLAGGED and exit EXIT_FLAGGED."""
    path = _edited(tmp_path, "bad", edit)
    table = validate(load_result(path))
    assert table.check.flagged and what in table.summary["level_check"]
    assert table.summary["level_check"].startswith("FLAGGED")
    if edit is _nan_energies:
        assert [r["status"] for r in table.states[:2]] == ["not finite", "not finite"]
    for argv in (["validate", path], ["compare", path, "--out", str(tmp_path / "c")],
                 ["plot", path, "--out", str(tmp_path / "p")]):
        capsys.readouterr()
        assert cli.main(argv) == EXIT_FLAGGED, argv
        err = capsys.readouterr().err
        assert "FLAGGED: not finite" in err and what in err and "Traceback" not in err


def test_finite_committed_result_exits_zero_from_compare_and_plot(tmp_path):
    assert cli.main(["compare", COMMITTED, "--out", str(tmp_path / "c")]) == 0
    assert cli.main(["plot", COMMITTED, "--out", str(tmp_path / "p")]) == 0


def test_error_bars_beyond_the_spectrum_scale_and_unbound_states_are_caught():
    """An error bar larger than (E_max - E_min) + |E_min| names no level; a state more than 3 error bars above the
    threshold where the reference is bound is a level not reached. Above the reference's last bound level (H⁻ lists
    one), states above the threshold are the continuum and pass."""
    assert wide_errors(np.array([3170.0]), np.array([1e4])) == [0]
    assert wide_errors(np.array([-0.5, -0.125]), np.array([1e-3, 0.3])) == []
    shells = np.array([-0.5, -0.125, -0.125, -0.125, -0.125])
    learned = np.array([-0.5, -0.125, -0.125, -0.125, 0.05])
    assert unbound_states(learned, np.full(5, 1e-3), shells, np.zeros(5), 0.0) == [4]
    assert unbound_states(learned, np.full(5, 0.1), shells, np.zeros(5), 0.0) == []          # within 3 error bars
    assert unbound_states(learned, np.full(5, 1e-3), shells[:1], np.zeros(1), 0.0) == []     # one bound level
    assert unbound_states(learned, np.full(5, 1e-3), shells, np.zeros(5), np.inf) == []      # confining


ION = """
name = "oganesson_ion"
dimension = 3
kinetic = 0.5
[potential]
kind = "coulomb"
charges = [117.0]
centers = [[0.0, 0.0, 0.0]]
[solver]
states = 1
"""


def test_a_one_electron_ion_after_three_steps_is_flagged(tmp_path, capsys):
    """Charge 117, one electron, 3 steps: E of order +1e3 ± 1e4 hartree against the hydrogenic -6844.5 (issue 20's
    +3170 ± 1e4). Labelled "above threshold", it escaped the residual check; its error bar now flags it, in the
    Python check, `solve` and `validate` (exit EXIT_FLAGGED)."""
    toml = tmp_path / "ion.toml"
    toml.write_text(ION)
    system = qsolver.load_system(toml)
    result = qsolver.solve(system, steps=3, eval_samples=2000, eval_blocks=10, progress=False, threads=1)
    check = check_levels(result, system_reference(system, 1), ionization_threshold(system))
    assert check.wide_errors == [0] and check.flagged
    out = tmp_path / "ion.h5"
    argv = ["solve", str(toml), "--steps", "3", "--set", "eval_samples=2000", "--set", "eval_blocks=10", "--out",
            str(out), "--quiet", "--no-report"]
    assert cli.main(argv) == EXIT_FLAGGED
    assert "error bars larger than the spectrum's scale" in capsys.readouterr().err
    assert cli.main(["validate", str(out)]) == EXIT_FLAGGED
    assert "**FLAGGED**" in capsys.readouterr().out
