"""Potential formulas: correct values on torch float64 tensors, and everything outside the grammar rejected."""
from __future__ import annotations

import ast
import builtins

import numpy as np
import pytest
import torch

from qsolver.expression import compile_expression, coordinate_names, parse

RNG = np.random.default_rng(1234)


def _points(dimension: int, n: int = 257) -> np.ndarray:
    return RNG.uniform(-2.5, 2.5, size=(n, dimension))


def _numpy_value(formula, points: np.ndarray) -> np.ndarray:
    names = dict(zip(coordinate_names(points.shape[1]), points.T))
    return formula(r=np.linalg.norm(points, axis=1), **names)


CASES = [
    # (formula, dimension, the same formula on numpy arrays)
    ("0.5*x**2 + y**2 - 1/sqrt(r**2+0.1)", 2, lambda x, y, r: 0.5 * x**2 + y**2 - 1 / np.sqrt(r**2 + 0.1)),
    ("0.5*x**2 + y**2 - 1/sqrt(r**2+0.1)", 3, lambda x, y, z, r: 0.5 * x**2 + y**2 - 1 / np.sqrt(r**2 + 0.1)),
    ("exp(-r)*cos(x)", 1, lambda x, r: np.exp(-r) * np.cos(x)),
    ("exp(-r)*cos(x)", 3, lambda x, y, z, r: np.exp(-r) * np.cos(x)),
    ("-x", 1, lambda x, r: -x),
    ("-x", 2, lambda x, y, r: -x),
    ("abs(y)**1.5", 2, lambda x, y, r: np.abs(y) ** 1.5),
    ("tanh(z)*log(1+r)", 3, lambda x, y, z, r: np.tanh(z) * np.log(1 + r)),
    ("sin(pi*x)*sin(pi*y)/4", 2, lambda x, y, r: np.sin(np.pi * x) * np.sin(np.pi * y) / 4),
    ("-1/sqrt(r**2 + 0.1) + 0.5*x**2", 2, lambda x, y, r: -1 / np.sqrt(r**2 + 0.1) + 0.5 * x**2),
    ("2**x - 3/(1 + y**2) + +z", 3, lambda x, y, z, r: 2.0**x - 3 / (1 + y**2) + z),
    ("x**-2 + (x - y)*(x + y)", 2, lambda x, y, r: x**-2.0 + (x - y) * (x + y)),
    ("exp(-(x-1)**2) - exp(-(y+1)**2)", 2, lambda x, y, r: np.exp(-(x - 1) ** 2) - np.exp(-(y + 1) ** 2)),
    ("sqrt(abs(x))*cos(2*pi*y)", 2, lambda x, y, r: np.sqrt(np.abs(x)) * np.cos(2 * np.pi * y)),
    ("x1*x4 - x2**2 + r", 4, lambda x1, x2, x3, x4, r: x1 * x4 - x2**2 + r),
    ("0.5*r**2", 5, lambda x1, x2, x3, x4, x5, r: 0.5 * r**2),
]


@pytest.mark.parametrize("text, dimension, reference", CASES, ids=[f"{c[0]}-{c[1]}d" for c in CASES])
def test_values_match_numpy(text, dimension, reference):
    points = _points(dimension)
    value = compile_expression(text, dimension)(torch.from_numpy(points))
    assert isinstance(value, torch.Tensor)
    assert value.dtype == torch.float64
    assert value.shape == (points.shape[0],)
    np.testing.assert_allclose(value.numpy(), _numpy_value(reference, points), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("text, expected", [("1", 1.0), ("pi", np.pi), ("-2", -2.0), ("+pi/2", np.pi / 2),
                                            ("2*3", 6.0), ("exp(0)", 1.0), ("sqrt(4)**3", 8.0)])
def test_constant_formulas_give_one_value_per_point(text, expected):
    x = torch.from_numpy(_points(2, 11))
    value = compile_expression(text, 2)(x)
    assert isinstance(value, torch.Tensor) and value.dtype == torch.float64 and value.shape == (11,)
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-15)


