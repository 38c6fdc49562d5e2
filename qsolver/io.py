"""HDF5 export and reload of results (h5py; no pickle).

Layout: root attributes (format, version, units, Hamiltonian convention, κ); ``system`` (definition as
JSON); ``energies``, ``errors`` (hartree), ``coefficients`` (Ritz vectors); ``reference`` (levels, method, kind,
error bound) when the caller passes one (``qsolver solve`` passes the system's own); ``history/*``; ``model/*`` (every weight as a plain dataset, architecture
as JSON); ``grid/*`` (one particle, d ≤ 3: the states sampled on a regular grid: axes in bohr, values in
bohr^(-d/2)); ``observables/*`` (two particles: one-particle densities on a grid of cells for d ≤ 3 and the
distributions of the inter-particle distance, with standard errors; no full 2d-dimensional grid). Files are written to a temporary name and renamed, so a failed write leaves nothing behind.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, NoReturn

import h5py
import numpy as np
import torch

from .config import CHOICES
from .errors import InputError
from .files import atomic_write
from .networks import KINDS, Network
from .references.base import Reference
from .result import Result
from .fields import brief, finite_number
from .system import MAX_INT, check_solver_table, system_from_dict
from .version import __version__

FORMAT = "qsolver-result"
FORMAT_VERSION = 1
GRID_POINTS = {1: 1024, 2: 128, 3: 32}


def hamiltonian_text(system) -> str:
    """The Hamiltonian a result solved, in words for its file (hartree, bohr)."""
    if system.particles == 1:
        return "H = -kappa * laplacian + V(x)"
    return (f"H = sum_i (-kappa * laplacian_i + V(x_i)) + sum_(i<j) W(|x_i - x_j|), {system.particles} particles, "
            f"2S = {system.spin}")


def sample_grid(result: Result) -> tuple[list[np.ndarray], np.ndarray]:
    """Axes and values (n_states, n_1, ..., n_d) of the states on a regular grid over ``result.extent()``."""
    d = result.system.dimension
    lo, hi = result.extent()
    axes = [np.linspace(lo[i], hi[i], GRID_POINTS[d]) for i in range(d)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
    values = result.wavefunctions(mesh).T.reshape(result.n_states, *[len(a) for a in axes])
    return axes, values


def save_result(result: Result, path: str | Path, reference: Reference | None = None) -> Path:
    """Write ``result`` to an HDF5 file at ``path`` (atomically), with ``reference`` (levels, method, error) when
    given; saving never computes a reference."""

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "qsolver_version": __version__,
                            "units": "hartree atomic units: energies in hartree, lengths in bohr",
                            "hamiltonian": hamiltonian_text(result.system), "kinetic": result.system.kinetic,
                            "system_name": result.system.name})
            f.create_dataset("system", data=result.system.to_json())
            f["energies"] = np.asarray(result.energies, dtype=np.float64)
            f["errors"] = np.asarray(result.errors, dtype=np.float64)
            f["coefficients"] = np.asarray(result.coefficients, dtype=np.float64)
            f.attrs["config"] = json.dumps(result.config)
            f.attrs["diagnostics"] = json.dumps({k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                                 for k, v in result.diagnostics.items()})
            hist = f.create_group("history")
            for key, value in result.history.items():
                hist[key] = np.asarray(value)
            model = f.create_group("model")
            model.attrs["config"] = json.dumps(result.model.config.to_dict())
            for key, value in result.model.state_dict().items():
                model[key] = value.detach().cpu().to(torch.float64).numpy()
            if reference is not None:
                group = f.create_group("reference")
                group["energies"] = reference.energies
                group.attrs.update({"method": reference.method, "kind": reference.kind, "error": reference.error})
            if result.observables:
                group = f.create_group("observables")
                group.attrs["units"] = ("density: bohr^-d per cell (integrates to 2), distance: bohr^-1 per bin "
                                        "(integrates to 1); *_error: standard errors over independent batches")
                for key, value in result.observables.items():
                    if key == "density_edges":
                        for axis, edges in zip("xyz", value):
                            group[f"density_edges_{axis}"] = edges
                    else:
                        group.create_dataset(key, data=np.asarray(value, dtype=np.float64 if "edges" in key
                                                                  else np.float32), compression="gzip")
            if result.system.dimension <= 3 and result.system.particles == 1:
                axes, values = sample_grid(result)
                grid = f.create_group("grid")
                for name, axis in zip("xyz", axes):
                    grid[name] = axis
                grid.create_dataset("values", data=values.astype(np.float32), compression="gzip")

    return atomic_write(path, write)


# A dataset can claim far more than its file stores (chunks never written read as the fill value; compression):
# reading is bounded by this multiple of the file's size plus an allowance, so that a small hostile file
# cannot make load_result allocate gigabytes. Real results read far less than their own size.
READ_FACTOR = 64
READ_ALLOWANCE = 64 * 2**20
# how h5py reports an object it cannot read: a damaged file (truncated, overwritten) or a type NumPy lacks
_H5_ERRORS = (OSError, KeyError, RuntimeError, TypeError, ValueError)
ACTIVATIONS = CHOICES["activation"]


class _Reader:
    """Checked reads from an open result file: each failure is an InputError naming the file and the field."""

    def __init__(self, f: h5py.File, source: str, size: int):
        self.f, self.source = f, source
        self.budget = READ_FACTOR * size + READ_ALLOWANCE      # bytes that may still be read

    def fail(self, message: str, field: str | None = None) -> NoReturn:
        """Raise the InputError for ``field`` (a dataset path or attribute) of this file."""
        raise InputError(message, source=self.source, field=field) from None

    def item(self, name: str, kind: type, required: bool = True) -> h5py.Group | h5py.Dataset | None:
        """The group or dataset at path ``name``; None when it is absent and not ``required``."""
        try:
            link = self.f.get(name, getlink=True)
            item = self.f[name] if isinstance(link, h5py.HardLink) else None
        except _H5_ERRORS as exc:
            self.fail(f"cannot be read ({exc})", name)
        if link is None:
            if required:
                self.fail("missing (damaged or incomplete qsolver result)", name)
            return None
        if item is None:     # soft and external links could point anywhere, even into other files
            self.fail("is a link; a result holds its data itself", name)
        if not isinstance(item, kind):
            self.fail(f"must be {'a group' if kind is h5py.Group else 'a dataset'}", name)
        return item

    def data(self, name: str) -> Any:
        """The value of the dataset at ``name``, within the reading budget."""
        ds = self.item(name, h5py.Dataset)
        try:
            elsewhere = ds.is_virtual or ds.external is not None
            nbytes = ds.size * ds.dtype.itemsize
        except _H5_ERRORS as exc:
            self.fail(f"cannot be read ({exc})", name)
        if elsewhere:
            self.fail("stores its data in other files; a result holds its data itself", name)
        if nbytes > self.budget:
            self.fail(f"claims {nbytes} bytes, more than a file of this size holds (damaged)", name)
        self.budget -= nbytes
        try:
            return ds[()]
        except _H5_ERRORS as exc:
            self.fail(f"cannot be read ({exc})", name)

    def numbers(self, name: str, ndim: int | None = None) -> np.ndarray:
        """The dataset at ``name`` as an array of real numbers (its own integer or float type), with ``ndim``
        axes when given."""
        value = self.data(name)
        if not isinstance(value, (np.ndarray, np.generic)) or value.dtype.kind not in "iuf":
            self.fail(f"must hold real numbers, got {type(value).__name__} of {getattr(value, 'dtype', '?')}", name)
        value = np.asarray(value)
        if ndim is not None and value.ndim != ndim:
            self.fail(f"must have {ndim} axes, got shape {value.shape}", name)
        return value

    def names(self, group: h5py.Group, field: str) -> list[str]:
        """The member names of ``group``."""
        try:
            return list(group)
        except _H5_ERRORS as exc:
            self.fail(f"cannot be listed ({exc})", field)

    def attribute(self, item: h5py.Group | h5py.Dataset, key: str, field: str) -> Any:
        """The attribute ``key`` of ``item`` (None when absent), reported as ``field``."""
        try:
            return item.attrs.get(key)
        except _H5_ERRORS as exc:
            self.fail(f"cannot be read ({exc})", field)

    def json(self, text: Any, field: str) -> dict:
        """A JSON object from the text of a dataset or attribute."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                self.fail("must be UTF-8 text", field)
        if not isinstance(text, str):
            self.fail(f"must be JSON text, got {type(text).__name__}", field)
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:   # JSONDecodeError, or nesting deeper than the parser goes
            self.fail(f"is not valid JSON ({str(exc)[:80]})", field)
        if not isinstance(value, dict):
            self.fail(f"must be a JSON object, got {type(value).__name__}", field)
        return value


