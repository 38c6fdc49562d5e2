"""Nothing lost, nothing silently wrong on disk (issue 20): writes that fail (full disk, I/O errors, killed
writers) leave nothing behind and say so; results and checkpoints carry checksums and damaged ones are refused
naming the dataset; readers cap what they read."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import qsolver
import qsolver.files
import qsolver.solver
from qsolver import training
from qsolver.checkpoint import read_checkpoint
from qsolver.cli import main
from qsolver.errors import InputError, WriteError
from qsolver.io import load_result, save_result, seal

RUN = dict(steps=3, dtype="float64", eval_samples=1000, eval_blocks=4, progress=False, threads=1)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def result():
    return qsolver.solve(qsolver.load_system("harmonic_1d"), n_states=2, **RUN)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> bytes:
    """The bytes of a checkpoint of a three-step harmonic_1d run."""
    path = tmp_path_factory.mktemp("ckpt") / "c.ckpt.h5"
    qsolver.solve(qsolver.load_system("harmonic_1d"), n_states=2, checkpoint=path, checkpoint_every=1e-9, **RUN)
    return path.read_bytes()


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qsolver: error:"), err
    return lines[0]


# ------------------------------------------------------------------------------------------ failing writes

@pytest.mark.parametrize("call, code", [("write", errno.ENOSPC), ("fsync", errno.EIO)])
def test_a_failing_disk_is_a_write_error_naming_the_file_and_leaves_the_old_file(result, tmp_path, monkeypatch,
                                                                                  call, code):
    path = save_result(result, tmp_path / "r.h5")
    before = path.read_bytes()

    def fail(*args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(qsolver.files.os, call, fail)
    with pytest.raises(WriteError, match=os.strerror(code)) as caught:
        save_result(result, path)
    assert caught.value.source == str(path) and caught.value.errno == code
    assert path.read_bytes() == before and _hidden(tmp_path) == []


def test_an_interrupted_write_leaves_no_temporary(result, tmp_path, monkeypatch):
    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(qsolver.files.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_result(result, tmp_path / "r.h5")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def small_disk(tmp_path):
    """A 64 kB tmpfs (a result of a few states does not fit); skipped where mounting is not permitted."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_refuses_the_write_and_leaves_nothing(result, small_disk):
    (small_disk / "filler").write_bytes(b"\0" * 40_000)
    with pytest.raises(WriteError, match="No space left on device"):
        save_result(result, small_disk / "r.h5")
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_solve_on_a_full_disk_saves_the_result_elsewhere_and_says_where(small_disk, tmp_path, monkeypatch, capsys):
    rescue = tmp_path / "rescue"
    rescue.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue))
    monkeypatch.chdir(tmp_path)
    (small_disk / "filler").write_bytes(b"\0" * 40_000)       # room for the probe, not for the result
    out = small_disk / "x.h5"
    code = main(["solve", "harmonic_1d", "--steps", "3", "--states", "2", "--out", str(out), "--quiet", "--no-report",
                 "--set", "eval_samples=1000", "--set", "eval_blocks=4"])
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if x.startswith("qsolver: error:")][0]
    saved = list(rescue.glob("x-unsaved-*.h5"))
    assert code == 2 and "Traceback" not in err and len(saved) == 1
    assert str(out) in line and "No space left on device" in line and f"saved to {saved[0]}" in line
    assert load_result(saved[0]).n_states == 2
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_solve_says_when_nothing_could_be_written(tmp_path, monkeypatch, capsys):
    def full(result, path, reference=None):
        raise WriteError("cannot be written (No space left on device)", source=str(path), errno=errno.ENOSPC)

    monkeypatch.setattr(qsolver.io, "save_result", full)
    monkeypatch.chdir(tmp_path)
    code = main(["solve", "harmonic_1d", "--steps", "2", "--states", "1", "--out", str(tmp_path / "x.h5"),
                 "--quiet", "--no-report", "--set", "eval_samples=1000", "--set", "eval_blocks=4"])
    line = [x for x in capsys.readouterr().err.splitlines() if x.startswith("qsolver: error:")][0]
    assert code == 2 and "nothing could be written" in line and "lost" in line and tempfile.gettempdir() in line


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started although the output cannot be written")

    monkeypatch.setattr(qsolver.solver, "solve", refuse)