def test_float32_points_stay_float32():
    x = torch.from_numpy(_points(2, 7)).to(torch.float32)
    assert compile_expression("x*y + 1", 2)(x).dtype == torch.float32
    assert compile_expression("1", 2)(x).dtype == torch.float32


def test_gradients_flow_through_the_formula():
    x = torch.from_numpy(_points(2, 5)).requires_grad_(True)
    compile_expression("0.5*x**2 + y**2", 2)(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x.detach().numpy() * np.array([1.0, 2.0]), rtol=1e-12)


def test_formulas_are_never_handed_to_eval_or_exec(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec must not be used")

    real_compile = builtins.compile

    def compile_to_ast_only(source, filename, mode, flags=0, *args, **kwargs):
        if not flags & ast.PyCF_ONLY_AST:  # ast.parse itself compiles to a tree; byte code is not allowed
            refuse()
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(builtins, "compile", compile_to_ast_only)
    x = torch.from_numpy(_points(3, 9))
    value = compile_expression("exp(-r)*cos(x) + tanh(z)", 3)(x)
    assert value.shape == (9,)


def test_parse_returns_a_tree_for_valid_text():
    assert isinstance(parse("  x + 1  ", 1), ast.Expression)
    assert isinstance(parse("r", 1), ast.Expression)


@pytest.mark.parametrize("text, dimension", [("z", 2), ("x*y*z", 2), ("y", 1), ("z + 1", 1), ("x4", 3),
                                             ("x", 4), ("x5", 4), ("x0", 4)])
def test_names_beyond_the_dimension_are_rejected(text, dimension):
    with pytest.raises(ValueError, match="unknown name"):
        parse(text, dimension)
    with pytest.raises(ValueError):
        compile_expression(text, dimension)


FORBIDDEN = [
    "__import__('os').system('echo hi')",
    "x.real",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__class__",
    "foo",
    "__builtins__",
    "eval(x)",
    "eval('1')",
    "exec('x')",
    "open(x)",
    "getattr(x, 'real')",
    "lambda: 1",
    "(lambda: 1)()",
    "x[0]",
    "x<1",
    "x == y",
    "'abc'",
    "b'abc'",
    "'x' + 'y'",
    "exp(x=1)",
    "exp(**x)",
    "exp(*x)",
    "exp(x, y)",
    "exp()",
    "f'{x}'",
    "x^2",
    "x & y",
    "x | y",
    "~x",
    "x << 1",
    "x // 2",
    "x % 2",
    "x @ y",
    "not x",
    "x and y",
    "x if y else 1",
    "(a := 1)",
    "[x]",
    "[c for c in x]",
    "{}",
    "x, y",
    "True",
    "None",
    "...",
    "1j",
    "exp",
    "pi()",
    "x()",
    "exp(x)(y)",
    "1" + "0" * 400,
    "-" * 100_000 + "x",
    "+".join(["x"] * 100_000),
    "(" * 600 + "x" + ")" * 600,
    "x+" * 700 + "x",
]
SYNTAX_ERRORS = ["", "   ", "\n", "x +", "(x", "x y", "1 = x", "exp(x", "x**", "import os", "x; y", "x\x00"]


@pytest.mark.parametrize("text", FORBIDDEN + SYNTAX_ERRORS)
def test_forbidden_or_broken_formulas_raise_value_error(text):
    with pytest.raises(ValueError):
        parse(text, 2)
    with pytest.raises(ValueError):
        compile_expression(text, 2)


@pytest.mark.parametrize("value", [None, 3, 1.5, b"x", ["x"]])
def test_non_string_input_is_rejected(value):
    with pytest.raises(ValueError):
        compile_expression(value, 2)


def test_rejected_formulas_are_not_executed(tmp_path):
    target = tmp_path / "executed"
    attacks = [
        f"__import__('pathlib').Path({str(target)!r}).touch()",
        f"open({str(target)!r}, 'w')",
        f"exec(\"open({str(target)!r}, 'w')\")",
        f"eval(\"open({str(target)!r}, 'w')\")",
        f"[open({str(target)!r}, 'w') for x in [1]]",
        f"(lambda: open({str(target)!r}, 'w'))()",
    ]
    for text in attacks:
        with pytest.raises(ValueError):
            compile_expression(text, 3)
        assert not target.exists(), text
    assert list(tmp_path.iterdir()) == []


def test_error_messages_name_the_offending_part():
    with pytest.raises(ValueError, match="__import__"):
        parse("__import__('os')", 2)
    with pytest.raises(ValueError, match="'foo'"):
        parse("x + foo", 2)
    with pytest.raises(ValueError, match="BitXor"):
        parse("x^2", 2)
    with pytest.raises(ValueError, match="Attribute"):
        parse("x.real", 2)


HOSTILE = {
    # formula: words of the error
    "9**9**9": "exponent", "(x**2)**10**10": "exponent", "x**1e308": "exponent", "x**-2000": "exponent",
    "1e999": "not a finite number", "10**400": "not a finite number", "exp(1000)": "not a finite number",
    "1/0": "not a finite number", "0**-1": "not a finite number", "log(0)": "not a finite number",
    "sqrt(-1)": "not a finite number", "(-8)**(1/3)": "not a finite number", "x + 0*1e999": "not a finite number",
    "1" + "0" * 400: "too large", "-" * 5000 + "x": "too deeply nested", "exp(" * 300 + "x" + ")" * 300: "nested",
    "+".join(["(" + "+".join(["x"] * 100) + ")"] * 30): "too large", "x" * 20_000: "too long",
    "+".join(["x"] * 100_000): "too long",
}


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: t if len(t) < 30 else f"{t[:20]}...({len(t)} chars)")
def test_hostile_formulas_are_refused_quickly(text):
    import time

    start = time.perf_counter()
    with pytest.raises(ValueError, match=HOSTILE[text]):
        parse(text, 2)
    assert time.perf_counter() - start < 2.0      # no big-integer arithmetic, no deep recursion


