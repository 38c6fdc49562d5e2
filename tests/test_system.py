"""System definitions: shipped files load, Python construction works, bad input names the file and the field."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import qsolver
from qsolver import InputError, System, load_system, shipped_systems
from qsolver.potentials import Box, CallablePotential, Coulomb, Expression, Harmonic, Sum

def _close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-12, atol: float = 1e-12) -> None:
    np.testing.assert_allclose(actual.detach().numpy(), expected.detach().numpy(), rtol=rtol, atol=atol)


HEAD = 'name = "test"\ndimension = 2\n'
HARMONIC = '[potential]\nkind = "harmonic"\nomega = 1.0\n'


# ---------------------------------------------------------------------------------------------- shipped systems

def test_the_shipped_systems_include_the_documented_ones():
    shipped = shipped_systems()
    assert {"harmonic_2d", "hydrogen_2d"} <= set(shipped)
    assert all(path.is_file() and path.suffix == ".toml" for path in shipped.values())


@pytest.mark.parametrize("name", sorted(shipped_systems()))
def test_every_shipped_system_loads_by_name_and_by_path(name):
    path = shipped_systems()[name]
    by_name, by_path, by_str = load_system(name), load_system(path), qsolver.load_system(str(path))
    assert by_name.name == name
    assert by_name.to_dict() == by_path.to_dict() == by_str.to_dict()
    assert by_name.source == str(path)
    x = torch.rand(16, by_name.dimension, dtype=torch.float64) + 0.5
    value = by_name.potential(x)
    assert value.shape == (16,) and torch.isfinite(value).all()


def test_shipped_system_is_found_even_if_a_folder_of_that_name_exists(tmp_path, monkeypatch):
    # e.g. running from results/, where a previous run left results/hydrogen_2d/
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hydrogen_2d").mkdir()
    assert load_system("hydrogen_2d").name == "hydrogen_2d"


def test_hydrogen_2d_matches_the_paper_convention():
    system = load_system("hydrogen_2d")
    assert system.dimension == 2 and system.kinetic == 1.0
    assert isinstance(system.potential, Coulomb) and system.potential.charges == [1.0]


def test_a_system_file_written_by_the_user_loads(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('# κ = ½, V = ½ω²x²\nname = "mine"\ndimension = 1\nkinetic = 0.5\n[potential]\nkind = "sum"\n'
                    'terms = [{kind = "harmonic", omega = 2.0}, {kind = "expression", expr = "0.1*x**4"}]\n'
                    '[solver]\nstates = 3\nsteps = 10\n[reference]\nkind = "none"\n', encoding="utf-8")
    system = load_system(path)
    assert system.source == str(path) and system.solver == {"states": 3, "steps": 10}
    assert system.reference == "none"
    assert isinstance(system.potential, Sum)
    x = torch.linspace(-2, 2, 9, dtype=torch.float64)[:, None]
    expected = 0.5 * 4.0 * x[:, 0] ** 2 + 0.1 * x[:, 0] ** 4
    _close(system.potential(x), expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------- from Python

def _points(d: int, n: int = 32) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).uniform(-2, 2, size=(n, d)))


def test_system_from_python_with_a_dict_potential():
    system = System(name="osc", dimension=2, potential={"kind": "harmonic", "omega": [1.0, 2.0]})
    assert isinstance(system.potential, Harmonic)
    assert system.kinetic == 0.5 and system.particles == 1 and system.source is None
    x = _points(2)
    _close(system.potential(x), 0.5 * (x[:, 0] ** 2 + 4 * x[:, 1] ** 2), rtol=1e-12, atol=0)


def test_system_from_python_with_a_dict_expression():
    system = System(name="e", dimension=3, potential={"kind": "expression", "expr": "exp(-r)*cos(x)"})
    assert isinstance(system.potential, Expression)
    x = _points(3)
    expected = torch.exp(-torch.linalg.vector_norm(x, dim=-1)) * torch.cos(x[:, 0])
    _close(system.potential(x), expected, rtol=1e-12, atol=1e-12)


def test_system_from_python_with_a_potential_object():
    coulomb = Coulomb([1.0], [[0.0, 0.0]])
    system = System(name="h", dimension=2, potential=coulomb, kinetic=1.0)
    assert system.potential is coulomb
    x = _points(2)
    _close(system.potential(x), -1 / torch.linalg.vector_norm(x, dim=-1))
    box = System(name="b", dimension=2, potential=Box([2.0, 3.0], [0.0, 0.0]))
    assert isinstance(box.potential, Box)


def test_system_from_python_with_a_callable_wraps_it():
    def quartic(x: torch.Tensor) -> torch.Tensor:
        return (x**4).sum(-1) - x[:, 0]

    system = System(name="q", dimension=2, potential=quartic)
    assert isinstance(system.potential, CallablePotential)
    assert system.potential.fn is quartic
    x = _points(2)
    _close(system.potential(x), quartic(x), rtol=0, atol=0)
    assert system.to_dict()["potential"]["kind"] == "callable"


def test_system_from_python_with_a_lambda():
    system = System(name="l", dimension=1, potential=lambda x: 0.5 * x[:, 0] ** 2)
    x = _points(1)
    _close(system.potential(x), 0.5 * x[:, 0] ** 2)


@pytest.mark.parametrize("kwargs, field", [
    (dict(dimension=0), "dimension"),
    (dict(dimension=-1), "dimension"),
    (dict(dimension="two"), "dimension"),
    (dict(dimension=2.0), "dimension"),
    (dict(kinetic=-0.5), "kinetic"),
    (dict(kinetic=0), "kinetic"),
    (dict(kinetic="x"), "kinetic"),
    (dict(name=""), "name"),
    (dict(particles=11), "particles"),
    (dict(potential=3), "potential"),
    (dict(potential={"kind": "nope"}), "potential.kind"),
    (dict(potential={"kind": "expression", "expr": "__import__('os').system('echo hi')"}), "potential.expr"),
    (dict(potential={"kind": "expression", "expr": "z"}), "potential.expr"),
    (dict(solver={"states": 0}), "solver.states"),
    (dict(solver={"states": "many"}), "solver.states"),
    (dict(solver={"colour": 1}), "solver.colour"),
    (dict(reference="exact"), "reference.kind"),
])
def test_system_from_python_rejects_bad_input(kwargs, field):
    args = dict(name="s", dimension=2, potential={"kind": "harmonic", "omega": 1.0}) | kwargs
    with pytest.raises(InputError) as info:
        System(**args)
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------------------------------------- bad files

BAD_FILES = {
    # id: (file text, field named in the error)
    "unknown-kind": (HEAD + '[potential]\nkind = "morse"\n', "potential.kind"),
    "kind-not-a-string": (HEAD + '[potential]\nkind = ["coulomb"]\ncharges = [1.0]\n', "potential.kind"),
    "kind-a-table": (HEAD + '[potential]\nkind = {a = 1}\n', "potential.kind"),
    "kind-missing": (HEAD + '[potential]\nomega = 1.0\n', "potential.kind"),
    "missing-name": ('dimension = 2\n' + HARMONIC, "name"),
    "missing-dimension": ('name = "test"\n' + HARMONIC, "dimension"),
    "missing-potential": (HEAD + 'kinetic = 0.5\n', "potential"),
    "missing-charges": (HEAD + '[potential]\nkind = "coulomb"\n', "potential.charges"),
    "missing-omega": (HEAD + '[potential]\nkind = "harmonic"\n', "potential.omega"),
    "missing-lengths": (HEAD + '[potential]\nkind = "box"\n', "potential.lengths"),
    "missing-expr": (HEAD + '[potential]\nkind = "expression"\n', "potential.expr"),
    "dimension-two": ('name = "test"\ndimension = "two"\n' + HARMONIC, "dimension"),
    "dimension-float": ('name = "test"\ndimension = 2.0\n' + HARMONIC, "dimension"),
    "dimension-zero": ('name = "test"\ndimension = 0\n' + HARMONIC, "dimension"),
    "dimension-negative": ('name = "test"\ndimension = -1\n' + HARMONIC, "dimension"),
    "kinetic-string": (HEAD + 'kinetic = "x"\n' + HARMONIC, "kinetic"),
    "kinetic-negative": (HEAD + 'kinetic = -0.5\n' + HARMONIC, "kinetic"),
    "kinetic-zero": (HEAD + 'kinetic = 0\n' + HARMONIC, "kinetic"),
    "kinetic-nan": (HEAD + 'kinetic = nan\n' + HARMONIC, "kinetic"),
    "name-not-a-string": ('name = 3\ndimension = 2\n' + HARMONIC, "name"),
    "particles-eleven": (HEAD + 'particles = 11\n' + HARMONIC, "particles"),
    "potential-not-a-table": (HEAD + 'potential = "harmonic"\n', "potential"),
    "charges-not-a-list": (HEAD + '[potential]\nkind = "coulomb"\ncharges = 1.0\n', "potential.charges"),
    "charges-strings": (HEAD + '[potential]\nkind = "coulomb"\ncharges = ["one"]\n', "potential.charges"),
    "charges-empty": (HEAD + '[potential]\nkind = "coulomb"\ncharges = []\n', "potential.charges"),
    "centers-short-point": (HEAD + '[potential]\nkind = "coulomb"\ncharges = [1.0]\ncenters = [[0.0]]\n',
                            "potential.centers"),
    "centers-too-many": (HEAD + '[potential]\nkind = "coulomb"\ncharges = [1.0]\ncenters = [[0.0, 0.0], [1.0, 0.0]]\n',
                         "potential.centers"),
    "centers-flat": (HEAD + '[potential]\nkind = "coulomb"\ncharges = [1.0, 1.0]\ncenters = [0.0, 0.0]\n',
                     "potential.centers"),
    "omega-negative": (HEAD + '[potential]\nkind = "harmonic"\nomega = -1.0\n', "potential.omega"),
    "omega-wrong-length": (HEAD + '[potential]\nkind = "harmonic"\nomega = [1.0, 1.0, 1.0]\n', "potential.omega"),
    "omega-string": (HEAD + '[potential]\nkind = "harmonic"\nomega = "fast"\n', "potential.omega"),
    "center-wrong-length": (HEAD + '[potential]\nkind = "harmonic"\nomega = 1.0\ncenter = [0.0]\n',
                            "potential.center"),
    "lengths-zero": (HEAD + '[potential]\nkind = "box"\nlengths = [1.0, 0.0]\n', "potential.lengths"),
    "potential-unknown-field": (HEAD + '[potential]\nkind = "harmonic"\nomega = 1.0\nmass = 2.0\n',
                                "potential.mass"),
    "unknown-top-level": (HEAD + 'colour = "blue"\n' + HARMONIC, "colour"),
    "solver-states-many": (HEAD + HARMONIC + '[solver]\nstates = "many"\n', "solver.states"),
    "solver-states-zero": (HEAD + HARMONIC + '[solver]\nstates = 0\n', "solver.states"),
    "solver-steps-negative": (HEAD + HARMONIC + '[solver]\nsteps = -5\n', "solver.steps"),
    "solver-unknown-key": (HEAD + HARMONIC + '[solver]\nlearning_rate = 0.1\n', "solver.learning_rate"),
    "solver-not-a-table": (HEAD + 'solver = 3\n' + HARMONIC, "solver"),
    "reference-unknown": (HEAD + HARMONIC + '[reference]\nkind = "exact"\n', "reference.kind"),
    "expr-import": (HEAD + '[potential]\nkind = "expression"\nexpr = "__import__(\'os\').system(\'echo hi\')"\n',
                    "potential.expr"),
    "expr-attribute": (HEAD + '[potential]\nkind = "expression"\nexpr = "x.real"\n', "potential.expr"),
    "expr-z-in-2d": (HEAD + '[potential]\nkind = "expression"\nexpr = "x + z"\n', "potential.expr"),
    "expr-syntax": (HEAD + '[potential]\nkind = "expression"\nexpr = "x +"\n', "potential.expr"),
    "expr-empty": (HEAD + '[potential]\nkind = "expression"\nexpr = ""\n', "potential.expr"),
    "expr-number": (HEAD + '[potential]\nkind = "expression"\nexpr = 3\n', "potential.expr"),
    "expr-huge-constant": (HEAD + '[potential]\nkind = "expression"\nexpr = "1' + "0" * 400 + '*x"\n',
                           "potential.expr"),
    "sum-bad-kind": (HEAD + '[potential]\nkind = "sum"\nterms = [{kind = "harmonic", omega = 1.0}, {kind = "nope"}]\n',
                     "potential.terms[1].kind"),
    "sum-missing-omega": (HEAD + '[potential]\nterms = [{kind = "harmonic"}]\n', "potential.terms[0].omega"),
    "sum-bad-expr": (HEAD + '[potential]\nkind = "sum"\nterms = [{kind = "coulomb", charges = [1.0]}, '
                     '{kind = "expression", expr = "open(x)"}]\n', "potential.terms[1].expr"),
    "sum-term-not-a-table": (HEAD + '[potential]\nkind = "sum"\nterms = [{kind = "harmonic", omega = 1.0}, 3]\n',
                             "potential.terms[1]"),
    "sum-empty": (HEAD + '[potential]\nkind = "sum"\nterms = []\n', "potential.terms"),
    "sum-two-boxes": (HEAD + '[potential]\nkind = "sum"\nterms = [{kind = "box", lengths = 1.0}, '
                      '{kind = "box", lengths = 2.0}]\n', "potential.terms"),
}


@pytest.mark.parametrize("text, field", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_files_name_the_file_and_the_field(tmp_path, text, field):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_system(path)
    exc = info.value
    assert exc.field == field
    assert exc.source == str(path)
    assert str(path) in str(exc)
    assert f"'{field}'" in str(exc)
    assert "\n" not in str(exc)


def test_a_forbidden_expression_in_a_file_is_not_executed(tmp_path):
    target = tmp_path / "executed"
    path = tmp_path / "attack.toml"
    path.write_text(HEAD + "[potential]\nkind = \"expression\"\n"
                    f"expr = \"__import__('pathlib').Path('{target}').touch()\"\n")
    with pytest.raises(InputError) as info:
        load_system(path)
    assert info.value.field == "potential.expr"
    assert not target.exists()


@pytest.mark.parametrize("content", ["this is not toml", "name = \n", "[potential\n", "a = 1\na = 2\n",
                                     b"\xff\xfe\x00\x01binary"], ids=["words", "no-value", "bracket", "duplicate",
                                                                       "binary"])
def test_a_file_that_is_not_toml(tmp_path, content):
    path = tmp_path / "notes.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError) as info:
        load_system(path)
    assert info.value.source == str(path)
    assert info.value.field is None
    assert str(path) in str(info.value) and "TOML" in str(info.value)


def test_a_nonexistent_file(tmp_path):
    path = tmp_path / "missing.toml"
    with pytest.raises(InputError) as info:
        load_system(path)
    assert info.value.source == str(path)
    assert str(path) in str(info.value)
    assert "hydrogen_2d" in str(info.value)  # lists the shipped names


def test_an_unknown_system_name():
    with pytest.raises(InputError) as info:
        load_system("no_such_system_anywhere")
    assert info.value.source == "no_such_system_anywhere"


def test_a_folder_instead_of_a_file(tmp_path):
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(InputError) as info:
        load_system(folder)
    assert info.value.source == str(folder)
