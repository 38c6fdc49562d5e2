"""The Python API answers bad arguments in its own words (issue 20, item 5): an InputError naming the argument, by
the rules and messages of system files and the command line, before anything trains; a shipped system's name or a
file path stands for a System; a user's callable potential or interaction is tried on a few points first.
Hypothesis drives random argument types and values through solve() and System() (house style of test_fuzz.py)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, configuration, given, settings
from hypothesis import strategies as st

import qsolver
from qsolver import cli
from qsolver.errors import InputError
from qsolver.potentials import CallablePotential, Harmonic, Sum

TINY = dict(steps=1, batch=8, eval_samples=64, eval_blocks=2, progress=False, threads=1)


@pytest.fixture(scope="module", autouse=True)
def _hypothesis_home(tmp_path_factory):
    """Keep Hypothesis's folder out of the checkout (as tests/test_fuzz.py does)."""
    configuration.set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    configuration.set_hypothesis_home_dir(None)


def _run(examples: int, test) -> None:
    settings(max_examples=examples, deadline=None, derandomize=True, database=None,
             suppress_health_check=[HealthCheck.too_slow])(test)()


@pytest.fixture(scope="module")
def oscillator():
    return qsolver.load_system("harmonic_1d")


@pytest.mark.parametrize("argument, value, detail", [
    ("n_states", "2", "must be of type int, got '2'"), ("seed", "a", "must be of type int, got 'a'"),
    ("steps", 2.5, "must be of type int, got 2.5"), ("steps", True, "must be of type int, got True"),
    ("seed", -1, "must be non-negative, got -1"), ("n_states", 0, "must be positive, got 0"),
    ("checkpoint_every", "x", "must be a positive number, got 'x'"), ("checkpoint", 3, "must be a file path, got 3")])
def test_bad_arguments_raise_input_error_naming_them(oscillator, argument, value, detail):
    with pytest.raises(InputError) as caught:
        qsolver.solve(oscillator, **{**TINY, argument: value})
    assert caught.value.field == argument and caught.value.detail == detail
    assert caught.value.source is None          # the caller's argument, not the system's file


def test_the_command_line_refuses_with_the_same_message(capsys):
    assert cli.main(["solve", "harmonic_1d", "--seed", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "qsolver: error: field '--seed': must be non-negative, got -1"


def test_a_shipped_name_or_a_path_stands_for_a_system():
    by_name = qsolver.solve("harmonic_1d", n_states=2, **TINY)
    by_path = qsolver.solve(Path(qsolver.shipped_systems()["harmonic_1d"]), n_states=2, **TINY)
    assert by_name.system.name == by_path.system.name == "harmonic_1d"
    np.testing.assert_allclose(qsolver.reference("harmonic_1d", 2).energies, [0.5, 1.5])
    for bad in (3, None, b"harmonic_1d"):
        with pytest.raises(InputError) as caught:
            qsolver.solve(bad, **TINY)
        assert caught.value.field == "system"
    with pytest.raises(InputError) as caught:
        qsolver.reference("harmonic_1d", "2")
    assert caught.value.field == "n_states"


def _column(x):
    return 0.5 * (x**2).sum(-1, keepdim=True)


def _numpy(x):
    return np.asarray(0.5 * (x**2).sum(-1))


def _fails(x):
    raise ZeroDivisionError("no")


@pytest.mark.parametrize("fn, got", [(_column, "a tensor of shape (5, 1)"), (_numpy, "numpy.ndarray"),
                                     (lambda x: 1.0, "float"), (lambda x: (x**2).sum(-1).double(), "torch.float64"),
                                     (_fails, "raised ZeroDivisionError")])
def test_a_callable_potential_is_checked_before_training(fn, got):
    """Shape (N, 1) failed in ritz.py after training; a NumPy array in fd_grid.py: now System() refuses both."""
    with pytest.raises(InputError) as caught:
        qsolver.System("c", 1, fn)
    assert caught.value.field == "potential" and got in caught.value.detail
    with pytest.raises(InputError) as caught:                     # a term of a sum is named as the file names it
        qsolver.System("c", 1, Sum([Harmonic([1.0], [0.0]), CallablePotential(fn)]))
    assert caught.value.field == "potential.terms[1]"
    system = qsolver.System("ok", 2, lambda x: 0.5 * (x**2).sum(-1))
    assert qsolver.solve(system, n_states=1, **TINY).n_states == 1


def test_a_callable_interaction_is_checked_before_training():
    trap = {"kind": "harmonic", "omega": [1.0], "center": [0.0]}
    with pytest.raises(InputError) as caught:
        qsolver.System("pair", 1, trap, particles=2, interaction=lambda r: r[:, None])
    assert caught.value.field == "interaction" and "(5, 1)" in caught.value.detail
    assert qsolver.System("pair", 1, trap, particles=2, interaction=lambda r: 1 / torch.sqrt(r**2 + 1)).particles == 2


HOSTILE = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.integers(2**62, 2**64),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5), st.just([1]),
                    st.just(object()), st.just(math.inf))
