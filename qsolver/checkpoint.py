"""Checkpoints: a :class:`~qsolver.training.TrainingState` in HDF5 (no pickle), written atomically, read back bit
for bit.

Layout: root attributes (format, package version, world size, the system as JSON, the solver settings as JSON,
step, training seconds, shift, operator_scale, skipped steps, trust factor, shift-margin boost, rewinds, plateaus
(runs without ``steps``), waypoints (JSON, :mod:`qsolver.extrapolation`)); ``model/*`` (the state dict in the
training dtype), ``averaged/<i>`` (weight average), ``optimizer/<param>/<key>`` with the optimiser's
hyper-parameters as JSON; ``s_ema``, ``h_ema``, ``h2_ema``, ``ritz``, ``residuals``, ``norm_ratios``;
``generators`` (world, n) uint8, one sampling stream per rank; ``history/*``. A checkpoint continues only the
run it came from: same system, settings (other than the thread count and the bounds ``budget`` and ``max_steps``),
package version and world size.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from .errors import InputError
from .fields import brief
from .io import Reader, open_hdf5, write_hdf5
from .stopping import levels
from .training import MAX_BOOST, MAX_REWINDS, Problem, TrainingState, init_state
from .version import __version__

FORMAT = "qsolver-checkpoint"
FORMAT_VERSION = 6          # 4: checksums of every dataset and attribute (see qsolver.io.checksums); 5: ⟨Hψ,Hψ⟩,
                            # residuals and plateaus (qsolver.stopping); 6: waypoints (qsolver.extrapolation)
# Settings that may differ on resume: the thread count changes no number in float64; the bounds `budget` and
# `max_steps` change nothing before the checkpoint, so a resumed run may get more time, or one already spent (the
# state is then evaluated as it stands).
UNCHECKED = ("threads", "budget", "max_steps")


def write_checkpoint(path: str | Path, state: TrainingState, problem: Problem) -> Path | None:
    """Write ``state`` to ``path`` (rank 0; every rank must call, as the generator states are gathered), built in
    memory with its checksums and written atomically (:func:`~qsolver.io.write_hdf5`). Returns the path on
    rank 0, None elsewhere."""
    generators = problem.comm.gather_bytes(state.generator.get_state().numpy())
    if not problem.comm.is_root:
        return None

    def write(f: h5py.File) -> None:
        f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "version": __version__,
                        "world": problem.comm.world, "system": problem.system.to_json(),
                        "settings": json.dumps(asdict(problem.cfg)), "step": state.step,
                        "seconds": state.seconds, "skipped": state.skipped, "trust_factor": state.trust_factor,
                        "margin_boost": state.margin_boost, "rewinds": json.dumps(state.rewinds),
                        "plateaus": json.dumps(state.plateaus), "waypoints": json.dumps(state.waypoints),
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
        for key in ("s_ema", "h_ema", "h2_ema"):
            if getattr(state, key) is not None:
                f[key] = getattr(state, key).cpu().numpy()
        for key in ("ritz", "residuals", "norm_ratios"):
            if getattr(state, key) is not None:
                f[key] = getattr(state, key)
        f["generators"] = generators
        hist = f.create_group("history")
        for key, values in state.history.items():
            hist[key] = np.asarray(values, dtype=float)

    return write_hdf5(path, write)


def _waypoints(reader, f: h5py.File, step: int, states: int) -> list[dict]:
    """The attribute ``waypoints``: a JSON list of {step, energies, sigma2}, steps increasing up to ``step``, one
    number (or NaN) per network in each list."""
    found = reader.json(reader.attribute(f, "waypoints", "waypoints"), "waypoints", list)

    def numbers(values) -> bool:
        return isinstance(values, list) and len(values) == states and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)

    steps = [w.get("step") if isinstance(w, dict) else None for w in found]
    if not (all(isinstance(w, dict) and set(w) == {"step", "energies", "sigma2"} and numbers(w["energies"])
                and numbers(w["sigma2"]) for w in found)
            and all(isinstance(s, int) and not isinstance(s, bool) and 0 < s <= step for s in steps)
            and steps == sorted(steps)):
        reader.fail(f"must list {{step, energies, sigma2}} at increasing steps up to {step} with {states} numbers "
                    f"each, got {brief(found)}", "waypoints")
    return found


def _plain(value: Any) -> Any:
    """A NumPy scalar as h5py reads an attribute, as the Python number it holds (for comparison and messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _differences(reader: Reader, problem: Problem) -> tuple[list[str], dict]:
    """What keeps the checkpoint read by ``reader`` from continuing this run, in words, and its settings."""
    f, out = reader.f, []
    version = _plain(reader.attribute(f, "format_version", "format_version"))
    if version != FORMAT_VERSION:
        out.append(f"checkpoint format {brief(version)} (this package reads {FORMAT_VERSION})")
    else:
        reader.use_checksums(FORMAT_VERSION)
    stored_version = reader.attribute(f, "version", "version")
    if stored_version != __version__:
        out.append(f"package version {brief(stored_version)} (this is {__version__})")
    world = _plain(reader.attribute(f, "world", "world"))
    if world != problem.comm.world:
        out.append(f"world size {brief(world)} (this run has {problem.comm.world})")
    stored_system = reader.json(reader.attribute(f, "system", "system"), "system")
    system = json.loads(problem.system.to_json())
    if stored_system != system:
        keys = sorted(k for k in set(system) | set(stored_system) if system.get(k) != stored_system.get(k))
        out.append(f"system {brief(stored_system.get('name'))} (this run: '{system.get('name')}'; they differ in "
                   f"{', '.join(map(str, keys))})")
    stored = reader.json(reader.attribute(f, "settings", "settings"), "settings")
    settings = json.loads(json.dumps(asdict(problem.cfg)))
    for key in sorted((set(stored) | set(settings)) - set(UNCHECKED), key=str):
        if stored.get(key) != settings.get(key):
            out.append(f"solver setting {key} = {brief(stored.get(key))} (this run: {settings.get(key)!r})")
    return out, stored


def _number(reader: Reader, key: str, low: float, high: float, integer: bool = False,
            unset: bool = False) -> float | None:
    """The root attribute ``key``: a finite number (an integer when ``integer``) in [low, high]; with ``unset``,
    None for NaN (a value the run has not chosen yet)."""
    value = reader.attribute(reader.f, key, key)
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if unset and isinstance(value, (float, np.floating)) and np.isnan(value):
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kinds) or not np.isfinite(value) \
            or not low <= value <= high:
        reader.fail(f"must be {'an integer' if integer else 'a number'} between {low:g} and {high:g}, got "
                    f"{brief(value)} (damaged or altered checkpoint)", key)
    return int(value) if integer else float(value)


