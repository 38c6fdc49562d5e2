"""Seed robustness (`qsolver bench seeds`): the same system and settings trained from several seeds.

Each seed is one ``solve`` with one torch thread, ``jobs`` of them at a time in separate processes. Per seed: the
mean and largest relative error |E - E_ref| / |E_ref| against the system's reference levels (quoted literature
levels when the file has them), and whether :mod:`qsolver.checks` flags the run (a state that is not an
eigenstate, or a level skipped below the highest learned one). The summary gives the median and the worst seed's
mean error, their ratio and the count of flagged runs. Each seed also keeps its three uncertainty columns and the
headline ± per level, so the table states how often the ± holds the reference level (coverage) and
median(±)/median(|E - E_ref|) over all seeds' levels: the calibration of the error bars.
"""
from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from .checks import check_levels
from .estimation import bar_ratio, coverage, headline_errors
from .extrapolation import extrapolated_bias
from .references import Reference, exact_or_own, ionization_threshold
from .result import Result
from .solver import resolve_config, solve
from .system import load_system


def _one_seed(system_name: str, seed: int, settings: dict, ref: Reference) -> dict:
    """Train one seed (one thread) and measure it against ``ref``."""
    system = load_system(system_name)
    tick = time.perf_counter()
    result = solve(system, seed=seed, progress=False, threads=1, **settings)
    levels = np.asarray(ref.energies[: result.n_states], dtype=float)
    rel = np.abs(result.energies[: len(levels)] - levels) / np.abs(levels)
    rel = np.where(np.isfinite(rel), rel, np.inf)
    check = check_levels(result, ref, ionization_threshold(system))
    diag = result.diagnostics
    bars = {key: np.asarray(diag[key], dtype=float)[: len(levels)].tolist()
            for key in ("stat_errors", "bias_errors", "span_errors")}
    inputs = rule_inputs(result)
    if inputs is not None:
        bars["rule_inputs"] = inputs
    return {"seed": seed, "mean_rel_error": float(rel.mean()), "max_rel_error": float(rel.max()),
            "flagged": check.flagged, "not_eigenstates": check.not_eigenstates, "skipped_levels": check.skipped,
            "energies": result.energies.tolist(), "levels": levels.tolist(),
            "errors": result.errors[: len(levels)].tolist(), **bars, "bias_method": str(diag.get("bias_method", "Kato-Temple")),
            "steps": int(result.diagnostics["steps_done"]), "train_seconds": float(result.diagnostics["train_seconds"]),
            "seconds": time.perf_counter() - tick}


# the inputs of qsolver.extrapolation.extrapolated_bias as a seed row keeps them (``rule_inputs``)
RULE_INPUTS = ("energies", "waypoint_energies", "waypoint_sigma2", "denoised_sigma2", "bias_ceiling", "stat_errors")


def rule_inputs(result: Result) -> dict | None:
    """What the bias rule read, all states, as lists (None for a result saved without waypoints): stored beside a
    run's bars so that they can be replayed by another version of the rule."""
    diag = result.diagnostics
    if not all(key in diag for key in RULE_INPUTS[1:]):
        return None
    return {key: np.asarray(result.energies if key == "energies" else diag[key], dtype=float).tolist()
            for key in RULE_INPUTS}


def replayed_bars(row: dict) -> tuple[np.ndarray, np.ndarray]:
    """A seed row's bias estimates and headline ± (hartree, its levels) by the rule of this version of the package,
    from the ``rule_inputs`` the row keeps: a change of the rule is measured on stored tables without training
    again. Rows without them give their stored bars."""
    m = len(row["levels"])
    if "rule_inputs" not in row:
        return np.asarray(row["bias_errors"], dtype=float), np.asarray(row["errors"], dtype=float)
    inputs = row["rule_inputs"]
    bias = extrapolated_bias(inputs["waypoint_energies"], inputs["waypoint_sigma2"], inputs["energies"],
                             inputs["denoised_sigma2"], inputs["bias_ceiling"], inputs["stat_errors"])[:m]
    return bias, headline_errors(np.asarray(inputs["stat_errors"], dtype=float)[:m], bias)


