"""`qsolver bench`: the Laplacian cost table and a short accuracy run, end to end (numbers, files)."""
import json

import numpy as np
import torch

from qsolver.bench import laplacian_costs
from qsolver.cli import main
from qsolver.io import load_result


def test_laplacian_costs_are_measured_per_method():
    rows = laplacian_costs(dimensions=(2, 3), states=2, batch=64, repeats=2)
    assert [r["dimension"] for r in rows] == [2, 3]
    for r in rows:
        # timings are reported, not asserted (speed is judged from `qsolver bench`, not from tests)
        assert r["plain_seconds"] > 0
        assert all(np.isfinite(r[f"{m}_ratio"]) and r[f"{m}_ratio"] > 0 for m in ("forward", "fd", "hessian"))


def test_laplacian_costs_of_electrons_use_the_registry_network(tmp_path):
    rows = laplacian_costs(dimensions=(2,), states=2, batch=16, repeats=1, particles=(2, 3, 7))
    assert [(r["particles"], r["network"]) for r in rows] == [(2, "pair"), (3, "dets"), (7, "dets")]
    assert rows[-1]["hessian_ratio"] is None                       # 14 coordinates: the Hessian is not timed
    assert all(r["forward_ratio"] > 0 and r["fd_ratio"] > 0 for r in rows)
    assert main(["bench", "laplacian", "--dims", "2", "--particles", "3", "--states", "2", "--batch", "8",
                 "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "laplacian_cpu.json").read_text())[0]["network"] == "dets"
    # with backflow the same table, in a file named for the setting (the network's own check is test_dets)
    assert main(["bench", "laplacian", "--dims", "3", "--particles", "3", "--states", "2", "--batch", "8",
                 "--set", "backflow=2", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "laplacian_cpu_backflow2.json").read_text())[0]["forward_ratio"] > 0


def test_accuracy_bench_stops_at_the_budget_and_writes_its_files(tmp_path):
    torch.set_num_threads(1)
    budget = 4.0
    code = main(["bench", "accuracy", "harmonic_1d", "--budget", str(budget), "--presets", "default", "paper",
                 "--out", str(tmp_path), "--quiet", "--threads", "1"])
    assert code == 0
    summary = json.loads((tmp_path / "accuracy_harmonic_1d_4s.json").read_text())
    assert (tmp_path / "accuracy_harmonic_1d_4s.png").stat().st_size > 0
    assert np.allclose(summary["levels"], [0.5, 1.5, 2.5, 3.5])          # ω(n + ½), ω = 1, κ = ½
    for curve in summary["curves"]:
        final = curve["final"]
        # training time excludes checkpoint evaluations and ends within one step of the budget
        assert budget <= final["train_seconds"] < budget + 1.0
        assert curve["seconds"][-1] == final["train_seconds"] or curve["seconds"][-1] <= budget + 1.0
        assert np.all(np.diff(curve["seconds"]) > 0)
        assert len(final["energies"]) == 4 and final["states"] == 4
    paper = summary["curves"][1]["final"]["config"]
    assert paper["features"] == 1024 and paper["laplacian"] == "fd" and paper["optimizer"] == "rmsprop"


def test_accuracy_bench_keep_saves_the_default_result_where_solve_would(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    assert main(["bench", "accuracy", "harmonic_1d", "--budget", "3", "--presets", "default", "paper", "--keep",
                 "--states", "2", "--out", str(tmp_path / "bench"), "--quiet", "--threads", "1"]) == 0
    result = load_result(tmp_path / "results" / "harmonic_1d" / "harmonic_1d.h5")
    # the default preset's own final evaluation is kept, not the paper's (a Fourier-feature network)
    default = json.loads((tmp_path / "bench" / "accuracy_harmonic_1d_2states_3s.json").read_text())["curves"][0]
    assert default["preset"] == "default" and result.config["features"] == 0
    assert np.allclose(result.energies, default["final"]["energies"], rtol=0, atol=1e-12)
    assert (tmp_path / "results" / "harmonic_1d" / "harmonic_1d_validation.md").is_file()


def test_bench_input_errors_exit_2(tmp_path):
    assert main(["bench", "accuracy", "--budget", "1", "--out", str(tmp_path)]) == 2
    assert main(["bench", "accuracy", "harmonic_1d", "--budget", "0", "--out", str(tmp_path)]) == 2
    assert main(["bench", "accuracy", "harmonic_1d", "--presets", "fast", "--out", str(tmp_path)]) == 2
