"""`multiagent tune`: Ray Tune sweeps (PBT or Optuna) over one training phase."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from multiagent.cli.common import console, fail
from multiagent.errors import MultiagentError


def tune_command(
    config: Annotated[Path, typer.Option(help="Sweep file (tune_configs/*.yaml).")],
    resume: Annotated[
        bool, typer.Option(help="Continue the interrupted sweep in its folder.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Sweep folder (default: RUNS_DIR/sweeps/NAME).")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow tracking URI (default: a SQLite store in the sweep folder)."),
    ] = None,
    best_dir: Annotated[Path, typer.Option(help="Where the chosen config is exported.")] = Path(
        "configs/best"
    ),
) -> None:
    """Tune one training phase on validation folds; export the best config and evaluate it
    once on the test split."""
    from multiagent.tuning.sweep import run_sweep

    try:
        result = run_sweep(
            config,
            out=out,
            resume=resume,
            tracking_uri=tracking_uri,
            best_dir=best_dir,
            console=console,
        )
    except (MultiagentError, ValueError) as error:
        fail(error)
        return
    _print_trials(result.trials)
    console.print(f"sweep folder: {result.directory}", highlight=False)
    if result.best_config is not None:
        console.print(f"best config: {result.best_config}", highlight=False)


def _print_trials(trials: list[dict[str, Any]]) -> None:
    keys = sorted({k for t in trials for k in t["config"]})
    table = Table(title="trials (objective on validation)")
    for column in ("trial", "status", "iterations", "objective", *keys):
        table.add_column(column)
    for trial in sorted(
        trials, key=lambda t: -t["objective"] if math.isfinite(t["objective"]) else math.inf
    ):
        table.add_row(
            str(trial["trial_id"]),
            trial["status"],
            str(trial["iterations"]),
            f"{trial['objective']:.4f}",
            *(_short(trial["config"].get(k)) for k in keys),
        )
    console.print(table)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
