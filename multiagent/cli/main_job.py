"""How `multiagent run` shows the main job: the data, the baseline, the phases, the report."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.table import Table

from multiagent.cli.common import console
from multiagent.data.panel import MarketPanel
from multiagent.evaluation.metrics import periods_per_year

if TYPE_CHECKING:  # annotations only: `multiagent data ...` must not load the trainers
    from multiagent.config import RunConfig
    from multiagent.evaluation.run import ReportFiles
    from multiagent.runs.prepare import PreparedData
    from multiagent.training.rollout import RolloutReport


def panel_table(panel: MarketPanel) -> Table:
    table = Table(title=f"{panel.source}: {panel.n_symbols} symbols x {panel.n_bars} bars")
    for column in ("symbol", "first", "last", "bars", "coverage", "last close", "ann. vol"):
        table.add_column(column, justify="right" if column not in ("symbol",) else "left")
    observed = panel.observed
    times = pd.DatetimeIndex(panel.timestamps)
    per_year = periods_per_year(panel)
    for i, symbol in enumerate(panel.symbols):
        seen = np.flatnonzero(observed[i])
        close = panel.close[i, seen]
        returns = np.diff(np.log(close))
        span = seen[-1] - seen[0] + 1
        table.add_row(
            symbol,
            str(
                times[seen[0]].date()
                if panel.bar and panel.bar >= pd.Timedelta("1D")
                else times[seen[0]]
            ),
            str(
                times[seen[-1]].date()
                if panel.bar and panel.bar >= pd.Timedelta("1D")
                else times[seen[-1]]
            ),
            str(len(seen)),
            f"{len(seen) / span:.1%}",
            f"{close[-1]:.4g}",
            f"{returns.std(ddof=1) * np.sqrt(per_year):.1%}" if len(returns) > 1 else "-",
        )
    return table


def print_notes(panel: MarketPanel) -> None:
    for note in panel.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


def print_pipeline(result: Any) -> None:
    table = Table(title=f"Pipeline {result.run_dir}")
    for column in ("phase", "iterations", "validation", "seconds", "best checkpoint / output"):
        table.add_column(column)
    for phase, record in result.phases.items():
        val = record.get("validation") or {}
        if "sharpe" in val:
            shown = f"Sharpe {val['sharpe']:.2f}, max DD {val['max_drawdown']:.1%}"
        elif "loss" in val:
            shown = f"loss {val['loss']:.4f}"
        else:
            shown = record.get("note", "")
        table.add_row(
            phase,
            str(record.get("iterations", "-")),
            shown,
            f"{record.get('seconds', 0):.0f}",
            str(record.get("best_checkpoint") or record.get("output") or "-"),
        )
    console.print(table)
    if result.comparison is not None:
        from multiagent.evaluation.hierarchy import HEADER, system_rows

        comparison = Table(
            title=f"Hierarchy on the {result.comparison['part']} split "
            f"({result.comparison['bars']} bars, greedy, backtester)"
        )
        for column in HEADER:
            comparison.add_column(column)
        for row in system_rows(result.comparison):
            comparison.add_row(*row)
        console.print(comparison)


class ConsoleView:
    """The main job on the console, as each step lands."""

    @contextmanager
    def working(self, description: str) -> Iterator[None]:
        with console.status(description):
            yield

    def prepared(self, prepared: PreparedData, config: RunConfig) -> None:
        panel, features, split = prepared.panel, prepared.features, prepared.split
        console.print(panel_table(panel))
        print_notes(panel)
        table = Table(title=f"{len(features.names)} features (float32 {features.values.shape})")
        for column in ("feature", "look-back (bars)", "note"):
            table.add_column(column)
        for name, lookback in zip(features.names, features.lookbacks, strict=True):
            table.add_row(name, str(lookback), features.degraded.get(name, ""))
        for name, reason in features.skipped.items():
            table.add_row(f"[dim]{name}[/]", "-", f"skipped: {reason}")
        console.print(table)
        times = pd.DatetimeIndex(panel.timestamps)
        if config.system == "sessions":
            console.print(
                f"sessions (split by session): {len(prepared.train_views)} train, "
                f"{len(prepared.validation_views)} validation, {len(prepared.test_views)} "
                "held out (test)",
                highlight=False,
            )
        for part in ("train", "validation", "test") if config.system != "sessions" else ():
            window = getattr(split, part)
            if len(window):
                console.print(
                    f"{part:>10}: bars {window.start}-{window.stop - 1} "
                    f"({times[window.start].date()} .. {times[window.stop - 1].date()})"
                )
        views = prepared.train_views
        if views:
            vols = np.array([v.volatility for v in views])
            console.print(
                f"episode views (train): {len(views)} of "
                f"{config.episodes.length or 'whole-span'} bars, "
                f"volatility {vols.min():.4f}-{vols.max():.4f} per bar"
            )
        console.print(
            f"valid feature rows {features.valid.mean():.1%}; data fingerprint "
            f"{panel.fingerprint()[:16]}; feature cache key {features.cache_key[:16]}; "
            f"load {prepared.timings['load']:.2f}s, features {prepared.timings['features']:.2f}s",
            highlight=False,
        )

    def baseline(self, rollout: RolloutReport, config: RunConfig) -> None:
        env = config.env if config.system == "hierarchy" else config.agent.env
        who = (
            f"{config.env.n_symbols} random symbol agents + neutral master"
            if config.system == "hierarchy"
            else f"a random {config.system} agent"
        )
        table = Table(title=f"Baseline: {who}, train views")
        for column in (
            "ep",
            "bars",
            "return",
            "max DD",
            "trades",
            "forced",
            "turnover (% eq./bar)",
            "costs",
        ):
            table.add_column(column, justify="right")
        table.add_column("exposure", justify="right")
        for i, summary in enumerate(rollout.episodes):
            table.add_row(
                str(i),
                str(summary["steps"]),
                f"{summary['return']:+.1%}",
                f"{summary['max_drawdown']:.1%}",
                str(summary["trades"]),
                str(summary.get("forced_trades", 0)),
                f"{summary['turnover']:.1%}",
                f"{summary['costs']:,.0f}",
                f"{summary['mean_exposure']:.0%}",
            )
        console.print(table)
        console.print(
            f"env: fills at {env.execution.fill_price}, {rollout.steps} steps in "
            f"{rollout.seconds:.2f}s ({rollout.steps_per_second:,.0f} env steps/s)",
            highlight=False,
        )

    def run_folder(self, run_dir: Path) -> None:
        console.print(f"run folder: {run_dir}", highlight=False)

    def trained(self, result: Any) -> None:
        print_pipeline(result)

    def reported(self, files: ReportFiles) -> None:
        from multiagent.cli.evaluate import print_summary

        print_summary(files)