def _actual(row: dict) -> np.ndarray:
    """|E - E_ref| (hartree) of one seed's levels."""
    return np.abs(np.subtract(row["energies"][: len(row["levels"])], row["levels"]))


def seeds_bench(system_name: str, seeds: list[int], jobs: int = 1, log=print, **settings) -> dict:
    """Train ``system_name`` (a shipped name or a file) from each seed with the system's own settings updated by
    ``settings``; returns the per-seed rows and the summary."""
    system = load_system(system_name)
    cfg = resolve_config(system, **settings)
    ref = exact_or_own(system, cfg.states)
    rows = []
    context = multiprocessing.get_context("spawn")        # fresh interpreters: no torch threads inherited
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_one_seed, system_name, seed, settings, ref) for seed in seeds]
        for future in futures:
            row = future.result()
            rows.append(row)
            log(f"seed {row['seed']}: mean rel. error {row['mean_rel_error']:.2e}, max {row['max_rel_error']:.2e}"
                f"{', FLAGGED' if row['flagged'] else ''} ({row['seconds']:.0f} s)")
    means = np.array([r["mean_rel_error"] for r in rows])
    median = float(np.median(means))
    actual = np.concatenate([_actual(r) for r in rows])
    bars = np.concatenate([r["errors"] for r in rows])
    return {"system": system.name, "reference": ref.method, "settings": settings, "states": cfg.states,
            "steps": cfg.steps, "seeds": rows, "median_mean_rel_error": median,
            "worst_mean_rel_error": float(means.max()),
            "worst_over_median": float(means.max() / median) if median > 0 else float("inf"),
            "flagged_runs": int(sum(r["flagged"] for r in rows)), "runs": len(rows),
            "coverage": coverage(actual, bars), "bar_ratio": bar_ratio(actual, bars)}


def seeds_markdown(summary: dict) -> str:
    """The table of one seeds benchmark."""
    settings = ", ".join(f"{k} = {v}" for k, v in summary["settings"].items()) or "the system's own"
    lines = [f"# {summary['system']}: {summary['runs']} seeds", "",
             f"Settings: {settings} ({summary['states']} states, {summary['steps']} steps, one thread per run). "
             f"Reference: {summary['reference']}. Flagged: a state that is not an eigenstate or a skipped level "
             "(qsolver.checks).", "",
             "| seed | mean rel. error | max rel. error | flagged | within ± | median(±)/median(error) | steps | "
             "training s |",
             "|---:|---:|---:|:---|---:|---:|---:|---:|"]
    for r in summary["seeds"]:
        flag = "; ".join([f"not eigenstates: {', '.join(map(str, r['not_eigenstates']))}"] * bool(r["not_eigenstates"])
                         + [f"{r['skipped_levels']} level(s) skipped"] * bool(r["skipped_levels"])) or "no"
        actual = _actual(r)
        held = int(np.sum(actual <= np.asarray(r["errors"])))
        lines.append(f"| {r['seed']} | {r['mean_rel_error']:.2e} | {r['max_rel_error']:.2e} | {flag} | "
                     f"{held}/{len(actual)} | {bar_ratio(actual, r['errors']):.1f} | {r['steps']} | "
                     f"{r['train_seconds']:.0f} |")
    lines += ["", f"- median of the mean errors: {summary['median_mean_rel_error']:.2e}",
              f"- worst seed: {summary['worst_mean_rel_error']:.2e} ({summary['worst_over_median']:.1f}× the median)",
              f"- flagged (trapped or missing level): {summary['flagged_runs']}/{summary['runs']}",
              f"- the headline ± holds the reference level for {summary['coverage']:.0%} of all seeds' levels; "
              f"median(±)/median(|E - E_ref|) = {summary['bar_ratio']:.1f}"]
    return "\n".join(lines) + "\n"
