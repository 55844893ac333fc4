"""What a sweep leaves behind once it has chosen: the chosen config exported (with the search
it came from), its one evaluation on the test split, and the parent MLflow run's record."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml

from multiagent.config import RunConfig
from multiagent.runs.folders import free_path, write_atomic, write_json
from multiagent.tracking import Tracker
from multiagent.tuning.config import SweepConfig
from multiagent.tuning.selection import SelectionStatistics


def export_best(
    chosen: RunConfig, sweep: SweepConfig, best: dict[str, Any], directory: Path, best_dir: Path
) -> Path:
    """The chosen run config as a YAML file `multiagent train pipeline --config` runs as is."""
    header = (
        f"# Chosen by sweep {sweep.name} ({sweep.search}, target {sweep.target}) on "
        f"{dt.date.today().isoformat()}: trial {best['trial_id']}, validation objective "
        f"{best['objective']:.4f} (mean {sweep.metric} over {sweep.folds} fold(s)).\n"
        f"# Sampled: {json.dumps(best['config'])}\n"
    )
    text = header + yaml.safe_dump(chosen.model_dump(mode="json"), sort_keys=False)
    write_atomic(directory / "best.yaml", text)
    best_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{sweep.name}-{dt.date.today().isoformat()}"
    path = free_path(best_dir / f"{stem}.yaml", suffix=".yaml")  # earlier exports are kept
    write_atomic(path, text)
    return path


def final_evaluation(
    chosen: RunConfig, sweep: SweepConfig, checkpoint: Path, directory: Path
) -> dict[str, Any]:
    """The chosen trial's checkpoint, once, on the test split of the unsealed data, scored by
    the backtester every report uses."""
    import multiagent.rllib  # noqa: F401  (registers RLlib checkpoint folders with evaluation)
    from multiagent.evaluation.run import evaluate_systems
    from multiagent.evaluation.sources import PHASE_SYSTEMS, resolve

    if sweep.target == "agent":
        return _final_agent_evaluation(chosen, checkpoint, directory)
    system = PHASE_SYSTEMS[sweep.target]
    settings = chosen.evaluation.model_copy(
        update={
            "part": "test",
            "walk_forward": chosen.evaluation.walk_forward.model_copy(update={"enabled": False}),
            "stress": chosen.evaluation.stress.model_copy(update={"enabled": False}),
        }
    )
    evaluation = evaluate_systems(resolve(checkpoint, system), chosen, settings=settings)
    final = {
        "part": "test",
        "system": system,
        "checkpoint": str(checkpoint),
        "metrics": evaluation.report["policies"][system]["metrics"],
    }
    write_json(directory / "final_test.json", final)
    return final


def _final_agent_evaluation(chosen: RunConfig, checkpoint: Path, directory: Path) -> dict[str, Any]:
    """A single-agent system's chosen checkpoint on its env's test episodes."""
    from multiagent.evaluation.agent_report import evaluate_agent
    from multiagent.evaluation.episodes import NetAgent
    from multiagent.rllib.policy import load_rllib_policy
    from multiagent.runs.prepare import prepare

    agent = NetAgent(load_rllib_policy(checkpoint, chosen.system))
    unsealed = chosen.model_copy(update={"seal_test": False})
    evaluation = evaluate_agent(agent, unsealed, prepare(unsealed), source=str(checkpoint))
    final = {
        "part": "test",
        "system": chosen.system,
        "checkpoint": str(checkpoint),
        "metrics": evaluation.report["policies"][chosen.system]["metrics"],
    }
    write_json(directory / "final_test.json", final)
    return final


def log_outcome(
    parent: Tracker,
    directory: Path,
    best: dict[str, Any] | None,
    final: dict[str, Any] | None,
    trials: list[dict[str, Any]],
    stats: SelectionStatistics | None = None,
) -> None:
    metrics: dict[str, Any] = {"trials": len(trials)}
    if stats is not None:
        metrics["sharpe_variance"] = stats.sharpe_variance
        if stats.pbo is not None:
            metrics["pbo"] = stats.pbo.pbo
        if stats.dsr is not None:
            metrics["dsr"] = stats.dsr
    if best is not None:
        metrics["best_objective"] = best["objective"]
        parent.set_tags({"best_trial": str(best["trial_id"])})
        parent.log_params({f"best.{k}": v for k, v in best["config"].items()})
    if final is not None:
        metrics.update({f"test_{k}": v for k, v in final["metrics"].items()})
    parent.log_metrics(metrics, step=0)
    for name in (
        "trials.json",
        "best.yaml",
        "final_test.json",
        "pbt",
        "pbo.json",
        "pbo.png",
        "summary.json",
        "summary.md",
    ):
        parent.log_artifact(directory / name)
    parent.finish()
