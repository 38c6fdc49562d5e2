"""Benchmarks that print numbers: the cost of Laplacians, and accuracy against training wall time.

- :func:`laplacian_costs`: seconds per call of forward + Laplacian + backward (as one training step uses
  them) for each Laplacian method, divided by one plain forward + backward of the same network.
- :func:`step_costs`: seconds per training step against the number of states.
- :func:`accuracy_bench`: trains a system under a wall-time budget with each named preset of
  :data:`qsolver.config.PRESETS`, one after the other in this process, evaluates Rayleigh–Ritz energies
  at evaluation points (evaluation time is not counted), and reports the mean relative error against time.
- :func:`strength_bench`: the oscillator strengths of the committed results on fresh samples against exact values.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .config import PRESETS, SolverConfig
from .errors import InputError
from .hamiltonian import Hamiltonian
from .files import atomic_write
from .networks import build, choose
from .potentials import asymptote
from .references import exact_or_own
from .references.strengths import HELIUM_1S_2P, hydrogen_strength
from .result import Result
from .estimation import bar_ratio, coverage, evaluate
from .seeds import replayed_bars, rule_inputs
from .solver import resolve_config, solve
from .training import init_state, make_problem, train_step
from .system import System
from .threshold import continuum_threshold
from .validate import degeneracy_groups

TARGET = 1e-2          # the mean relative error whose time-to-reach the accuracy benchmark compares
ABS_TARGET = 1.6e-3    # hartree: every level within chemical accuracy (1 kcal/mol = 1.594 mHa)


def _seconds(fn, repeats: int) -> float:
    """Median wall time of fn() over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tick)
    return float(np.median(times))


HESSIAN_COORDINATES = 12      # the torch.func Hessian trace is timed up to this many coordinates N·d (it is slow)


def laplacian_costs(dimensions=(2, 3, 6, 12), states: int = 16, batch: int = 512, hidden: int = 48,
                    layers: int = 2, activation: str = "tanh", repeats: int = 10,
                    dtype: torch.dtype = torch.float32, device: str = "cpu", particles=(1,),
                    settings: dict | None = None) -> list[dict]:
    """Cost of forward + Laplacian + backward per method, relative to one plain forward + backward.

    The network is the package's default for N particles in a unit oscillator (ω = 1, κ = ½) in d dimensions:
    one ``layers``×``hidden`` MLP per state with Gaussian envelopes for one particle; for N electrons (Coulomb
    repulsion) the kind the registry chooses (pairs, determinants for N ≥ 3). A training step evaluates ψ and
    ∇²ψ without a graph and backpropagates through ψ only (the NestedLoRA gradient never needs ∂∇²ψ), so
    "forward" costs jet + forward + backward. "hessian" is the exact torch.func Hessian trace (up to
    HESSIAN_COORDINATES coordinates) and "fd" central differences (2Nd + 1 forward passes). ``settings``: further
    solver settings of the network (e.g. ``backflow``).
    """
    rows = []
    dev = torch.device(device)
    for n, d in ((n, d) for n in particles for d in dimensions):
        system = System("bench", d, {"kind": "harmonic", "omega": 1.0}, particles=n, spin=n % 2)
        cfg = resolve_config(system, **{"states": states, "hidden": hidden, "layers": layers,
                                        "activation": activation, **(settings or {})})
        kind = choose(system)
        model = build(kind.configure(system, cfg), generator=torch.Generator().manual_seed(0))
        model = model.to(device=dev, dtype=dtype)
        x = torch.randn(batch, n, d, dtype=dtype, device=dev, generator=torch.Generator(device=dev).manual_seed(1))
        kinetic = Hamiltonian(0.5)

        def sync():
            if dev.type == "cuda":
                torch.cuda.synchronize()

        def plain():
            model.zero_grad(set_to_none=True)
            model(x).square().mean().backward()
            sync()

        def with_laplacian(method: str):
            def step():
                _, h_psi = kinetic.apply(model, x, method)
                model.zero_grad(set_to_none=True)
                (model(x) * h_psi).mean().backward()
                sync()
            return step

        base = _seconds(plain, repeats)
        row = {"particles": n, "network": kind.kind, "dimension": d, "states": states, "batch": batch,
               "hidden": hidden, "layers": layers, "dtype": str(dtype).replace("torch.", ""), "device": str(dev),
               "threads": torch.get_num_threads(), "plain_seconds": base}
        for method, n_rep in (("forward", repeats), ("fd", repeats), ("hessian", 1)):
            if method == "hessian" and n * d > HESSIAN_COORDINATES:
                row["hessian_seconds"] = row["hessian_ratio"] = None
                continue
            seconds = _seconds(with_laplacian(method), n_rep)
            row[f"{method}_seconds"] = seconds
            row[f"{method}_ratio"] = seconds / base
        rows.append(row)
    return rows


