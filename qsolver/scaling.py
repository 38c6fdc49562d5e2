"""Data-parallel scaling benchmark: steps per second and time to a target error for 1, 2, ... ranks.

Each configuration (ranks × threads per rank) is a separate ``torchrun`` launch of :func:`worker` (this module
run with ``-m``), which trains the system with the package defaults, evaluates the averaged weights on all ranks
at geometric points in training time, and has rank 0 write its curve as JSON. :func:`scaling_bench` launches them
one after another and :func:`communication_model` states what a data-parallel step moves between ranks.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .errors import InputError
from .networks import build, choose

TARGET = 1e-3          # mean relative error whose time-to-reach is compared
ALPHA = 20e-6          # s: assumed latency of one GPU collective (NVLink-class), for the written model only
BETA = 1 / 100e9       # s per byte: assumed inverse bandwidth of that link


def worker(argv: list[str] | None = None) -> None:
    """One configuration under torchrun: train, evaluate at points in time, write the curve (rank 0)."""
    from .estimation import evaluate
    from .parallel import current, init_from_environment, leave
    from .references import reference
    from .solver import resolve_config, solve
    from .system import load_system
    from .training import make_problem

    p = argparse.ArgumentParser()
    p.add_argument("system")
    p.add_argument("out")
    p.add_argument("--steps", type=int)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = init_from_environment(args.device)
    comm = current()
    system = load_system(args.system)
    cfg = resolve_config(system, steps=args.steps, device=args.device)
    levels = np.asarray(reference(system, cfg.states).energies[: cfg.states])
    probe = replace(cfg, eval_samples=8000, eval_blocks=8)
    gen = torch.Generator(device=torch.device(cfg.device)).manual_seed(cfg.seed + 7919 + comm.rank)
    curve: dict[str, list] = {"seconds": [], "steps": [], "mean_rel_error": []}
    operator = make_problem(system, cfg, comm).hamiltonian

    def record(model, step, seconds):
        est = evaluate(model.to(torch.float64), system, probe, gen, torch.float64, operator, comm=comm)
        curve["seconds"].append(float(seconds))
        curve["steps"].append(int(step))
        curve["mean_rel_error"].append(float(np.mean(np.abs(est["energies"][: len(levels)] - levels)
                                                     / np.abs(levels))))

    result = solve(system, steps=args.steps, device=args.device, progress=False, threads=args.threads,
                   evaluate_at=list(np.geomspace(1.0, 600.0, 16)), on_evaluate=record, comm=comm)
    if comm.is_root:
        rel = np.abs(result.energies - levels) / np.abs(levels)
        Path(args.out).write_text(json.dumps({
            "ranks": comm.world, "threads": args.threads, "steps": result.diagnostics["steps_done"],
            "train_seconds": result.diagnostics["train_seconds"], "final_mean_rel_error": float(rel.mean()),
            "curve": curve}))
    if started:
        leave()


def time_to(curve: dict, target: float) -> float | None:
    """First evaluation time (s) with mean relative error ≤ target, interpolated in log error."""
    seconds, errors = curve["seconds"], curve["mean_rel_error"]
    for i, err in enumerate(errors):
        if err <= target:
            if i == 0:
                return seconds[0]
            e0, e1 = np.log(errors[i - 1]), np.log(err)
            return seconds[i - 1] + (seconds[i] - seconds[i - 1]) * (e0 - np.log(target)) / (e0 - e1)
    return None


def communication_model(system, cfg, world: int) -> dict:
    """Numbers moved per step by one rank of ``world``, from the layer sizes of the system's networks.

    All-reduces: the batch S (also the Gram matrix of the descent direction) and H, 2 L² numbers. All-gathers of
    the natural step: every layer's inputs z and output signals g, L·B·(fan_in + fan_out) per pass of a sample
    (2 passes for a symmetrised pair), the envelope-scale derivatives L·B·C, r and f, 2 L·B, and the solved
    coefficients with their trust factors, ⌈L/W⌉·W·(B + 1); a rank receives (W-1)/W of each. Plus 3 scalars
    (clock, stop flag, step check). Collectives per step: 2 all-reduces, 2·layers + 4 (or 5 with scales)
    all-gathers, 1 broadcast, 1 max."""
    model = build(choose(system, cfg.network).configure(system, cfg), torch.Generator().manual_seed(0))
    n, batch = cfg.states, cfg.batch
    x = model.proposal(torch.float64).sample(2, torch.Generator().manual_seed(0))
    shapes = model.tangents(x, torch.ones(2, 1, dtype=torch.float64))      # the factors' widths per sample
    copies = shapes.copies
    fans = [(z.shape[-1], g.shape[-1]) for z, g in zip(shapes.inputs, shapes.signals)]
    scales = sum(block.shape[-1] for block in shapes.direct.values())
    padded = -(-n // world) * world                       # each rank solves ⌈L/W⌉ states' kernels
    gathered = n * batch * (copies * sum(a + b for a, b in fans) + scales + 2) + padded * (batch + 1)
    received = gathered * (world - 1) / world
    reduced = 2 * n * n
    collectives = 2 + 2 * len(fans) + 2 + (1 if scales else 0) + 1 + 2
    bytes_per = 4 if cfg.dtype in ("auto", "float32") else 8
    return {"gathered_numbers": gathered, "received_bytes": received * bytes_per, "reduced_bytes": reduced * bytes_per,
            "collectives": collectives, "bytes_per_number": bytes_per}


def scaling_bench(system_name: str, configurations=((1, 1), (2, 1), (1, 2)), steps: int | None = None,
                  device: str = "cpu", log=print) -> dict:
    """Run each (ranks, threads per rank) configuration with torchrun and collect steps per second and the time to
    TARGET mean relative error."""
    from .solver import resolve_config
    from .system import load_system
    from .training import make_problem

    system = load_system(system_name)
    cfg = resolve_config(system, steps=steps, device=device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ranks, threads in configurations:
            if cfg.batch % ranks:
                raise InputError(f"batch {cfg.batch} does not split over {ranks} ranks", field="--ranks")
            out = Path(tmp) / f"{ranks}x{threads}.json"
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
                   "-m", "qsolver.scaling", system_name, str(out), "--threads", str(threads), "--device", device]
            if steps:
                cmd += ["--steps", str(steps)]
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            log(f"{system.name}: {ranks} rank(s) × {threads} thread(s) ...")
            run = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError(f"torchrun failed for {ranks} ranks:\n{run.stderr[-2000:]}")
            row = json.loads(out.read_text())
            row["steps_per_second"] = row["steps"] / row["train_seconds"]
            row["time_to_target"] = time_to(row["curve"], TARGET)
            row["communication"] = communication_model(system, cfg, ranks)
            rows.append(row)
            reach = row["time_to_target"]
            log(f"  {row['steps_per_second']:.1f} steps/s, final mean rel. error {row['final_mean_rel_error']:.2e}, "
                f"time to {TARGET:g}: {'not reached' if reach is None else f'{reach:.0f} s'}")
    return {"system": system.name, "target": TARGET, "batch": cfg.batch, "states": cfg.states, "device": device,
            "cpus": os.cpu_count(), "torch": torch.__version__, "rows": rows}


def scaling_markdown(summary: dict) -> str:
    rows = summary["rows"]
    base = rows[0]["steps_per_second"]
    lines = [f"# {summary['system']}: data-parallel scaling ({summary['device']}, {summary['cpus']} cores)", "",
             f"{summary['states']} states, global batch {summary['batch']} split over the ranks; package defaults. "
             f"Time to mean relative error {summary['target']:g} from evaluations of the averaged weights.", "",
             "| ranks × threads | steps/s | speed-up | final mean rel. error | time to target | bytes received per "
             "rank and step |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        reach = r["time_to_target"]
        lines.append(f"| {r['ranks']} × {r['threads']} | {r['steps_per_second']:.1f} | "
                     f"{r['steps_per_second'] / base:.2f} | {r['final_mean_rel_error']:.2e} | "
                     f"{'not reached' if reach is None else f'{reach:.0f} s'} | "
                     f"{r['communication']['received_bytes'] / 1e6:.2f} MB |")
    widest = max(rows, key=lambda r: r["ranks"])
    comm = widest["communication"]
    gpus = 8
    per_number = comm["bytes_per_number"] * comm["gathered_numbers"] * (gpus - 1) / gpus
    link = (comm["collectives"] * ALPHA + (per_number + comm["reduced_bytes"]) * BETA) * 1e6
    lines += ["", "## What a step moves, and when more ranks stop paying", "",
              f"Every rank computes ψ, the forward Laplacian and the Jacobian factors of its B/W samples; the "
              f"natural-gradient step then needs the kernel J Jᵀ of the whole batch, so the factors are all-gathered "
              f"({comm['gathered_numbers']:,} numbers per step, (W-1)/W of them received by each rank: "
              f"{comm['received_bytes'] / 1e6:.2f} MB at W = {widest['ranks']}); each rank builds and solves the "
              f"B×B kernels of L/W states (O(L·B²·width + L·B³)/W) and the coefficients are gathered; "
              f"{comm['collectives']} collectives per step.", "",
              "Model: t(W) = (t_local + t_kernel)/W + t_pull + c·α + bytes(W)·β, with t_local the per-sample work "
              "(forward Laplacian, Jacobian factors), t_kernel the kernels and solves, t_pull the parameter update "
              "Jᵀc that every rank repeats, c collectives of latency α and β the inverse bandwidth. Adding ranks "
              "pays while the work it saves exceeds c·α + bytes·β. "
              f"For {gpus} GPUs on NVLink-class links (α = {ALPHA * 1e6:.0f} µs, β = 1/{1e-9 / BETA:.0f} GB/s) the "
              f"model gives {link:.0f} µs of communication per step, against milliseconds of computation per step "
              "on one device: ranks pay until the per-rank share of the work is as short as that. On this 2-core CPU "
              "the ranks share the cores and gloo's collectives go through shared memory, so one rank of two threads "
              "is the faster choice here (table above); data-parallel training pays where each rank has its own "
              "device."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    worker()