@pytest.mark.parametrize("out", ["/proc/x.h5", "/proc/forbidden/x.h5", "N" * 300 + ".h5"])
def test_an_unwritable_out_is_refused_before_training(out, tmp_path, monkeypatch, capsys, no_training):
    monkeypatch.chdir(tmp_path)
    assert main(["solve", "harmonic_1d", "--out", out, "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "'--out'" in line and out[:40] in line
    assert list(tmp_path.iterdir()) == []


def test_a_long_name_that_fits_is_written_atomically(tmp_path):
    name = "b" * 250 + ".txt"                  # the temporary's own name would not fit without shortening
    qsolver.files.atomic_write(tmp_path / name, b"ok")
    assert [p.name for p in tmp_path.iterdir()] == [name]


# ------------------------------------------------------------------------------------------- stale temporaries

def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_temporaries_of_killed_writers_are_removed_on_the_next_write(tmp_path):
    target = tmp_path / "r.h5"
    killed = subprocess.run([sys.executable, "-c", "import os, signal, sys; from qsolver.files import _temporary; "
                             "from pathlib import Path; _temporary(Path(sys.argv[1])); "
                             "os.kill(os.getpid(), signal.SIGKILL)", str(target)],
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert killed.returncode == -9
    host = qsolver.files._HOST
    dead = tmp_path / f".r.h5.{_dead_pid()}@{host}.abcdefgh.tmp"
    live = tmp_path / f".r.h5.{os.getppid()}@{host}.abcdefgh.tmp"        # a writer still running: kept
    remote = tmp_path / ".r.h5.1@ffffff.abcdefgh.tmp" if host != "ffffff" else tmp_path / ".r.h5.1@eeeeee.x.tmp"
    legacy_old, legacy_new = tmp_path / ".r.h5.k2j4h5g6.tmp", tmp_path / ".r.h5.a1b2c3d4.tmp"
    other = tmp_path / ".other.h5.1@abcdef.abcdefgh.tmp"
    for p in (dead, live, remote, legacy_old, legacy_new, other):
        p.write_bytes(b"partial")
    old = time.time() - 2 * qsolver.files.LEGACY_STALE_SECONDS
    os.utime(legacy_old, (old, old))
    assert len(_hidden(tmp_path)) == 7
    qsolver.files.atomic_write(target, b"done")
    assert _hidden(tmp_path) == sorted(p.name for p in (live, remote, legacy_new, other))
    assert target.read_bytes() == b"done"


# ---------------------------------------------------------------------------------------------- checksums

def _scribble(path: Path, dataset: str, n: int = 4000) -> None:
    """Overwrite the stored bytes of ``dataset`` in place, as a failing disk or a stray write would."""
    with h5py.File(path) as f:
        offset, size = f[dataset].id.get_offset(), f[dataset].id.get_storage_size()
    raw = bytearray(path.read_bytes())
    raw[offset:offset + min(n, size)] = np.random.default_rng(0).bytes(min(n, size))
    path.write_bytes(bytes(raw))


def test_scribbled_weights_are_refused_naming_the_dataset(result, tmp_path):
    path = save_result(result, tmp_path / "r.h5")
    _scribble(path, "model/weights.1")
    with pytest.raises(InputError, match=r"field 'model/weights.1': does not match its checksum") as caught:
        load_result(path)
    assert caught.value.source == str(path)


@pytest.mark.parametrize("edit, field", [
    (lambda f: f["energies"].__setitem__(slice(None), [np.nan, np.inf]), "energies"),
    (lambda f: f["grid/values"].__setitem__((0, 0), 1.0), "grid/values"),            # not read by load_result
    (lambda f: f.attrs.__setitem__("diagnostics", json.dumps({"steps_done": 1})), "diagnostics"),
    (lambda f: f["model"].attrs.__setitem__("config", f["model"].attrs["config"] + " "), "model.config"),
    (lambda f: f.move("energies", "energies_") or f.move("errors", "energies") or f.move("energies_", "errors"),
     "energies"),
    (lambda f: f.__delitem__("history/loss"), "history/loss"),
    (lambda f: f.create_dataset("history/extra", data=[1.0]), "history/extra")])
def test_edited_results_are_refused_unless_sealed(result, tmp_path, edit, field):
    path = save_result(result, tmp_path / "r.h5")
    with h5py.File(path, "r+") as f:
        edit(f)
    with pytest.raises(InputError, match=f"field '{field}'"):
        load_result(path)
    seal(path)                         # an edit made on purpose: its values become the file's own
    if field != "history/loss":
        load_result(path)


def test_results_without_checksums(result, tmp_path):
    path = save_result(result, tmp_path / "r.h5")
    with h5py.File(path, "r+") as f:
        del f.attrs["checksums"]
    with pytest.raises(InputError, match="field 'checksums': missing"):
        load_result(path)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 1               # as results were written before checksums
    assert np.array_equal(load_result(path).energies, result.energies)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(InputError, match="field 'format_version': is 99: written by a newer qsolver"):
        load_result(path)


def test_results_of_format_1_without_checksums_still_load():
    """A result written before format 2 (no checksums, no transitions, ± = √(stat² + bound²)): the committed
    harmonic_1d.h5 as it was until 2026-12-07, kept in tests/data once every committed result was re-made. It is
    read unchecked, with its levels within 1e-5 (relative) of the oscillator's n + ½ as they were made."""
    path = REPO / "tests" / "data" / "harmonic_1d_format1.h5"
    with h5py.File(path) as f:
        assert "checksums" not in f.attrs and f.attrs["format_version"] == 1
    result = load_result(path)
    assert result.n_states == 4 and "bias_errors" not in result.diagnostics and result.transitions == {}
    assert np.allclose(result.energies, np.arange(4) + 0.5, rtol=1e-5, atol=0)


def test_api_arguments_of_the_wrong_type_are_named(result, tmp_path):
    with pytest.raises(InputError, match="field 'path'.*got int"):
        load_result(123)
    with pytest.raises(InputError, match="field 'result'.*got NoneType"):
        save_result(None, tmp_path / "r.h5")
    with pytest.raises(InputError, match="field 'path'.*got NoneType"):
        save_result(result, None)
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------------------------------------- checkpoints

def _problem():
    system = qsolver.load_system("harmonic_1d")
    cfg = qsolver.solver.resolve_config(system, states=2, **{k: v for k, v in RUN.items() if k != "progress"})
    return training.make_problem(system, cfg, qsolver.parallel.current())


def _edited(checkpoint: bytes, tmp_path: Path, edit, sealed: bool = True) -> Path:
    path = tmp_path / "c.ckpt.h5"
    path.write_bytes(checkpoint)
    with h5py.File(path, "r+") as f:
        edit(f)
    if sealed:
        seal(path)
    return path


def test_a_checkpoint_reads_back(checkpoint, tmp_path):
    path = _edited(checkpoint, tmp_path, lambda f: None, sealed=False)
    assert read_checkpoint(path, _problem()).step == RUN["steps"]


@pytest.mark.parametrize("edit, sealed, field, message", [
    (lambda f: f["model/weights.0"].__setitem__(0, np.nan), True, "model/weights.0", "non-finite"),
    (lambda f: f["averaged/1"].__setitem__(0, np.inf), True, "averaged/1", "non-finite"),
    (lambda f: f["model/weights.0"].__setitem__(slice(None), np.random.default_rng(1).normal(
        size=f["model/weights.0"].shape)), False, "model/weights.0", "does not match its checksum"),
    (lambda f: f.attrs.__setitem__("step", -5), True, "step", "between 0 and"),
    (lambda f: f.attrs.__setitem__("step", 10**6), True, "step", "between 0 and"),
    (lambda f: f.attrs.__setitem__("trust_factor", 1e30), True, "trust_factor", "between"),
    (lambda f: f.attrs.__setitem__("seconds", np.nan), True, "seconds", "between"),
    (lambda f: f.attrs.__setitem__("optimizer", f.attrs["optimizer"].replace('"lr": 0.', '"lr": 1e30, "x": 0.')),
     True, "optimizer", "optimiser settings"),
    (lambda f: f.attrs.__setitem__("optimizer", json.dumps([{**json.loads(f.attrs["optimizer"])[0], "lr": 1e30}])),
     True, "optimizer", "learning rate 1e\\+30"),
    (lambda f: f.attrs.__setitem__("rewinds", "[-1]"), True, "rewinds", "at most"),
    (lambda f: f.attrs.__setitem__("step", -5), False, "step", "does not match its checksum")])
def test_damaged_or_altered_checkpoints_are_refused_naming_file_and_field(checkpoint, tmp_path, edit, sealed, field,
                                                                          message):
    path = _edited(checkpoint, tmp_path, edit, sealed)
    with pytest.raises(InputError, match=message) as caught:
        qsolver.solve(qsolver.load_system("harmonic_1d"), n_states=2, resume=path, **RUN)
    assert caught.value.source == str(path) and caught.value.field == field
    assert "kinetic" not in str(caught.value) and "float32" not in str(caught.value)


def _hollow_generators(f: h5py.File) -> None:
    del f["generators"]
    f.create_dataset("generators", shape=(1, 2 * 10**9), dtype="u1", chunks=(1, 10**6))


@pytest.mark.parametrize("edit, field, message", [
    (_hollow_generators, "generators", "claims 2000000000 bytes"),
    (lambda f: f.__delitem__("model/weights.0") or f.__setitem__("model/weights.0",
                                                                 h5py.ExternalLink("other.h5", "/x")),
     "model/weights.0", "is a link"),
    (lambda f: f.__delitem__("s_ema") or f.__setitem__("s_ema", h5py.SoftLink("/h_ema")), "s_ema", "is a link")])
def test_checkpoint_reads_are_bounded_and_links_refused(checkpoint, tmp_path, edit, field, message):
    path = _edited(checkpoint, tmp_path, edit, sealed=False)
    tick = time.perf_counter()
    with pytest.raises(InputError, match=message) as caught:
        read_checkpoint(path, _problem())
    assert caught.value.field == field and time.perf_counter() - tick < 5


# -------------------------------------------------------------------------------------------- system files

@pytest.mark.parametrize("make, message", [
    (lambda tmp: Path("/dev/zero"), "not a regular file"),
    (lambda tmp: tmp, "not a regular file"),
    (lambda tmp: (tmp / "big.toml").write_bytes(b"#" * (2**20 + 1)) and tmp / "big.toml", "larger than 1 MiB")])
def test_system_reads_are_capped(tmp_path, make, message):
    path = make(tmp_path)
    tick = time.perf_counter()
    with pytest.raises(InputError, match=message) as caught:
        qsolver.load_system(path)
    assert caught.value.source == str(path) and time.perf_counter() - tick < 5


def test_solve_dev_zero_is_one_line(capsys):
    assert main(["solve", "/dev/zero", "--quiet"]) == 2
    assert "/dev/zero" in _one_line(capsys.readouterr().err)


def test_a_periodic_checkpoint_that_cannot_be_written_does_not_end_the_run(tmp_path, monkeypatch, capsys):
    def full(path, content):
        raise WriteError("cannot be written (No space left on device)", source=str(path), errno=errno.ENOSPC)

    monkeypatch.setattr(qsolver.io, "atomic_write", full)
    result = qsolver.solve(qsolver.load_system("harmonic_1d"), n_states=2, checkpoint=tmp_path / "c.ckpt.h5",
                           checkpoint_every=1e-9, **RUN)
    assert result.diagnostics["steps_done"] == RUN["steps"] and list(tmp_path.iterdir()) == []
    assert "No space left on device" in capsys.readouterr().err