def laplacian_table(rows: list[dict]) -> str:
    lines = ["| N | network | d | plain fwd+bwd (ms) | forward-Laplacian ×plain | finite differences ×plain | "
             "Hessian trace ×plain |", "|---:|:---|---:|---:|---:|---:|---:|"]
    for r in rows:
        hessian = "—" if r["hessian_ratio"] is None else f"{r['hessian_ratio']:.0f}"
        lines.append(f"| {r.get('particles', 1)} | {r.get('network', 'one')} | {r['dimension']} | "
                     f"{1e3 * r['plain_seconds']:.2f} | {r['forward_ratio']:.2f} | {r['fd_ratio']:.2f} | {hessian} |")
    return "\n".join(lines)


@dataclass
class Curve:
    """Errors of one preset at evaluation points: training seconds, steps, mean relative error, per-group errors."""

    preset: str
    seconds: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    mean_rel_error: list[float] = field(default_factory=list)
    group_rel_error: list[list[float]] = field(default_factory=list)
    bound: list[int] = field(default_factory=list)
    final: dict = field(default_factory=dict)
    max_abs_error: list[float] = field(default_factory=list)

    def time_to(self, target: float, track: str = "mean_rel_error") -> float | None:
        """First evaluation time (s) with the tracked error (mean relative, or ``max_abs_error`` in hartree) ≤
        target, linearly interpolated in log error."""
        errors = getattr(self, track)
        for i, err in enumerate(errors):
            if err <= target:
                if i == 0:
                    return self.seconds[0]
                e0, e1 = math.log(errors[i - 1]), math.log(err)
                t0, t1 = self.seconds[i - 1], self.seconds[i]
                return t0 + (t1 - t0) * (e0 - math.log(target)) / (e0 - e1) if e0 != e1 else t1
        return None


def _errors(energies: np.ndarray, levels: np.ndarray, groups: np.ndarray, v_inf: float | None) -> tuple:
    rel = np.abs(energies - levels) / np.abs(levels)
    rel = np.where(np.isfinite(rel), rel, np.inf)
    per_group = [float(np.mean(rel[groups == g])) for g in np.unique(groups)]
    bound = int(np.sum(energies < v_inf)) if v_inf is not None and np.isfinite(v_inf) else len(energies)
    return rel, per_group, bound


