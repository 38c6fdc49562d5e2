"""Command line: bad input exits with status 2 and one line naming the file and the field, before any training."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import qsolver.solver
from qsolver.cli import main
from qsolver.system import shipped_systems

HEAD = 'name = "test"\ndimension = 2\n'
HARMONIC = '[potential]\nkind = "harmonic"\nomega = 1.0\n'
LITHIUM = 'name = "li"\n[molecule]\natoms = "Li 0 0 0"\nunit = "bohr"\n'
HARMONIC_1D = 'name = "osc1d"\ndimension = 1\nkinetic = 0.5\n[potential]\nkind = "harmonic"\nomega = 1.0\n'

BAD_FILES = {
    # id: (file text, field named in the error)
    "unknown-kind": (HEAD + '[potential]\nkind = "morse"\n', "potential.kind"),
    "kind-not-a-string": (HEAD + '[potential]\nkind = ["coulomb"]\ncharges = [1.0]\n', "potential.kind"),
    "missing-dimension": ('name = "test"\n' + HARMONIC, "dimension"),
    "missing-potential": (HEAD + 'kinetic = 0.5\n', "potential"),
    "missing-charges": (HEAD + '[potential]\nkind = "coulomb"\n', "potential.charges"),
    "missing-omega": (HEAD + '[potential]\nkind = "harmonic"\n', "potential.omega"),
    "missing-lengths": (HEAD + '[potential]\nkind = "box"\n', "potential.lengths"),
    "missing-expr": (HEAD + '[potential]\nkind = "expression"\n', "potential.expr"),
    "dimension-two": ('name = "test"\ndimension = "two"\n' + HARMONIC, "dimension"),
    "dimension-zero": ('name = "test"\ndimension = 0\n' + HARMONIC, "dimension"),
    "dimension-negative": ('name = "test"\ndimension = -1\n' + HARMONIC, "dimension"),
    "kinetic-string": (HEAD + 'kinetic = "x"\n' + HARMONIC, "kinetic"),
    "kinetic-negative": (HEAD + 'kinetic = -1.0\n' + HARMONIC, "kinetic"),
    "charges-not-a-list": (HEAD + '[potential]\nkind = "coulomb"\ncharges = 1.0\n', "potential.charges"),
    "centers-wrong-length": (HEAD + '[potential]\nkind = "coulomb"\ncharges = [1.0]\ncenters = [[0.0]]\n',
                             "potential.centers"),
    "unknown-top-level": (HEAD + 'colour = "blue"\n' + HARMONIC, "colour"),
    "solver-states-many": (HEAD + HARMONIC + '[solver]\nstates = "many"\n', "solver.states"),
    "solver-states-zero": (HEAD + HARMONIC + '[solver]\nstates = 0\n', "solver.states"),
    "solver-unknown-key": (HEAD + HARMONIC + '[solver]\nlearning_rate = 0.1\n', "solver.learning_rate"),
    "solver-odd-batch": (HEAD + HARMONIC + '[solver]\nbatch = 3\n', "batch"),
    "solver-bad-nesting": (HEAD + HARMONIC + '[solver]\nnesting = "sideways"\n', "nesting"),
    "solver-bad-device": (HEAD + HARMONIC + '[solver]\ndevice = "tpu"\n', "solver.device"),
    "expr-forbidden": (HEAD + '[potential]\nkind = "expression"\nexpr = "__import__(\'os\').system(\'echo hi\')"\n',
                       "potential.expr"),
    "sum-bad-term": (HEAD + '[potential]\nkind = "sum"\nterms = [{kind = "harmonic", omega = 1.0}, {kind = "nope"}]\n',
                     "potential.terms[1].kind"),
    # hostile numbers and formulas: refused by validation, not by an OverflowError, a MemoryError or a hang
    "kinetic-huge-integer": (HEAD + "kinetic = 1" + "0" * 400 + "\n" + HARMONIC, "kinetic"),
    "omega-huge-integer": (HEAD + '[potential]\nkind = "harmonic"\nomega = [1, 1' + "0" * 400 + ']\n',
                           "potential.omega"),
    "dimension-huge": ('name = "test"\ndimension = 1000000000000\n' + HARMONIC, "dimension"),
    "solver-nan": (HEAD + HARMONIC + "[solver]\nlr = nan\n", "solver.lr"),
    "solver-negative-seed": (HEAD + HARMONIC + "[solver]\nseed = -1\n", "solver.seed"),
    "solver-negative-backflow": (HEAD + HARMONIC + "[solver]\nbackflow = -1\n", "solver.backflow"),
    "solver-states-huge": (HEAD + HARMONIC + "[solver]\nstates = 100000000\n", "solver.states"),
    "expr-power-tower": (HEAD + '[potential]\nkind = "expression"\nexpr = "9**9**9"\n', "potential.expr"),
    "expr-overflow": (HEAD + '[potential]\nkind = "expression"\nexpr = "x**2 + 1e999"\n', "potential.expr"),
    # N electrons: a basis PySCF lacks, no bound state by Lieb's bound N < 2Z + K, a spin N cannot have
    "basis-unknown": (LITHIUM + '[reference]\nkind = "pyscf"\nbasis = "cc-pv9z"\n', "reference.basis"),
    "basis-lacks-an-element": ('name = "hu"\n[molecule]\natoms = "H 0 0 0; U 0 0 3"\nunit = "bohr"\ncharge = 90\n'
                               '[reference]\nkind = "pyscf"\nbasis = "cc-pvdz"\n', "reference.basis"),
    "companion-unknown": (LITHIUM + '[reference]\nkind = "pyscf"\ncompanion = "cc-pv9z"\n', "reference.companion"),
    "frozen-core-not-boolean": (LITHIUM + '[reference]\nkind = "pyscf"\nfrozen_core = "yes"\n', "reference.frozen_core"),
    "frozen-core-nothing-to-freeze": ('name = "h2"\n[molecule]\natoms = "H 0 0 0; H 0 0 1.4"\nunit = "bohr"\n'
                                      '[reference]\nkind = "pyscf"\nfrozen_core = true\n', "reference.frozen_core"),
    "hydrogen-dianion": ('name = "h2minus"\n[molecule]\natoms = "H 0 0 0"\nunit = "bohr"\ncharge = -2\n',
                         "molecule.charge"),
    "h2-with-six-electrons": ('name = "h2"\n[molecule]\natoms = "H 0 0 0; H 0 0 1.4"\nunit = "bohr"\ncharge = -4\n',
                              "molecule.charge"),
    "three-electrons-on-a-proton": ('name = "h"\ndimension = 3\nparticles = 3\n[potential]\nkind = "coulomb"\n'
                                    'charges = [1.0]\n', "particles"),
    "lithium-spin-0": (LITHIUM.replace('unit = "bohr"', 'unit = "bohr"\nspin = 0'), "molecule.spin"),
    "three-electrons-spin-2": ('name = "li"\ndimension = 3\nparticles = 3\nspin = 2\n[potential]\n'
                               'kind = "coulomb"\ncharges = [3.0]\n', "spin"),
    # quoted levels and expected terms: refused before training, not left out of the report made after it
    "literature-descending": (HARMONIC_1D + '[reference]\nkind = "literature"\n[reference.literature]\nsource = "x"\n'
                              'levels = [1.5, 0.5]\n', "reference.literature.levels"),
    "literature-too-few": (HARMONIC_1D + '[solver]\nstates = 3\n[reference]\nkind = "literature"\n'
                           '[reference.literature]\nsource = "x"\nlevels = [0.5, 1.5]\n', "reference.literature.levels"),
    "literature-no-source": (HARMONIC_1D + '[reference]\nkind = "analytic"\n[reference.literature]\nlevels = [0.5]\n',
                             "reference.literature.source"),
    "fci-too-large": ('name = "lih"\n[molecule]\natoms = "Li 0 0 0; H 0 0 3.015"\nunit = "bohr"\n[reference]\n'
                      'kind = "pyscf"\nbasis = "aug-cc-pvtz"\n', "reference.basis"),     # 5.5 million determinants
    "cusp-unknown": (HEAD + HARMONIC + '[solver]\ncusp = "sharp"\n', "cusp"),
    "terms-unknown-name": (LITHIUM + '[reference]\nkind = "none"\nterms = ["S", "Q"]\n', "reference.terms"),
    "terms-not-a-list": (LITHIUM + '[reference]\nkind = "none"\nterms = "S"\n', "reference.terms"),
    "terms-without-a-group": (HEAD + '[potential]\nkind = "expression"\nexpr = "x**2 + y**4"\n[reference]\n'
                              'kind = "none"\nterms = ["S"]\n', "reference.terms"),
}


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if the CLI ever gets as far as training."""

    def refuse(*args, **kwargs):
        raise AssertionError("training started on bad input")

    monkeypatch.setattr(qsolver.solver, "solve", refuse)


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("qsolver: error:")
    return lines[0]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("text, field", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_solve_bad_file_exits_2_naming_file_and_field(tmp_path, capsys, monkeypatch, no_training, text, field):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out" / "result.h5"
    assert main(["solve", str(path), "--out", str(out), "--quiet"]) == 2
    captured = capsys.readouterr()
    line = _one_error_line(captured.err)
    assert str(path) in line and f"'{field}'" in line
    assert captured.out == ""
    assert _leftovers(tmp_path / "out") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]  # no default results/ folder either


