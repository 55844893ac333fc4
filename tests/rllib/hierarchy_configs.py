"""Tiny run configs for the hierarchy tests (phases 3-4 and the pipeline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.tiny import TINY

from multiagent.config import RunConfig


def hierarchy_config(tmp_path: Path, **sections: Any) -> RunConfig:
    """The tiny run config (`support.tiny.TINY`) with top-level sections merged in, one level
    deep (``symbols={"policy": {...}}`` replaces the whole ``policy``)."""
    payload: dict[str, Any] = {
        **TINY,
        "runs_dir": str(tmp_path / "runs"),
        "cache_dir": str(tmp_path / "cache"),
    }
    for key, value in sections.items():
        base = payload.get(key)
        payload[key] = {**base, **value} if isinstance(base, dict) else value
    return RunConfig.model_validate(payload)