def accuracy_bench(system: System, budget: float, presets=("default", "paper"), seed: int = 0,
                   device: str | None = None, n_evaluations: int = 7, evaluation_samples: int = 10000,
                   progress: bool = True, log=print, on_result=None, **overrides) -> dict:
    """Train ``system`` for ``budget`` seconds with each preset; errors against the system's reference.
    ``on_result(preset, result)`` receives each preset's final :class:`~qsolver.result.Result` (to keep it).

    Evaluation points are geometric in time from budget/50 to the budget; each evaluates Rayleigh–Ritz with
    ``evaluation_samples`` fresh samples (exact Laplacians, float64) and the final point uses the preset's
    full evaluation. The default preset is the system's own ``qsolver solve`` configuration with its step
    count, stopped at the budget; other presets override it (their cosine schedules follow the budget).
    The paper's fixed T = 100·(-H) assumes bound levels below 0; for other potentials it keeps the adaptive
    shift and scale. ``overrides`` (e.g. ``states``, ``steps``) replace settings of every preset.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    _check_accuracy_arguments(presets, budget)
    base = resolve_config(system, seed=seed, device=device, **overrides)
    ref = exact_or_own(system, base.states)
    levels = np.asarray(ref.energies[: base.states])
    groups = degeneracy_groups(levels)
    threshold = continuum_threshold(system)
    v_inf = asymptote(system.potential) if threshold is None else threshold
    evaluations = list(budget * np.geomspace(0.02, 1.0, n_evaluations)[:-1])
    curves = []
    for name in presets:
        settings = _preset_settings(name, overrides, v_inf)
        curve = Curve(name)
        cfg = replace(resolve_config(system, seed=seed, device=device, **settings), budget=budget)
        gen = torch.Generator(device=torch.device(cfg.device)).manual_seed(seed + 7919)
        record = _recorder(curve, system, replace(cfg, eval_samples=evaluation_samples, eval_blocks=10), gen,
                           levels, groups, v_inf, log)
        log(f"{system.name}: preset '{name}', budget {budget:.0f} s")
        chosen = {k: v for k, v in asdict(cfg).items() if k in settings or k in ("budget", "seed")}
        result = solve(system, chosen.pop("states", None), progress=progress, evaluate_at=evaluations,
                       on_evaluate=record, **chosen, **({"device": device} if device else {}))
        curve.final = _final_errors(result, levels, groups, v_inf)
        if on_result is not None:
            on_result(name, result)
        curves.append(curve)
        _log_final(curve, log)
    summary = _accuracy_summary(system, budget, base.states, str(base.device), overrides, ref.method, levels, groups,
                                curves)
    _log_times(summary, curves, log)
    return summary


def _check_accuracy_arguments(presets, budget: float) -> None:
    """Known presets and a positive budget, before minutes of training."""
    for name in presets:
        if name not in PRESETS:
            raise InputError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})", field="--presets")
    if budget <= 0:
        raise InputError(f"must be positive, got {budget}", field="--budget")


def _preset_settings(name: str, overrides: dict, v_inf: float | None) -> dict:
    """The settings a preset trains with: its own, then ``overrides``; presets other than the default run until
    the budget ends rather than for a step count."""
    settings = {**PRESETS[name], **overrides}
    if name != "default" and "steps" not in overrides:
        settings.setdefault("steps", 500_000)
    if settings.get("shift") == 0.0 and v_inf != 0.0:
        # T = s·(0 - H) needs all wanted levels below 0 (Coulomb systems); elsewhere the adaptive shift
        settings.update(shift=None, operator_scale=None)
    return settings


def _recorder(curve: Curve, system: System, cfg: SolverConfig, generator: torch.Generator, levels: np.ndarray,
              groups: np.ndarray, v_inf: float | None, log) -> Callable:
    """The ``on_evaluate`` callback of one preset: Rayleigh–Ritz of the averaged weights (float64, ``cfg``'s
    samples), whose errors it appends to ``curve`` and logs."""
    trained = make_problem(system, cfg).hamiltonian           # the operator training uses (spin shift included)

    def record(model, step, seconds):
        est = evaluate(model.to(torch.float64), system, cfg, generator, torch.float64, trained)
        rel, per_group, bound = _errors(est["energies"][: len(levels)], levels, groups, v_inf)
        curve.seconds.append(float(seconds))
        curve.steps.append(int(step))
        curve.mean_rel_error.append(float(np.mean(rel)))
        curve.group_rel_error.append(per_group)
        curve.bound.append(bound)
        curve.max_abs_error.append(float(np.max(np.abs(est["energies"][: len(levels)] - levels))))
        log(f"  [{curve.preset}] {seconds:7.1f} s  step {step:6d}  mean rel. error {np.mean(rel):.3e}  "
            f"max abs. error {curve.max_abs_error[-1]:.2e}  bound {bound}/{len(rel)}")

    return record


def _final_errors(result: Result, levels: np.ndarray, groups: np.ndarray, v_inf: float | None) -> dict:
    """A preset's final result against the levels: energies, errors, coverage of the error bars, its run."""
    rel, per_group, bound = _errors(result.energies, levels, groups, v_inf)
    z = np.abs(result.energies - levels) / result.errors
    stat = np.asarray(result.diagnostics["stat_errors"])
    return {"energies": result.energies.tolist(), "errors": result.errors.tolist(),
            "stat_errors": stat.tolist(), "rel_errors": rel.tolist(), "group_rel_errors": per_group,
            "mean_rel_error": float(np.mean(rel)), "bound": bound, "states": len(rel),
            "abs_errors": np.abs(result.energies - levels).tolist(),
            "within_3_errors": int(np.sum(z <= 3)), "within_3_stat_errors":
                int(np.sum(np.abs(result.energies - levels) <= 3 * stat)),
            "train_seconds": result.diagnostics["train_seconds"],
            "eval_seconds": result.diagnostics["eval_seconds"],
            "steps": result.diagnostics["steps_done"], "threads": result.diagnostics["threads"],
            "config": result.config}


def _log_final(curve: Curve, log) -> None:
    """One line on a preset's final errors."""
    final = curve.final
    log(f"  [{curve.preset}] final: mean rel. error {final['mean_rel_error']:.3e}, per group "
        + " ".join(f"{g:.1e}" for g in final["group_rel_errors"]) + f", bound {final['bound']}/{final['states']}, "
        f"|E - E_ref| <= 3 error bars for {final['within_3_errors']}/{final['states']}, "
        f"{final['steps']} steps in {final['train_seconds']:.0f} s")


