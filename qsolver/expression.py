"""Safe parsing of potential formulas such as ``-1/sqrt(r**2 + 0.1) + 0.5*x**2``.

The text is parsed with :mod:`ast` and checked against a small grammar (numbers, the coordinate names,
``+ - * / **``, unary signs and a fixed list of functions); it is then evaluated by walking the tree on
torch tensors. Nothing is passed to ``eval`` or ``exec``.
"""
from __future__ import annotations

import ast
import math
from typing import Callable

import torch

FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "sin": torch.sin, "cos": torch.cos,
    "tanh": torch.tanh, "abs": torch.abs,
}
CONSTANTS = {"pi": math.pi}
MAX_DEPTH = 500
_BINARY = {ast.Add: torch.add, ast.Sub: torch.sub, ast.Mult: torch.mul, ast.Div: torch.div, ast.Pow: torch.pow}


def coordinate_names(dimension: int) -> list[str]:
    """Names of the Cartesian coordinates: x, y, z for d <= 3, else x1 ... xd."""
    return ["x", "y", "z"][:dimension] if dimension <= 3 else [f"x{i + 1}" for i in range(dimension)]


def _check(node: ast.AST, names: set[str]) -> None:
    if isinstance(node, ast.Expression):
        return _check(node.body, names)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(f"constant {node.value!r} is not a number")
        try:
            float(node.value)
        except OverflowError:
            raise ValueError("constant is too large") from None
        return None
    if isinstance(node, ast.Name):
        if node.id not in names and node.id not in CONSTANTS:
            allowed = ", ".join(sorted(names | set(CONSTANTS)))
            raise ValueError(f"unknown name '{node.id}' (allowed: {allowed})")
        return None
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise ValueError(f"operator {type(node.op).__name__} is not allowed (use + - * / **)")
        _check(node.left, names)
        return _check(node.right, names)
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise ValueError(f"operator {type(node.op).__name__} is not allowed")
        return _check(node.operand, names)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            what = node.func.id if isinstance(node.func, ast.Name) else ast.dump(node.func)[:40]
            raise ValueError(f"function '{what}' is not allowed (allowed: {', '.join(FUNCTIONS)})")
        if len(node.args) != 1 or node.keywords:
            raise ValueError(f"function '{node.func.id}' takes exactly one argument")
        return _check(node.args[0], names)
    raise ValueError(f"'{type(node).__name__}' is not allowed in a potential expression")


def parse(text: str, dimension: int, names: set[str] | None = None) -> ast.Expression:
    """Parse and check ``text`` (variables: the coordinates and r, or ``names``); raise ValueError naming the
    offending part."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("expression must be a non-empty string")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid formula: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ValueError("formula is too deeply nested") from None
    stack = [(tree, 0)]  # bound the nesting iteratively, so that checking and evaluating cannot overflow the stack
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"formula is too deeply nested (more than {MAX_DEPTH} levels)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    _check(tree, names if names is not None else set(coordinate_names(dimension)) | {"r"})
    return tree


def _evaluate(node: ast.AST, env: dict[str, torch.Tensor]) -> torch.Tensor | float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, env)
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return env[node.id] if node.id in env else CONSTANTS[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, env), _evaluate(node.right, env)
        if not isinstance(left, torch.Tensor) and not isinstance(right, torch.Tensor):
            left = torch.tensor(left, dtype=env["r"].dtype, device=env["r"].device)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, env)
        return -value if isinstance(node.op, ast.USub) else value
    fn = FUNCTIONS[node.func.id]  # ast.Call, checked by _check
    arg = _evaluate(node.args[0], env)
    if not isinstance(arg, torch.Tensor):
        arg = torch.tensor(arg, dtype=env["r"].dtype, device=env["r"].device)
    return fn(arg)


def compile_expression(text: str, dimension: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return V(x) for x of shape (N, d) -> (N,), from a checked formula."""
    tree = parse(text, dimension)
    names = coordinate_names(dimension)

    def potential(x: torch.Tensor) -> torch.Tensor:
        env = {name: x[:, i] for i, name in enumerate(names)}
        env["r"] = torch.linalg.vector_norm(x, dim=-1)
        value = _evaluate(tree, env)
        if not isinstance(value, torch.Tensor):  # a constant formula such as "1" or "pi"
            value = torch.tensor(value, dtype=x.dtype, device=x.device)
        return value.expand(x.shape[0]) if value.dim() == 0 else value

    return potential


def compile_radial(text: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return W(r) for a tensor r of any shape (same shape out), from a checked formula in ``r`` alone."""
    tree = parse(text, 1, names={"r"})

    def interaction(r: torch.Tensor) -> torch.Tensor:
        value = _evaluate(tree, {"r": r})
        if not isinstance(value, torch.Tensor):
            value = torch.tensor(value, dtype=r.dtype, device=r.device)
        return value.expand(r.shape)

    return interaction