def _typed(value: Any, annotation: str) -> Any:
    """``value`` from JSON as a config field annotated ``annotation`` (int, float, str or lists of them) holds it:
    integers become floats where floats belong (torch cannot take a Python integer beyond 64 bits);
    ValueError when it does not fit."""
    if annotation.startswith("list["):
        if not isinstance(value, list):
            raise ValueError
        return [_typed(v, annotation[5:-1]) for v in value]
    if annotation == "float":
        if not finite_number(value):
            raise ValueError
        return float(value)
    if (annotation == "int") != (isinstance(value, int) and not isinstance(value, bool)) or \
            (annotation == "str") != isinstance(value, str):
        raise ValueError
    return value


# The diagnostics that validate, compare and the command line read back, with the JSON form each must have when
# present ("states": one number or null per state); other keys are kept as stored.
DIAGNOSTICS = {"stat_errors": "states", "residuals": "states", "span_errors": "states", "ess_fraction": "numbers",
               "spin_squared": "states", "spin_squared_errors": "states",
               "gram_deviation": "number", "raw_gram_deviation": "number", "train_seconds": "number",
               "eval_seconds": "number", "steps_done": "count", "skipped_steps": "count", "eval_samples": "count",
               "threads": "count", "world": "count", "resumed_at_step": "count", "non_finite_energies": "count",
               "rewinds": "counts", "not_eigenstates": "counts", "interrupted": "flag", "diverged": "text",
               "train_dtype": "text", "torch": "text"}


