"""Fuzzed and hostile input (Hypothesis): system files and tables, potential formulas, HDF5 result files and
command lines. Every case either works or raises InputError naming the file (and the field where it can); the
command line exits 2 with one line on stderr and writes nothing.

Each test runs at its base count of examples in the default run and at ten times that count, marked slow
(``python -m pytest tests/test_fuzz.py -m slow``). Examples are derandomized and no example database is written,
so every run sees the same cases.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import re
import time
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, configuration, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import qsolver
import qsolver.bench
import qsolver.cli
import qsolver.compare
import qsolver.scaling
import qsolver.seeds
import qsolver.solver
from qsolver.checks import EXIT_FLAGGED
from qsolver.config import SOLVER_KEYS
from qsolver.errors import InputError
from qsolver.expression import FUNCTIONS, compile_expression
from qsolver.io import load_result
from qsolver.system import SYSTEMS_DIR, System, load_system, system_from_dict

SCALES = [pytest.param(1, id="fast"), pytest.param(10, id="slow", marks=pytest.mark.slow)]


@pytest.fixture(scope="module", autouse=True)
def _hypothesis_home(tmp_path_factory):
    """Keep Hypothesis's folder (it caches the constants it reads from the source even without an example
    database) out of the checkout: by default it is ./.hypothesis."""
    configuration.set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    configuration.set_hypothesis_home_dir(None)


def _run(examples: int, test: Callable[..., None]) -> None:
    """Run a ``@given`` test on ``examples`` derandomized examples, without an example database."""
    settings(max_examples=examples, deadline=None, derandomize=True, database=None,
             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                    HealthCheck.filter_too_much])(test)()


# ------------------------------------------------------------------------------------------- hostile values

NUMBERS = st.one_of(
    st.sampled_from([0, -1, 1, 2, 3, -0.0, 0.5, 1e-320, 1e308, -1e308, 2**63, -(2**63) - 1, 2**64, 10**400,
                     -(10**400), math.nan, math.inf, -math.inf]),
    st.integers(), st.floats())
WORDS = st.sampled_from(["", "coulomb", "harmonic", "box", "expression", "sum", "callable", "none", "analytic",
                         "grid", "pyscf", "literature", "bohr", "angstrom", "H", "He", "Xx", "x**2", "9**9**9",
                         "1e999", "__import__('os')", "r", "nan", "joint", "cuda", "meta", "a\nb"])
SCALARS = st.one_of(NUMBERS, st.booleans(), WORDS, st.text(max_size=10))
FIELDS = ["name", "dimension", "particles", "spin", "kinetic", "potential", "interaction", "molecule", "solver",
          "reference", "kind", "charges", "centers", "omega", "center", "lengths", "expr", "terms", "strength",
          "atoms", "unit", "charge", "literature", "levels", "source", "precision", "basis", *SOLVER_KEYS]
KEYS = st.one_of(st.sampled_from(FIELDS), st.text(max_size=6))
JUNK = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(KEYS, inner, max_size=3)), max_leaves=10)

# valid systems of every potential kind, molecules, two particles, [solver] and [reference] tables: the seeds
# that mutations garble
BASES: list[dict] = [
    {"name": "osc1", "dimension": 1, "potential": {"kind": "harmonic", "omega": 1.0}},
    {"name": "osc3", "dimension": 3, "kinetic": 0.5,
     "potential": {"kind": "harmonic", "omega": [1.0, 2.0, 0.5], "center": [0.0, 1.0, -1.0]},
     "solver": {"states": 4, "lr": 0.01, "nesting": "joint", "shift": 1.5, "seed": 7}},
    {"name": "h2d", "dimension": 2, "kinetic": 1.0,
     "potential": {"kind": "coulomb", "charges": [1.0], "centers": [[0.0, 0.0]]},
     "solver": {"states": 9, "batch": 512}, "reference": {"kind": "analytic"}},
    {"name": "box", "dimension": 2, "potential": {"kind": "box", "lengths": [1.0, 2.0], "center": [0.5, 0.0]}},
    {"name": "dw", "dimension": 2, "potential": {"kind": "expression", "expr": "(x**2 - 1)**2 + 0.5*y**2"},
     "reference": {"kind": "grid"}},
    {"name": "mix", "dimension": 2, "potential": {"kind": "sum", "terms": [
        {"kind": "harmonic", "omega": 1.0}, {"kind": "coulomb", "charges": [0.5]},
        {"kind": "sum", "terms": [{"kind": "expression", "expr": "exp(-r**2)"}]}]}},
    {"name": "h2", "molecule": {"atoms": [["H", [0.0, 0.0, -0.7]], ["H", [0.0, 0.0, 0.7]]], "unit": "bohr"},
     "spin": 0, "reference": {"kind": "pyscf", "basis": "cc-pvdz"}},
    {"name": "heplus", "molecule": {"atoms": "He 0 0 0", "unit": "angstrom", "charge": 1}},
    {"name": "dots", "dimension": 2, "particles": 2, "spin": 2, "potential": {"kind": "harmonic", "omega": 0.5},
     "interaction": {"kind": "expression", "expr": "1/sqrt(r**2 + 0.1)"},
     "reference": {"kind": "literature", "literature": {"levels": [1.0, 2.0], "source": "made up"}}},
    {"name": "hooke", "dimension": 3, "particles": 2, "kinetic": 0.5,
     "potential": {"kind": "harmonic", "omega": 0.5}, "interaction": {"kind": "coulomb", "strength": 1.0},
     "solver": {"states": 2, "extra_states": 1, "threads": 1}},
]


def _paths(tree: Any, path: tuple = ()) -> list[tuple]:
    """The path (keys and indices) of every value inside ``tree``, the root excluded."""
    out = [path] if path else []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        out += _paths(value, path + (key,))
    return out


def _mutate(data: st.DataObject, tree: dict, junk: st.SearchStrategy = JUNK) -> dict:
    """``tree`` with one or two random edits, mostly of the same kind as the value edited (another number for a
    number, a longer or shorter list, an extra or a missing field) so that many results still reach the deeper
    checks; now and then a value replaced by anything at all."""
    tree = copy.deepcopy(tree)
    for _ in range(data.draw(st.integers(1, 2))):
        paths = _paths(tree)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = tree
        for key in path[:-1]:
            parent = parent[key]
        key, value = path[-1], parent[path[-1]]
        if data.draw(st.integers(0, 4)) == 0:
            if data.draw(st.booleans()):
                del parent[key]
            else:
                parent[key] = data.draw(junk)
        elif isinstance(value, dict):
            if value and data.draw(st.booleans()):
                del value[data.draw(st.sampled_from(sorted(value)))]
            else:
                value[data.draw(KEYS)] = data.draw(junk)
        elif isinstance(value, list):
            if value and data.draw(st.booleans()):
                value.pop(data.draw(st.integers(0, len(value) - 1)))
            else:
                value.append(copy.deepcopy(value[0]) if value else data.draw(junk))
        elif isinstance(value, str):
            parent[key] = data.draw(st.one_of(WORDS, st.text(max_size=8)))
        else:
            parent[key] = data.draw(NUMBERS)
    return tree


def _toml_string(text: str) -> str:
    escaped = "".join("\\" + c if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c
                      for c in text)
    return f'"{escaped}"'


def _toml_value(value: Any) -> str:
    """``value`` in TOML syntax (tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml(tree: dict) -> str:
    """A system file: plain fields first, then one [section] per table."""
    plain = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in tree.items() if not isinstance(v, dict)]
    tables = [f"[{_toml_key(k)}]\n" + "".join(f"{_toml_key(a)} = {_toml_value(b)}\n" for a, b in v.items())
              for k, v in tree.items() if isinstance(v, dict)]
    return "\n".join(plain) + "\n" + "".join(tables)


