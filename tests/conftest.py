"""Fixtures of every test: a private feature cache, and the one local Ray of the session (for
the RLlib, sweep and cluster tests that ask for it). Helpers live in `support` (plain modules)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("MULTIAGENT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import ray
    import ray.tune.trainable.trainable as trainable

    trainable.DEFAULT_STORAGE_PATH = str(tmp_path_factory.mktemp("ray_results"))
    started = not ray.is_initialized()
    if started:
        from multiagent.rllib.ray_session import start_local_ray

        start_local_ray(2, log_to_driver=False)  # as a local run starts it: loopback only
    yield
    if started:
        ray.shutdown()
