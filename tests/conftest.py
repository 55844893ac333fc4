"""Fixtures of every test: a private feature cache. Helpers live in `support` (plain modules)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("MULTIAGENT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