def _check_loaded(system: System) -> None:
    """A system that loaded evaluates its terms and survives the round trip through a result file's JSON."""
    x = torch.linspace(-2.0, 2.0, 5 * system.dimension, dtype=torch.float64).reshape(5, system.dimension)
    assert system.potential(x).shape == (5,)
    if system.particles == 2:
        r = torch.linspace(0.1, 3.0, 6, dtype=torch.float64)
        assert system.interaction(r).shape == (6,)
    again = system_from_dict(json.loads(system.to_json()), "stored.h5", stored=True)
    assert again.to_json() == system.to_json()


def _check_error(exc: InputError, source: str | None) -> None:
    """The error names the file it is about, first."""
    assert exc.source == source, exc
    assert str(exc).startswith(f"file {source}" if source else "")


# --------------------------------------------------------------------------------------------- system files

@pytest.mark.parametrize("scale", SCALES)
def test_system_files(tmp_path: Path, scale: int) -> None:
    """Garbled TOML system files: load_system returns a working system or raises InputError naming the file and
    the field (wrong types, missing and extra fields, bad numbers, wrong vector lengths, unknown kinds)."""
    path = tmp_path / "system.toml"

    @given(st.data())
    def check(data: st.DataObject) -> None:
        tree = _mutate(data, data.draw(st.sampled_from(BASES)))
        path.write_text(_toml(tree), encoding="utf-8")
        try:
            system = load_system(path)
        except InputError as exc:
            _check_error(exc, str(path))
            assert exc.field, exc       # the file parsed as TOML: the message names the field at fault
            return
        _check_loaded(system)

    _run(60 * scale, check)


