"""Tiny configs of the single-agent systems (portfolio, regimes, sessions): a few synthetic
symbols or sessions, 2 PPO iterations of a 200-step batch, scratch encoder unless asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from multiagent.config import RunConfig
from support.tiny import TINY

SYSTEMS = ("portfolio", "regimes", "sessions")

_PLANTED = {
    "n_bars": 700,
    "signal": "momentum",
    "signal_r2": 0.2,
    "seed": 3,
    "regimes": {"calm": {"vol": 0.01, "drift": 0.0, "mean_duration": 1000}},
}
_DATA: dict[str, dict[str, Any]] = {
    "portfolio": {"synthetic": {**_PLANTED, "n_symbols": 5}},
    "regimes": {"synthetic": {**_PLANTED, "n_symbols": 2}},
    "sessions": {
        "sessions": {
            "n_sessions": 16,
            "min_bars": 60,
            "max_bars": 120,
            "seed": 3,
            "autocorrelation": -0.4,
        }
    },
}
_ENV: dict[str, dict[str, Any]] = {
    "portfolio": {"max_open_positions": 2, "scheme": {"kind": "discrete3"}},
    "regimes": {"scheme": {"kind": "regimes", "regime_step": 0.5}},
    "sessions": {"scheme": {"kind": "limit5"}, "execution": {"fill_price": "next_close"}},
}


def agent_payload(system: str, tmp_path: Path, **agent: Any) -> dict[str, Any]:
    payload = json.loads(json.dumps(TINY))
    for section in ("env", "symbols"):
        payload.pop(section)
    payload.update(system=system, data=_DATA[system], runs_dir=str(tmp_path / "runs"))
    if system == "sessions":
        payload["episodes"] = {"length": None, "min_length": 40}
    payload["agent"] = {
        "iterations": 2,
        "checkpoint_every": 1,
        "eval_every": 1,
        "keep_best": 1,
        "env": {**_ENV[system], "observation": {"window": 4}},
        "ppo": {"train_batch_size": 200, "minibatch_size": 100, "num_epochs": 2},
        "policy": {"hidden": [16], "encoder": "scratch"},
        "evaluation": {"episodes": 3},
        **agent,
    }
    return payload


def agent_config(system: str, tmp_path: Path, **agent: Any) -> RunConfig:
    return RunConfig.model_validate(agent_payload(system, tmp_path, **agent))
