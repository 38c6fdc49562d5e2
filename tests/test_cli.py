"""The CLI's main path: solve writes the HDF5 file, the table and the figures; validate and plot read it."""
import numpy as np

from qsolver.cli import main
from qsolver.io import load_result

SYSTEM = """
name = "osc"
dimension = 2
kinetic = 0.5
[potential]
kind = "harmonic"
omega = [1.0, 1.5]
[solver]
states = 3
steps = 600          # converged enough for the level checks to pass (shorter runs are rightly flagged)
eval_samples = 4000
eval_blocks = 8
"""


def test_solve_validate_plot(tmp_path, capsys):
    toml = tmp_path / "osc.toml"
    toml.write_text(SYSTEM)
    out = tmp_path / "run" / "osc.h5"
    assert main(["solve", str(toml), "--out", str(out), "--quiet", "--seed", "3"]) == 0
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == ["osc.h5", "osc_levels.png", "osc_spectrum.png", "osc_states.png", "osc_training.png",
                     "osc_validation.csv", "osc_validation.md"]
    table = (out.parent / "osc_validation.md").read_text()
    assert "| group |" in table and "1.25000000" in table          # ground level ½(1 + 1.5)
    assert "## Transitions from the ground level" in table
    result = load_result(out)
    assert result.n_states == 3 and np.all(np.diff(result.energies) >= 0)
    capsys.readouterr()
    assert main(["validate", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "NeuralSVD against analytic" in printed and "Transitions from the ground level" in printed
    assert main(["plot", str(out), "--out", str(tmp_path / "figs"), "--linewidth", "0.05"]) == 0
    assert len(list((tmp_path / "figs").glob("*.png"))) == 4
    assert main(["plot", str(out), "--out", str(tmp_path / "figs"), "--linewidth", "-1"]) == 2


def test_version_and_module_entry_point(tmp_path):
    import subprocess
    import sys

    import qsolver

    run = subprocess.run([sys.executable, "-m", "qsolver", "--version"], capture_output=True, text=True,
                         cwd=tmp_path, check=True)
    assert run.stdout.strip() == f"qsolver {qsolver.__version__}"
    run = subprocess.run([sys.executable, "-m", "qsolver", "systems"], capture_output=True, text=True,
                         cwd=tmp_path, check=True)            # shipped systems are package data, found from anywhere
    assert "helium_singlet" in run.stdout and "hydrogen_2d" in run.stdout


def test_set_passes_solver_settings_and_rejects_bad_ones(tmp_path, capsys):
    toml = tmp_path / "osc.toml"
    toml.write_text(SYSTEM)
    out = tmp_path / "set" / "osc.h5"
    assert main(["solve", str(toml), "--out", str(out), "--quiet", "--no-report", "--set", "nesting=joint",
                 "--set", "extra_states=2", "--set", "lr_final=0.05"]) == 0
    result = load_result(out)
    assert result.config["nesting"] == "joint" and result.config["lr_final"] == 0.05
    assert result.n_states == 3 and result.coefficients.shape == (5, 3)     # 3 reported of 5 trained networks
    for bad, words in ((["--set", "foo=1"], "unknown setting"), (["--set", "batch=abc"], "must be of type int"),
                       (["--set", "batch"], "is not KEY=VALUE"), (["--set", "extra_states=-1"], "non-negative")):
        capsys.readouterr()
        assert main(["solve", str(toml), "--out", str(tmp_path / "bad" / "x.h5"), "--quiet", *bad]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def test_magnitudes_that_overflow_are_refused_before_training(tmp_path, capsys):
    """ω = 1e300 (and 1e-300) make ψ or Hψ overflow float32 at the system's own length scale: exit 2, one line
    naming the file and field, nothing written."""
    for omega in ("1e300", "1e-300"):
        toml = tmp_path / "extreme.toml"
        toml.write_text(f'name = "extreme"\ndimension = 1\n[potential]\nkind = "harmonic"\nomega = {omega}\n')
        capsys.readouterr()
        assert main(["solve", str(toml), "--out", str(tmp_path / "out" / "e.h5"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert "field 'potential.omega'" in err and "rescale" in err and len(err.splitlines()) == 1
        assert not (tmp_path / "out" / "e.h5").exists()


def test_engine_flags_are_checked_before_anything_is_written(tmp_path, capsys):
    toml = tmp_path / "osc.toml"
    toml.write_text(SYSTEM)
    out = tmp_path / "none" / "osc.h5"
    cases = ((["solve", str(toml), "--out", str(out), "--checkpoint-every", "-1"], "field '--checkpoint-every'"),
             (["solve", str(toml), "--out", str(out), "--resume", str(tmp_path / "missing.h5")],
              "no such checkpoint file"),
             (["solve", str(toml), "--out", str(out), "--resume", str(toml)], "not an HDF5 file"),
             (["bench", "steps", str(toml), "--counts", "0", "--out", str(tmp_path / "none")], "field '--counts'"),
             (["bench", "scaling", str(toml), "--configs", "2y1", "--out", str(tmp_path / "none")],
              "is not RANKSxTHREADS"))
    for argv, words in cases:
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err
    assert not out.exists() and not (tmp_path / "none" / "osc.ckpt.h5").exists()