@pytest.mark.parametrize("scale", SCALES)
def test_system_tables(scale: int) -> None:
    """system_from_dict on mutated and wholly random tables, with None (JSON null) and Python values a TOML file
    cannot hold."""
    junk = st.one_of(JUNK, st.none(), st.tuples(NUMBERS, NUMBERS))

    @given(st.data())
    def check(data: st.DataObject) -> None:
        if data.draw(st.booleans()):
            tree = _mutate(data, data.draw(st.sampled_from(BASES)), junk)
        else:
            tree = data.draw(st.one_of(st.dictionaries(st.sampled_from(FIELDS), junk, max_size=6), junk))
        try:
            system = system_from_dict(tree, "table.toml")
        except InputError as exc:
            _check_error(exc, "table.toml")
            return
        _check_loaded(system)

    _run(40 * scale, check)


@pytest.mark.parametrize("scale", SCALES)
def test_garbled_system_text(tmp_path: Path, scale: int) -> None:
    """The shipped system files with characters inserted, deleted or replaced, and arbitrary bytes."""
    path = tmp_path / "garbled.toml"
    shipped = sorted(SYSTEMS_DIR.glob("*.toml"))
    edits = st.lists(st.tuples(st.floats(0, 1), st.sampled_from(["insert", "delete", "replace"]),
                               st.sampled_from(list("[]{}=\"'.,#\n 0123456789-+eEnaxi")) | st.characters()),
                     min_size=1, max_size=3)

    @given(st.sampled_from(shipped), edits, st.binary(max_size=200), st.integers(0, 4))
    def check(source: Path, changes: list, noise: bytes, binary: int) -> None:
        text = source.read_text(encoding="utf-8")
        for where, action, char in changes:
            i = int(where * len(text))
            text = text[:i] + ("" if action == "delete" else char) + text[i + (action != "insert"):]
        path.write_bytes(noise if binary == 0 else text.encode("utf-8", "surrogatepass"))
        try:
            _check_loaded(load_system(path))
        except InputError as exc:
            _check_error(exc, str(path))

    _run(20 * scale, check)


# ------------------------------------------------------------------------------------------------ formulas

NAMES_2D = ["x", "y", "r", "pi"]
CONSTANTS = st.one_of(st.sampled_from(["0", "1", "2", "0.5", "1e-3", "9", "10", "1e308", "1e999", "1e-400",
                                       "10" + "0" * 400, "3.14159"]),
                      st.floats(0, 1e6, allow_nan=False).map(repr), st.integers(0, 10**6).map(str))


def _formulas(names: list[str]) -> st.SearchStrategy[str]:
    """Formulas from the grammar (numbers, names, + - * / **, unary signs, the functions), including
    hostile constants and exponents."""
    leaf = st.one_of(CONSTANTS, st.sampled_from(names))
    return st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["-", "+"]), inner).map("".join),
        st.tuples(st.sampled_from(sorted(FUNCTIONS)), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(inner, st.sampled_from(["9**9", "10**10", "1e308", "-2000", "(1/3)", "2", "-1"]))
        .map(lambda t: f"{t[0]}**{t[1]}")), max_leaves=12)


def _check_formula(text: str, dimension: int = 2) -> None:
    """Compiling either refuses with ValueError or gives V(x) of shape (N,), in bounded time."""
    start = time.perf_counter()
    try:
        potential = compile_expression(text, dimension)
    except ValueError:
        assert time.perf_counter() - start < 5.0
        return
    x = torch.linspace(-3.0, 3.0, 64 * dimension, dtype=torch.float64).reshape(64, dimension)
    value = potential(x)
    assert value.shape == (64,) and value.dtype == torch.float64
    assert time.perf_counter() - start < 5.0     # generous: a machine busy with other work, not a hang


