"""Evaluate a policy source and write its report folder (JSON, Markdown, plots, MLflow)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from multiagent.config import RunConfig
from multiagent.evaluation.config import EvaluationConfig
from multiagent.evaluation.evaluate import Evaluation, Evaluator
from multiagent.evaluation.report import fresh_dir, render_markdown, write_json
from multiagent.evaluation.sources import PolicySource
from multiagent.training.prepare import PreparedData, prepare

log = logging.getLogger(__name__)


@dataclass
class ReportFiles:
    directory: Path
    json: Path
    markdown: Path
    plots: list[Path]
    evaluation: Evaluation

    @property
    def passed(self) -> bool:
        gates = self.evaluation.report.get("gates")
        return bool(gates is None or gates["passed"])


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
    """Backtest ``source`` with ``config`` and write ``report.json``, ``report.md`` and plots
    into ``out_dir`` (or ``out_dir-2``... when it holds an earlier report)."""
    import torch

    torch.set_num_threads(1)  # one thread: deterministic and fastest for these small nets
    prepared = prepared if prepared is not None else prepare(config)
    policy = source.load("agent")
    evaluator = Evaluator(
        config, prepared, settings, console=console, trained_symbols=trained_symbols
    )
    evaluation = evaluator.evaluate([policy], source.describe(shown_path or str(source.path)))
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
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        log_to_mlflow(files, uri, console)
    return files


def log_to_mlflow(files: ReportFiles, uri: str, console: Console | None) -> None:
    """The report folder as artifacts and the agent's metrics; a tracking failure warns once
    and never fails the evaluation (the files are on disk either way)."""
    try:
        import mlflow

        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("multiagent-evaluation")
        report = files.evaluation.report
        with mlflow.start_run(run_name=f"evaluate-{files.directory.parent.name}"):
            mlflow.log_params(
                {
                    "policy": report["source"]["policy"],
                    "part": report["window"]["part"],
                    "seed": report["seed"],
                    "data_fingerprint": report["data"]["fingerprint"],
                }
            )
            metrics: dict[str, Any] = report["policies"]["agent"]["metrics"]
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
            if report.get("gates") is not None:
                mlflow.set_tag("gates_passed", str(report["gates"]["passed"]))
            mlflow.log_artifacts(str(files.directory), artifact_path="report")
    except Exception as error:
        message = f"MLflow logging to {uri} failed ({type(error).__name__}: {error}); "
        message += "the report files are on disk"
        log.warning(message)
        if console is not None:
            console.print(f"[yellow]warning:[/] {message}", highlight=False)