def _diagnostic_fits(value: Any, form: str, n: int) -> bool:
    """Whether a stored diagnostic has the JSON ``form`` of :data:`DIAGNOSTICS` (``n`` states)."""
    def number(v: Any) -> bool:   # nan and inf are stored values too; integers must convert to float
        return isinstance(v, float) or finite_number(v)

    def count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_INT

    if form in ("states", "numbers", "counts"):
        if not isinstance(value, list) or (len(value) != n if form == "states" else form == "numbers" and not value):
            return False
        return all(count(v) if form == "counts" else v is None or number(v) for v in value)
    return {"number": number, "count": count, "flag": lambda v: isinstance(v, bool),
            "text": lambda v: isinstance(v, str)}[form](value)


def _read_model(reader: _Reader, system) -> Network:
    """The networks from ``model/``: the architecture is checked against the system and the stored weights
    before anything is allocated (it is built on the meta device first), so that a tampered config fails
    as a named field, not as a huge allocation or a torch error."""
    group = reader.item("model", h5py.Group)
    config = reader.json(reader.attribute(group, "config", "model.config"), "model.config")
    # results written before the network registry name no kind: their one-particle networks are kind "one"
    kind = config.get("kind", "one" if system.particles == 1 else None)
    if kind not in KINDS:
        reader.fail(f"unknown network kind {brief(kind)} (known: {', '.join(KINDS)})", "model.config")
    net = KINDS[kind]
    why = net.fits(system)
    if why is not None:
        reader.fail(f"network '{kind}' does not fit the stored system: {why}", "model.config")
    fields = {f.name: f for f in dataclasses.fields(net.config_type)}
    for key, value in config.items():
        if key not in fields:
            reader.fail(f"unknown field {brief(key)} for network '{kind}'", "model.config")
        try:
            config[key] = _typed(value, fields[key].type)
        except ValueError:
            reader.fail(f"'{key}' must be of type {fields[key].type}, got {brief(value)}", "model.config")
    for key, f in fields.items():
        if key not in config and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            reader.fail(f"'{key}' is missing", "model.config")
    bad = [key for key, ok in {"dimension": config["dimension"] == system.dimension, "states": config["states"] >= 1,
                               "activation": config.get("activation", ACTIVATIONS[0]) in ACTIVATIONS}.items()
           if not ok]
    for key in bad + net.check_config(config, system):
        reader.fail(f"'{key}' = {brief(config.get(key))} is out of range or does not fit the stored system",
                    "model.config")
    try:
        with torch.device("meta"):    # shapes only: no memory, however large the config claims to be
            model = net(net.config_type(**config))
    except (ValueError, IndexError, RuntimeError, TypeError) as exc:   # the constructors' own consistency checks
        reader.fail(f"does not describe a network ({exc})", "model.config")
    state = {}
    for key, meta in model.state_dict().items():
        value = reader.numbers(f"model/{key}")
        if value.shape != meta.shape:
            reader.fail(f"has shape {value.shape}, the stored architecture needs {tuple(meta.shape)}", f"model/{key}")
        state[key] = torch.from_numpy(value.astype(np.float64))
    model = model.to_empty(device="cpu")
    model.load_state_dict(state)
    return model