@pytest.mark.parametrize("scale", SCALES)
def test_formulas_from_the_grammar(scale: int) -> None:
    """Random formulas: refused with ValueError or evaluated; in a system file, a refusal is an InputError naming
    potential.expr (or interaction.expr for a pair interaction, a formula in r)."""

    @given(_formulas(NAMES_2D), _formulas(["r", "pi"]))
    def check(text: str, radial: str) -> None:
        _check_formula(text)
        try:
            system = System("f", 2, {"kind": "expression", "expr": text}, particles=2,
                            interaction={"kind": "expression", "expr": radial}, reference="none", source="f.toml")
        except InputError as exc:
            assert exc.source == "f.toml" and exc.field in ("potential.expr", "interaction.expr")
            return
        assert system.interaction(torch.linspace(0.1, 4.0, 8, dtype=torch.float64)).shape == (8,)

    _run(40 * scale, check)


@pytest.mark.parametrize("scale", SCALES)
def test_garbage_formulas(scale: int) -> None:
    """Arbitrary text and token soup (keywords, attributes, brackets, operators outside the grammar)."""
    tokens = st.sampled_from(["x", "y", "r", "pi", "(", ")", "**", "*", "-", "+", "/", "//", "%", "1e999", "9",
                              "exp(", "sqrt(", "log", ",", ".", "[", "]", "__class__", "lambda", "if", ":", "'",
                              " ", "\n", "\x00", "=", "==", "@", "~", "j", "0x1f", "_", "x1", "import"])

    @given(st.one_of(st.text(max_size=40), st.lists(tokens, max_size=30).map("".join)))
    def check(text: str) -> None:
        _check_formula(text)

    _run(30 * scale, check)


@pytest.mark.parametrize("scale", SCALES)
def test_huge_and_deep_formulas(scale: int) -> None:
    """Deep nesting, towers of powers, long sums and very long strings are refused quickly."""
    shapes = st.sampled_from([
        lambda n: "(" * n + "x" + ")" * n, lambda n: "-" * n + "x", lambda n: "+-" * n + "1",
        lambda n: "**".join(["9"] * n), lambda n: "x" + "**2" * n, lambda n: "+".join(["x"] * n),
        lambda n: "exp(" * n + "x" + ")" * n, lambda n: "1" * n, lambda n: "x" * n,
        lambda n: "(x**2)**" + "10**" * n + "10"])

    @given(shapes, st.integers(3, 300_000))
    def check(shape: Callable[[int], str], n: int) -> None:
        _check_formula(shape(n))

    _run(10 * scale, check)


# -------------------------------------------------------------------------------------------- result files

@pytest.fixture(scope="module")
def result_files(tmp_path_factory) -> dict[str, bytes]:
    """A real one-particle and a real two-particle result file (seconds of training), by name."""
    folder = tmp_path_factory.mktemp("results")
    one = qsolver.solve(qsolver.load_system("harmonic_1d"), steps=20, eval_samples=2000, eval_blocks=10,
                        progress=False, threads=1)
    two = qsolver.solve(qsolver.load_system("harmonium"), n_states=2, steps=10, eval_samples=2000, eval_blocks=10,
                        progress=False, threads=1)
    paths = {"one": qsolver.save_result(one, folder / "one.h5"), "two": qsolver.save_result(two, folder / "two.h5")}
    return {name: path.read_bytes() for name, path in paths.items()}


def _objects(f: h5py.File) -> list[str]:
    """The paths of every group and dataset in ``f``."""
    names: list[str] = []
    f.visit(names.append)
    return names


ARRAYS = st.one_of(
    hnp.arrays(st.sampled_from([np.float64, np.float32, np.int64, np.int8, np.uint16, np.bool_, np.complex128]),
               hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
    hnp.arrays(np.dtype("S6"), hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)),
    st.just(np.zeros(3, dtype=[("a", "f8"), ("b", "i4")])))
ATTRIBUTES = st.one_of(JUNK.map(json.dumps), st.text(max_size=30), ARRAYS.filter(lambda a: a.size > 0),
                       NUMBERS.filter(lambda v: not isinstance(v, int) or abs(v) < 2**63))


def _check_result_file(path: Path) -> None:
    """load_result works (and the result evaluates and validates) or raises InputError naming the file."""
    try:
        result = load_result(path)
    except InputError as exc:
        _check_error(exc, str(path))
        return
    d, particles = result.system.dimension, result.system.particles
    points = np.linspace(-1.0, 1.0, 3 * particles * d).reshape((3, d) if particles == 1 else (3, 2, d))
    assert result.wavefunctions(points).shape == (3, result.n_states)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert qsolver.cli.main(["validate", str(path)]) in (0, 2, EXIT_FLAGGED)


