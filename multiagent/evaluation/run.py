"""Evaluate a policy source and write its report folder (JSON, Markdown, plots, MLflow)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from multiagent.config import RunConfig
from multiagent.evaluation.config import EvaluationConfig
from multiagent.evaluation.evaluate import Evaluation, Evaluator
from multiagent.evaluation.report import fresh_dir, render_markdown, write_json
from multiagent.evaluation.sources import PolicySource
from multiagent.tracking.tracker import reachable
from multiagent.training.prepare import PreparedData, prepare

log = logging.getLogger(__name__)
EXPERIMENT = "multiagent-evaluation"


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
    and never fails the evaluation (the files are on disk either way).

    Uses an explicit client: ``mlflow.set_tracking_uri`` would change the whole process's
    default store (it sets ``MLFLOW_TRACKING_URI``), and a down server would then stall every
    later MLflow call in retries."""
    try:
        if not reachable(uri):
            raise ConnectionError("no answer within 3 s")
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(EXPERIMENT)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else client.create_experiment(EXPERIMENT)
        )
        report = files.evaluation.report
        run = client.create_run(experiment_id, run_name=f"evaluate-{files.directory.parent.name}")
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        params = {
            "policy": report["source"]["policy"],
            "part": report["window"]["part"],
            "seed": report["seed"],
            "data_fingerprint": report["data"]["fingerprint"],
        }
        metrics: dict[str, Any] = report["policies"]["agent"]["metrics"]
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        if report.get("gates") is not None:
            client.set_tag(run_id, "gates_passed", str(report["gates"]["passed"]))
        client.log_artifacts(run_id, str(files.directory), artifact_path="report")
        client.set_terminated(run_id)
    except Exception as error:  # tracking is best effort by design
        message = f"MLflow logging to {uri} failed ({type(error).__name__}: {error}); "
        message += "the report files are on disk"
        log.warning(message)
        if console is not None:
            console.print(f"[yellow]warning:[/] {message}", highlight=False)
