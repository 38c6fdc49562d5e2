"""Variance extrapolation of the bias (qsolver.extrapolation): the line E = λ + σ²/ε through the waypoints."""
import numpy as np
import pytest

from qsolver.estimation import headline_errors
from qsolver.extrapolation import degenerate_excess, extrapolated_bias, waypoints_due
from qsolver.solver import solve


def test_line_gives_the_distance_to_the_level():
    # two states on exact lines E = λ + σ²/ε (ε = 5 and 40 hartree): the bias of the last point is σ²/ε
    sigma2 = np.array([[4e-3, 2e-3], [2e-3, 1e-3]])
    level, eps = np.array([-1.0, -0.5]), np.array([5.0, 40.0])
    energies = level + sigma2 / eps
    final_s2 = np.array([1e-3, 5e-4])
    bias = extrapolated_bias(energies, sigma2, level + final_s2 / eps, final_s2, cap=np.array([1.0, 1.0]),
                             stat=np.zeros(2))
    assert bias == pytest.approx(final_s2 / eps, rel=1e-12)
    # never below the standard error of the comparison it is read from, √5 stat (waypoints on 1/4 of the samples)
    stat = np.array([1e-4, 1e-7])
    bias = extrapolated_bias(energies, sigma2, level + final_s2 / eps, final_s2, np.array([1.0, 1.0]), stat)
    assert bias == pytest.approx([np.sqrt(5) * 1e-4, final_s2[1] / eps[1]], rel=1e-12)


def test_flat_levels_have_no_bias_moving_ones_the_cap():
    way_e = np.array([[-1.0, -0.5, -0.2, -0.1], [-1.0, -0.5, -0.2, -0.1]])
    way_s2 = np.array([[4e-3, 4e-3, 1e-3, 1e-3], [2e-3, 2e-3, 1e-3, 1e-3]])
    final_e = np.array([-1.0, -0.5 + 1e-4, -0.2, -0.1 - 2e-4])   # the second rose as its residual fell: slope < 0
    final_s2 = np.array([1e-3, 1e-3, 1e-3, 1e-3])                # the last two residuals never moved
    cap = np.array([0.3, 0.3, 0.3, 0.3])
    stat = np.array([0.0, 0.0, 1e-5, 1e-5])
    bias = extrapolated_bias(way_e, way_s2, final_e, final_s2, cap, stat)
    # the line's slope where σ² moved; where it did not, how far the level fell (nothing, 2e-4), but never less than
    # the standard error of that fall, √5 stat with the waypoints on a quarter of the samples
    assert bias == pytest.approx([0.0, 0.0, np.sqrt(5) * 1e-5, 2e-4], abs=1e-15)
    # a level that fell by more than MOVING of its cap since the first waypoint is far from converged: the cap
    assert extrapolated_bias([[-0.9]], [[2e-3]], [-1.0], [1e-3], [1.0], [1e-4])[0] == 1.0
    assert extrapolated_bias([[-0.9]], [[2e-3]], [-1.0], [1e-3], [1e-5], [1e-4])[0] == 1e-5
    assert np.isnan(extrapolated_bias([[np.nan]], [[2e-3]], [np.nan], [1e-3], [np.nan], [np.nan])[0])


def test_a_flat_level_whose_fall_is_noise_keeps_that_noise_as_its_bias():
    """harmonium's 2.5 group (a rerun): the waypoints on 50 000 samples read it 0.1–0.2 mHa below the final 200 000
    samples, while repeated evaluations of the final weights agree with the final one, 0.25–0.46 mHa above the exact
    level; σ² hardly moved, so the bias is the fall, none, but a fall below √5 · stat cannot be seen: that is the
    bias, which with the statistical error puts the exact level inside the headline ± of each state."""
    way_e = np.array([[2.4998230, 2.5001139, 2.5006179], [2.4998011, 2.5000870, 2.5005280]])
    way_s2 = np.array([[1.4464e-3, 2.7389e-3, 1.8748e-3], [1.2856e-3, 2.2668e-3, 1.6400e-3]])
    final_e, final_s2 = np.array([2.5002474, 2.5003845, 2.5004618]), np.array([1.2206e-3, 2.8481e-3, 0.9696e-3])
    stat, cap = np.array([8.52e-5, 1.037e-4, 1.046e-4]), np.array([2.8e-3, 4.1e-3, 3.2e-3])
    bias = extrapolated_bias(way_e, way_s2, final_e, final_s2, cap, stat)
    assert np.all(bias[:2] == pytest.approx(np.sqrt(5) * stat[:2], rel=1e-12))
    assert np.all(2 * np.hypot(stat, bias) >= final_e - 2.5)


