"""Command line: ``qsolver solve | validate | compare | plot | bench | systems``.

Bad input is reported in one line naming the file and field, with exit status 2 and no traceback.
"""
from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
from pathlib import Path
from typing import NoReturn

from .config import CHOICES, MAX_STATES, check_arguments, check_settings
from .errors import InputError, Interrupted


def _reference_for(result):
    from .references import system_reference

    return system_reference(result.system, result.n_states,
                            warn=lambda why: print(f"qsolver: warning: {why}", file=sys.stderr))


def _level_check(result, reference) -> int:
    """Print the failed level checks (:mod:`qsolver.checks`) to stderr; their exit status (0 when both pass).
    Without a reference of the system's own the level count uses a coarse grid where one applies."""
    from .checks import EXIT_FLAGGED, check_levels, count_reference
    from .references import ionization_threshold

    check = check_levels(result, reference or count_reference(result), ionization_threshold(result.system))
    for message in check.messages():
        print(f"qsolver: warning: FLAGGED: {message}", file=sys.stderr)
    return EXIT_FLAGGED if check.flagged else 0


def _numbers_check(result) -> int:
    """Print a FLAGGED line when ``result`` holds numbers that are not finite (energies, error bars, weights); the
    exit status of `compare` and `plot`, which report such a result but do not run the level checks."""
    from .checks import EXIT_FLAGGED, LevelCheck, non_finite

    check = LevelCheck(non_finite=non_finite(result))
    for message in check.messages():
        print(f"qsolver: warning: FLAGGED: {message}", file=sys.stderr)
    return EXIT_FLAGGED if check.flagged else 0


def _spectrum_text(spectrum) -> str:
    """The table of transitions from the ground level, after a blank line; empty for a result of one level."""
    return "\n" + spectrum.to_markdown() if len(spectrum.levels) > 1 else ""


def _report(result, directory: Path, stem: str, reference, linewidth: float | None = None) -> str:
    """Write the validation table against ``reference`` (Markdown with the transitions from the ground level, and
    CSV; none without a reference) and the figures into ``directory``: NAME_states, _levels, _training and
    _spectrum.png (oscillator strengths; Lorentzian-broadened with ``linewidth``, hartree), and for two particles
    NAME_density.png (d ≤ 3) and NAME_distance.png when the result holds those observables."""
    from . import plots
    from .files import atomic_write
    from .spectrum import spectrum
    from .validate import validate

    text = ""
    lines = spectrum(result, reference)
    if reference is not None:
        table = validate(result, reference)
        text = table.to_markdown() + _spectrum_text(lines)
        atomic_write(directory / f"{stem}_validation.md", lambda p: p.write_text(text))
        atomic_write(directory / f"{stem}_validation.csv", lambda p: p.write_text(table.to_csv()))
    plots.absorption_spectrum(lines, directory / f"{stem}_spectrum.png", linewidth)
    plots.wavefunction_gallery(result, directory / f"{stem}_states.png")
    plots.energy_levels(result, directory / f"{stem}_levels.png", reference)
    plots.training_curves(result, directory / f"{stem}_training.png", reference)
    if "density" in result.observables:
        plots.density_slices(result, directory / f"{stem}_density.png")
    if "distance" in result.observables:
        plots.distance_distribution(result, directory / f"{stem}_distance.png")
    return text


def _energies_text(result) -> str:
    """The energies (hartree) with their error bars; for two particles also the spin and whether each state is
    bound (more than 3 statistical errors below the continuum threshold) or above the threshold; then why the run
    stopped (results that record it)."""
    from .stopping import describe

    diag = result.diagnostics
    stopped = ([f"stopped: {describe(diag['stop_reason'], diag.get('steps_done', 0), diag.get('plateau_steps'))}"]
               if "stop_reason" in diag else [])
    rows = [f"{i:5d}  {e:16.8f}   {s:.2e}" for i, (e, s) in enumerate(zip(result.energies, result.errors))]
    if result.system.particles == 1:
        return "\n".join(["state  energy (hartree)   std. error", *rows, *stopped])
    from .references import ionization_threshold
    from .validate import SPIN_LABELS, state_status

    spin = SPIN_LABELS.get(result.system.spin, f"2S = {result.system.spin}")
    stat = result.diagnostics.get("stat_errors", result.errors)
    status = state_status(result.energies, stat, ionization_threshold(result.system))
    return "\n".join(["state  energy (hartree)   std. error  spin      status",
                      *(f"{row}    {spin:8s}  {s}" for row, s in zip(rows, status)), *stopped])


