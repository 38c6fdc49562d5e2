"""HDF5 export and reload of results (h5py; no pickle).

Layout: root attributes (format, version, units, Hamiltonian convention, κ); ``system`` (definition as
JSON); ``energies``, ``errors`` (hartree), ``coefficients`` (Ritz vectors); ``reference`` (levels, method, kind,
error bound) when the caller passes one (``qsolver solve`` passes the system's own); ``history/*``; ``model/*`` (every weight as a plain dataset, architecture
as JSON); ``grid/*`` (one particle, d ≤ 3: the states sampled on a regular grid: axes in bohr, values in
bohr^(-d/2)); ``observables/*`` (two particles: one-particle densities on a grid of cells for d ≤ 3 and the
distributions of the inter-particle distance, with standard errors; no full 2d-dimensional grid); ``transitions/*``
(from format 3 on: the states' transition dipoles (bohr), their jackknife errors and replicates, oscillator strengths
and their errors, see :mod:`qsolver.dipoles`); ``checksums`` (root attribute, from format 2 on: the SHA-256 of every
dataset and attribute, see :func:`checksums`).
Files are built in memory and written to a temporary name, synced and renamed (:func:`write_hdf5`), so a failed
write leaves nothing behind and a damaged file is refused on reading, naming the dataset.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn

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
FORMAT_VERSION = 3          # 2: checksums (files of format 1 carry none and are read unchecked); 3: transitions
# the transition datasets (qsolver.dipoles) with their shapes: n states, b jackknife blocks, d axes
TRANSITIONS = {"dipoles": "nnd", "dipole_errors": "nnd", "dipole_replicates": "bnnd", "oscillator_strengths": "nn",
               "oscillator_strength_errors": "nn"}
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


CHECKSUMS = "checksums"
_images = itertools.count()       # a name for each in-memory file (HDF5 wants one; nothing is written under it)


def digest(value: Any) -> str:
    """SHA-256 (hex) of a dataset's value or an attribute as h5py reads it: its type, shape and bytes."""
    h = hashlib.sha256()
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogatepass")     # a damaged file can hold any code point
    if isinstance(value, bytes):
        h.update(b"bytes\0" + value)
        return h.hexdigest()
    array = np.asarray(value)
    h.update(f"{array.dtype.str}{array.shape}\0".encode())
    # object arrays (variable-length strings) hold pointers: hash what they point to
    h.update(repr(array.tolist()).encode() if array.dtype.kind == "O" else np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def checksums(f: h5py.File) -> dict[str, dict[str, str]]:
    """The digests of every dataset (by path) and every attribute (``PATH@KEY``; root: ``@KEY``) in ``f``
    but the checksum table itself, as stored in its ``checksums`` attribute."""
    datasets, attributes = {}, {}

    def visit(name: str, obj: h5py.Group | h5py.Dataset) -> None:
        if isinstance(obj, h5py.Dataset):
            datasets[name] = digest(obj[()])
        for key in obj.attrs:
            attributes[f"{name}@{key}"] = digest(obj.attrs[key])

    attributes.update({f"@{key}": digest(f.attrs[key]) for key in f.attrs if key != CHECKSUMS})
    f.visititems(visit)
    return {"datasets": datasets, "attributes": attributes}


def seal(path: str | Path) -> None:
    """Record anew the checksums of the result or checkpoint at ``path``, after editing it on purpose (h5py,
    mode "r+"); reading it afterwards checks the edited values as the file's own."""
    with h5py.File(path, "r+") as f:
        f.attrs[CHECKSUMS] = json.dumps(checksums(f))


def write_hdf5(path: str | Path, fill: Callable[[h5py.File], None]) -> Path:
    """Write the HDF5 file that ``fill(f)`` builds, with its checksums, atomically to ``path``.

    The file is built in memory and written as bytes: HDF5 never touches the disk, so a full or failing disk is
    an ordinary WriteError naming ``path``. (Written directly, HDF5 fails its flush on a full disk and leaves
    objects whose release crashes the interpreter: a segmentation fault after the training.)"""
    with h5py.File(f"qsolver-image-{next(_images)}", "w", driver="core", backing_store=False) as f:
        fill(f)
        f.attrs[CHECKSUMS] = json.dumps(checksums(f))
        f.flush()
        image = f.id.get_file_image()
    return atomic_write(path, image)


def save_result(result: Result, path: str | Path, reference: Reference | None = None) -> Path:
    """Write ``result`` to an HDF5 file at ``path`` (atomically, with checksums), with ``reference`` (levels,
    method, error) when given; saving never computes a reference."""
    if not isinstance(result, Result):
        raise InputError(f"must be a qsolver Result (from solve or load_result), got {type(result).__name__}",
                         field="result")
    if not isinstance(path, (str, Path)):
        raise InputError(f"must be a file path (str or pathlib.Path), got {type(path).__name__}", field="path")

    def write(f: h5py.File) -> None:
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
        if result.transitions:
            group = f.create_group("transitions")
            group.attrs["units"] = ("dipoles: bohr, <phi_i| sum_k x_k |phi_j> per axis (signs follow the states' "
                                    "arbitrary signs); oscillator_strengths: f_ij = (E_j - E_i) |d_ij|^2 / (kappa d); "
                                    "*_errors: jackknife standard errors; dipole_replicates: delete-one-block values")
            for key in TRANSITIONS:      # the replicates only feed error bars: float32 keeps their spread
                group.create_dataset(key, data=np.asarray(result.transitions[key], dtype=np.float32 if "replicates"
                                                          in key else np.float64), compression="gzip")
        if result.system.dimension <= 3 and result.system.particles == 1:
            axes, values = sample_grid(result)
            grid = f.create_group("grid")
            for name, axis in zip("xyz", axes):
                grid[name] = axis
            grid.create_dataset("values", data=values.astype(np.float32), compression="gzip")

    return write_hdf5(path, write)


# A dataset can claim far more than its file stores (chunks never written read as the fill value; compression):
# reading is bounded by this multiple of the file's size plus an allowance, so that a small hostile file
# cannot make load_result allocate gigabytes. Real results read far less than their own size.
READ_FACTOR = 64
READ_ALLOWANCE = 64 * 2**20
# how h5py reports an object it cannot read: a damaged file (truncated, overwritten) or a type NumPy lacks
_H5_ERRORS = (OSError, KeyError, RuntimeError, TypeError, ValueError)
ACTIVATIONS = CHOICES["activation"]


class Reader:
    """Checked reads from an open qsolver HDF5 file (result or checkpoint): each failure is an InputError naming
    the file and the field. Reads are bounded (READ_FACTOR), links and data kept in other files are refused, and
    when the file carries checksums (:meth:`use_checksums`) every value read is checked against its own."""

    def __init__(self, f: h5py.File, source: str, size: int, kind: str = "result"):
        self.f, self.source, self.kind = f, source, kind
        self.budget = READ_FACTOR * size + READ_ALLOWANCE      # bytes that may still be read
        self.sums: dict[str, dict[str, str]] | None = None     # the file's checksums, once use_checksums found them
        self.checked: set[str] = set()

    def use_checksums(self, newest: int) -> int:
        """Read the checksum table and the ``format_version`` (at most ``newest``), which it returns: from format 2
        on a file must carry checksums; older files carry none and are read unchecked."""
        try:
            text = self.f.attrs.get(CHECKSUMS)
        except _H5_ERRORS as exc:
            self.fail(f"cannot be read ({exc})", CHECKSUMS)
        if text is not None:
            sums = self.json(text, CHECKSUMS)
            if set(sums) != {"datasets", "attributes"} or not all(
                    isinstance(table, dict) and all(isinstance(v, str) for v in table.values())
                    for table in sums.values()):
                self.fail("is not a table of dataset and attribute checksums (damaged)", CHECKSUMS)
            self.sums = sums
        version = self.attribute(self.f, "format_version", "format_version")
        version = 1 if version is None else version       # the first results named none
        if not (isinstance(version, (int, np.integer)) and 1 <= version):
            self.fail(f"must be a positive integer, got {brief(version)}", "format_version")
        if version > newest:
            self.fail(f"is {version}: written by a newer qsolver (this one reads up to {newest})", "format_version")
        if version >= 2 and self.sums is None:
            self.fail(f"missing: a file of format {version} carries checksums (damaged or altered)", CHECKSUMS)
        return int(version)

    def verify(self, key: str, value: Any, field: str) -> None:
        """Check ``value`` read as ``key`` (a dataset path, or ``PATH@KEY`` for an attribute) against the file's
        checksum for it, when the file carries checksums."""
        if self.sums is None:
            return
        table = self.sums["attributes" if "@" in key else "datasets"]
        if key not in table:
            self.fail("has no checksum: added or renamed after the file was written", field)
        if digest(value) != table[key]:
            self.fail("does not match its checksum: the file was damaged or altered after it was written", field)
        self.checked.add(key)

    def verify_rest(self) -> None:
        """Check every checksummed dataset and attribute not read yet (those the reader has no use for, such as
        the sampled grid): a damaged file is refused whole, whichever part was damaged."""
        if self.sums is None:
            return
        for name in self.sums["datasets"]:
            if name not in self.checked:
                self.data(name)
        for key in self.sums["attributes"]:
            if key not in self.checked:
                path, _, attribute = key.rpartition("@")
                owner = self.item(path, h5py.HLObject) if path else self.f
                value = self.attribute(owner, attribute, f"{path.replace('/', '.')}.{attribute}".lstrip("."))
                if value is None:
                    self.fail("missing (damaged or altered)", f"{path.replace('/', '.')}.{attribute}".lstrip("."))

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
                self.fail(f"missing (damaged or incomplete qsolver {self.kind})", name)
            return None
        if item is None:     # soft and external links could point anywhere, even into other files
            self.fail(f"is a link; a {self.kind} holds its data itself", name)
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
            self.fail(f"stores its data in other files; a {self.kind} holds its data itself", name)
        if nbytes > self.budget:
            self.fail(f"claims {nbytes} bytes, more than a file of this size holds (damaged)", name)
        self.budget -= nbytes
        try:
            value = ds[()]
        except _H5_ERRORS as exc:
            self.fail(f"cannot be read ({exc})", name)
        self.verify(name, value, name)
        return value

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
            value = item.attrs.get(key)
        except _H5_ERRORS as exc:
            self.fail(f"cannot be read ({exc})", field)
        if value is not None:
            self.verify(f"{item.name.lstrip('/')}@{key}", value, field)
        return value

    def json(self, text: Any, field: str, kind: type = dict) -> Any:
        """A JSON object (or a list, ``kind=list``) from the text of a dataset or attribute."""
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
        if not isinstance(value, kind):
            self.fail(f"must be a JSON {'object' if kind is dict else 'list'}, got {type(value).__name__}", field)
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
DIAGNOSTICS = {"stat_errors": "states", "residuals": "states", "span_errors": "states", "bias_errors": "states",
               "ess_fraction": "numbers",
               "spin_squared": "states", "spin_squared_errors": "states", "spin_penalty": "states",
               "gram_deviation": "number", "raw_gram_deviation": "number", "train_seconds": "number",
               "eval_seconds": "number", "steps_done": "count", "skipped_steps": "count", "eval_samples": "count",
               "threads": "count", "world": "count", "resumed_at_step": "count", "non_finite_energies": "count",
               "rewinds": "counts", "not_eigenstates": "counts", "interrupted": "flag", "diverged": "text",
               "train_dtype": "text", "torch": "text", "stop_reason": "text", "plateau_steps": "counts",
               "symmetry_group": "text", "symmetry_labels": "state texts"}


def _diagnostic_fits(value: Any, form: str, n: int) -> bool:
    """Whether a stored diagnostic has the JSON ``form`` of :data:`DIAGNOSTICS` (``n`` states)."""
    def number(v: Any) -> bool:   # nan and inf are stored values too; integers must convert to float
        return isinstance(v, float) or finite_number(v)

    def count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_INT

    if form == "state texts":
        return isinstance(value, list) and len(value) == n and all(isinstance(v, str) for v in value)
    if form in ("states", "numbers", "counts"):
        if not isinstance(value, list) or (len(value) != n if form == "states" else form == "numbers" and not value):
            return False
        return all(count(v) if form == "counts" else v is None or number(v) for v in value)
    return {"number": number, "count": count, "flag": lambda v: isinstance(v, bool),
            "text": lambda v: isinstance(v, str)}[form](value)


def _read_model(reader: Reader, system) -> Network:
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


def _read_transitions(reader: Reader, n: int, dimension: int) -> dict[str, np.ndarray]:
    """The ``transitions`` group (empty for files written before format 3), each dataset of its shape in
    :data:`TRANSITIONS` for ``n`` states in ``dimension`` axes."""
    group = reader.item("transitions", h5py.Group, required=False)
    if group is None:
        return {}
    out = {}
    for key, axes in TRANSITIONS.items():
        value = reader.numbers(f"transitions/{key}", ndim=len(axes)).astype(np.float64)
        wanted = tuple({"n": n, "d": dimension}.get(a, value.shape[0]) for a in axes)
        if value.shape != wanted or ("b" in axes and value.shape[0] < 2):
            reader.fail(f"must have shape {wanted} ({n} states, {dimension} axes), got {value.shape}",
                        f"transitions/{key}")
        out[key] = value
    return out


@contextmanager
def open_hdf5(path: str | Path, kind: str, missing: str = "no such file") -> Iterator[Reader]:
    """A :class:`Reader` of the HDF5 file at ``path`` (a regular file; ``kind`` names it in messages, ``missing``
    says that it does not exist), closed on leaving."""
    source = str(path)
    path = Path(path)
    if not path.exists():
        raise InputError(missing, source=source)
    if not path.is_file():
        raise InputError(f"not a regular file (a qsolver {kind} is one HDF5 file)", source=source)
    if not h5py.is_hdf5(path):
        raise InputError("not an HDF5 file", source=source)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"damaged HDF5 file ({exc})", source=source) from None
    with f:
        yield Reader(f, source, path.stat().st_size, kind)


