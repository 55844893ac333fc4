"""The main job as one function: what `multiagent run` does, callable from Python.

Its body is the sequence: prepare the data -> roll the seeded baseline through the hierarchical
env -> train (pretrain -> symbols -> master -> joint, then the hierarchy comparison; see
`training.pipeline`) -> evaluate every trained system on the test split and write the report.
Whoever calls it decides what a person sees: a `MainJobView` is told each step's result as it
lands (the CLI prints tables; Python callers may pass none and read the returned `MainJob`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from multiagent.config import RunConfig
from multiagent.runs.folders import new_run_dir
from multiagent.runs.prepare import PreparedData, prepare
from multiagent.tracking import OFF, resolve_tracking_uri
from multiagent.training.pipeline import PipelineResult, run_pipeline
from multiagent.training.preflight import check_run
from multiagent.training.rollout import RolloutReport, random_rollout
from multiagent.training.run_state import discard_unstarted

if TYPE_CHECKING:
    from rich.console import Console

    from multiagent.evaluation.run import ReportFiles


class MainJobView(Protocol):
    """What a caller shows of the main job, step by step."""

    def working(self, description: str) -> AbstractContextManager[None]:
        """Shown while a step without its own progress display runs."""
        ...

    def prepared(self, prepared: PreparedData, config: RunConfig) -> None: ...

    def baseline(self, rollout: RolloutReport, config: RunConfig) -> None: ...

    def run_folder(self, run_dir: Path) -> None: ...

    def trained(self, result: PipelineResult) -> None: ...

    def reported(self, files: ReportFiles) -> None: ...


class QuietView:
    """Shows nothing: for callers that read the returned `MainJob`."""

    def working(self, description: str) -> AbstractContextManager[None]:
        return nullcontext()

    def prepared(self, prepared: PreparedData, config: RunConfig) -> None:
        pass

    def baseline(self, rollout: RolloutReport, config: RunConfig) -> None:
        pass

    def run_folder(self, run_dir: Path) -> None:
        pass

    def trained(self, result: PipelineResult) -> None:
        pass

    def reported(self, files: ReportFiles) -> None:
        pass


@dataclass
class MainJob:
    prepared: PreparedData
    baseline: RolloutReport
    run_dir: Path | None = None
    """None when the job stopped before training (``train=False``)."""
    training: PipelineResult | None = None
    report: ReportFiles | None = None
    """The test-split report of every trained system (None before phase 2 finished)."""


def run_main_job(
    config: RunConfig,
    name: str,
    *,
    train: bool = True,
    use_cache: bool = True,
    tracking_uri: str | None = None,
    console: Console | None = None,
    view: MainJobView | None = None,
) -> MainJob:
    """Run the main job of ``config`` into a new run folder ``config.runs_dir/name`` (``-2``,
    ``-3``... when taken). MLflow: ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else a SQLite
    store in the run folder; ``none`` switches it off. Gates are reported, not enforced."""
    view = view or QuietView()
    with view.working("loading data and building features..."):
        prepared = prepare(config, use_cache=use_cache)
    view.prepared(prepared, config)
    # Everything checkable, before the baseline, Ray or a run folder: one line naming the key.
    check_run(config, config.phases if train else (), prepared)
    env_name = "hierarchical" if config.system == "hierarchy" else config.system
    with view.working(f"rolling the baseline through the {env_name} env..."):
        baseline = random_rollout(prepared, config)
    view.baseline(baseline, config)
    job = MainJob(prepared, baseline)
    if not train:
        return job
    job.run_dir = run_dir = new_run_dir(config.runs_dir, name)
    view.run_folder(run_dir)
    # One store for the pipeline and its report; "none" keeps both off.
    uri = resolve_tracking_uri(tracking_uri, run_dir) or OFF
    try:
        job.training = run_pipeline(
            config, run_dir, prepared=prepared, console=console, tracking_uri=uri
        )
    except BaseException:
        discard_unstarted(run_dir)  # a start that failed leaves no folder behind
        raise
    view.trained(job.training)
    if job.training.symbol_policy is not None:
        evaluate = _evaluate if config.system == "hierarchy" else _evaluate_agent
        job.report = evaluate(config, run_dir, prepared, uri, console)
        view.reported(job.report)
    return job


def _evaluate_agent(
    config: RunConfig,
    run_dir: Path,
    prepared: PreparedData,
    tracking_uri: str | None,
    console: Console | None,
) -> ReportFiles:
    """A single-agent system's trained policy vs its baselines on the held-out episodes."""
    from multiagent.evaluation.agent_report import (
        agent_policy_path,
        evaluate_agent,
        write_agent_report,
    )
    from multiagent.evaluation.episodes import NetAgent

    agent = NetAgent.load(str(agent_policy_path(run_dir)), config.system)
    evaluation = evaluate_agent(agent, config, prepared, source=str(run_dir))
    return write_agent_report(
        evaluation,
        run_dir / "report",
        config,
        run_dir=run_dir,
        tracking_uri=tracking_uri,
        console=console,
    )


def _evaluate(
    config: RunConfig,
    run_dir: Path,
    prepared: PreparedData,
    tracking_uri: str | None,
    console: Console | None,
) -> ReportFiles:
    """Every system the run trained (independent, hierarchical, joint) on the held-out split
    vs the baselines, led by the hierarchy."""
    import multiagent.rllib  # noqa: F401  (registers RLlib checkpoint folders with evaluation)
    from multiagent.evaluation.run import evaluate_source
    from multiagent.evaluation.sources import resolve

    return evaluate_source(
        resolve(run_dir),
        config,
        run_dir / "report",
        prepared=prepared,
        shown_path=str(run_dir),
        console=console,
        tracking_uri=tracking_uri,
    )
