"""The tiny run the RLlib, tuning and cluster tests train: 4 synthetic symbols, 2 PPO
iterations of a 200-step batch (`tiny_config` builds its `RunConfig`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from multiagent.config import RunConfig

TINY: dict[str, Any] = {
    "seed": 3,
    "data": {"synthetic": {"n_symbols": 4, "n_bars": 700, "signal": "momentum", "seed": 3}},
    "features": {
        "features": {
            "returns": [1, 5],
            "volatility": [10],
            "momentum": [],
            "rsi": [],
            "macd": None,
            "zscore": [],
            "volume": [],
            "range_volatility": [],
            "regime": None,
            "cross_sectional": [],
        },
        "normalization": {"method": "expanding", "min_periods": 10, "clip": 5.0},
    },
    "split": {"train": 0.6, "validation": 0.2, "purge": 5},
    "episodes": {"length": 80, "min_length": 40},
    "env": {"n_symbols": 3, "observation": {"window": 4}},
    "encoder": {"hidden": 8, "embedding": 8, "layers": 2},
    "pretrain": {"epochs": 2, "windows_per_epoch": 256, "batch_size": 64},
    "symbols": {
        "iterations": 2,
        "checkpoint_every": 1,
        "eval_every": 1,
        "keep_best": 1,
        "ppo": {"train_batch_size": 200, "minibatch_size": 100, "num_epochs": 2},
        "policy": {"hidden": [16], "encoder": "scratch"},
    },
    "resources": {"num_envs_per_env_runner": 2},
}


def tiny_config(
    tmp_path: Path, resources: dict[str, Any] | None = None, **symbols: Any
) -> RunConfig:
    """The tiny run; ``resources`` and ``symbols`` entries update TINY's sections."""
    payload: dict[str, Any] = {**TINY, "runs_dir": str(tmp_path / "runs")}
    payload["resources"] = {**TINY["resources"], **(resources or {})}
    payload["cache_dir"] = str(tmp_path / "cache")
    merged = dict(TINY["symbols"])
    for key, value in symbols.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    payload["symbols"] = merged
    return RunConfig.model_validate(payload)