def test_solve_refuses_ten_electrons_that_do_not_fit_naming_the_estimate(tmp_path, capsys, monkeypatch):
    """Neon's determinant run, with 256 MiB available: refused before training, the message carrying the estimate
    that qsolver.memory computes for it (1.2 GiB with the defaults)."""
    import qsolver.memory
    from qsolver.memory import estimate, peak
    from qsolver.parallel import current
    from qsolver.solver import resolve_config
    from qsolver.system import load_system
    from qsolver.training import make_problem

    def refuse(*args, **kwargs):
        raise AssertionError("training started although the run does not fit")

    monkeypatch.setattr(qsolver.solver, "init_state", refuse)
    monkeypatch.setattr(qsolver.memory, "available", lambda device, world=1: 2.0**28)
    path = tmp_path / "neon.toml"
    path.write_text('name = "neon"\n[molecule]\natoms = "Ne 0 0 0"\nunit = "bohr"\n[reference]\nkind = "none"\n')
    system = load_system(path)
    assert system.particles == 10
    need = peak(estimate(make_problem(system, resolve_config(system), current())))
    assert need > 2.0**28
    assert main(["solve", str(path), "--out", str(tmp_path / "out" / "r.h5"), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(path) in line and "'states'" in line
    assert f"peak about {need / 2**30:.3g} GiB" in line and "0.25 GiB available" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neon.toml"]


def test_solve_bad_file_without_out_creates_nothing(tmp_path, capsys, monkeypatch, no_training):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text(HEAD + HARMONIC + "[solver]\nbatch = 7\n")
    assert main(["solve", "bad.toml", "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "bad.toml" in line and "'batch'" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_solve_forbidden_expression_is_not_executed(tmp_path, capsys, no_training):
    target = tmp_path / "executed"
    path = tmp_path / "attack.toml"
    path.write_text(HEAD + '[potential]\nkind = "expression"\n'
                    f"expr = \"__import__('pathlib').Path('{target}').touch()\"\n")
    assert main(["solve", str(path), "--out", str(tmp_path / "out" / "r.h5"), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(path) in line and "'potential.expr'" in line
    assert not target.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", ["this is not toml\n", b"\x89HDF\r\n\x1a\n\x00\xff binary"],
                         ids=["text", "binary"])
def test_solve_file_that_is_not_toml(tmp_path, capsys, no_training, content):
    path = tmp_path / "notes.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(["solve", str(path), "--out", str(tmp_path / "out" / "r.h5"), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(path) in line and "TOML" in line
    assert not (tmp_path / "out").exists()


def test_solve_nonexistent_file(tmp_path, capsys, no_training):
    path = tmp_path / "missing.toml"
    assert main(["solve", str(path), "--out", str(tmp_path / "out" / "r.h5"), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(path) in line
    assert not (tmp_path / "out").exists()


@pytest.fixture
def harmonic_1d(tmp_path) -> Path:
    path = tmp_path / "osc1d.toml"
    path.write_text(HARMONIC_1D)
    return path


def _system_args(harmonic_1d: Path) -> list[str]:
    """The file written by the test, and the shipped harmonic_1d where it exists."""
    return [str(harmonic_1d)] + (["harmonic_1d"] if "harmonic_1d" in shipped_systems() else [])


def test_solve_unwritable_out_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch, no_training, harmonic_1d):
    monkeypatch.chdir(tmp_path)
    for system in _system_args(harmonic_1d):
        assert main(["solve", system, "--out", "/proc/forbidden/x.h5", "--quiet"]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "/proc/forbidden/x.h5" in line and "'--out'" in line
        assert not Path("/proc/forbidden").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["osc1d.toml"]


def test_solve_out_below_a_file_exits_2(tmp_path, capsys, no_training, harmonic_1d):
    blocker = tmp_path / "plain.txt"
    blocker.write_text("x")
    assert main(["solve", str(harmonic_1d), "--out", str(blocker / "x.h5"), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "'--out'" in line
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("name", ["existing.h5", "existing_folder"])
def test_solve_out_is_an_existing_directory(tmp_path, capsys, no_training, harmonic_1d, name):
    folder = tmp_path / name
    folder.mkdir()
    assert main(["solve", str(harmonic_1d), "--out", str(folder), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(folder) in line and "'--out'" in line
    assert list(folder.iterdir()) == []


def test_solve_out_with_wrong_suffix(tmp_path, capsys, no_training, harmonic_1d):
    assert main(["solve", str(harmonic_1d), "--out", str(tmp_path / "out" / "r.txt"), "--quiet"]) == 2
    assert "'--out'" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag, value", [("--states", "0"), ("--steps", "0"), ("--states", "-2"), ("--steps", "-1")])
def test_solve_non_positive_states_or_steps(tmp_path, capsys, no_training, harmonic_1d, flag, value):
    out = tmp_path / "out" / "r.h5"
    for system in _system_args(harmonic_1d):
        assert main(["solve", system, flag, value, "--out", str(out), "--quiet"]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"'{flag}'" in line and value in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, field", [(["--seed", "-1"], "--seed"), (["--seed", str(2**64)], "--seed"),
                                          (["--checkpoint-every", "nan"], "--checkpoint-every"),
                                          (["--device", "meta"], "--device"), (["--states", "100000"], "--states")])
def test_solve_flags_out_of_range(tmp_path, capsys, no_training, harmonic_1d, flags, field):
    assert main(["solve", str(harmonic_1d), *flags, "--out", str(tmp_path / "out" / "r.h5"), "--quiet"]) == 2
    assert f"'{field}'" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, field", [(["--threads", "-1"], "--threads"), (["--budget", "nan"], "--budget"),
                                          (["--dims", "0"], "--dims"), (["--batch", "0"], "--batch"),
                                          (["--device", "tpu"], "--device")])
def test_bench_flags_out_of_range(tmp_path, capsys, flags, field):
    import torch

    threads = torch.get_num_threads()
    assert main(["bench", "laplacian", *flags, "--out", str(tmp_path / "bench")]) == 2
    assert f"'{field}'" in _one_error_line(capsys.readouterr().err)
    assert torch.get_num_threads() == threads and not (tmp_path / "bench").exists()


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["solve", "x.toml", "--states", "many"])
    assert exit_info.value.code == 2
    assert "--states" in _one_error_line(capsys.readouterr().err)


def test_solve_unknown_device(tmp_path, capsys, no_training, harmonic_1d):
    assert main(["solve", str(harmonic_1d), "--device", "tpu", "--out", str(tmp_path / "out" / "r.h5"),
                 "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "'--device'" in line and "tpu" in line
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------- validate

def _validate(path: Path, capsys) -> str:
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = _one_error_line(captured.err)
    assert str(path) in line
    return line


def test_validate_text_file(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    assert "not an HDF5 file" in _validate(path, capsys)


def test_validate_toml_file(tmp_path, capsys):
    path = tmp_path / "system.toml"
    path.write_text(HARMONIC_1D)
    assert "not an HDF5 file" in _validate(path, capsys)


def test_validate_toml_file_named_h5(tmp_path, capsys):
    path = tmp_path / "system.h5"
    path.write_text(HARMONIC_1D)
    assert "not an HDF5 file" in _validate(path, capsys)


def test_validate_empty_file(tmp_path, capsys):
    path = tmp_path / "empty.h5"
    path.write_bytes(b"")
    _validate(path, capsys)


def test_validate_nonexistent_file(tmp_path, capsys):
    assert "no such file" in _validate(tmp_path / "missing.h5", capsys)


def test_validate_folder(tmp_path, capsys):
    folder = tmp_path / "folder.h5"
    folder.mkdir()
    _validate(folder, capsys)


def test_validate_hdf5_that_is_not_a_qsolver_result(tmp_path, capsys):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["data"] = np.arange(10.0)
        f.attrs["format"] = "something-else"
    line = _validate(path, capsys)
    assert "not a qsolver result" in line and "'format'" in line


def test_validate_hdf5_without_attributes(tmp_path, capsys):
    path = tmp_path / "bare.h5"
    with h5py.File(path, "w") as f:
        f.create_group("group")
    assert "not a qsolver result" in _validate(path, capsys)


def test_validate_incomplete_qsolver_result(tmp_path, capsys):
    path = tmp_path / "incomplete.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "qsolver-result"
    assert "damaged or incomplete" in _validate(path, capsys)


def test_validate_result_with_broken_system_record(tmp_path, capsys):
    path = tmp_path / "broken.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "qsolver-result"
        f["system"] = "{not json"
    _validate(path, capsys)


def test_validate_result_with_a_bad_stored_system(tmp_path, capsys):
    path = tmp_path / "badsystem.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "qsolver-result"
        f["system"] = '{"name": "a", "dimension": 2, "potential": {"kind": ["x"]}}'
    assert "'potential.kind'" in _validate(path, capsys)


def test_validate_result_with_a_huge_hollow_dataset(tmp_path, capsys):
    """A dataset that claims 80 GB but stores nothing (chunks never written) is refused, not read."""
    path = tmp_path / "hollow.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "qsolver-result"
        f["system"] = '{"name": "a", "dimension": 1, "potential": {"kind": "harmonic", "omega": 1.0}}'
        f.create_dataset("energies", shape=(10**5, 10**5), dtype="f8", chunks=(100, 100))
    line = _validate(path, capsys)
    assert "'energies'" in line and "bytes" in line


def test_validate_result_with_a_linked_dataset(tmp_path, capsys):
    path = tmp_path / "linked.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "qsolver-result"
        f["system"] = h5py.ExternalLink("/etc/passwd", "/x")
    assert "'system'" in _validate(path, capsys)


def test_validate_truncated_hdf5(tmp_path, capsys):
    whole = tmp_path / "whole.h5"
    with h5py.File(whole, "w") as f:
        f["data"] = np.arange(1000.0)
        f.attrs["format"] = "qsolver-result"
    path = tmp_path / "truncated.h5"
    path.write_bytes(whole.read_bytes()[:700])
    _validate(path, capsys)


def test_plot_not_hdf5(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    assert main(["plot", str(path), "--out", str(tmp_path / "figures")]) == 2
    assert str(path) in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "figures").exists()


# ---------------------------------------------------------------------------------------------- systems

def test_systems_lists_the_shipped_systems(capsys):
    assert main(["systems"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "hydrogen_2d" in captured.out and "harmonic_2d" in captured.out
    assert len(captured.out.splitlines()) == len(shipped_systems())


# ---------------------------------------------------------------------------------------------- real process

def test_console_script_reports_bad_input_without_traceback(tmp_path):
    """Runs ``python -m qsolver.cli`` for real (a few seconds: it starts an interpreter)."""
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_FILES["sum-bad-term"][0])
    proc = subprocess.run([sys.executable, "-m", "qsolver.cli", "solve", str(bad), "--out",
                           str(tmp_path / "out" / "r.h5"), "--quiet"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("qsolver: error:"), proc.stderr
    assert str(bad) in lines[0] and "'potential.terms[1].kind'" in lines[0]
    assert proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_bench_calibration_refuses_a_missing_results_folder(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["bench", "calibration", "--results", str(missing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--results" in err and str(missing) in err
    assert not (tmp_path / "out").exists()


def test_validate_says_why_a_reference_could_not_be_made(tmp_path, capsys, monkeypatch):
    """A reference that cannot be computed for a saved result (here: made to fail) is named with the reason on
    stderr, not dropped in silence; the energies are still printed."""
    import qsolver.references
    from qsolver.errors import InputError

    def fail(system, n, kind=None, **options):
        raise InputError("too large to compute", field="reference.basis")

    monkeypatch.setattr(qsolver.references, "reference", fail)
    assert main(["validate", "results/harmonic_1d/harmonic_1d.h5"]) in (0, 4)
    captured = capsys.readouterr()
    assert "qsolver: warning: no analytic reference to validate against: field 'reference.basis': too large" \
        in captured.err
    assert "(no reference to validate against" in captured.out


@pytest.mark.parametrize("text", [
    HARMONIC_1D + '[solver]\ncusp = "exact"\n',                                  # no Coulomb centre
    HEAD + 'kinetic = 0.5\n[potential]\nkind = "coulomb"\ncharges = [1.0]\n[solver]\ncusp = "exact"\n'
    'envelope = "gaussian"\n',                                                   # not the exponential envelope
    HEAD + 'kinetic = 0.5\n[potential]\nkind = "coulomb"\ncharges = [1.0, 1.0]\ncenters = [[0.0, 0.0], [1.4, 0.0]]\n'
    '[solver]\ncusp = "exact"\n',                                               # two centres
], ids=["trap", "gaussian-envelope", "two-centres"])
def test_an_exact_cusp_where_none_can_be_built_is_refused_before_training(tmp_path, capsys, monkeypatch, text):
    """`cusp = "exact"` where the one-particle network cannot build it: exit 2 naming 'cusp' when the network is
    configured, before the first step and before anything is written."""
    import qsolver.training

    def refuse(*args, **kwargs):
        raise AssertionError("training started on bad input")

    monkeypatch.setattr(qsolver.training, "train_step", refuse)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["solve", str(path), "--out", str(tmp_path / "out" / "r.h5"), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(path) in line and "'cusp'" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]