def _tamper(data: st.DataObject, path: Path, action: str) -> None:
    """One damage of the kind ``action`` to the result file at ``path``."""
    raw = path.read_bytes()
    if action == "truncate":
        path.write_bytes(raw[:data.draw(st.integers(0, len(raw) - 1))])
        return
    if action == "overwrite":
        at = data.draw(st.integers(0, len(raw) - 1))
        noise = data.draw(st.binary(min_size=1, max_size=64))
        path.write_bytes(raw[:at] + noise + raw[at + len(noise):])
        return
    with h5py.File(path, "r+") as f:
        names = _objects(f)
        if not names:
            return
        name = data.draw(st.sampled_from(names))
        if action == "delete":
            del f[name]
        elif action == "move":
            others = [n for n in names if not (n + "/").startswith(name + "/") and not (name + "/").startswith(n + "/")]
            if others:                 # swap two objects, e.g. energies and errors, or two layers' weights
                other = data.draw(st.sampled_from(others))
                f.move(name, "swap__")
                f.move(other, name)
                f.move("swap__", other)
            else:
                f.move(name, name + "_renamed")
        elif action == "dataset":
            del f[name]
            f.create_dataset(name, data=data.draw(ARRAYS))
        elif action == "group":
            del f[name]
            f.create_group(name)
        elif action == "link":
            del f[name]
            f[name] = data.draw(st.sampled_from([h5py.SoftLink("/energies"), h5py.SoftLink("/nowhere"),
                                                 h5py.ExternalLink("other.h5", "/energies")]))
        elif action == "hollow":     # a huge dataset whose chunks were never written: it reads as zeros
            del f[name]
            f.create_dataset(name, shape=(10**5, 10**5), dtype="f8", chunks=(100, 100))
        elif action == "attribute":
            owner = data.draw(st.sampled_from([f, f[name]]))
            key = data.draw(st.sampled_from(sorted({"config", "diagnostics", "format", *owner.attrs})))
            owner.attrs[key] = data.draw(ATTRIBUTES)
        else:
            _tamper_json(data, f, garble=action == "garble")


def _tamper_json(data: st.DataObject, f: h5py.File, garble: bool) -> None:
    """Mutate or garble one of the JSON records still intact: the root's config and diagnostics, the model's
    config, the system dataset."""
    model = f.get("model")
    records = [(owner, key) for owner, key in ((f, "config"), (f, "diagnostics"), (model, "config"))
               if isinstance(owner, (h5py.Group, h5py.Dataset)) and isinstance(owner.attrs.get(key), str)]
    system = f.get("system")
    if isinstance(system, h5py.Dataset) and system.dtype.kind == "O":
        records.append((system, None))
    if not records:
        return
    owner, key = data.draw(st.sampled_from(records))
    text = owner.attrs[key] if key else owner[()].decode("utf-8", "replace")
    if garble:
        i = data.draw(st.integers(0, max(len(text) - 1, 0)))
        text = text[:i] + data.draw(st.sampled_from(["", "}", "{", '"', "]", ",", "x", "\\"])) + text[i + 1:]
    else:
        try:
            tree = json.loads(text)
        except ValueError:
            tree = None
        tree = _mutate(data, tree) if isinstance(tree, dict) and tree else data.draw(JUNK)
        text = json.dumps(tree)
    if key:
        owner.attrs[key] = text
    else:
        del f["system"]
        f["system"] = text


@pytest.mark.parametrize("scale", SCALES)
def test_tampered_result_files(tmp_path: Path, result_files: dict[str, bytes], scale: int) -> None:
    """Truncated and overwritten files, deleted, renamed and replaced datasets and groups, links, hollow huge
    datasets, tampered attributes and garbled JSON records."""
    path = tmp_path / "tampered.h5"

    @given(st.data())
    def check(data: st.DataObject) -> None:
        path.write_bytes(result_files[data.draw(st.sampled_from(sorted(result_files)))])
        edits = data.draw(st.lists(st.sampled_from(["delete", "move", "dataset", "group", "link", "attribute",
                                                    "json", "garble", "hollow"]), max_size=2))
        damage = data.draw(st.sampled_from([[], [], [], ["truncate"], ["overwrite"]]))
        for action in edits + damage or ["truncate"]:     # byte damage last: h5py cannot edit a damaged file
            _tamper(data, path, action)
        _check_result_file(path)

    _run(40 * scale, check)


