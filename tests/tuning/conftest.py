"""Fixtures for the sweep tests: the session's real MLflow server (shared with tests/tracking)."""

from __future__ import annotations

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from mlflow_server import mlflow_server  # noqa: F401  (the shared session fixture)