def test_a_ceiling_of_zero_resolves_nothing():
    # de-noised σ² of 0 (all sampling noise) makes the Kato–Temple cap 0; it used to set the bias to 0 as well, and
    # hydrogen_2d's top-shell states sat 2-7 stat. errors above their levels with ± = 2 stat (seeds table). Now the
    # line's floor √5 stat holds, or the fall where the residual stood still
    way_e = np.array([[-0.0805, -0.0800], [-0.0803, -0.0801]])
    way_s2 = np.array([[2e-6, 3e-6], [1e-6, 3e-6]])
    final_e, final_s2, stat = np.array([-0.0800, -0.0805]), np.array([0.0, 3e-6]), np.array([2e-5, 2e-5])
    bias = extrapolated_bias(way_e, way_s2, final_e, final_s2, np.zeros(2), stat)
    assert bias == pytest.approx([np.sqrt(5) * 2e-5, 5e-4], rel=1e-12)
    # a cap resolved above zero still bounds the line, and a moving level still takes it
    assert extrapolated_bias(way_e, way_s2, final_e, final_s2, np.full(2, 1e-5), stat) == pytest.approx([1e-5, 1e-5])


def test_a_fall_within_its_standard_error_is_not_movement():
    """helium_singlet's ground level (remade 2026-12-07): it fell 0.75 standard errors of the fall (√5 stat) since
    the first waypoint, which is over MOVING of a cap of 5.8 stat, and took the cap as its bias; that fall is what a
    converged level shows half the time. Such a level keeps its line (here under the floor √5 stat); a fall of two
    standard errors still counts as movement."""
    stat, cap = np.array([1e-4]), np.array([5.8e-4])
    noise = np.sqrt(5) * stat[0]
    way_s2 = np.array([[8.0e-3], [5.0e-3]])                        # the line: 0.25 noise above the level
    bias = extrapolated_bias([[-2.0 + 0.75 * noise], [-2.0 + 0.375 * noise]], way_s2, [-2.0], [2.0e-3], cap, stat)
    assert bias == pytest.approx([noise], rel=1e-12)
    bias = extrapolated_bias([[-2.0 + 2 * noise], [-2.0 + noise]], way_s2, [-2.0], [2.0e-3], cap, stat)
    assert bias == pytest.approx(cap, rel=1e-12)


def test_a_stuck_state_keeps_the_cap():
    # three states at the noise floor and one whose residual stands still 50× above theirs while its level even
    # rose (fermions_2d's top state with two buffer states: 39 mHa off, 'fell' gave it no bias at all)
    way_e = np.array([[1.0, 2.0, 3.0, 4.036], [1.0, 2.0, 3.0, 4.037]])
    way_s2 = np.array([[1e-3, 1e-3, 1e-3, 0.0625], [1e-3, 1e-3, 1e-3, 0.0637]])
    final_e, final_s2, cap = np.array([1.0, 2.0, 3.0, 4.039]), np.array([1e-3, 1e-3, 1e-3, 0.065]), np.full(4, 0.07)
    bias = extrapolated_bias(way_e, way_s2, final_e, final_s2, cap, np.zeros(4))
    assert bias == pytest.approx([0.0, 0.0, 0.0, 0.07], abs=1e-15)


def test_waypoints_at_fractions_of_a_fixed_schedule_and_at_each_stage():
    assert [waypoints_due(f, 0, None) for f in (0.2, 0.5, 0.9)] == [False, True, True]
    assert [waypoints_due(f, 1, None) for f in (0.6, 0.75, 1.0)] == [False, True, True]
    assert not waypoints_due(1.0, 2, None)
    assert waypoints_due(0.01, 0, 1) and not waypoints_due(0.01, 1, 1) and waypoints_due(0.01, 1, 2)


def test_a_short_run_extrapolates_from_its_waypoints():
    # 400 steps of the 1D oscillator: waypoints at steps 200 and 300, the bias from their line with the final
    # evaluation, never above the Kato–Temple estimate, and the headline ± built from it
    result = solve("harmonic_1d", n_states=3, steps=400, seed=0, progress=False, threads=1, damping=1e-2,
                   eval_samples=8000)
    d = result.diagnostics
    assert d["bias_method"] == "variance extrapolation"
    assert d["waypoint_steps"] == [200, 300]
    assert np.asarray(d["waypoint_energies"]).shape == (2, 3)
    bias = np.asarray(d["bias_errors"])
    assert np.all(bias >= 0)
    exact = np.array([0.5, 1.5, 2.5])
    assert np.all(np.abs(result.energies - exact) <= result.errors)    # unconverged levels, inside their bars
    assert result.errors == pytest.approx(2 * np.hypot(d["stat_errors"], bias))
    actual = np.abs(result.energies - exact)
    assert np.median(result.errors) <= 10 * np.median(actual)         # the calibration target of the bars