def _write_tree(group: h5py.Group, tree: dict) -> None:
    for key, value in tree.items():
        if isinstance(value, dict):
            _write_tree(group.create_group(key), value)
        else:
            group.create_dataset(key, data=value)


@pytest.mark.parametrize("scale", SCALES)
def test_foreign_and_non_hdf5_files(tmp_path: Path, scale: int) -> None:
    """HDF5 files of other programs (random groups, datasets and attributes, some claiming to be qsolver
    results) and files that are not HDF5 at all (random bytes, some behind the HDF5 signature)."""
    path = tmp_path / "foreign.h5"
    names = st.sampled_from(["system", "energies", "errors", "coefficients", "model", "history", "observables",
                             "data", "weights.0", "centers"])
    trees = st.recursive(st.dictionaries(names, ARRAYS, max_size=3),
                         lambda inner: st.dictionaries(names, st.one_of(ARRAYS, inner), max_size=3), max_leaves=6)

    @given(trees, st.dictionaries(st.sampled_from(["format", "config", "diagnostics", "units"]), ATTRIBUTES),
           st.booleans(), st.binary(max_size=300), st.sampled_from([b"", b"\x89HDF\r\n\x1a\n"]), st.booleans())
    def check(tree: dict, attrs: dict, claim: bool, noise: bytes, signature: bytes, hdf5: bool) -> None:
        if hdf5:
            with h5py.File(path, "w") as f:
                _write_tree(f, tree)
                f.attrs.update(attrs)
                if claim:
                    f.attrs["format"] = "qsolver-result"
        else:
            path.write_bytes(signature + noise)
        _check_result_file(path)

    _run(20 * scale, check)


# ------------------------------------------------------------------------------------------------- command line

class _Reached(Exception):
    """Raised in place of the expensive part (training, benchmarks, figures): the arguments were accepted."""


def _refuse_work(*args, **kwargs):
    raise _Reached


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def _call(argv: list[str]) -> tuple[int | str, str, str]:
    """``qsolver.cli.main(argv)`` in this process: (exit status or "reached", stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()        # bench --threads sets them for the whole process
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code: int | str = qsolver.cli.main(argv)
    except SystemExit as exc:                 # argparse: usage errors, --help, --version
        code = exc.code
    except _Reached:
        code = "reached"
    finally:
        torch.set_num_threads(threads)
    return code, out.getvalue(), err.getvalue()


HOSTILE = st.one_of(
    st.sampled_from(["0", "-1", "1001", "9223372036854775808", "1" + "0" * 30, "abc", "", "1.5", "nan", "inf",
                     "-inf", "1e999", "0x10", " 2", "good.toml", "bad.toml", "notes.txt", "one.h5", "junk.h5",
                     "folder", "folder.h5", "missing.h5", "harmonic_1d", "-", "/proc/forbidden/x.h5",
                     "notes.txt/x.h5", "r.txt", ".", "meta", "cuda", "cuda:x", "tpu", "float16"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12))


def _value(*valid: str) -> st.SearchStrategy[str]:
    """Mostly one of the ``valid`` values, so that whole command lines often get through to the deeper checks;
    else anything hostile (a bad number, a path of the wrong kind, text)."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), HOSTILE)


SETTINGS = st.one_of(
    st.sampled_from(["batch=64", "nesting=joint", "lr=1e-3", "seed=3", "states=2", "shift=0.5"]),
    st.tuples(st.sampled_from([*SOLVER_KEYS, "foo", "", " states"]),
              st.one_of(HOSTILE, st.sampled_from(["joint", "[1, 2]", "{a = 1}", '"x"', "true", "-0.5"]))
              ).map("=".join),
    HOSTILE)
