"""A phase's checkpoints ranked by validation Sharpe (``RUN/PHASE/ranking.json``), and what a
finished phase returns. Entries are JSON objects on disk; `RankedCheckpoint` names their keys."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from multiagent.errors import ConfigError
from multiagent.runs.folders import run_path


class RankedCheckpoint(TypedDict):
    checkpoint: str
    """Relative to the run folder (records move with their folder)."""
    iteration: int
    val_sharpe: float
    validation: dict[str, float]
    """Every validation figure the backtester gave the checkpoint."""
    deleted: NotRequired[bool]
    """Pruned past ``keep_best`` (the entry stays, so the ranking keeps its history)."""


@dataclass
class PhaseResult:
    run_dir: Path
    iteration: int
    history: list[dict[str, Any]]
    """The metrics rows of every iteration."""
    ranking: list[RankedCheckpoint]
    latest_checkpoint: Path | None
    policy_path: Path | None
    validation: dict[str, float] = field(default_factory=dict)
    """The best checkpoint's validation figures."""

    @property
    def best_checkpoint(self) -> Path | None:
        return best_checkpoint(self.ranking, self.run_dir)


def best_checkpoint(ranking: list[RankedCheckpoint], run_dir: Path) -> Path | None:
    live = [r for r in ranking if not r.get("deleted")]
    return run_path(run_dir, live[0]["checkpoint"]) if live else None


def best_validation(ranking: list[RankedCheckpoint]) -> dict[str, float]:
    """The validation figures of the best live checkpoint ({} before the first)."""
    live = [r for r in ranking if not r.get("deleted")]
    if not live:
        return {}
    return dict(live[0].get("validation") or {"sharpe": live[0]["val_sharpe"]})


def read_ranking(phase_dir: Path) -> list[RankedCheckpoint]:
    path = phase_dir / "ranking.json"
    if not path.is_file():
        raise ConfigError(f"{phase_dir} has no ranking.json: the phase has not checkpointed yet")
    return list(json.loads(path.read_text()))