ARGUMENTS = {"n_states": st.one_of(st.sampled_from([1, 2]), HOSTILE), "steps": st.one_of(st.just(1), HOSTILE),
             "seed": st.one_of(st.sampled_from([0, 7]), HOSTILE), "device": st.one_of(st.just("cpu"), HOSTILE),
             "dtype": st.one_of(st.sampled_from(["auto", "float64"]), HOSTILE),
             "batch": st.one_of(st.just(8), HOSTILE), "eval_samples": st.one_of(st.just(64), HOSTILE),
             "eval_blocks": st.one_of(st.just(2), HOSTILE), "lr": st.one_of(st.just(1e-2), HOSTILE),
             "checkpoint_every": st.one_of(st.just(60.0), HOSTILE), "nesting": st.one_of(st.just("joint"), HOSTILE)}
SYSTEMS = st.one_of(st.sampled_from(["harmonic_1d", "SYSTEM"]), HOSTILE)


def test_random_arguments_give_a_result_or_an_input_error_naming_one(oscillator):
    """solve(system, **random arguments): a Result, or an InputError naming an argument it was given (the system
    argument: field "system", or a name that is no file, named as the source); never another exception."""
    @given(SYSTEMS, st.dictionaries(st.sampled_from(sorted(ARGUMENTS)), st.none(), max_size=4).flatmap(
        lambda keys: st.fixed_dictionaries({k: ARGUMENTS[k] for k in keys})))
    def check(system, arguments):
        system = oscillator if system == "SYSTEM" else system
        tiny = {k: v for k, v in TINY.items() if k not in arguments}
        try:
            result = qsolver.solve(system, **arguments, **tiny)
        except InputError as exc:
            named_file = isinstance(system, str) and exc.source is not None and Path(exc.source) == Path(system)
            assert exc.field in {*arguments, "system"} or named_file, (exc, arguments)
        else:
            assert np.isfinite(result.energies).any()

    _run(40, check)


OUTPUTS = st.sampled_from(["ok", "column", "numpy", "float", "list", "short", "double", "int", "raise", "none"])


def _potential(kind: str):
    def fn(x):
        v = 0.5 * (x**2).sum(-1)
        return {"ok": v, "column": v[:, None], "numpy": v.numpy() if kind == "numpy" else v, "float": 1.0,
                "list": v.tolist(), "short": v[:-1], "double": v.double(), "int": v.long(), "none": None}[kind]

    def raising(x):
        raise RuntimeError("boom")

    return raising if kind == "raise" else fn


def test_random_callable_outputs_are_accepted_only_when_right():
    """A callable potential of any output kind: System() accepts exactly (N,) tensors of the input's dtype (an
    "double" one is right on float64 input only, so refused too) and otherwise raises InputError naming it."""
    @given(OUTPUTS, st.integers(1, 3))
    def check(kind, dimension):
        try:
            qsolver.System("c", dimension, _potential(kind))
        except InputError as exc:
            assert kind != "ok" and exc.field == "potential"
        else:
            assert kind == "ok"

    _run(30, check)