def test_a_degenerate_level_bounds_its_upper_states_by_its_lowest():
    # 2D hydrogen (κ = 1), the committed 16-state run: the ground level and the seven Ritz values of the shell n = 3
    # (exact -1/49), whose residuals sit at their noise floor (de-noised σ² ≈ 0), so the line sees no bias while the
    # values climb by 2e-5 over the shell
    way_e = np.array([[-1.0001325262, -0.0204070231, -0.0204043955, -0.020403512, -0.0204016763, -0.0203988758,
                       -0.0203909029, -0.020383207],
                      [-1.0000668016, -0.0204074826, -0.0204059445, -0.0204043892, -0.020403393, -0.0203998837,
                       -0.0203891485, -0.0203859009]])
    way_s2 = np.array([[3.509e-05, 0.0, 0.0, 8.029e-05, 0.0, 6.060e-05, 0.0, 2.539e-05],
                       [9.785e-06, 0.0, 1.149e-05, 0.0, 4.764e-06, 1.798e-06, 2.356e-05, 3.094e-05]])
    sigma2 = np.array([9.376e-06, 2.409e-05, 5.915e-05, 6.086e-06, 0.0, 0.0, 3.840e-06, 8.516e-07])
    cap = np.array([1.0548e-05, 2.9771e-03, 2.7512e-03, 2.8663e-04, 0.0, 0.0, 4.7554e-04, 1.0550e-04])
    stat = np.array([6.583e-05, 3.728e-06, 1.673e-06, 1.285e-06, 1.323e-06, 1.758e-06, 2.458e-06, 1.733e-06])
    energies = np.array([-1.0000622049, -0.0204113857, -0.0204068452, -0.0204048569, -0.0204038217, -0.0204016817,
                         -0.0203942638, -0.0203904611])
    exact = np.array([-1.0] + [-1 / 49] * 7)
    bias = extrapolated_bias(way_e, way_s2, energies, sigma2, cap, stat)
    assert np.all(bias[1:] >= energies[1:] - (energies[1:] + 2 * stat[1:]).min() - 1e-18)
    assert np.all(np.abs(energies - exact) <= headline_errors(stat, bias))
    # read alone, the state 1.4e-5 above the level (5.7 stat. errors) lay outside its bar
    alone = extrapolated_bias(way_e[:, [6]], way_s2[:, [6]], energies[[6]], sigma2[[6]], cap[[6]], stat[[6]])
    assert abs(energies[6] - exact[6]) > headline_errors(stat[[6]], alone)[0]
    # the ground level, alone in its group, keeps what the line gives it
    assert bias[0] == extrapolated_bias(way_e[:, [0]], way_s2[:, [0]], energies[[0]], sigma2[[0]], cap[[0]],
                                        stat[[0]])[0]


def test_ritz_values_within_a_thousandth_of_the_span_are_one_level():
    e = np.array([-1.0, -0.5, -0.4999, -0.4995, np.nan, -0.2, -0.2])
    exact = degenerate_excess(e, np.zeros(7))
    assert exact == pytest.approx([0.0, 0.0, 1e-4, 5e-4, np.nan, 0.0, 0.0], nan_ok=True, abs=1e-15)
    noisy = degenerate_excess(e, np.array([0.0, 1e-5, 1e-5, 1e-5, 0.0, 0.0, 0.0]))   # measured from -0.49998
    assert noisy == pytest.approx([0.0, 0.0, 8e-5, 4.8e-4, np.nan, 0.0, 0.0], nan_ok=True, abs=1e-15)
    assert degenerate_excess(np.array([-1.0, -0.9999]), np.zeros(2)).tolist() == [0.0, 0.0]   # their gap is the span


def test_the_lowest_member_s_noise_below_its_level_is_not_read_as_the_others_bias():
    # He+ 2s/2p (exact -0.5; a run not shipped): the s state's cusp noise put it 7e-5 below the level, one stat.
    # error; the p states at the level itself, well resolved, have no excess beyond that noise
    energies = np.array([-2.0, -0.50007, -0.500000, -0.499998, -0.500002])
    stat = np.array([1e-6, 7.6e-5, 3e-6, 3e-6, 3e-6])
    assert degenerate_excess(energies, stat)[2:] == pytest.approx([0.0, 0.0, 0.0], abs=1e-15)
    # read from the s state's value alone, the p states got 6-8e-5, twenty times their statistical errors
    assert np.all(degenerate_excess(energies, np.zeros(5))[2:] > 20 * stat[2:])
