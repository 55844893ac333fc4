"""Side by side comparison of tracked runs: what differs in their configs, where they ended.

`compare_runs` reads runs (by id, or the newest of an experiment) through an explicit client;
`comparison_table` renders params that differ and the key metrics' last values;
`write_comparison` writes ``compare.json`` and ``compare.png`` (each key metric's history).
Identical params are only counted: a sweep's runs share hundreds of config keys, and the few
that differ are the point. The overfitting statistics (`STATISTICS`: a report's DSR, PSR and
SPA p-value, a sweep's PBO and DSR) get their own section, shown only when a run logged one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from multiagent.errors import ConfigError
from multiagent.runs.folders import fresh_dir
from multiagent.tracking.client import reachable
from multiagent.tracking.stores import resolve_tracking_uri

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

DEFAULT_METRICS = (
    "val_sharpe",
    "val_max_drawdown",
    "val_turnover",
    "reward_mean",
    "policy_entropy",
    "curriculum_stage",
)
STATISTICS = {
    "dsr": "DSR (deflated Sharpe ratio)",
    "psr": "PSR (probabilistic Sharpe ratio)",
    "pbo": "PBO (probability of backtest overfitting)",
    "spa_pvalue": "SPA p-value (vs the baselines)",
}
"""Metric -> row label: what a report or a sweep logs about how far its figure can be trusted."""
MAX_RUNS = 20
SCHEMA = "multiagent.compare/1"


@dataclass
class RunInfo:
    run_id: str
    name: str
    experiment: str
    status: str
    start_time: str | None  # UTC, ISO 8601


@dataclass
class Comparison:
    uri: str
    runs: list[RunInfo]
    differing: dict[str, list[str | None]]
    """Param -> its value in each run (None: the run lacks it), only params that differ."""
    identical: int
    """How many params every run has with the same value."""
    metrics: dict[str, list[float | None]]
    """Key metric -> its last value in each run (None: not logged by that run)."""
    histories: dict[str, list[list[tuple[int, float]]]] = field(default_factory=dict)
    """Key metric -> each run's (step, value) points in logged order."""
    notes: list[str] = field(default_factory=list)
    statistics: dict[str, list[float | None]] = field(default_factory=dict)
    """`STATISTICS` some run logged -> each run's last value (None: not logged by that run)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "tracking_uri": self.uri,
            "runs": [asdict(run) for run in self.runs],
            "params": {"differing": self.differing, "identical": self.identical},
            "metrics": self.metrics,
            "statistics": self.statistics,
            "histories": {
                key: [[[step, value] for step, value in points] for points in per_run]
                for key, per_run in self.histories.items()
            },
            "notes": self.notes,
        }


def tracking_uri(uri: str | None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI`` (`resolve_tracking_uri`, no run folder); one
    of them is required (comparing an empty default store would only confuse)."""
    found = resolve_tracking_uri(uri)
    if found is None:
        raise ConfigError("no tracking store: pass --tracking-uri or set MLFLOW_TRACKING_URI")
    return found


def open_store(uri: str) -> MlflowClient:
    """A client on an existing store: a server that answers, or a SQLite file that exists (the
    client would otherwise create an empty database and report nothing found)."""
    if not reachable(uri):
        raise ConfigError(f"MLflow tracking server {uri} does not answer (is it running?)")
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ConfigError(f"{uri}: no MLflow database at {path}")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def fetch_runs(
    client: MlflowClient, uri: str, run_ids: Sequence[str], experiment: str | None
) -> tuple[list[Run], list[str]]:
    """The runs asked for (ids first, then the experiment's newest), at most `MAX_RUNS`, and
    notes on what was left out."""
    from mlflow.exceptions import MlflowException

    if not run_ids and experiment is None:
        raise ConfigError("give run ids or --experiment NAME")
    if len(run_ids) > MAX_RUNS:
        raise ConfigError(f"{len(run_ids)} run ids given; compare at most {MAX_RUNS} at once")
    runs: list[Run] = []
    for run_id in dict.fromkeys(run_ids):
        try:
            runs.append(client.get_run(run_id))
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise ConfigError(f"run {run_id} not found in {uri}") from None
    notes: list[str] = []
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            names = sorted(e.name for e in client.search_experiments())
            raise ConfigError(
                f"no experiment named {experiment!r} in {uri} (experiments: "
                f"{', '.join(names) or 'none'})"
            )
        room = MAX_RUNS - len(runs)
        listed = client.search_runs(
            [found.experiment_id], order_by=["attributes.start_time DESC"], max_results=room + 1
        )
        seen = {run.info.run_id for run in runs}
        newest = [run for run in listed if run.info.run_id not in seen]
        if len(newest) > room:
            notes.append(f"experiment {experiment!r} has more runs; compared the newest {room}")
        runs.extend(newest[:room])
        if not runs:
            raise ConfigError(f"experiment {experiment!r} in {uri} has no runs")
    return runs, notes


def _info(client: MlflowClient, run: Run, names: dict[str, str]) -> RunInfo:
    experiment_id = run.info.experiment_id
    if experiment_id not in names:
        names[experiment_id] = client.get_experiment(experiment_id).name
    started = run.info.start_time
    return RunInfo(
        run_id=run.info.run_id,
        name=run.info.run_name or run.info.run_id[:8],
        experiment=names[experiment_id],
        status=run.info.status,
        start_time=(
            datetime.fromtimestamp(started / 1000, UTC).isoformat(timespec="seconds")
            if started
            else None
        ),
    )


