"""Keep every test's PySCF cache in a temporary folder, never in the user's home; skip tests marked ``cuda``
on machines without a CUDA device."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("QSOLVER_CACHE", str(tmp_path_factory.getbasetemp() / "qsolver-cache"))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
