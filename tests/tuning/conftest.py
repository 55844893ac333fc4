"""Fixtures for the sweep tests: the real MLflow server and the local Ray of the session."""

from __future__ import annotations

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from mlflow_server import mlflow_server  # noqa: F401  (the shared session fixture)
from rllib.conftest import ray_session  # noqa: F401  (one local Ray for the session)
