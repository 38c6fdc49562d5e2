"""Keep every test's PySCF cache in a temporary folder, never in the user's home."""
import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("QSOLVER_CACHE", str(tmp_path_factory.getbasetemp() / "qsolver-cache"))