FLAGS = {
    "solve": {"--states": _value("1", "3"), "--steps": _value("1", "10"), "--seed": _value("0", "7"),
              "--checkpoint-every": _value("60", "0.5", "inf"), "--device": _value("cpu"),
              "--dtype": _value("auto", "float32", "float64"), "--out": _value("out/r.h5", "r.h5", "out/a/r.hdf5"),
              "--set": SETTINGS, "--checkpoint": _value("out/c.h5"), "--resume": _value("one.h5"),
              "--quiet": None, "--no-report": None},
    "validate": {},
    "compare": {"--reference": _value("analytic"), "--out": _value("figures", "out/figures")},
    "plot": {"--out": _value("figures", "out/figures"), "--linewidth": _value("0.01", "0")},
    "systems": {},
    "bench": {"--budget": _value("10", "0.5"), "--presets": _value("default", "adam"), "--dims": _value("1", "3"),
              "--set": SETTINGS, "--counts": _value("4", "8"), "--configs": _value("1x1", "2x1"),
              "--states": _value("2"), "--steps": _value("5"), "--batch": _value("64"), "--seed": _value("0"),
              "--threads": _value("0", "1"), "--device": _value("cpu"), "--out": _value("bench"), "--quiet": None,
              "--seeds": _value("1", "0", "2000"), "--jobs": _value("1", "0"), "--samples": _value("1000", "10"),
              "--results": _value("results", ".")},
}
RESULTS = _value("one.h5", "two.h5")
POSITIONALS = {"solve": st.lists(_value("good.toml", "harmonic_1d", "harmonium"), min_size=1, max_size=1),
               "validate": st.lists(RESULTS, min_size=1, max_size=1),
               "compare": st.lists(RESULTS, min_size=1, max_size=1), "plot": st.lists(RESULTS, min_size=1, max_size=3),
               "systems": st.just([]),
               "bench": st.tuples(_value("laplacian", "accuracy", "steps", "scaling", "seeds", "strengths"),
                                  st.lists(_value("good.toml", "harmonic_1d"), max_size=1)
                                  ).map(lambda t: [t[0], *t[1]])}


@st.composite
def _command_lines(draw) -> list[str]:
    command = draw(st.sampled_from(sorted(FLAGS)))
    argv = [command, *draw(POSITIONALS[command])]
    flags = FLAGS[command]
    for flag in draw(st.lists(st.sampled_from(sorted(flags)), max_size=3)) if flags else []:
        argv += [flag] if flags[flag] is None else [flag, draw(flags[flag])]
    if draw(st.integers(0, 9)) == 0:          # now and then a stray token: an unknown flag, --help, text
        argv.insert(draw(st.integers(0, len(argv))), draw(st.one_of(
            st.sampled_from(["--help", "--version", "--bogus", "-x", "--states=2", "--"]), HOSTILE)))
    return argv


