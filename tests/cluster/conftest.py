"""The local Ray of the test session, shared with the RLlib tests (the multi-node and job
tests start their own clusters in subprocesses instead)."""

from __future__ import annotations

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from rllib.conftest import ray_session  # noqa: F401  (one local Ray for the session)