def compare_runs(
    uri: str | None,
    run_ids: Sequence[str] = (),
    *,
    experiment: str | None = None,
    metrics: Sequence[str] = (),
    histories: bool = True,
) -> Comparison:
    """Fetch the runs and line them up; unknown runs, experiments and a dead server raise
    `ConfigError` with one line that says which."""
    uri = tracking_uri(uri)
    client = open_store(uri)
    runs, notes = fetch_runs(client, uri, run_ids, experiment)
    names: dict[str, str] = {}
    params = [run.data.params for run in runs]
    keys = sorted(set().union(*params))
    differing = {
        key: [p.get(key) for p in params] for key in keys if len({p.get(key) for p in params}) > 1
    }
    wanted = [m for m in dict.fromkeys([*DEFAULT_METRICS, *metrics]) if m not in STATISTICS]
    present = [m for m in wanted if any(m in run.data.metrics for run in runs)]
    statistics = {
        key: [_finite(run.data.metrics.get(key)) for run in runs]
        for key in STATISTICS
        if any(key in run.data.metrics for run in runs)
    }
    missing = [m for m in metrics if m not in present and m not in statistics]
    if missing:
        notes.append(f"no run logged {', '.join(missing)}")
    last = {m: [_finite(run.data.metrics.get(m)) for run in runs] for m in present}
    curves: dict[str, list[list[tuple[int, float]]]] = {}
    if histories:
        for m in present:
            curves[m] = [
                [
                    (p.step, p.value)
                    for p in client.get_metric_history(run.info.run_id, m)
                    if math.isfinite(p.value)
                ]
                if m in run.data.metrics
                else []
                for run in runs
            ]
    return Comparison(
        uri=uri,
        runs=[_info(client, run, names) for run in runs],
        differing=differing,
        identical=len(keys) - len(differing),
        metrics=last,
        histories=curves,
        notes=notes,
        statistics=statistics,
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _label(run: RunInfo) -> str:
    return f"{run.name} ({run.run_id[:8]})"


def comparison_table(comparison: Comparison) -> Table:
    """Runs as columns; differing params, then key metrics' last values, then (when logged)
    the overfitting statistics, as rows."""
    table = Table(title=f"{len(comparison.runs)} runs in {comparison.uri}")
    table.add_column("")
    for run in comparison.runs:
        table.add_column(f"{escape(run.name)}\n{run.run_id[:8]}", justify="right", overflow="fold")
    table.add_row("[dim]status[/]", *(run.status for run in comparison.runs))
    for key, values in comparison.differing.items():
        table.add_row(escape(key), *("-" if v is None else escape(v) for v in values))
    if comparison.identical:
        table.add_row(
            f"[dim]{comparison.identical} identical params[/]", *("" for _ in comparison.runs)
        )
    if comparison.metrics:
        table.add_section()
        for key, last in comparison.metrics.items():
            table.add_row(
                f"[bold]{escape(key)}[/]", *("-" if v is None else f"{v:.4g}" for v in last)
            )
    if comparison.statistics:
        table.add_section()
        for key, figures in comparison.statistics.items():
            table.add_row(
                f"[bold]{escape(STATISTICS.get(key, key))}[/]",
                *("-" if v is None else f"{v:.3f}" for v in figures),
            )
    return table


def write_comparison(comparison: Comparison, out: Path | None = None) -> tuple[Path, Path]:
    """``compare.json`` and ``compare.png`` in ``out`` (default ``./compare-<UTC time>``), a
    fresh folder: an existing non-empty one gets ``-2``, ``-3``... instead."""
    if out is None:
        out = Path.cwd() / f"compare-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    directory = fresh_dir(out)
    json_path = directory / "compare.json"
    json_path.write_text(json.dumps(comparison.to_json(), indent=2) + "\n", encoding="utf-8")
    return json_path, plot_comparison(comparison, directory / "compare.png")


def plot_comparison(comparison: Comparison, path: Path) -> Path:
    """``compare.png``: `comparison_figure` saved without a timestamp."""
    figure = comparison_figure(comparison)
    figure.savefig(path, dpi=100, metadata={"Software": None})
    return path


def comparison_figure(comparison: Comparison) -> Figure:
    """One panel per key metric: each run's history over steps, or bars when every run has a
    single point (a curve of one point is invisible)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    keys = list(comparison.histories) or list(comparison.metrics)
    columns = min(3, max(1, len(keys)))
    rows = max(1, math.ceil(len(keys) / columns))
    figure = Figure(figsize=(5 * columns, 3.6 * rows))
    FigureCanvasAgg(figure)
    labels = [_label(run) for run in comparison.runs]
    if not keys:
        axis = figure.add_subplot(1, 1, 1)
        axis.text(0.5, 0.5, "no key metric logged by these runs", ha="center", va="center")
        axis.set_axis_off()
    for index, key in enumerate(keys):
        axis = figure.add_subplot(rows, columns, index + 1)
        per_run = comparison.histories.get(key) or [
            [] if v is None else [(0, v)] for v in comparison.metrics[key]
        ]
        if all(len(points) <= 1 for points in per_run):
            heights = [points[-1][1] if points else math.nan for points in per_run]
            axis.bar(
                range(len(heights)), heights, color=[f"C{i % 10}" for i in range(len(heights))]
            )
            axis.set_xticks(range(len(heights)), labels, rotation=30, ha="right", fontsize=7)
        else:
            for i, points in enumerate(per_run):
                if points:
                    axis.plot(
                        [step for step, _ in points],
                        [value for _, value in points],
                        marker="." if len(points) < 30 else None,
                        color=f"C{i % 10}",
                        label=labels[i],
                    )
            axis.set_xlabel("step")
            # steps are iterations: a tick at 2.5 names no iteration (issue 23)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.legend(fontsize=7)
        axis.set_title(key)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure
