"""Safe parsing of potential formulas such as ``-1/sqrt(r**2 + 0.1) + 0.5*x**2``.

The text is parsed with :mod:`ast` and checked against a small grammar (numbers, the coordinate names,
``+ - * / **``, unary signs and a fixed list of functions); it is then evaluated by walking the tree on
torch tensors. Nothing is passed to ``eval`` or ``exec``.

Parsing also bounds the work a formula can ask for: the text, its node count and its nesting are limited, and
every constant part (``2*pi``, ``exp(-1)``, ``9**9**9``) is folded once into one float64 number, computed as
evaluation would compute it; a constant part that is not finite (overflow, division by zero, outside a
function's domain) and a power with a constant exponent beyond ±MAX_EXPONENT are refused.
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
MAX_LENGTH = 10_000   # characters: far beyond any hand-written formula, and checked before the parser runs
MAX_NODES = 2_000     # syntax-tree nodes: each costs one tensor operation per evaluation
MAX_DEPTH = 200       # nesting: checking and evaluating recurse once per level
MAX_EXPONENT = 1_000  # |p| of a constant exponent: x**p beyond this is 0 or inf for every |x| far from 1
_BINARY = {ast.Add: torch.add, ast.Sub: torch.sub, ast.Mult: torch.mul, ast.Div: torch.div, ast.Pow: torch.pow}


def coordinate_names(dimension: int) -> list[str]:
    """Names of the Cartesian coordinates: x, y, z for d <= 3, else x1 ... xd."""
    return ["x", "y", "z"][:dimension] if dimension <= 3 else [f"x{i + 1}" for i in range(dimension)]


def _shown(node: ast.AST) -> str:
    """The source of a sub-expression for an error message, shortened."""
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


def _folded(node: ast.AST, value: torch.Tensor) -> ast.Constant:
    """The constant part ``node`` as one number: the float64 value evaluation would compute, refused unless it
    is finite (so that no formula hides an inf or nan, and no constant is recomputed on every call)."""
    number = value.item()
    if not math.isfinite(number):
        raise ValueError(f"constant part '{_shown(node)}' is not a finite number (overflow, division by zero or "
                         "outside a function's domain)")
    return ast.Constant(number)


def _compile(node: ast.AST, names: set[str]) -> ast.AST:
    """Check ``node`` against the grammar and return it with every constant part folded to an ast.Constant
    (a float); unary plus is dropped. Raises ValueError naming the offending part."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(f"constant {node.value!r} is not a number")
        try:
            value = float(node.value)
        except OverflowError:
            raise ValueError("constant is too large") from None
        if not math.isfinite(value):
            raise ValueError(f"constant {_shown(node)} is not a finite number")
        return ast.Constant(value)
    if isinstance(node, ast.Name):
        if node.id in names:
            return node
        if node.id in CONSTANTS:
            return ast.Constant(CONSTANTS[node.id])
        allowed = ", ".join(sorted(names | set(CONSTANTS)))
        raise ValueError(f"unknown name '{node.id}' (allowed: {allowed})")
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise ValueError(f"operator {type(node.op).__name__} is not allowed (use + - * / **)")
        left, right = _compile(node.left, names), _compile(node.right, names)
        if isinstance(node.op, ast.Pow) and isinstance(right, ast.Constant) and abs(right.value) > MAX_EXPONENT:
            raise ValueError(f"exponent {right.value:g} in '{_shown(node)}' is too large (at most "
                             f"{MAX_EXPONENT} in magnitude)")
        if isinstance(left, ast.Constant) and isinstance(right, ast.Constant):
            # as evaluation used to compute it per call: a float64 tensor on the left, a Python float on the right
            return _folded(node, _BINARY[type(node.op)](torch.tensor(left.value, dtype=torch.float64), right.value))
        return ast.BinOp(left, node.op, right)
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise ValueError(f"operator {type(node.op).__name__} is not allowed")
        operand = _compile(node.operand, names)
        if isinstance(node.op, ast.UAdd):
            return operand
        return ast.Constant(-operand.value) if isinstance(operand, ast.Constant) else ast.UnaryOp(node.op, operand)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            what = node.func.id if isinstance(node.func, ast.Name) else ast.dump(node.func)[:40]
            raise ValueError(f"function '{what}' is not allowed (allowed: {', '.join(FUNCTIONS)})")
        if len(node.args) != 1 or node.keywords:
            raise ValueError(f"function '{node.func.id}' takes exactly one argument")
        arg = _compile(node.args[0], names)
        if isinstance(arg, ast.Constant):
            return _folded(node, FUNCTIONS[node.func.id](torch.tensor(arg.value, dtype=torch.float64)))
        return ast.Call(node.func, [arg], [])
    raise ValueError(f"'{type(node).__name__}' is not allowed in a potential expression")


def parse(text: str, dimension: int, names: set[str] | None = None) -> ast.Expression:
    """Parse and check ``text`` (variables: the coordinates and r, or ``names``) and fold its constant parts;
    raise ValueError naming the offending part."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("expression must be a non-empty string")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"formula is too long ({len(text)} characters, at most {MAX_LENGTH})")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid formula: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ValueError("formula is too deeply nested") from None
    except UnicodeEncodeError:   # lone surrogates, which no source file can hold
        raise ValueError("not a valid formula: characters that are not valid Unicode text") from None
    # bound size and nesting iteratively first, so that checking and evaluating cannot overflow the stack
    stack, count = [(tree, 0)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise ValueError(f"formula is too deeply nested (more than {MAX_DEPTH} levels)")
        if count > MAX_NODES:
            raise ValueError(f"formula is too large (more than {MAX_NODES} syntax nodes)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    body = _compile(tree.body, names if names is not None else set(coordinate_names(dimension)) | {"r"})
    return ast.Expression(body)


def _evaluate(node: ast.AST, env: dict[str, torch.Tensor]) -> torch.Tensor | float:
    """The value of a tree from :func:`parse`: a tensor, or a float for a constant formula (constant parts are
    folded, so every operation below has a tensor operand)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, env), _evaluate(node.right, env))
    if isinstance(node, ast.UnaryOp):   # unary minus: parse drops unary plus
        return -_evaluate(node.operand, env)
    return FUNCTIONS[node.func.id](_evaluate(node.args[0], env))   # ast.Call


def compile_expression(text: str, dimension: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return V(x) for x of shape (N, d) -> (N,), from a checked formula."""
    tree = parse(text, dimension)
    names = coordinate_names(dimension)

    def potential(x: torch.Tensor) -> torch.Tensor:
        env = {name: x[:, i] for i, name in enumerate(names)}
        env["r"] = torch.linalg.vector_norm(x, dim=-1)
        value = _evaluate(tree.body, env)
        if not isinstance(value, torch.Tensor):  # a constant formula such as "1" or "pi"
            value = torch.tensor(value, dtype=x.dtype, device=x.device)
        return value.expand(x.shape[0]) if value.dim() == 0 else value

    return potential


def compile_radial(text: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return W(r) for a tensor r of any shape (same shape out), from a checked formula in ``r`` alone."""
    tree = parse(text, 1, names={"r"})

    def interaction(r: torch.Tensor) -> torch.Tensor:
        value = _evaluate(tree.body, {"r": r})
        if not isinstance(value, torch.Tensor):
            value = torch.tensor(value, dtype=r.dtype, device=r.device)
        return value.expand(r.shape)

    return interaction
