"""Fixtures for the tracking tests: a SQLite store per test, a tiny exported policy, and the
session's real MLflow server (`mlflow_server`, shared with other test folders)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from mlflow_server import mlflow_server  # noqa: F401  (the shared session fixture)

W, F, EXTRA, A = 4, 5, 15, 3
OBS_DIM = W * F + EXTRA


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


def export_policy(path: Path, recurrent: str = "none") -> Path:
    """A tiny symbol policy exported the way training does (`export_torchscript`)."""
    import gymnasium as gym
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from multiagent.rllib.modules import SymbolRLModule
    from multiagent.rllib.policy import export_torchscript

    torch.manual_seed(0)
    space = gym.spaces.Dict(
        {
            "observations": gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32),
            "action_mask": gym.spaces.Box(0, 1, (A,), np.int8),
        }
    )
    module = RLModuleSpec(
        module_class=SymbolRLModule,
        observation_space=space,
        action_space=gym.spaces.Discrete(A),
        model_config={
            "window": W,
            "n_features": F,
            "encoder": {"hidden": 8, "embedding": 6, "layers": 2},
            "hidden": [16],
            "recurrent": recurrent,
            "recurrent_size": 7,
        },
    ).build()
    example = np.random.default_rng(0).standard_normal((6, OBS_DIM)).astype(np.float32)
    return export_torchscript(module, path, example)


@pytest.fixture(scope="session")
def policy_pt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_policy(tmp_path_factory.mktemp("policy") / "policy.pt")