def load_result(path: str | Path, device: str | torch.device = "cpu") -> Result:
    """Read a result written by :func:`save_result`; wavefunctions are rebuilt from the stored weights, as a
    float64 model on ``device``. Anything missing, damaged or inconsistent raises InputError naming the file and,
    where it can, the dataset or attribute."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise InputError("no such file", source=source)
    if not h5py.is_hdf5(path):
        raise InputError("not an HDF5 file", source=source)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"damaged HDF5 file ({exc})", source=source) from None
    with f:
        reader = _Reader(f, source, path.stat().st_size)
        label = reader.attribute(f, "format", "format")
        if not (isinstance(label, str) and label == FORMAT):
            reader.fail("not a qsolver result (attribute 'format' missing)", "format")
        system = system_from_dict(reader.json(reader.data("system"), "system"), source=source, stored=True)
        energies = reader.numbers("energies", ndim=1).astype(np.float64)
        n = len(energies)
        if n == 0:
            reader.fail("holds no states", "energies")
        errors = reader.numbers("errors", ndim=1).astype(np.float64)
        if errors.shape != (n,):
            reader.fail(f"must hold {n} numbers (one per energy), got {errors.shape[0]}", "errors")
        model = _read_model(reader, system)
        coefficients = reader.numbers("coefficients", ndim=2).astype(np.float64)
        if coefficients.shape != (model.config.states, n):
            reader.fail(f"must have shape ({model.config.states}, {n}) (networks, states), got "
                        f"{coefficients.shape}", "coefficients")
        config = check_solver_table(reader.json(reader.attribute(f, "config", "config"), "config"), source,
                                    prefix="config")
        diagnostics = reader.json(reader.attribute(f, "diagnostics", "diagnostics"), "diagnostics")
        for key, form in DIAGNOSTICS.items():
            if key in diagnostics and not _diagnostic_fits(diagnostics[key], form, n):
                what = {"states": f"a list of {n} numbers", "numbers": "a non-empty list of numbers",
                        "counts": "a list of non-negative integers", "count": "a non-negative integer",
                        "number": "a number", "flag": "true or false", "text": "a string"}[form]
                reader.fail(f"'{key}' must be {what}, got {brief(diagnostics[key])}", "diagnostics")
        history = {key: reader.numbers(f"history/{key}")
                   for key in reader.names(reader.item("history", h5py.Group), "history")}
        # the training curves plot step, loss and the running energies against each other
        step = history.get("step")
        steps = len(step) if step is not None and step.ndim == 1 else None
        for key, value in history.items():     # (a run stopped before its first record has empty ones)
            wanted = 2 if key == "energies" else 1
            if (value.ndim != wanted and value.size) or (steps is not None and len(value) != steps):
                reader.fail(f"must be {'a (steps, states) table' if key == 'energies' else 'one value per step'} "
                            f"like the other history records, got shape {value.shape}", f"history/{key}")
        observables = {}
        group = reader.item("observables", h5py.Group, required=False)
        if group is not None:
            names = reader.names(group, "observables")
            edges = [reader.numbers(f"observables/density_edges_{a}", ndim=1).astype(np.float64) for a in "xyz"
                     if f"density_edges_{a}" in names]
            observables = {key: reader.numbers(f"observables/{key}").astype(np.float64) for key in names
                           if not key.startswith("density_edges_")}
            if edges:
                observables["density_edges"] = edges
        result = Result(system=system, energies=energies, errors=errors, model=model.to(torch.float64),
                        coefficients=coefficients, config=config, history=history, diagnostics=diagnostics,
                        observables=observables)
    result.model.to(device)    # outside the file: a device this machine lacks is not a damaged file
    return result