def _tensor(reader: Reader, name: str, like: torch.Tensor, finite: bool = True) -> torch.Tensor:
    """The dataset ``name`` as a tensor of the shape and dtype of ``like``; its values finite when ``finite``
    (weights and moments that a run could continue from)."""
    value = reader.numbers(name)
    if value.shape != tuple(like.shape):
        reader.fail(f"has shape {value.shape}, this run needs {tuple(like.shape)}", name)
    if finite and not np.all(np.isfinite(value)):
        reader.fail("holds non-finite values (NaN or infinity): no run continues from them", name)
    return torch.from_numpy(value).to(dtype=like.dtype)


def _optimizer(reader: Reader, state: TrainingState, problem: Problem) -> dict:
    """The optimiser's state dict: its hyper-parameters those of this run (the learning rate at most the
    configured one: the schedule and rewinds only lower it), its moments finite and shaped like the parameters."""
    fresh = json.loads(json.dumps(state.optimizer.state_dict()["param_groups"]))
    groups = reader.json(reader.attribute(reader.f, "optimizer", "optimizer"), "optimizer", list)
    if not (len(groups) == len(fresh) and all(isinstance(g, dict) for g in groups)):
        reader.fail("must list this run's optimiser parameter groups (damaged or altered checkpoint)", "optimizer")
    for group, want in zip(groups, fresh):
        lr = group.get("lr")
        if set(group) != set(want) or any(group[k] != v for k, v in want.items() if k != "lr"):
            reader.fail("holds other optimiser settings than this run's (damaged or altered checkpoint)", "optimizer")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr <= problem.cfg.lr:
            reader.fail(f"learning rate {brief(lr)} is outside (0, {problem.cfg.lr:g}], the configured one "
                        "(damaged or altered checkpoint)", "optimizer")
    params = list(state.model.parameters())
    moments = {}
    group = reader.item("optimizer", h5py.Group, required=False)
    for index in reader.names(group, "optimizer") if group is not None else []:
        if not (index.isdigit() and int(index) < len(params)):
            reader.fail(f"names parameter {brief(index)}; this run has {len(params)}", "optimizer")
        entries = reader.item(f"optimizer/{index}", h5py.Group)
        moments[int(index)] = {key: _tensor(reader, f"optimizer/{index}/{key}",
                                            torch.zeros(()) if key == "step" else params[int(index)].detach().cpu())
                               for key in reader.names(entries, f"optimizer/{index}")}
    return {"state": moments, "param_groups": groups}