def _accuracy_summary(system: System, budget: float, states: int, device: str, overrides: dict, reference: str,
                      levels: np.ndarray, groups: np.ndarray, curves: list[Curve]) -> dict:
    """Everything the benchmark's JSON holds: the run, the levels, each preset's curve and the times to reach the
    targets; with several presets the ratio of the second's time to the first's."""
    times = {c.preset: c.time_to(TARGET) for c in curves}
    summary = {"system": system.name, "budget": budget, "states": states, "overrides": overrides,
               "target": TARGET, "reference": reference,
               "levels": levels.tolist(), "groups": groups.tolist(), "device": device,
               "torch": torch.__version__, "time_to_target": times, "abs_target": ABS_TARGET,
               "time_to_abs_target": {c.preset: c.time_to(ABS_TARGET, "max_abs_error") for c in curves},
               "curves": [asdict(c) for c in curves]}
    if len(curves) > 1:
        first, other = times[curves[0].preset], times[curves[1].preset]
        if first is not None and other is not None:
            summary["ratio"] = other / first
    return summary


def _log_times(summary: dict, curves: list[Curve], log) -> None:
    """With several presets, one line on their times to the target error (their ratio when both reach it)."""
    if len(curves) < 2:
        return
    times = summary["time_to_target"]
    if "ratio" in summary:
        first, other = times[curves[0].preset], times[curves[1].preset]
        log(f"time to mean rel. error {TARGET:g}: {curves[1].preset} / {curves[0].preset} = "
            f"{other:.0f} s / {first:.0f} s = {other / first:.1f}")
        return

    def reached(c: Curve) -> str:
        t = times[c.preset]
        return f"not reached (error {c.final['mean_rel_error']:.2e})" if t is None else f"{t:.0f} s"

    log(f"time to mean rel. error {TARGET:g}: " + ", ".join(f"{c.preset} {reached(c)}" for c in curves))


