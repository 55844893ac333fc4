"""A curriculum inside a real training run: stages advance (by iterations and by the
validation metric), every row logs its stage, and a resumed run continues in its stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.tiny import tiny_config

from multiagent.config import RunConfig
from multiagent.curriculum.config import validate_curriculum
from multiagent.rllib.symbols import SymbolTrainer

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]


def with_curriculum(config: RunConfig, stages: list[dict[str, Any]]) -> RunConfig:
    curriculum = validate_curriculum(
        {"name": "t", "phases": ["symbols"], "metric": "val_sharpe", "stages": stages},
        file="test",
    )
    return config.model_copy(update={"curriculum": curriculum})


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_stages_advance_and_resume_in_their_stage(tmp_path: Path) -> None:
    config = with_curriculum(
        tiny_config(tmp_path, iterations=4, checkpoint_every=2),
        [
            {"name": "free", "cost_multiplier": 0.0, "iterations": 1},
            {"name": "half", "cost_multiplier": 0.5, "iterations": 2},
            {"name": "real", "cost_multiplier": 1.0},
        ],
    )
    trainer = SymbolTrainer(config, tmp_path / "run")
    try:
        trainer.train(3)
    finally:
        trainer.stop()
    log = rows(tmp_path / "run" / "symbols" / "metrics.jsonl")
    assert [r["curriculum_stage"] for r in log] == [0, 1, 1]
    assert [r["curriculum_cost_multiplier"] for r in log] == [0.0, 0.5, 0.5]
    assert [r["curriculum_next_stage"] for r in log] == [1, 1, 2]
    checkpoint = tmp_path / "run" / "symbols" / "checkpoints" / "iter_00003"
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["curriculum"]["stage_index"] == 2

    resumed = SymbolTrainer(config, tmp_path / "run")
    try:
        resumed.restore(checkpoint)
        assert resumed.curriculum is not None and resumed.curriculum.curriculum is not None
        assert resumed.curriculum.curriculum.stage_name == "real"
        resumed.train(4)
    finally:
        resumed.stop()
    log = rows(tmp_path / "run" / "symbols" / "metrics.jsonl")
    assert [r["curriculum_stage"] for r in log] == [0, 1, 1, 2]
    assert log[-1]["curriculum_cost_multiplier"] == 1.0


def test_validation_metric_promotes(tmp_path: Path) -> None:
    """``at_least`` far below any Sharpe: the first validation after min_iterations promotes;
    an unreachable threshold holds the stage until max_iterations."""
    config = with_curriculum(
        tiny_config(tmp_path, iterations=3, checkpoint_every=3, eval_every=1),
        [
            {"name": "a", "promote": {"at_least": -1e9, "min_iterations": 1}},
            {"name": "b", "promote": {"at_least": 1e9, "min_iterations": 1, "max_iterations": 2}},
            {"name": "c"},
        ],
    )
    trainer = SymbolTrainer(config, tmp_path / "run")
    try:
        trainer.train(3)
    finally:
        trainer.stop()
    log = rows(tmp_path / "run" / "symbols" / "metrics.jsonl")
    assert [r["curriculum_stage"] for r in log] == [0, 1, 1]
    assert all("val_sharpe" in r for r in log)
    assert log[-1]["curriculum_next_stage"] == 2