def read_checkpoint(path: str | Path, problem: Problem) -> TrainingState:
    """The training state saved at ``path`` for this run; InputError naming the file and the dataset or attribute
    if it is another run's, not a checkpoint, damaged (checksums), or holds values no run reaches (non-finite
    weights, a negative step, a learning rate above the configured one). Reads are bounded as for results and
    links are refused."""
    state = init_state(problem)
    device = problem.device
    with open_hdf5(path, "checkpoint", missing="no such checkpoint file") as reader:
        f = reader.f
        if reader.attribute(f, "format", "format") != FORMAT:
            reader.fail("not a qsolver checkpoint (attribute 'format')", "format")
        differ, stored = _differences(reader, problem)
        if differ:
            raise InputError("the checkpoint belongs to another run: " + "; ".join(differ), source=reader.source)
        written_cap = stored.get("max_steps")                  # a bound that may change on resume: either holds
        cap = max(problem.cfg.max_steps, written_cap if isinstance(written_cap, int) else 0)
        step = _number(reader, "step", 0, problem.cfg.steps or cap, integer=True)
        model = {key: _tensor(reader, f"model/{key}", like) for key, like in state.model.state_dict().items()}
        averaged = [_tensor(reader, f"averaged/{i}", avg) for i, avg in enumerate(state.averaged)]
        optimizer = _optimizer(reader, state, problem)
        for key in ("s_ema", "h_ema", "h2_ema"):
            if reader.item(key, h5py.Dataset, required=False) is not None:
                like = torch.zeros((state.model.config.states,) * 2, dtype=torch.float64)
                setattr(state, key, _tensor(reader, key, like, finite=False).to(device))
        for key in ("ritz", "residuals", "norm_ratios"):
            present = reader.item(key, h5py.Dataset, required=False) is not None
            setattr(state, key, reader.numbers(key, ndim=1).astype(np.float64) if present else None)
        state.shift = _number(reader, "shift", -np.inf, np.inf, unset=True)
        state.operator_scale = None if state.shift is None else _number(reader, "operator_scale", -np.inf, np.inf)
        state.step = step
        state.seconds = _number(reader, "seconds", 0, np.finfo(float).max)
        state.skipped = _number(reader, "skipped", 0, step, integer=True)
        state.trust_factor = _number(reader, "trust_factor", np.finfo(float).tiny, 1.0)
        state.margin_boost = _number(reader, "margin_boost", 1.0, MAX_BOOST)
        rewinds = reader.json(reader.attribute(f, "rewinds", "rewinds"), "rewinds", list)
        if not (len(rewinds) <= MAX_REWINDS and all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= step for s in rewinds)):
            reader.fail(f"must list at most {MAX_REWINDS} steps between 0 and {step}, got {brief(rewinds)}", "rewinds")
        state.rewinds = rewinds
        plateaus = reader.json(reader.attribute(f, "plateaus", "plateaus"), "plateaus", list)
        if not (len(plateaus) <= len(levels(problem.cfg.lr_final)) and plateaus == sorted(plateaus) and all(
                isinstance(s, int) and not isinstance(s, bool) and 0 < s <= step for s in plateaus)):
            reader.fail(f"must list at most {len(levels(problem.cfg.lr_final))} increasing steps between 1 and "
                        f"{step}, got {brief(plateaus)}", "plateaus")
        state.plateaus = plateaus
        state.waypoints = _waypoints(reader, f, step, state.model.config.states)
        generators = reader.numbers("generators", ndim=2)
        own = state.generator.get_state()
        if generators.dtype != np.uint8 or generators.shape != (problem.comm.world, len(own)):
            reader.fail(f"must be ({problem.comm.world}, {len(own)}) bytes, got {generators.dtype} of shape "
                        f"{generators.shape}", "generators")
        history = {key: reader.numbers(f"history/{key}") for key in state.history}
        reader.verify_rest()
    try:
        state.model.load_state_dict(model)
        for avg, value in zip(state.averaged, averaged):
            avg.copy_(value)
        state.optimizer.load_state_dict(optimizer)
        state.generator.set_state(torch.from_numpy(generators[problem.comm.rank].copy()))
    except (ValueError, KeyError, RuntimeError, TypeError) as exc:      # torch's own consistency checks
        raise InputError(f"damaged checkpoint ({exc})", source=str(path)) from None
    state.history = {key: [int(v) for v in value] if key == "step" else
                     [row for row in value] if key in ("energies", "residuals")
                     else [float(v) for v in value] for key, value in history.items()}
    return state