def load_result(path: str | Path, device: str | torch.device = "cpu") -> Result:
    """Read a result written by :func:`save_result`; wavefunctions are rebuilt from the stored weights, as a
    float64 model on ``device``. Anything missing, damaged (checksums, from format 2 on) or inconsistent raises
    InputError naming the file and, where it can, the dataset or attribute."""
    if not isinstance(path, (str, Path)):
        raise InputError(f"must be a file path (str or pathlib.Path), got {type(path).__name__}", field="path")
    with open_hdf5(path, "result") as reader:
        f, source = reader.f, reader.source
        label = reader.attribute(f, "format", "format")
        if not (isinstance(label, str) and label == FORMAT):
            reader.fail("not a qsolver result (attribute 'format' missing)", "format")
        reader.use_checksums(FORMAT_VERSION)
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
                        "number": "a number", "flag": "true or false", "text": "a string",
                        "state texts": f"a list of {n} strings"}[form]
                reader.fail(f"'{key}' must be {what}, got {brief(diagnostics[key])}", "diagnostics")
        history = {key: reader.numbers(f"history/{key}")
                   for key in reader.names(reader.item("history", h5py.Group), "history")}
        # the training curves plot step, loss and the running energies against each other
        step = history.get("step")
        steps = len(step) if step is not None and step.ndim == 1 else None
        for key, value in history.items():     # (a run stopped before its first record has empty ones)
            wanted = 2 if key in ("energies", "residuals") else 1
            if (value.ndim != wanted and value.size) or (steps is not None and len(value) != steps):
                reader.fail(f"must be {'a (steps, states) table' if wanted == 2 else 'one value per step'} "
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
        transitions = _read_transitions(reader, n, system.dimension)
        reader.verify_rest()
        result = Result(system=system, energies=energies, errors=errors, model=model.to(torch.float64),
                        coefficients=coefficients, config=config, history=history, diagnostics=diagnostics,
                        observables=observables, transitions=transitions)
    result.model.to(device)    # outside the file: a device this machine lacks is not a damaged file
    return result
