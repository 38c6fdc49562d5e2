"""Two-particle figures and CLI: every figure is a readable PNG (3D helium-like and 1D trapped pair), the stored
observables are normalised (∫ρ = 2, ∫P(r_12) dr = 1), ``qsolver plot`` of several files draws their levels side by
side, and ``qsolver compare --reference pyscf:BASIS`` is accepted only with a basis name."""
from __future__ import annotations

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import qsolver
import qsolver.compare
import qsolver.io
from qsolver.checks import EXIT_FLAGGED
from qsolver import plots
from qsolver.cli import _energies_text, main
from qsolver.references import Reference

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def pair_results():
    """A short helium singlet run (d = 3) and a 1D triplet pair in a harmonic trap with a soft repulsion."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    helium = qsolver.System("he", 3, {"kind": "coulomb", "charges": [2.0], "centers": [[0, 0, 0.0]]}, particles=2,
                            spin=0, reference="none")
    trap = qsolver.System("trap1d", 1, {"kind": "harmonic", "omega": 1.0}, particles=2, spin=2,
                          interaction={"kind": "expression", "expr": "1/sqrt(r**2 + 1)"}, reference="none")
    options = dict(steps=30, seed=0, progress=False, eval_samples=4000, eval_blocks=4)
    yield {"he": qsolver.solve(helium, n_states=2, **options), "trap1d": qsolver.solve(trap, n_states=3, **options)}
    torch.set_num_threads(threads)


def assert_png(path) -> None:
    """A PNG file that matplotlib reads back as an image of plausible size."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = plt.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert 150 <= image.shape[0] <= 4000 and 150 <= image.shape[1] <= 4000


@pytest.mark.parametrize("name", ["he", "trap1d"])
def test_pair_figures_are_pngs(pair_results, name, tmp_path):
    result = pair_results[name]
    short = Reference(np.array([result.energies[0] - 0.1]), "one level")   # fewer levels than states
    written = [plots.density_slices(result, tmp_path / "density.png"),
               plots.fixed_particle(result, tmp_path / "fixed.png"),
               plots.distance_distribution(result, tmp_path / "distance.png"),
               plots.spin_levels([result], [short], tmp_path / "spin.png"),
               plots.wavefunction_gallery(result, tmp_path / "gallery.png"),
               plots.energy_levels(result, tmp_path / "levels.png", short),
               plots.training_curves(result, tmp_path / "training.png", short)]
    for path in written:
        assert_png(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)   # no leftovers


def test_fixed_particle_defaults_to_one_bohr_off_the_nucleus(pair_results):
    np.testing.assert_allclose(plots.default_fixed_position(pair_results["he"]), [1.0, 0.0, 0.0])
    lo, hi = pair_results["trap1d"].extent()
    np.testing.assert_allclose(plots.default_fixed_position(pair_results["trap1d"]), 0.5 * (lo + hi) + (hi - lo) / 8)


@pytest.mark.parametrize("name", ["he", "trap1d"])
def test_observables_are_normalised(pair_results, name):
    obs = pair_results[name].observables
    volume = np.prod([np.diff(e)[0] for e in obs["density_edges"]])
    n = pair_results[name].n_states
    mass = (np.asarray(obs["density"]) * volume).reshape(n, -1)
    mass_error = np.sqrt(((np.asarray(obs["density_error"]) * volume) ** 2).reshape(n, -1).sum(1))
    assert np.all(np.abs(mass.sum(1) - 2.0) <= 5 * mass_error + 1e-9), (mass.sum(1), mass_error)
    widths = np.diff(obs["distance_edges"])
    total = (np.asarray(obs["distance"]) * widths).sum(1)
    total_error = np.sqrt(((np.asarray(obs["distance_error"]) * widths) ** 2).sum(1))
    assert np.all(np.abs(total - 1.0) <= 5 * total_error + 1e-9), (total, total_error)


def test_energies_text_has_spin_and_status(pair_results):
    *lines, stopped = _energies_text(pair_results["he"]).splitlines()
    assert "spin" in lines[0] and "status" in lines[0] and len(lines) == 3
    assert stopped.startswith("stopped: steps")          # the run's fixed schedule, as validate prints it
    for line in lines[1:]:
        assert "singlet" in line and any(s in line for s in ("bound", "above threshold", "at threshold"))


def test_plot_several_files(pair_results, tmp_path, capsys):
    files = []
    for name, result in pair_results.items():
        files.append(str(qsolver.save_result(result, tmp_path / f"{name}.h5")))
    out = tmp_path / "figures"
    assert main(["plot", *files, "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    for stem in pair_results:
        assert {f"{stem}_{kind}.png" for kind in ("states", "levels", "training", "density", "distance")} <= names
    assert_png(out / "he_trap1d_levels.png")
    capsys.readouterr()
    # no reference: the energies with spin and status; 30 steps leave the states unconverged, which the residual
    # check flags (exit status 4)
    assert main(["validate", files[0]]) == EXIT_FLAGGED
    printed = capsys.readouterr()
    assert "singlet" in printed.out and "not eigenstates" in printed.err
    assert main(["plot", files[0], files[0], "--out", str(out)]) == 2   # same figures twice into one folder
    assert "FILE" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["pyscf:", "pyscf: ", "pyscf", "pyscf:aug-cc-pvqz", "pyscfx:sto-3g"])
def test_compare_reference_kinds(kind, tmp_path, monkeypatch, capsys):
    """A kind is valid when it is known or pyscf:BASIS with a non-empty basis; the rest exits 2 naming the flag."""

    class Reached(Exception):
        pass

    def gather(system, n, kinds):
        raise Reached(kinds)

    monkeypatch.setattr(qsolver.compare, "gather", gather)
    monkeypatch.setattr(qsolver.io, "load_result", lambda path: SimpleNamespace(system=None, n_states=2))
    valid = kind in ("pyscf", "pyscf:aug-cc-pvqz")
    if valid:
        with pytest.raises(Reached):
            main(["compare", str(tmp_path / "x.h5"), "--reference", kind])
        return
    assert main(["compare", str(tmp_path / "x.h5"), "--reference", kind]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--reference" in err and kind.strip() in err