@pytest.mark.parametrize("scale", SCALES)
def test_command_lines(tmp_path: Path, monkeypatch, result_files: dict[str, bytes], scale: int) -> None:
    """Random subcommands, flags and values in a scratch folder: each works (or reaches the expensive part,
    replaced here) or exits 2 with one line on stderr naming the file or field; nothing is ever written."""
    for target in ((qsolver.solver, "solve"), (qsolver.bench, "laplacian_costs"), (qsolver.bench, "step_costs"),
                   (qsolver.bench, "solve"), (qsolver.scaling, "scaling_bench"), (qsolver.seeds, "seeds_bench"),
                   (qsolver.compare, "compare"), (qsolver.bench, "strength_bench"),
                   (qsolver.cli, "_report")):
        monkeypatch.setattr(*target, _refuse_work)
    monkeypatch.chdir(tmp_path)
    Path("good.toml").write_text('name = "good"\ndimension = 1\n[potential]\nkind = "harmonic"\nomega = 1.0\n')
    Path("bad.toml").write_text('name = "bad"\ndimension = 1\n[potential]\nkind = "morse"\n')
    Path("notes.txt").write_text("not a system\n")
    Path("junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)))
    for name, raw in result_files.items():
        Path(f"{name}.h5").write_bytes(raw)
    Path("folder").mkdir()
    Path("folder.h5").mkdir()
    before = _listing(tmp_path)

    @given(_command_lines())
    def check(argv: list[str]) -> None:
        code, out, err = _call(argv)
        assert _listing(tmp_path) == before, argv
        assert "Traceback" not in err
        if code == 2:
            lines = err.splitlines()
            assert len(lines) == 1 and lines[0].startswith("qsolver: error: "), (argv, err)
            assert "file " in lines[0] or "field '" in lines[0] or lines[0].startswith("qsolver: error: qsolver")
            assert out == "", argv
        else:
            assert code in (0, EXIT_FLAGGED, "reached"), (argv, code, err)

    _run(50 * scale, check)


def test_resume_from_a_file_that_is_no_checkpoint_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    """A real run (no stand-in for training) that fails reading its --resume file leaves no output folder."""
    monkeypatch.chdir(tmp_path)
    Path("osc.toml").write_text('name = "osc"\ndimension = 1\n[potential]\nkind = "harmonic"\nomega = 1.0\n')
    Path("junk.h5").write_bytes(b"junk")
    before = _listing(tmp_path)
    code, out, err = _call(["solve", "osc.toml", "--out", "runs/deep/osc.h5", "--resume", "junk.h5", "--quiet"])
    assert code == 2 and len(err.splitlines()) == 1 and "junk.h5" in err
    assert _listing(tmp_path) == before


def test_console_script_usage_error_is_one_line(tmp_path: Path) -> None:
    """A real process: argparse's usage errors are one line too, with status 2."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "qsolver.cli", "solve", "x.toml", "--states", "many"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("qsolver: error: qsolver solve: argument --states") and \
        len(proc.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


# ------------------------------------- former crashes in molecule.py, interactions.py and references/literature.py

KNOWN_CRASHES = {
    "nan-nuclear-charge": {"name": "m", "molecule": {"atoms": [[math.nan, [0.0, 0.0, 0.0]]], "unit": "bohr"}},
    "huge-int-coordinate": {"name": "m", "molecule": {"atoms": [["H", [10**400, 0, 0]]], "unit": "bohr"}},
    "huge-int-strength": {"name": "p", "dimension": 1, "particles": 2, "potential": {"kind": "harmonic", "omega": 1},
                          "interaction": {"strength": 10**400}},
    "list-interaction-kind": {"name": "p", "dimension": 1, "particles": 2,
                              "potential": {"kind": "harmonic", "omega": 1}, "interaction": {"kind": ["x"]}},
    "angstrom-overflow": {"name": "m", "molecule": {"atoms": [["H", [1e308, 0, 0]], ["H", [-1e308, 0, 0]]],
                                                    "unit": "angstrom"}},
    "literature-huge-int": {"name": "l", "dimension": 1, "potential": {"kind": "harmonic", "omega": 1.0},
                            "reference": {"kind": "literature", "literature": {"levels": [10**400], "source": "s"}}},
}


@pytest.mark.parametrize("table", KNOWN_CRASHES.values(), ids=KNOWN_CRASHES.keys())
def test_known_crashes_outside_this_change(table: dict) -> None:
    """Each table either raises InputError or loads, survives the round trip through a result file and gives its
    literature levels (or an InputError saying why not)."""
    try:
        system = system_from_dict(table, "known.toml")
    except InputError:
        return
    _check_loaded(system)
    if system.reference == "literature":
        with contextlib.suppress(InputError):
            qsolver.reference(system, 1)


def _refused(table: dict, field: str, levels: int = 0) -> InputError:
    """``table`` (loaded, and its ``levels`` literature levels asked for when given) raises InputError naming
    known.toml and ``field``."""
    with pytest.raises(InputError) as info:
        system = system_from_dict(table, "known.toml")
        if levels:
            qsolver.reference(system, levels)
    _check_error(info.value, "known.toml")
    assert info.value.field == field, info.value
    return info.value


def test_a_nan_or_infinite_nuclear_charge_is_refused() -> None:
    for z in (math.nan, math.inf, -math.inf):
        table = {"name": "m", "molecule": {"atoms": [["H", [0.0, 0.0, 1.0]], [z, [0.0, 0.0, 0.0]]], "unit": "bohr"}}
        _refused(table, "molecule.atoms[1]")


def test_an_integer_coordinate_beyond_the_float_range_is_refused() -> None:
    _refused(KNOWN_CRASHES["huge-int-coordinate"], "molecule.atoms[0]")


def test_coordinates_that_overflow_on_the_angstrom_to_bohr_conversion_are_refused() -> None:
    exc = _refused(KNOWN_CRASHES["angstrom-overflow"], "molecule.atoms[0]")
    assert "float range" in exc.detail
    table = copy.deepcopy(KNOWN_CRASHES["angstrom-overflow"])   # the same numbers in bohr stay finite: they load
    table["molecule"]["unit"] = "bohr"
    _check_loaded(system_from_dict(table, "known.toml"))


def test_an_integer_interaction_strength_beyond_the_float_range_is_refused() -> None:
    _refused(KNOWN_CRASHES["huge-int-strength"], "interaction.strength")


def test_an_interaction_kind_that_is_a_list_or_a_table_is_refused() -> None:
    for kind in (["x"], {"kind": "coulomb"}):
        table = copy.deepcopy(KNOWN_CRASHES["list-interaction-kind"])
        table["interaction"]["kind"] = kind
        _refused(table, "interaction.kind")


def test_integer_literature_levels_beyond_the_float_range_are_refused() -> None:
    _refused(KNOWN_CRASHES["literature-huge-int"], "reference.literature.levels", levels=1)
