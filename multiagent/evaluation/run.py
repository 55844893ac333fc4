"""Evaluate a policy source and write its report folder (JSON, Markdown, plots, MLflow)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from multiagent.config import RunConfig
from multiagent.config.evaluation import POLICY_STATISTICS, EvaluationConfig
from multiagent.evaluation.evaluate import Evaluation, Evaluator
from multiagent.evaluation.report import render_markdown, write_json
from multiagent.evaluation.sources import PolicySource
from multiagent.runs.folders import fresh_dir
from multiagent.runs.prepare import PreparedData, prepare
from multiagent.tracking import Tracker, relocated_uri, resolve_tracking_uri, run_tags

EXPERIMENT = "multiagent-evaluation"
"""Where evaluations of sources outside a tracked run go."""
TRAINING_EXPERIMENT = "multiagent-training"
"""The pipeline's experiment: an evaluation of a tracked run nests under its pipeline run."""


@dataclass
class ReportFiles:
    directory: Path
    json: Path
    markdown: Path
    plots: list[Path]
    evaluation: Evaluation

    @property
    def passed(self) -> bool:
        """No gate failed: true without gates too (no verdict is no failure to exit 3 on)."""
        gates = self.evaluation.report.get("gates")
        return gates is None or gates["passed"] is not False


def evaluate_source(
    source: PolicySource,
    config: RunConfig,
    out_dir: Path,
    *,
    settings: EvaluationConfig | None = None,
    shown_path: str | None = None,
    prepared: PreparedData | None = None,
    overwrite: bool = False,
    plots: bool = True,
    tracking_uri: str | None = None,
    console: Console | None = None,
    trained_symbols: set[str] | None = None,
) -> ReportFiles:
    """Backtest every system of ``source`` with ``config`` and write ``report.json``,
    ``report.md`` and plots into ``out_dir`` (or ``out_dir-2``... when it holds an earlier
    report); logged to MLflow, nested under the run's pipeline run when the run has one."""
    evaluation = evaluate_systems(
        source,
        config,
        settings=settings,
        shown_path=shown_path,
        prepared=prepared,
        console=console,
        trained_symbols=trained_symbols,
    )
    directory = fresh_dir(out_dir, overwrite)
    written: list[Path] = []
    if plots:
        from multiagent.evaluation.plots import write_plots

        written = write_plots(evaluation, directory)
    json_path = write_json(directory / "report.json", evaluation.report)
    markdown = directory / "report.md"
    markdown.write_text(
        render_markdown(evaluation.report, [p.name for p in written]), encoding="utf-8"
    )
    files = ReportFiles(directory, json_path, markdown, written, evaluation)
    parent = pipeline_run(source.run_dir)
    uri = resolve_tracking_uri(tracking_uri, recorded=(parent or {}).get("uri"))
    if uri is not None:
        log_to_mlflow(files, uri, config, source.run_dir, console)
    return files


def evaluate_systems(
    source: PolicySource,
    config: RunConfig,
    *,
    settings: EvaluationConfig | None = None,
    shown_path: str | None = None,
    prepared: PreparedData | None = None,
    console: Console | None = None,
    trained_symbols: set[str] | None = None,
) -> Evaluation:
    """Every system of ``source`` and the baselines through one `Evaluator` (no files)."""
    import torch

    torch.set_num_threads(1)  # one thread: deterministic and fastest for these small nets
    prepared = prepared if prepared is not None else prepare(config)
    systems = source.load()
    evaluator = Evaluator(
        config, prepared, settings, console=console, trained_symbols=trained_symbols
    )
    return evaluator.evaluate(systems, source.describe(shown_path or str(source.path)))


def pipeline_run(run_dir: Path | None) -> dict[str, str] | None:
    """The MLflow store and run id of a run folder's pipeline (None when it has none)."""
    if run_dir is None or not (run_dir / "pipeline.json").is_file():
        return None
    try:
        known = json.loads((run_dir / "pipeline.json").read_text(encoding="utf-8")).get("mlflow")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(known, dict) or not known.get("uri") or not known.get("run_id"):
        return None
    # The default store lives in the run folder: follow the folder when it was moved.
    return {"uri": relocated_uri(str(known["uri"]), run_dir), "run_id": str(known["run_id"])}


def log_to_mlflow(
    files: ReportFiles,
    uri: str,
    config: RunConfig,
    run_dir: Path | None,
    console: Console | None,
) -> None:
    """The report folder as artifacts and every system's metrics (``SYSTEM.metric``), with the
    run's tags (git revision, data fingerprint, seed, versions). Nested under the run's
    pipeline run when it lives in the same store; else a run of its own. A tracking failure
    (an unreachable server included) warns and never fails the evaluation (the files are on
    disk either way): `Tracker`'s best effort."""
    report = files.evaluation.report
    parent = pipeline_run(run_dir)
    nested = parent is not None and parent["uri"] == uri
    tags = run_tags(
        config.model_dump(mode="json"),
        seed=report["seed"],
        data_fingerprint=report["data"]["fingerprint"],
    )
    tags["phase"] = "evaluate"
    name = run_dir.name if run_dir is not None else files.directory.parent.name
    tracker = Tracker.start(
        uri,
        TRAINING_EXPERIMENT if nested else EXPERIMENT,
        f"{name}/evaluate-{report['window']['part']}",
        parent_run_id=parent["run_id"] if nested and parent is not None else None,
        tags=tags,
        console=console,
    )
    with tracker:
        tracker.log_params(
            {
                "source": report["source"]["path"],
                "part": report["window"]["part"],
                "systems": ",".join(report["agents"]),
            }
        )
        metrics: dict[str, Any] = {}
        for system in report["agents"]:
            for key, value in report["policies"][system]["metrics"].items():
                metrics[f"{system}.{key}"] = value
        lead = report.get("lead")
        if lead is not None and report.get("statistics"):
            # The lead system's trust figures, unprefixed: what `multiagent compare` shows.
            lead_metrics = report["policies"][lead]["metrics"]
            metrics.update({key: lead_metrics.get(key) for key in POLICY_STATISTICS})
            metrics["spa_pvalue"] = report["statistics"]["policies"][lead]["spa_pvalue"]
        comparison = report.get("comparison") or {}
        for system, entry in (comparison.get("systems") or {}).items():
            for key, diff in entry["metrics"].items():
                metrics[f"{system}.vs_independent.{key}"] = diff["difference"]
        tracker.log_metrics(metrics, step=0)
        gates = report.get("gates")
        if gates is not None:
            tags = {"lead_system": report["lead"]}
            if gates["passed"] is not None:  # no gates: no verdict to tag
                tags["gates_passed"] = str(gates["passed"])
            tracker.set_tags(tags)
        tracker.log_artifact(files.directory, "report")
