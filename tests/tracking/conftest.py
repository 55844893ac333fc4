"""Fixtures for the tracking tests: a SQLite store per test, a tiny exported policy, and the
session's real MLflow server (`mlflow_server`, shared with other test folders)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from mlflow_server import mlflow_server  # noqa: F401  (the shared session fixture)
from support.policies import export_policy


@pytest.fixture(autouse=True)
def _no_default_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may log to a store it did not name, nor leave ./mlruns behind."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store with MLflow's schema in place: creating one costs 1-3 s of migrations."""
    from mlflow.tracking import MlflowClient

    from multiagent.tracking import default_tracking_uri

    directory = tmp_path_factory.mktemp("empty_store")
    MlflowClient(tracking_uri=default_tracking_uri(directory)).search_experiments()
    return directory / "mlflow.db"


@pytest.fixture
def store(tmp_path: Path, empty_store: Path) -> str:
    """A fresh SQLite store per test (a copy of the migrated empty one)."""
    from multiagent.tracking import default_tracking_uri

    (tmp_path / "store").mkdir()
    shutil.copyfile(empty_store, tmp_path / "store" / "mlflow.db")
    return default_tracking_uri(tmp_path / "store")


@pytest.fixture(scope="session")
def policy_pt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_policy(tmp_path_factory.mktemp("policy") / "policy.pt")