def accuracy_markdown(summary: dict) -> str:
    """One row per preset: final errors (mean, per degenerate group), bound levels, coverage of the error
    bars, steps and training time, and the time to reach the target error."""
    groups = np.asarray(summary["groups"])
    sizes = [int(np.sum(groups == g)) for g in np.unique(groups)]
    lines = [f"# {summary['system']}: accuracy in a {summary['budget']:.0f} s training budget ({summary['device']})",
             "", f"Reference: {summary['reference']}. Relative errors |E - E_ref|/|E_ref|; groups are the "
             f"degenerate levels ({', '.join(map(str, sizes))} states).", "",
             "| preset | mean rel. error | per group | max abs. error (hartree) | bound | within 3 error bars | "
             f"within 3 stat. errors | steps | training s | time to {summary['target']:g} | time to max abs. error "
             f"{summary.get('abs_target', ABS_TARGET):g} |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for curve in summary["curves"]:
        f = curve["final"]
        reach = summary["time_to_target"].get(curve["preset"])
        reach_abs = summary.get("time_to_abs_target", {}).get(curve["preset"])
        abs_err = f"{max(f['abs_errors']):.2e}" if "abs_errors" in f else "—"
        lines.append(f"| {curve['preset']} | {f['mean_rel_error']:.2e} | "
                     + " / ".join(f"{g:.1e}" for g in f["group_rel_errors"])
                     + f" | {abs_err} | {f['bound']}/{f['states']} | {f['within_3_errors']}/{f['states']} | "
                     f"{f['within_3_stat_errors']}/{f['states']} | {f['steps']} | {f['train_seconds']:.0f} | "
                     f"{'not reached' if reach is None else format(reach, '.0f') + ' s'} | "
                     f"{'not reached' if reach_abs is None else format(reach_abs, '.0f') + ' s'} |")
    if "ratio" in summary:
        lines += ["", f"Time ratio to reach {summary['target']:g}: {summary['ratio']:.1f}."]
    lines += ["", f"Training seconds until each group's mean relative error first fell below {summary['target']:g} "
              "(evaluation points, interpolated; '-' = not within the budget):", "",
              "| preset | " + " | ".join(f"group {g} ({n})" for g, n in enumerate(sizes)) + " |",
              "|---|" + "---:|" * len(sizes)]
    for curve in summary["curves"]:
        per_group = np.asarray(curve["group_rel_error"]).reshape(len(curve["seconds"]), -1)
        cells = []
        for g in range(len(sizes)):
            track = Curve(curve["preset"], list(curve["seconds"]), list(curve["steps"]), list(per_group[:, g]))
            reach = track.time_to(summary["target"])
            cells.append("-" if reach is None else f"{reach:.0f}")
        lines.append(f"| {curve['preset']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_accuracy(summary: dict, directory: Path) -> tuple[Path, Path, Path]:
    """JSON of the run, a Markdown table and a PNG of mean relative error against training time."""
    from . import plots

    directory.mkdir(parents=True, exist_ok=True)
    overrides = summary.get("overrides", {})
    states = f"_{summary['states']}states" if "states" in overrides else ""
    settings = "".join(f"_{k}{v}" for k, v in sorted(overrides.items()) if k not in ("states", "steps"))
    stem = f"accuracy_{summary['system']}{states}{settings}_{int(summary['budget'])}s"
    json_path = atomic_write(directory / f"{stem}.json", lambda p: p.write_text(json.dumps(summary, indent=1)))
    md_path = atomic_write(directory / f"{stem}.md", lambda p: p.write_text(accuracy_markdown(summary)))
    png_path = plots.accuracy_curves(summary, directory / f"{stem}.png")
    return json_path, md_path, png_path


def step_costs(system: System, states=(4, 8, 16, 32, 64), steps: int = 20, warmup: int = 5, seed: int = 0,
               device: str | None = None) -> dict:
    """Seconds per training step of ``system`` for each state count L (same batch and widths), and the exponent
    a of the least-squares fit t(L) ∝ L^a over those counts. The first ``warmup`` steps (allocations, the first
    Rayleigh–Ritz) are not timed; every count starts from the same seed."""
    rows = []
    for n in states:
        cfg = resolve_config(system, states=n, seed=seed, device=device, steps=warmup + steps)
        problem = make_problem(system, cfg)
        state = init_state(problem)
        for _ in range(warmup):
            train_step(state, problem, 1.0)
        sync = torch.cuda.synchronize if problem.device.type == "cuda" else (lambda: None)
        sync()
        tick = time.perf_counter()
        for _ in range(steps):
            train_step(state, problem, 1.0)
        sync()
        rows.append({"states": n, "seconds_per_step": (time.perf_counter() - tick) / steps})
    logs = np.log([[r["states"], r["seconds_per_step"]] for r in rows])
    exponent = float(np.polyfit(logs[:, 0], logs[:, 1], 1)[0]) if len(rows) > 1 else float("nan")
    return {"system": system.name, "batch": cfg.batch, "hidden": cfg.hidden, "layers": cfg.layers,
            "device": str(problem.device), "dtype": str(problem.train_dtype).replace("torch.", ""),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "rows": rows, "exponent": exponent}


def step_costs_markdown(summary: dict) -> str:
    lines = [f"# {summary['system']}: cost of one training step against the number of states", "",
             f"Batch {summary['batch']}, {summary['layers']}×{summary['hidden']} MLP per state, {summary['dtype']} on "
             f"{summary['device']} with {summary['threads']} thread(s), torch {summary['torch']}.", "",
             "| states L | ms per step | ms per step and state |", "|---:|---:|---:|"]
    for r in summary["rows"]:
        lines.append(f"| {r['states']} | {1e3 * r['seconds_per_step']:.1f} | "
                     f"{1e3 * r['seconds_per_step'] / r['states']:.2f} |")
    lines += ["", f"Least-squares fit t ∝ L^a over these counts: a = {summary['exponent']:.2f}."]
    return "\n".join(lines) + "\n"


# One run in a fresh process: warm up (libraries, kernels), then the peak RSS above that baseline while solving and
# while writing the result, its report and its checks (/proc/self/clear_refs "5" resets the peak between them).
_MEASURE = """
import json, sys, tempfile
from pathlib import Path
import qsolver
from qsolver import cli
from qsolver.references import system_reference
def rss(key):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))
def peak_since(reset=True):
    value = rss("VmHWM:") - base
    if reset:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    return value
system, settings = qsolver.load_system(sys.argv[1]), json.loads(sys.argv[2])
qsolver.solve(system, progress=False, **{**settings, "states": 2, "batch": 8, "steps": 1, "eval_samples": 64,
                                          "eval_blocks": 2})
base = rss("VmRSS:")
peak_since()
result = qsolver.solve(system, progress=False, **settings)
solve = peak_since()
reference = system_reference(result.system, result.n_states)
with tempfile.TemporaryDirectory() as tmp:
    qsolver.save_result(result, Path(tmp) / "r.h5", reference)
    cli._report(result, Path(tmp), "r", reference)
    cli._level_check(result, reference)
print(json.dumps({"baseline": base, "solve": solve, "report": peak_since(False)}))
"""


def memory_grid(system: str, counts=(50, 100, 200), overrides: dict | None = None, threads: int = 1) -> dict:
    """The memory estimate (:mod:`qsolver.memory`) against the measured peak RSS of ``system`` (a file or shipped
    name) for each state count, one fresh process each: solving, and afterwards saving, reporting and checking the
    result (as `qsolver solve` does). Defaults: 1 step and two evaluation chunks of full size (more samples add time,
    not memory); ``overrides`` are further settings. Linux only (peak RSS from /proc)."""
    import os
    import subprocess
    import sys

    from .memory import EVAL_CHUNK, estimate, peak
    from .system import load_system

    loaded = load_system(system)
    rows = []
    for n in counts:
        settings = {"steps": 1, "eval_samples": 2 * EVAL_CHUNK, "eval_blocks": 2, **(overrides or {}), "states": n,
                    "threads": threads}
        phases = estimate(make_problem(loaded, resolve_config(loaded, **settings)))
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        out = subprocess.run([sys.executable, "-c", _MEASURE, str(system), json.dumps(settings)], env=env,
                             capture_output=True, text=True, check=True)
        measured = json.loads(out.stdout.splitlines()[-1])
        largest = max((k for k in phases if k != "parameters"), key=phases.get)
        rows.append({"settings": settings, "estimate": peak(phases), "largest_phase": largest,
                     "phases": phases, **measured})
    return {"system": loaded.name, "threads": threads, "torch": torch.__version__, "rows": rows}


def memory_markdown(summary: dict) -> str:
    """The table of :func:`memory_grid`: settings, the estimate, and the measured peaks against it."""
    gib = 2.0**30
    lines = [f"# {summary['system']}: memory estimate against measured peak RSS", "",
             f"Peak RSS above a warmed-up process ({summary['threads']} thread(s), torch {summary['torch']}), while "
             "solving and afterwards while saving, reporting and checking the result as `qsolver solve` does; the "
             "estimate (`qsolver/memory.py`) must bound both. Made by `qsolver bench memory`.", "",
             "| states | settings | largest phase | estimate (GiB) | solve (GiB) | report (GiB) | max measured / estimate |",
             "|---:|:---|:---|---:|---:|---:|---:|"]
    for r in summary["rows"]:
        other = ", ".join(f"{k}={v}" for k, v in r["settings"].items() if k not in ("states", "threads"))
        worst = max(r["solve"], r["report"]) / r["estimate"]
        lines.append(f"| {r['settings']['states']} | {other} | {r['largest_phase']} | {r['estimate'] / gib:.3f} | "
                     f"{r['solve'] / gib:.3f} | {r['report'] / gib:.3f} | {worst:.2f} |")
    return "\n".join(lines) + "\n"


# committed results (results/NAME/NAME.h5) with exact strengths: (initial level, final level, transition, exact f)
STRENGTH_CASES = {
    "harmonic_1d": [(0, 1, "0 → 1", 1.0), (0, 2, "0 → 2", 0.0), (0, 3, "0 → 3", 0.0)],
    "harmonic_2d": [(0, 1, "0 → 1 (2 states)", 1.0), (0, 2, "0 → 2 (3 states)", 0.0)],
    "harmonic_3d": [(0, 1, "0 → 1 (3 states)", 1.0), (0, 2, "0 → 2 (6 states)", 0.0)],
    "hydrogen_3d": [(0, 1, "1s → n = 2 (2p)", hydrogen_strength(3, 2)), (0, 2, "1s → n = 3 (3p)",
                                                                          hydrogen_strength(3, 3))],
    "hydrogen_2d": [(0, 1, "1s → n = 2 (2p)", hydrogen_strength(2, 2)), (0, 2, "1s → n = 3 (3p)",
                                                                          hydrogen_strength(2, 3)),
                    (0, 3, "1s → n = 4 (4p)", hydrogen_strength(2, 4))],
    "helium_singlet": [(0, 1, "1¹S → 2¹S", 0.0), (0, 2, "1¹S → 2¹P", HELIUM_1S_2P)],
}


def strength_bench(results: Path, samples: int = 1_000_000, seed: int = 0) -> dict:
    """The oscillator strengths of the committed results in ``results`` (:data:`STRENGTH_CASES`) on ``samples``
    fresh samples each (:func:`qsolver.spectrum.spectrum`, levels grouped by the system's reference, the literature
    levels for two electrons) against the exact values."""
    from .io import load_result
    from .references import reference
    from .spectrum import spectrum

    rows = []
    for name, cases in STRENGTH_CASES.items():
        path = results / name / f"{name}.h5"
        if not path.is_file():
            continue
        result = load_result(path)
        kind = "literature" if "literature" in result.system.reference_options else None
        tick = time.perf_counter()
        lines = spectrum(result, reference(result.system, result.n_states, kind), samples=samples, seed=seed)
        seconds = time.perf_counter() - tick
        for g, h, label, exact in cases:
            f, err = float(lines.strengths[g, h]), float(lines.errors[g, h])
            rows.append({"system": name, "transition": label, "states": lines.states(h),
                         "excitation": float(lines.levels[h] - lines.levels[g]), "f": f, "error": err,
                         "exact": exact, "z": abs(f - exact) / err if err > 0 else float("inf"),
                         "rel_error": abs(f - exact) / exact if exact else None, "seconds": seconds})
    return {"samples": samples, "seed": seed, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "rows": rows}


def strength_markdown(summary: dict) -> str:
    """The table of :func:`strength_bench`."""
    lines = ["# Oscillator strengths of the committed results against exact values", "",
             f"f = (2m/d) ΔE |d|² between levels (summed over the final level's states), from the stored networks and "
             f"Ritz vectors on {summary['samples']} fresh samples each (seed {summary['seed']}, "
             f"{summary['threads']} thread(s), torch {summary['torch']}); ± is the jackknife standard error (40 "
             "blocks), z = |f - exact| / ±. Exact: hydrogen by quadrature of the exact radial functions (3D: 0.4162 "
             "and 0.0791; 2D: 27/128 for 2p), oscillators 1 and 0, helium 1¹S → 2¹P 0.2762 (literature). "
             "Made by `qsolver bench strengths`.", "",
             "| system | transition | states | ΔE (hartree) | f | ± | exact | z | rel. error |",
             "|:---|:---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in summary["rows"]:
        rel = f"{r['rel_error']:.2%}" if r["rel_error"] is not None else "—"
        lines.append(f"| {r['system']} | {r['transition']} | {r['states']} | {r['excitation']:.6f} | {r['f']:.5f} | "
                     f"{r['error']:.1e} | {r['exact']:.5f} | {r['z']:.1f} | {rel} |")
    return "\n".join(lines) + "\n"


# short fresh runs (unconverged levels, where the span's error dominates): system, steps, seeds
CALIBRATION_RUNS = (("harmonic_1d", 300, (0, 1, 2)), ("harmonic_2d", 200, (0, 1)), ("box_2d", 200, (0, 1)),
                    ("hydrogen_2d", 150, (0,)))


def _level_rows(label: str, energies, diag: dict, errors, levels) -> list[dict]:
    n = min(len(levels), len(energies))
    return [{"case": label, "state": i, "actual": float(abs(energies[i] - levels[i])),
             "stat": float(diag["stat_errors"][i]), "bias": float(diag["bias_errors"][i]),
             "bound": float(diag["span_errors"][i]), "headline": float(errors[i]),
             "method": str(diag.get("bias_method", "Kato-Temple"))} for i in range(n)]


def _committed_rows(results: Path, log) -> list[dict]:
    """The committed results' levels that have an exact value (analytic, or quoted from the literature: all of
    them, or the first few where the file quotes fewer than its states, as beryllium's ground level), with the bars
    stored in their files: what a user reads."""
    from .io import load_result
    from .references import literature_reference

    rows = []
    for path in sorted(results.glob("*/*.h5")):
        result = load_result(path)
        if "bias_errors" not in result.diagnostics:
            continue
        system, n = result.system, result.n_states
        quoted = system.reference_options.get("literature")
        try:
            ref = literature_reference(system, min(n, len(quoted["levels"]))) if quoted else exact_or_own(system, n)
        except InputError:
            continue
        if ref.kind not in ("analytic", "literature"):
            continue
        part = "" if len(ref.energies) == n else f", {len(ref.energies)} of {n} levels quoted"
        rows += _level_rows(f"{path.stem} (committed{part})", result.energies, result.diagnostics, result.errors,
                            np.asarray(ref.energies, dtype=float))
        log(f"{path.stem}: read")
    return rows


def _seeds_rows(bench: Path, log) -> list[dict]:
    """Every level of every seed of the seeds tables (``seeds_*.json``) that store their bars; rows that keep the
    bias rule's inputs get their bars by the current rule (:func:`qsolver.seeds.replayed_bars`)."""
    rows = []
    for path in sorted(bench.glob("seeds_*.json")):
        summary = json.loads(path.read_text())
        runs = [r for r in summary["seeds"] if "errors" in r]
        label = f"{summary['system']} (seeds table, {len(runs)} runs)"
        for r in runs:
            bias, errors = replayed_bars(r)
            method = r["bias_method"] + " (replayed)" * ("rule_inputs" in r)
            diag = {"stat_errors": r["stat_errors"], "bias_errors": bias, "span_errors": r["span_errors"],
                    "bias_method": method}
            rows += _level_rows(label, r["energies"], diag, errors, r["levels"])
        if runs:
            log(f"{path.name}: {len(runs)} runs")
    return rows


def calibration_bench(results: Path, runs=CALIBRATION_RUNS, log=print) -> dict:
    """The error bars against the exact levels: the seeds tables in ``results``/bench, the committed results in
    ``results`` whose reference is exact (each with the bars stored in its file) and short fresh runs
    (:data:`CALIBRATION_RUNS`, unconverged). Per level: the actual error, the three columns (statistical, bias
    estimate, Kato–Temple bound), the headline ± and how the bias was estimated; per case and overall: the
    coverage and median(bar)/median(actual) of the headline and of the old bar √(stat² + bound²). The short runs
    keep their levels and the bias rule's inputs (``short_runs``), so that a change of the rule can be measured
    on these unconverged states without training again."""
    rows = _seeds_rows(results / "bench", log) + _committed_rows(results, log)
    short = []
    for name, steps, seeds in runs:
        for s in seeds:
            result = solve(name, steps=steps, seed=s, progress=False, threads=1)
            levels = np.asarray(exact_or_own(result.system, result.n_states).energies, dtype=float)
            rows += _level_rows(f"{name} ({steps} steps)", result.energies, result.diagnostics, result.errors, levels)
            short.append({"case": f"{name} ({steps} steps)", "seed": s, "levels": levels.tolist(),
                          "rule_inputs": rule_inputs(result)})
            log(f"{name}, {steps} steps, seed {s}: done")
    return calibration_summary(rows, short_runs=short)


def calibration_summary(rows: list[dict], **meta) -> dict:
    """Coverage and bar/actual ratios of the headline and the old bar per case and over all levels."""
    def stats(part: list[dict]) -> dict:
        actual = np.array([r["actual"] for r in part])
        new = np.array([r["headline"] for r in part])
        old = np.hypot([r["stat"] for r in part], np.nan_to_num([r["bound"] for r in part], nan=np.inf))
        methods = [r.get("method", "Kato-Temple") for r in part]
        return {"levels": len(part), "coverage": coverage(actual, new), "ratio": bar_ratio(actual, new),
                "bias_by": ", ".join(f"{m} {methods.count(m)}" for m in dict.fromkeys(methods)),
                "old_coverage": coverage(actual, old), "old_ratio": bar_ratio(actual, old)}

    cases = list(dict.fromkeys(r["case"] for r in rows))
    return {**meta, "torch": torch.__version__, "rows": rows,
            "cases": {c: stats([r for r in rows if r["case"] == c]) for c in cases}, "all": stats(rows)}


def calibration_markdown(summary: dict) -> str:
    """The table of :func:`calibration_bench`."""
    lines = ["# Error bars against the exact levels", "",
             "Coverage: fraction of levels with |E - E_exact| ≤ the bar; ratio: median(bar) / median(|E - E_exact|) "
             "per case. New: the headline ± (qsolver.estimation.headline_errors); old: √(stat² + bound²), the bar "
             "before. Seeds tables: every level of every seed of `qsolver bench seeds`; committed: the shipped results "
             "whose reference is exact, with the bars stored in their files; short runs: fresh solves of the shipped "
             "systems with few steps (unconverged). Bias by: how each level's bias was estimated (variance "
             "extrapolation along training, or the Kato–Temple fallback of results without waypoints). Made by "
             "`qsolver bench calibration`.", "",
             "| case | levels | bias by (levels) | coverage (new) | ratio (new) | coverage (old) | ratio (old) |",
             "|:---|---:|:---|---:|---:|---:|---:|"]
    for case, s in [*summary["cases"].items(), ("**all**", summary["all"])]:
        lines.append(f"| {case} | {s['levels']} | {s['bias_by']} | {s['coverage']:.0%} | {s['ratio']:.1f} | "
                     f"{s['old_coverage']:.0%} | {s['old_ratio']:.1f} |")
    return "\n".join(lines) + "\n"