@pytest.mark.parametrize("text", ["2**1000*x", "x**1000", "x**-12 - x**-6", "1e-400 + x", "x/0"])
def test_large_but_bounded_formulas_still_work(text):
    value = compile_expression(text, 1)(torch.linspace(0.5, 1.5, 5, dtype=torch.float64)[:, None])
    assert value.shape == (5,)


def test_constant_parts_are_folded_once_into_floats(monkeypatch):
    """'2*pi*x' evaluates exactly as the formula with 2π written out, and evaluating makes no scalar tensors."""
    x = torch.from_numpy(_points(2, 33))
    for text, folded in (("2*pi*x", f"{2 * float(np.pi)!r}*x"),
                         ("exp(-1)*y + sqrt(2)", f"{torch.tensor(-1.0, dtype=torch.float64).exp().item()!r}*y + "
                                                 f"{torch.tensor(2.0, dtype=torch.float64).sqrt().item()!r}"),
                         ("x**(1/2 + 1/2)", "x**1.0"), ("-(3)*x", "-3.0*x")):
        assert torch.equal(compile_expression(text, 2)(x), compile_expression(folded, 2)(x)), text
    tree = parse("(1 + 2)*x + cos(pi)*r", 2)
    assert sorted(type(n).__name__ for n in ast.walk(tree) if isinstance(n, (ast.Constant, ast.Call))) == \
        ["Constant", "Constant"]
    potential = compile_expression("(1 + 2)*x + cos(pi)*r - exp(2)", 2)

    def no_scalars(*args, **kwargs):
        raise AssertionError("a scalar tensor was made while evaluating")

    monkeypatch.setattr(torch, "tensor", no_scalars)
    assert potential(x).shape == (33,)
