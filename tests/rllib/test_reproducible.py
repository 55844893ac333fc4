"""Same seed, same config, same machine, sampling in the driver: the same training, bit for bit.

Each run is the ``multiagent`` command in its own process, started without ``PYTHONHASHSEED``
like a user's shell would: a process's string-hash salt is what made two runs differ before
(RLlib batches agents in set order), so two runs inside one test process would prove nothing.
The pipeline runs every phase (pretrain, symbols, master, joint) for 2 iterations each; the
sweep runs one random-search trial for 2 iterations. `run_differences` compares every metrics
row (wall-clock fields aside) and every weight of every checkpoint and export.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.tiny import TINY

from multiagent.training.reproducible import run_differences

pytestmark = pytest.mark.slow

TINY_PPO = {"train_batch_size": 200, "minibatch_size": 50, "num_epochs": 2}
PHASE = {"iterations": 2, "checkpoint_every": 1, "eval_every": 1, "ppo": TINY_PPO}


def run_config(tmp_path: Path, **sections: Any) -> Path:
    payload: dict[str, Any] = json.loads(json.dumps(TINY))
    payload.update(runs_dir=str(tmp_path / "runs"), cache_dir=str(tmp_path / "cache"))
    payload["extends"] = "none"  # the tiny run as it is, not over the default preset
    for key, value in sections.items():
        payload[key] = {**payload.get(key, {}), **value}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(payload))
    return path


def multiagent(*args: str, cwd: Path) -> None:
    """The installed command in a fresh process, its hash seed left to the command itself."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    done = subprocess.run(
        [sys.executable, "-m", "multiagent", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_the_pipeline_twice_gives_identical_metrics_and_weights(tmp_path: Path) -> None:
    config = run_config(
        tmp_path,
        symbols={**PHASE, "keep_best": 1, "policy": {"hidden": [16], "encoder": "finetune"}},
        master={**PHASE, "keep_best": 2, "policy": {"hidden": [16]}},
        joint={**PHASE, "keep_best": 1, "centralized_critic": True},
    )
    for name in ("first", "second"):
        multiagent(
            "train",
            "pipeline",
            "--config",
            str(config),
            "--run-dir",
            str(tmp_path / name),
            "--tracking-uri",
            f"sqlite:///{tmp_path / name}.db",
            cwd=tmp_path,
        )
    first, second = tmp_path / "first", tmp_path / "second"
    for phase in ("symbols", "master", "joint"):
        rows = (first / phase / "metrics.jsonl").read_text().splitlines()
        assert len(rows) == 2, phase
        assert list((first / phase / "checkpoints").glob("iter_*/algo/**/module_state.pkl"))
    assert run_differences(first, second) == []
    # The comparison is not blind: a figure changed in its 12th digit is reported.
    log = second / "master" / "metrics.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    rows[1]["reward_mean"] += 1e-12
    log.write_text("".join(json.dumps(row) + "\n" for row in rows))
    (found,) = run_differences(first, second)
    assert found.startswith("master/metrics.jsonl row 2 reward_mean: ")


def test_a_sweep_trial_twice_gives_identical_metrics_and_weights(tmp_path: Path) -> None:
    base = run_config(tmp_path, symbols={**PHASE, "keep_best": 1, "eval_every": 1})
    sweep = {
        "name": "same",
        "base": {"config": base.name},
        "target": "symbols",
        "search": "random",
        "num_samples": 1,
        "iterations": 2,
        "seed": 5,
        "space": {"symbols.ppo.lr": {"loguniform": [1e-4, 1e-3]}},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    trials = []
    for name in ("first", "second"):
        out = tmp_path / name
        multiagent(
            "tune",
            "--config",
            str(path),
            "--out",
            str(out),
            "--tracking-uri",
            "none",
            "--best-dir",
            str(tmp_path / "best"),
            cwd=tmp_path,
        )
        (trial,) = (out / "trials").iterdir()
        trials.append(trial)
    for trial in trials:
        assert len((trial / "fold_0" / "symbols" / "metrics.jsonl").read_text().splitlines()) == 2
    assert run_differences(trials[0], trials[1]) == []
