"""The qsolver modules import one another without cycles and only down the layers of LAYERS (data flows one way:
physics → wavefunctions → engine → store → run → reporting → face).

Every import of a qsolver module counts, at module level and inside functions alike: a call-time import
that closes a cycle still ties the modules together, and only works by the accident of import order.
"""
from __future__ import annotations

import ast
from pathlib import Path

import qsolver

ROOT = Path(qsolver.__file__).parent

# Lowest first: a module imports modules of its own layer or of those below, never above. A key names a module,
# or a package with everything in it ("qsolver.references": its __init__ and every submodule); the root package
# names only its own __init__, the public API, which re-exports from the top.
LAYERS: dict[str, tuple[str, ...]] = {
    # fields and files are checked-input and atomic-write helpers that import only errors: every layer uses them
    "base": ("qsolver.config", "qsolver.errors", "qsolver.version", "qsolver.fields", "qsolver.files"),
    # laplacian holds the kinetic operator's arithmetic (jets, Hessian trace, finite differences) that hamiltonian
    # applies and the networks propagate
    "physics": ("qsolver.system", "qsolver.potentials", "qsolver.interactions", "qsolver.molecule",
                "qsolver.hamiltonian", "qsolver.threshold", "qsolver.expression", "qsolver.laplacian"),
    # exact levels from the physics alone; the one-particle network fits its envelopes to fd_grid's coarse states
    "references": ("qsolver.references", "qsolver.fd_grid"),
    "wavefunctions": ("qsolver.sampling", "qsolver.networks"),
    "engine": ("qsolver.training", "qsolver.stopping", "qsolver.estimation", "qsolver.natural", "qsolver.nestedlora", "qsolver.ritz",
               "qsolver.extrapolation", "qsolver.parallel", "qsolver.observables", "qsolver.scales", "qsolver.dipoles",
               "qsolver.symmetry"),
    "store": ("qsolver.result", "qsolver.io"),
    "run": ("qsolver.solver", "qsolver.checkpoint", "qsolver.memory"),
    "reporting": ("qsolver.compare", "qsolver.plots", "qsolver.validate", "qsolver.checks", "qsolver.spectrum"),
    "face": ("qsolver", "qsolver.cli", "qsolver.__main__", "qsolver.bench", "qsolver.scaling", "qsolver.seeds"),
}


def layer_of(module: str) -> str | None:
    """The layer of ``module`` by the longest key of LAYERS that names it or a package holding it; None if none."""
    found = [(len(key), layer) for layer, keys in LAYERS.items() for key in keys
             if module == key or (key != "qsolver" and module.startswith(key + "."))]
    return max(found)[1] if found else None


def module_name(path: Path) -> str:
    """Dotted name of the module in ``path`` (a package's ``__init__.py`` is the package)."""
    parts = ("qsolver",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, name: str, package: str, known: set[str]) -> set[str]:
    """The modules among ``known`` that the source of module ``name`` (in ``package``) imports anywhere."""
    edges = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):                # each extra dot climbs one package
                base = base.rpartition(".")[0]
            base = f"{base}.{node.module}" if node.level and node.module else (base if node.level else node.module)
            # `from pkg import name` imports the submodule pkg.name when there is one, else pkg itself
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        edges |= {t for t in targets if t in known and t != name}
    return edges


def import_graph() -> dict[str, set[str]]:
    """Module → the qsolver modules it imports anywhere in its source (relative imports resolved)."""
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: imported_modules(path.read_text(encoding="utf-8"), name,
                                   name if path.name == "__init__.py" else name.rpartition(".")[0], set(files))
            for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first repeated at the end), or None: depth-first search."""
    state: dict[str, int] = {}      # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_imports_found_at_any_level_and_resolved():
    source = """
import qsolver.io
from . import analytic, KINDS
from .. import result
from ..errors import InputError

def late():
    from ..system import System
    import numpy
"""
    known = {"qsolver", "qsolver.io", "qsolver.result", "qsolver.errors", "qsolver.system", "qsolver.references",
             "qsolver.references.analytic", "qsolver.references.grid"}
    found = imported_modules(source, "qsolver.references.grid", "qsolver.references", known)
    assert found == {"qsolver.io", "qsolver.references.analytic", "qsolver.references", "qsolver.result",
                     "qsolver.errors", "qsolver.system"}
    assert "qsolver.references.analytic" in import_graph()["qsolver.references"]     # a package __init__


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_only_main_imports_cli():
    importers = sorted(name for name, edges in import_graph().items() if "qsolver.cli" in edges)
    assert importers == ["qsolver.__main__"]


def test_find_cycle_reports_the_loop():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_module_has_a_layer():
    missing = sorted(name for name in import_graph() if layer_of(name) is None)
    assert not missing, "; ".join(f"assign {name} to a layer (LAYERS in tests/test_imports.py)" for name in missing)


def test_no_import_runs_up_the_layers():
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    upward = sorted(f"{name} ({layer_of(name)}) imports {target} ({layer_of(target)})"
                    for name, edges in import_graph().items() for target in edges
                    if layer_of(name) and layer_of(target) and rank[layer_of(target)] > rank[layer_of(name)])
    assert not upward, "imports running up the layers:\n" + "\n".join(upward)


def test_layers_name_each_module_once_and_match_packages_by_prefix():
    keys = [key for keys in LAYERS.values() for key in keys]
    assert len(keys) == len(set(keys))
    assert layer_of("qsolver.networks.mlp") == layer_of("qsolver.networks") == "wavefunctions"
    assert layer_of("qsolver.references.grid") == "references"
    assert layer_of("qsolver") == "face" and layer_of("qsolver.unassigned") is None
