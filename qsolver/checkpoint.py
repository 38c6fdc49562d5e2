"""Checkpoints: a :class:`~qsolver.training.TrainingState` in HDF5 (no pickle), written atomically, read back bit
for bit.

Layout: root attributes (format, package version, world size, the system as JSON, the solver settings as JSON,
step, training seconds, shift, operator_scale, skipped steps, trust factor, shift-margin boost, rewinds); ``model/*`` (the state dict in the
training dtype), ``averaged/<i>`` (weight average), ``optimizer/<param>/<key>`` with the optimiser's
hyper-parameters as JSON; ``s_ema``, ``h_ema``, ``ritz``, ``norm_ratios``; ``generators`` (world, n) uint8, one sampling stream
per rank; ``history/*``. A checkpoint continues only the run it came from: same system, settings (other than the
thread count), package version and world size.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np
import torch

from .errors import InputError
from .files import atomic_write
from .training import Problem, TrainingState, init_state
from .version import __version__

FORMAT = "qsolver-checkpoint"
FORMAT_VERSION = 3
UNCHECKED = ("threads",)          # settings that may differ on resume (they change no number in float64)


def _settings(problem: Problem) -> dict:
    return {k: v for k, v in asdict(problem.cfg).items() if k not in UNCHECKED}


def write_checkpoint(path: str | Path, state: TrainingState, problem: Problem) -> Path | None:
    """Write ``state`` to ``path`` (rank 0; every rank must call, as the generator states are gathered).
    Returns the path on rank 0, None elsewhere."""
    generators = problem.comm.gather_bytes(state.generator.get_state().numpy())
    if not problem.comm.is_root:
        return None

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "version": __version__,
                            "world": problem.comm.world, "system": problem.system.to_json(),
                            "settings": json.dumps(_settings(problem)), "step": state.step,
                            "seconds": state.seconds, "skipped": state.skipped, "trust_factor": state.trust_factor,
                            "margin_boost": state.margin_boost, "rewinds": json.dumps(state.rewinds),
                            "shift": np.nan if state.shift is None else state.shift,
                            "operator_scale": np.nan if state.operator_scale is None else state.operator_scale})
            for key, value in state.model.state_dict().items():
                f[f"model/{key}"] = value.detach().cpu().numpy()
            for i, value in enumerate(state.averaged):
                f[f"averaged/{i}"] = value.cpu().numpy()
            opt = state.optimizer.state_dict()
            f.attrs["optimizer"] = json.dumps(opt["param_groups"])
            for index, entries in opt["state"].items():
                for key, value in entries.items():
                    f[f"optimizer/{index}/{key}"] = torch.as_tensor(value).cpu().numpy()
            for key in ("s_ema", "h_ema"):
                if getattr(state, key) is not None:
                    f[key] = getattr(state, key).cpu().numpy()
            for key in ("ritz", "norm_ratios"):
                if getattr(state, key) is not None:
                    f[key] = getattr(state, key)
            f["generators"] = generators
            hist = f.create_group("history")
            for key, values in state.history.items():
                hist[key] = np.asarray(values, dtype=float)

    return atomic_write(path, write)


def _differences(f: h5py.File, problem: Problem) -> list[str]:
    """What keeps the checkpoint in ``f`` from continuing this run, in words."""
    out = []
    if f.attrs.get("format_version") != FORMAT_VERSION:
        out.append(f"checkpoint format {f.attrs.get('format_version')} (this package reads {FORMAT_VERSION})")
    if f.attrs["version"] != __version__:
        out.append(f"package version {f.attrs['version']} (this is {__version__})")
    if int(f.attrs["world"]) != problem.comm.world:
        out.append(f"world size {int(f.attrs['world'])} (this run has {problem.comm.world})")
    stored_system = json.loads(f.attrs["system"])
    system = json.loads(problem.system.to_json())
    if stored_system != system:
        keys = sorted(k for k in set(system) | set(stored_system) if system.get(k) != stored_system.get(k))
        out.append(f"system '{stored_system.get('name')}' (this run: '{system.get('name')}'; they differ in "
                   f"{', '.join(keys)})")
    stored, settings = json.loads(f.attrs["settings"]), json.loads(json.dumps(_settings(problem)))
    for key in sorted(set(stored) | set(settings)):
        if stored.get(key) != settings.get(key):
            out.append(f"solver setting {key} = {stored.get(key)!r} (this run: {settings.get(key)!r})")
    return out


def read_checkpoint(path: str | Path, problem: Problem) -> TrainingState:
    """The training state saved at ``path`` for this run; InputError naming what differs if it is another run's
    or the file is not a checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such checkpoint file", source=str(path))
    if not h5py.is_hdf5(path):
        raise InputError("not an HDF5 file", source=str(path))
    state = init_state(problem)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise InputError("not a qsolver checkpoint (attribute 'format')", source=str(path), field="format")
            differ = _differences(f, problem)
            if differ:
                raise InputError("the checkpoint belongs to another run: " + "; ".join(differ), source=str(path))
            device = problem.device
            state.model.load_state_dict({k: torch.from_numpy(np.asarray(f[f"model/{k}"]))
                                         for k in state.model.state_dict()})
            for i, avg in enumerate(state.averaged):
                avg.copy_(torch.from_numpy(np.asarray(f[f"averaged/{i}"])))
            opt_state = {int(i): {k: torch.from_numpy(np.asarray(v)) for k, v in group.items()}
                         for i, group in f["optimizer"].items()} if "optimizer" in f else {}
            state.optimizer.load_state_dict({"state": opt_state, "param_groups": json.loads(f.attrs["optimizer"])})
            for key in ("s_ema", "h_ema"):
                if key in f:
                    setattr(state, key, torch.from_numpy(np.asarray(f[key])).to(device))
            state.ritz = np.asarray(f["ritz"]) if "ritz" in f else None
            state.norm_ratios = np.asarray(f["norm_ratios"]) if "norm_ratios" in f else None
            shift, scale = float(f.attrs["shift"]), float(f.attrs["operator_scale"])
            state.shift, state.operator_scale = (None, None) if np.isnan(shift) else (shift, scale)
            state.step, state.seconds = int(f.attrs["step"]), float(f.attrs["seconds"])
            state.skipped, state.trust_factor = int(f.attrs["skipped"]), float(f.attrs["trust_factor"])
            state.margin_boost = float(f.attrs["margin_boost"])
            state.rewinds = [int(s) for s in json.loads(f.attrs["rewinds"])]
            state.generator.set_state(torch.from_numpy(np.asarray(f["generators"][problem.comm.rank])))
            hist = f["history"]
            state.history = {key: [int(v) for v in hist[key]] if key == "step" else
                             [row for row in np.asarray(hist[key])] if key == "energies" else
                             [float(v) for v in hist[key]] for key in state.history}
    except InputError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise InputError(f"damaged or incomplete checkpoint ({exc})", source=str(path)) from None
    return state
