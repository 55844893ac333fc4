"""`multiagent compare`: tracked runs side by side (differing params, key metrics, curves)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from multiagent.cli.common import console, fail
from multiagent.errors import MultiagentError


def compare(
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="MLflow run ids (or use --experiment).")
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="Also compare this experiment's newest runs (max 20).")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)."),
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated metrics to add to the defaults.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for compare.png and compare.json (default ./compare-TIME)."),
    ] = None,
) -> None:
    """Print the params that differ between runs and their key metrics' last values (and the
    DSR, PSR, PBO, SPA p-value of the runs that logged them); write compare.png (metric
    histories) and compare.json."""
    from multiagent.tracking.compare import compare_runs, comparison_table, write_comparison

    extra = [m.strip() for m in (metrics or "").split(",") if m.strip()]
    try:
        comparison = compare_runs(tracking_uri, run_ids or [], experiment=experiment, metrics=extra)
        json_path, png_path = write_comparison(comparison, out)
    except (MultiagentError, OSError) as error:
        fail(error)
        return
    console.print(comparison_table(comparison))
    for note in comparison.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"wrote {png_path} and {json_path.name}", highlight=False)