def _settings(items: list[str] | None) -> dict:
    """--set KEY=VALUE pairs as solver settings (VALUE in TOML syntax: 1e-3, 36, "joint")."""
    import tomllib

    table = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"'{item}' is not KEY=VALUE", field="--set")
        try:
            table[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            table[key.strip()] = value.strip()          # a bare word: a string setting such as nesting=joint
    return check_settings(table, None)


def _check_flags(**flags) -> None:
    """The flags that set one solver setting each (--states, --steps, --seed, --threads, --device) by that
    setting's rules, before anything runs: they would reach torch only once training starts, if at all."""
    check_arguments(flags, lambda key: f"--{key}")


def _check_writable(path: Path, flag: str) -> None:
    """Refuse, before training, a file that could not be written: a probe file is created and removed there
    (and any folder made for it), as the final write will do; InputError naming ``flag``."""
    from .errors import WriteError
    from .files import check_writable

    try:
        check_writable(path)
    except WriteError as exc:
        detail = "is a directory; give a file name ending in .h5" if exc.detail.startswith("is a directory") else \
            exc.detail.replace("; nothing was written under this name", "")
        raise InputError(detail, source=str(path), field=flag) from None


def _rescue(result, reference, out: Path, checkpoint: Path, failure: Exception) -> str:
    """Save ``result`` that could not be written to ``out`` in the system's temporary folder, else the current
    one; the one-line message says where it went, or that nothing could be written anywhere."""
    import tempfile
    import time

    from .errors import WriteError
    from .io import save_result

    name = f"{out.stem}-unsaved-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}{out.suffix}"
    tried = []
    for folder in dict.fromkeys([Path(tempfile.gettempdir()).resolve(), Path.cwd()]):
        try:
            saved = save_result(result, folder / name, reference)
        except WriteError as exc:
            tried.append(f"{folder} ({exc.detail.split(';')[0]})")
            continue
        return (f"qsolver: error: {failure}; the result was saved to {saved} instead (when there is room: "
                f"mv {shlex.quote(str(saved))} {shlex.quote(str(out))})")
    kept = f"; the run's last checkpoint is {checkpoint}" if checkpoint.is_file() else ""
    return (f"qsolver: error: {failure}; nothing could be written in {', '.join(tried)} either: the trained "
            f"result is lost{kept}")


def cmd_solve(args) -> int:
    from .solver import resolve_config, solve
    from .system import load_system

    _check_flags(states=args.states, steps=args.steps, seed=args.seed, device=args.device)
    if args.checkpoint_every is not None and not args.checkpoint_every > 0:     # nan too; inf: never
        raise InputError(f"must be positive, got {args.checkpoint_every}", field="--checkpoint-every")
    try:
        resumable = args.resume is None or Path(args.resume).is_file()
    except OSError as exc:           # a name too long to look up
        raise InputError(f"cannot be read ({exc.strerror})", source=args.resume, field="--resume") from None
    if not resumable:
        raise InputError("no such checkpoint file", source=args.resume, field="--resume")
    system = load_system(args.system)
    settings = _settings(args.set)
    for key in ("states", "steps", "seed", "device", "dtype"):      # a dedicated flag wins over --set KEY=...
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    # check the settings before anything is created on disk
    cfg = resolve_config(system, **settings)
    out = Path(args.out) if args.out else Path("results") / system.name / f"{system.name}.h5"
    if out.suffix not in (".h5", ".hdf5"):
        raise InputError("output file must end in .h5 or .hdf5", source=str(out), field="--out")
    checkpoint = Path(args.checkpoint) if args.checkpoint else out.with_name(f"{out.stem}.ckpt.h5")
    # before training: a probe file in each folder (permissions alone miss /proc, read-only mounts, long names)
    _check_writable(out, "--out")
    _check_writable(checkpoint, "--checkpoint" if args.checkpoint else "--out")
    from . import parallel
    from .errors import TrainingDiverged, WriteError
    from .io import save_result

    started = parallel.init_from_environment(cfg.device)      # under torchrun: join its process group
    comm = parallel.current()
    if comm.is_root and checkpoint.exists() and args.resume is None:
        print(f"note: {checkpoint} holds an earlier run's training state; this run starts afresh and will replace "
              f"it (to continue that run instead: --resume {checkpoint})", file=sys.stderr)
    diverged = None
    try:
        result = solve(system, **settings, progress=not args.quiet, checkpoint=checkpoint,
                       checkpoint_every=args.checkpoint_every, resume=args.resume, comm=comm)
    except TrainingDiverged as exc:
        diverged, result = exc, exc.result
    finally:
        if started:
            parallel.leave()
    if not comm.is_root:
        return 0
    if result.diagnostics.get("interrupted"):
        print(f"interrupted after {result.diagnostics['steps_done']} steps; saving what was learned",
              file=sys.stderr)
    reference = _reference_for(result)
    try:
        save_result(result, out, reference)
    except WriteError as exc:       # a disk that filled up during training: keep what was learned elsewhere
        print(_rescue(result, reference, out, checkpoint, exc), file=sys.stderr)
        return 2
    if checkpoint.exists() and diverged is None:
        checkpoint.unlink()                         # the finished result supersedes the training state
    text = _report(result, out.parent, out.stem, reference) if not args.no_report else ""
    print(text or _energies_text(result))
    print(f"saved {out}")
    if result.diagnostics.get("non_finite_energies"):
        print(f"qsolver: warning: {result.diagnostics['non_finite_energies']} state(s) have no finite energy "
              "(flagged in the file)", file=sys.stderr)
    flagged = _level_check(result, reference)
    if diverged is not None:
        print(f"qsolver: error: {diverged}; saved it to {out} (flagged 'diverged')", file=sys.stderr)
        return 3
    return flagged


def cmd_validate(args) -> int:
    from .io import load_result
    from .spectrum import spectrum
    from .validate import validate

    result = load_result(args.file)
    reference = _reference_for(result)
    if reference is None:
        print(_energies_text(result))
        print(f"(no reference to validate against: [reference] kind = {result.system.reference!r}; `qsolver compare "
              "FILE --reference KIND` computes one on request)")
    else:
        print(validate(result, reference).to_markdown())
    print(_spectrum_text(spectrum(result, reference)), end="")
    return _level_check(result, reference)


def cmd_compare(args) -> int:
    from .compare import compare, default_kinds, gather
    from .files import atomic_write
    from .io import load_result
    from .plots import comparison_figure
    from .references import KINDS
    from .spectrum import spectrum

    for kind in args.reference or []:
        if kind not in KINDS and not (kind.startswith("pyscf:") and kind[6:].strip()):
            raise InputError(f"unknown reference kind '{kind}' (known: {', '.join(KINDS)}, pyscf:BASIS)",
                             field="--reference")
    result = load_result(args.file)
    kinds = args.reference or default_kinds(result.system)
    if not kinds:
        raise InputError("the system names no reference ([reference] kind = \"none\"); choose one with --reference",
                         source=args.file, field="reference.kind")
    table = compare(result, *gather(result.system, result.n_states, kinds))
    path = Path(args.file)
    directory = Path(args.out) if args.out else path.parent
    widest = max(table.references, key=lambda ref: min(len(ref.energies), result.n_states))  # compare's groups
    text = table.to_markdown() + _spectrum_text(spectrum(result, widest))
    atomic_write(directory / f"{path.stem}_compare.md", lambda p: p.write_text(text, encoding="utf-8"))
    atomic_write(directory / f"{path.stem}_compare.csv", lambda p: p.write_text(table.to_csv(), encoding="utf-8"))
    comparison_figure(table, directory / f"{path.stem}_compare.png")
    print(text)
    return _numbers_check(result)


def _exact_or(result, reference):
    """The levels a file quotes from the literature (exact), else ``reference``."""
    from .references import reference as make_reference

    if "literature" not in result.system.reference_options:
        return reference
    try:
        return make_reference(result.system, result.n_states, "literature")
    except InputError:
        return reference


def cmd_plot(args) -> int:
    """Each file's report (beside it, or in --out); with several files also their levels side by side in
    STEM1_STEM2_..._levels.png (in --out, else beside the first file)."""
    from .io import load_result
    from .plots import spin_levels

    if args.linewidth is not None and not 0 < args.linewidth < float("inf"):
        raise InputError(f"must be a positive number of hartree, got {args.linewidth}", field="--linewidth")
    paths = [Path(f) for f in args.file]
    folders = [Path(args.out) if args.out else p.parent for p in paths]
    targets = [(folder.resolve(), p.stem) for folder, p in zip(folders, paths)]
    for k, target in enumerate(targets):
        if target in targets[:k]:
            raise InputError("two files would write figures of the same name into the same folder",
                             source=str(paths[k]), field="FILE")
    results = [load_result(p) for p in paths]
    references = [_reference_for(r) for r in results]
    for result, reference, folder, path in zip(results, references, folders, paths):
        _report(result, folder, path.stem, reference, args.linewidth)
    if len(results) > 1:
        combined = folders[0] / f"{'_'.join(p.stem for p in paths)}_levels.png"
        spin_levels(results, [_exact_or(r, ref) for r, ref in zip(results, references)], combined)
        print(f"levels side by side: {combined}")
    print("figures written to " + ", ".join(dict.fromkeys(str(f) for f in folders)))
    return max(_numbers_check(result) for result in results)


def cmd_systems(args) -> int:
    from .system import load_system, shipped_systems
    from .validate import SPIN_LABELS

    for name, path in shipped_systems().items():
        system = load_system(path)
        states = system.solver.get("states", "-")
        kind = system.potential.kind
        label = SPIN_LABELS.get(system.spin, f"2S={system.spin}")
        particles = f"{system.particles}" + (f" {label}" if system.particles > 1 else "")
        print(f"{name:16s} d={system.dimension}  N={particles:10s} kappa={system.kinetic:<4g} potential={kind:10s} "
              f"states={states:<3}  {path}")
    return 0


def cmd_bench(args) -> int:
    import torch

    from .system import load_system

    _check_bench_flags(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if args.what == "laplacian":
        return _bench_laplacian(args, out)
    if args.what == "strengths":
        return _bench_strengths(args, out)
    if args.what == "calibration":
        from . import bench
        if not Path(args.results).is_dir():
            raise InputError("not a folder of results", source=args.results, field="--results")
        summary = bench.calibration_bench(Path(args.results))
        _write_bench(summary, bench.calibration_markdown(summary), out / "calibration")
        return 0
    if not args.system:
        raise InputError(f"'qsolver bench {args.what}' needs a SYSTEM", field="SYSTEM")
    system = load_system(args.system)
    device = args.device or ("cuda" if torch.cuda.is_available() else None)
    if args.what == "accuracy":
        return _bench_accuracy(args, system, device, out)
    run = {"steps": _bench_steps, "scaling": _bench_scaling, "seeds": _bench_seeds, "memory": _bench_memory}[args.what]
    summary, text, stem = run(args, system, device, out)
    _write_bench(summary, text, stem)
    return 0


def _check_bench_flags(args) -> None:
    """Every flag every benchmark reads, before it runs: they reach torch only after minutes of work, if at all."""
    import math

    import torch

    from .system import MAX_DIMENSION

    _check_flags(threads=args.threads, states=args.states, steps=args.steps, seed=args.seed, device=args.device)
    for flag, value in (("--batch", args.batch), ("--budget", args.budget)):
        if not 0 < value < math.inf:
            raise InputError(f"must be a positive number, got {value}", field=flag)
    if not all(1 <= n <= MAX_STATES for n in args.counts):
        raise InputError(f"state counts must be between 1 and {MAX_STATES}, got {args.counts}", field="--counts")
    if not all(1 <= d <= MAX_DIMENSION for d in args.dims):
        raise InputError(f"dimensions must be between 1 and {MAX_DIMENSION}, got {args.dims}", field="--dims")
    if args.device is not None and args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("CUDA is not available on this machine", field="--device")


def _bench_laplacian(args, out: Path) -> int:
    """Cost of the Laplacian methods per dimension: printed, and written as laplacian_DEVICE.json and .md."""
    import json

    import torch

    from . import bench
    from .files import atomic_write

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    settings = _settings(args.set)
    rows = bench.laplacian_costs(tuple(args.dims), states=args.states or 16, batch=args.batch, device=device,
                                 particles=tuple(args.particles), settings=settings)
    table = bench.laplacian_table(rows)
    print(table)
    tag = "_".join(["cuda" if device.startswith("cuda") else "cpu", *(f"{k}{v}" for k, v in sorted(settings.items()))])
    atomic_write(out / f"laplacian_{tag}.json", lambda p: p.write_text(json.dumps(rows, indent=1)))
    atomic_write(out / f"laplacian_{tag}.md", lambda p: p.write_text(table + "\n"))
    print(f"written to {out}")
    return 0


def _bench_strengths(args, out: Path) -> int:
    """Oscillator strengths of the committed results (in --results) against exact values:
    oscillator_strengths.md and .json in --out."""
    from . import bench

    if args.samples < 2 * 40:
        raise InputError(f"must be at least 80 (40 jackknife blocks), got {args.samples}", field="--samples")
    results = Path(args.results)
    if not any((results / name / f"{name}.h5").is_file() for name in bench.STRENGTH_CASES):
        raise InputError(f"holds none of {', '.join(f'{n}/{n}.h5' for n in bench.STRENGTH_CASES)}",
                         source=str(results), field="--results")
    summary = bench.strength_bench(results, args.samples, args.seed or 0)
    _write_bench(summary, bench.strength_markdown(summary), out / "oscillator_strengths")
    return 0


def _bench_memory(args, system, device: str | None, out: Path) -> tuple[dict, str, Path]:
    """The memory estimate against measured peak RSS, one fresh process per state count: summary, table, stem."""
    from . import bench

    summary = bench.memory_grid(args.system, tuple(args.counts), _settings(args.set), threads=args.threads or 1)
    return summary, bench.memory_markdown(summary), out / f"memory_{system.name}"


def _bench_steps(args, system, device: str | None, out: Path) -> tuple[dict, str, Path]:
    """Cost of a training step against the number of states: summary, table and file stem."""
    from . import bench

    summary = bench.step_costs(system, tuple(args.counts), device=device)
    return summary, bench.step_costs_markdown(summary), out / f"steps_{system.name}_{summary['device'].split(':')[0]}"


def _bench_scaling(args, system, device: str | None, out: Path) -> tuple[dict, str, Path]:
    """Data-parallel ranks × threads (--configs RANKSxTHREADS): summary, table and file stem."""
    from . import scaling

    configs = []
    for item in args.configs:
        ranks, _, threads = item.partition("x")
        if not (ranks.isdigit() and threads.isdigit() and int(ranks) > 0 and int(threads) > 0):
            raise InputError(f"'{item}' is not RANKSxTHREADS (e.g. 2x1)", field="--configs")
        configs.append((int(ranks), int(threads)))
    summary = scaling.scaling_bench(args.system, configs, steps=args.steps, device=device or "cpu")
    return summary, scaling.scaling_markdown(summary), out / f"scaling_{system.name}_{summary['device']}"


def _bench_seeds(args, system, device: str | None, out: Path) -> tuple[dict, str, Path]:
    """Errors and flagged runs over --seeds seeds from --seed on: summary, table and file stem (named after the
    settings)."""
    from . import seeds

    if not 1 <= args.seeds <= 1000:
        raise InputError(f"must be between 1 and 1000, got {args.seeds}", field="--seeds")
    if args.jobs < 1:
        raise InputError(f"must be positive, got {args.jobs}", field="--jobs")
    settings = {**_settings(args.set), **{k: v for k, v in {"states": args.states, "steps": args.steps}.items()
                                          if v is not None}}          # a dedicated flag wins over --set
    first = args.seed or 0
    summary = seeds.seeds_bench(args.system, list(range(first, first + args.seeds)), jobs=args.jobs, **settings)
    tag = "".join(f"_{k}{v}" for k, v in settings.items())
    return summary, seeds.seeds_markdown(summary), out / f"seeds_{system.name}{tag}"


def _write_bench(summary: dict, text: str, stem: Path) -> None:
    """Print a benchmark's table and write it beside its summary (STEM.md, STEM.json)."""
    import json

    from .files import atomic_write

    print(text)
    atomic_write(stem.with_suffix(".json"), lambda p: p.write_text(json.dumps(summary, indent=1)))
    atomic_write(stem.with_suffix(".md"), lambda p: p.write_text(text))
    print(f"written {stem}.json, {stem}.md")


def _bench_accuracy(args, system, device: str | None, out: Path) -> int:
    """Accuracy against training time for each preset: JSON, Markdown and PNG files."""
    from . import bench
    from .io import save_result

    def keep(preset: str, result) -> None:
        """The default preset's result as `qsolver solve` saves and reports it (results/NAME/NAME.h5)."""
        if preset != "default":
            return
        path = Path("results") / system.name / f"{system.name}.h5"
        reference = _reference_for(result)
        save_result(result, path, reference)
        print(_report(result, path.parent, path.stem, reference) or _energies_text(result))
        print(f"saved {path}")

    if args.keep:
        _check_writable(Path("results") / system.name / f"{system.name}.h5", "--keep")
    summary = bench.accuracy_bench(system, args.budget, tuple(args.presets), seed=args.seed or 0, device=device,
                                   progress=not args.quiet, on_result=keep if args.keep else None, **{"states": args.states, "steps": args.steps,
                                                               **_settings(args.set)})
    paths = bench.write_accuracy(summary, out)
    print("written " + ", ".join(str(p) for p in paths))
    return 0


def _without_resume(words: list[str]) -> list[str]:
    """The command line without an earlier --resume FILE (the resumed run names its own)."""
    out = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--resume":
            skip = True
        elif not word.startswith("--resume="):
            out.append(word)
    return out


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other bad input (argparse's own prints the
    whole usage first); exit status 2 as argparse's."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.splitlines())    # argparse quotes unrecognised arguments as they are
        self.exit(2, f"qsolver: error: {self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    parser = _Parser(prog="qsolver", description="Lowest eigenstates of H = Σ_i (-κ∇_i² + V(x_i)) "
                     "+ Σ_{i<j} W(|x_i - x_j|) for N particles by NeuralSVD (Hartree atomic units).")
    parser.add_argument("--version", action="version", version=f"qsolver {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("solve", help="train on a system file (or shipped name) and save an HDF5 result")
    p.add_argument("system", help="a system TOML file, or the name of a shipped system (see 'qsolver systems')")
    p.add_argument("--states", type=int, help="number of states (default: the system's [solver] table)")
    p.add_argument("--steps", type=int, help="a fixed schedule of this many training steps (default: the system's, "
                   "else until the Ritz values settle; README, 'How a run decides it is done')")
    p.add_argument("--seed", type=int, help="random seed (same seed and device give the same numbers)")
    p.add_argument("--device", help="cpu or cuda")
    p.add_argument("--dtype", choices=CHOICES["dtype"], help="training precision")
    p.add_argument("--out", help="output HDF5 file (default results/NAME/NAME.h5)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-report", action="store_true", help="skip the validation table and figures")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="any solver setting (see SolverConfig), e.g. --set batch=512 --set nesting=joint")
    p.add_argument("--checkpoint-every", type=float, metavar="SECONDS",
                   help="write the training state every SECONDS of training (default 300; also on Ctrl-C/SIGTERM)")
    p.add_argument("--checkpoint", metavar="FILE", help="checkpoint file (default beside --out: NAME.ckpt.h5; "
                   "removed when the run finishes)")
    p.add_argument("--resume", metavar="FILE", help="continue the run saved in this checkpoint (same system, "
                   "settings, package version and number of processes)")
    p.set_defaults(func=cmd_solve)
    p = sub.add_parser("validate", help="compare a saved result with its reference levels")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("compare", help="table and figure of a saved result against several references")
    p.add_argument("file")
    p.add_argument("--reference", nargs="+", metavar="KIND",
                   help="analytic, grid, pyscf, pyscf:BASIS (e.g. pyscf:aug-cc-pvqz), literature (default: the "
                        "system's [reference] kind, plus literature when the system file quotes levels)")
    p.add_argument("--out", help="folder for NAME_compare.md/.csv/.png (default: beside the HDF5 file)")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("plot", help="write the figures of saved results (several: also their levels side by side)")
    p.add_argument("file", nargs="+", help="HDF5 result file(s), e.g. the singlet and the triplet run of a system")
    p.add_argument("--out", help="folder for the PNG files (default: beside each HDF5 file)")
    p.add_argument("--linewidth", type=float, metavar="HARTREE",
                   help="broaden the absorption spectrum (NAME_spectrum.png) by Lorentzians of this FWHM")
    p.set_defaults(func=cmd_plot)
    p = sub.add_parser("bench", help="benchmarks that print numbers: 'laplacian' cost ratios, 'accuracy' of a "
                       "system against training wall time (presets: default, paper, adam), 'steps' (cost of a step "
                       "against the number of states), 'scaling' (data-parallel ranks with torchrun), 'seeds' (errors and "
                       "flagged runs over seeds), 'memory' (the memory estimate against measured peak RSS), 'strengths' "
                       "(oscillator strengths of the committed results against exact values)")
    p.add_argument("what", choices=["laplacian", "accuracy", "steps", "scaling", "seeds", "memory", "strengths",
                                     "calibration"])
    p.add_argument("system", nargs="?", help="system file or shipped name (accuracy)")
    p.add_argument("--budget", type=float, default=600.0, help="training seconds per preset (accuracy)")
    p.add_argument("--keep", action="store_true", help="accuracy: also save the default preset's result and report "
                   "where `qsolver solve` would (results/NAME/)")
    p.add_argument("--presets", nargs="+", default=["default", "paper"],
                   help="presets to compare (accuracy): default, paper, adam")
    p.add_argument("--dims", nargs="+", type=int, default=[2, 3, 6, 12], help="dimensions (laplacian)")
    p.add_argument("--particles", nargs="+", type=int, default=[1],
                   help="particle counts (laplacian; several electrons use the registry's network for them)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a solver setting for every preset (accuracy), seed (seeds) or network (laplacian)")
    p.add_argument("--counts", nargs="+", type=int, default=[4, 8, 16, 32, 64],
                   help="state counts (steps, memory)")
    p.add_argument("--configs", nargs="+", default=["1x1", "2x1", "1x2"],
                   help="RANKSxTHREADS per rank to compare (scaling)")
    p.add_argument("--states", type=int, help="states (laplacian: of the benchmark network, default 16; accuracy: "
                   "instead of the system's own count)")
    p.add_argument("--steps", type=int, help="training steps instead of the system's own (accuracy; the schedule "
                   "follows the budget when it ends first)")
    p.add_argument("--batch", type=int, default=512, help="samples per call (laplacian)")
    p.add_argument("--seeds", type=int, default=10, help="number of seeds, from --seed on (seeds)")
    p.add_argument("--jobs", type=int, default=1, help="seeds trained at a time, one thread each (seeds)")
    p.add_argument("--samples", type=int, default=1_000_000, help="fresh samples per result (strengths)")
    p.add_argument("--results", default="results", help="folder of the committed results (strengths, calibration)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    p.add_argument("--out", default="results/bench", help="folder for the JSON, Markdown and PNG files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("systems", help="list the shipped systems")
    p.set_defaults(func=cmd_systems)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        # one line even when a hostile file puts line breaks into a name that the message quotes
        print("qsolver: error: " + " ".join(str(exc).splitlines()), file=sys.stderr)
        return 2
    except Interrupted as exc:
        if os.environ.get("RANK", "0") != "0":          # under torchrun only rank 0 speaks
            return 143 if exc.signal_name == "SIGTERM" else 130
        again = _without_resume(list(argv if argv is not None else sys.argv[1:]))
        again += ["--resume", str(exc.checkpoint)]
        spent = math.floor(exc.seconds * 1000) / 1000        # a budget already spent: evaluated at once on resume
        now = shlex.join(again + ["--set", f"budget={spent:g}"])
        print(f"qsolver: {exc}\nresume with: qsolver {shlex.join(again)}"
              + (f"\nevaluate it as it stands: qsolver {now}" if spent else ""), file=sys.stderr)
        return 143 if exc.signal_name == "SIGTERM" else 130
    except KeyboardInterrupt:
        print("qsolver: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
