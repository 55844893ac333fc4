"""The `multiagent` command: thin wrappers that print; the work lives in the packages."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from multiagent.cli_common import console, errors, fail, run_config_from
from multiagent.cli_compare import compare
from multiagent.cli_evaluate import evaluate, report
from multiagent.cli_train import pretrain, train_app, train_main
from multiagent.cli_tune import tune_command
from multiagent.config import with_curriculum_file
from multiagent.data.bundled import BUNDLED, load_bundled
from multiagent.data.errors import DataFixWarning
from multiagent.data.loaders import Layout, load_panel
from multiagent.data.panel import MarketPanel
from multiagent.data.synthetic import (
    SessionConfig,
    SyntheticMarketConfig,
    generate_market,
    generate_sessions,
)
from multiagent.data.validation import ValidationOptions
from multiagent.errors import MultiagentError
from multiagent.evaluation.metrics import periods_per_year

app = typer.Typer(help="Hierarchical multi-agent RL trading on Ray.", no_args_is_help=True)
data_app = typer.Typer(
    help="Load, validate, inspect and synthesize market data.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
app.command("pretrain")(pretrain)
app.command("evaluate")(evaluate)
app.command("report")(report)
app.command("compare")(compare)
app.command("tune")(tune_command)


def _options(
    max_gap: str | None,
    max_jump: float | None,
    max_stale: int | None,
    allow_irregular: bool,
    sort: bool,
    drop_duplicates: bool,
    timestamp_format: str | None,
) -> ValidationOptions:
    fields: dict[str, object] = {
        "allow_irregular": allow_irregular,
        "sort": sort,
        "drop_duplicates": drop_duplicates,
        "timestamp_format": timestamp_format,
    }
    if max_gap is not None:
        fields["max_gap"] = max_gap
    if max_jump is not None:
        fields["max_abs_log_return"] = None if max_jump <= 0 else max_jump
    if max_stale is not None:
        fields["max_stale_bars"] = None if max_stale <= 0 else max_stale
    return ValidationOptions.model_validate(fields)


PathsArg = Annotated[
    list[str], typer.Argument(help="Files or folders, or bundled:NAME for a bundled dataset.")
]
LayoutOpt = Annotated[str, typer.Option(help="auto, per_symbol, long or wide.")]
SymbolsOpt = Annotated[
    str | None, typer.Option(help="Comma-separated symbols to keep (others are not read).")
]
FreqOpt = Annotated[str | None, typer.Option(help="Sub-folder in SYMBOL/FREQ/data.* layouts.")]
GapOpt = Annotated[str | None, typer.Option(help="Largest gap between bars, e.g. 10D, 4h.")]
JumpOpt = Annotated[
    float | None, typer.Option(help="Largest |log return| per bar (default 1.0); 0 disables.")
]
StaleOpt = Annotated[
    int | None, typer.Option(help="Longest run of unchanged closes (default 20); 0 disables.")
]
IrregularOpt = Annotated[bool, typer.Option(help="Accept bars closer than the usual bar size.")]
SortOpt = Annotated[bool, typer.Option(help="Auto-fix: sort by timestamp (reported).")]
DedupeOpt = Annotated[
    bool, typer.Option(help="Auto-fix: keep the last of duplicated timestamps (reported).")
]
FormatOpt = Annotated[str | None, typer.Option(help="strftime format of non-ISO timestamps.")]


def _load(
    paths: list[str],
    layout: str,
    symbols: str | None,
    frequency: str | None,
    options: ValidationOptions,
) -> MarketPanel:
    wanted = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
    if len(paths) == 1 and paths[0].startswith("bundled:"):
        return load_bundled(paths[0].split(":", 1)[1], symbols=wanted, options=options)
    if layout not in ("auto", "per_symbol", "long", "wide"):
        raise MultiagentError(f"--layout must be auto, per_symbol, long or wide, not {layout!r}")
    chosen: Layout = layout  # type: ignore[assignment]
    return load_panel(paths, layout=chosen, symbols=wanted, frequency=frequency, options=options)


def _panel_table(panel: MarketPanel) -> Table:
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


def _print_notes(panel: MarketPanel) -> None:
    for note in panel.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


@data_app.command("validate")
def validate(
    paths: PathsArg,
    layout: LayoutOpt = "auto",
    symbols: SymbolsOpt = None,
    frequency: FreqOpt = None,
    max_gap: GapOpt = None,
    max_jump: JumpOpt = None,
    max_stale: StaleOpt = None,
    allow_irregular: IrregularOpt = False,
    sort: SortOpt = False,
    drop_duplicates: DedupeOpt = False,
    timestamp_format: FormatOpt = None,
) -> None:
    """Validate market data; exit 1 listing every problem (file, symbol, rows, column, fix)."""
    try:
        options = _options(
            max_gap, max_jump, max_stale, allow_irregular, sort, drop_duplicates, timestamp_format
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataFixWarning)  # fixes are printed as notes below
            panel = _load(paths, layout, symbols, frequency, options)
    except (MultiagentError, ValueError) as error:
        fail(error)
        return
    _print_notes(panel)
    console.print(
        f"[bold green]OK[/] {panel.n_symbols} symbols, {panel.n_bars} bars, bar {panel.bar}, "
        f"fields {', '.join(panel.fields)}; fingerprint {panel.fingerprint()[:16]}",
        highlight=False,
    )


@data_app.command("info")
def info(
    paths: PathsArg,
    layout: LayoutOpt = "auto",
    symbols: SymbolsOpt = None,
    frequency: FreqOpt = None,
) -> None:
    """Summarize a dataset per symbol (it is validated first)."""
    try:
        panel = _load(paths, layout, symbols, frequency, ValidationOptions())
    except (MultiagentError, ValueError) as error:
        fail(error)
        return
    console.print(_panel_table(panel))
    console.print(
        f"bar {panel.bar}, time zone {panel.timezone or 'none (naive)'}, fields "
        f"{', '.join(panel.fields)}, fingerprint {panel.fingerprint()}",
        highlight=False,
    )
    _print_notes(panel)


@data_app.command("bundled")
def bundled() -> None:
    """List the datasets shipped with the package (use them as bundled:NAME)."""
    table = Table(title="bundled datasets")
    table.add_column("name")
    table.add_column("description")
    for name, spec in BUNDLED.items():
        table.add_row(name, spec.description)
    console.print(table)


@data_app.command("synth")
def synth(
    out: Annotated[Path, typer.Argument(help="Output folder (one file per symbol).")],
    kind: Annotated[str, typer.Option(help="market or sessions.")] = "market",
    n_symbols: Annotated[int, typer.Option(help="Symbols (market) or sessions.")] = 8,
    n_bars: Annotated[int, typer.Option(help="Bars per symbol (market).")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    signal: Annotated[str, typer.Option(help="ar1, momentum or none (market).")] = "ar1",
    signal_r2: Annotated[
        float, typer.Option(help="Return variance explained by the signal.")
    ] = 0.02,
    frequency: Annotated[str, typer.Option(help="Bar size, e.g. 1D, 1h, 5min.")] = "1D",
    file_format: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    overwrite: Annotated[bool, typer.Option(help="Replace files already in OUT.")] = False,
) -> None:
    """Write a seeded synthetic market (with its planted signal) or session episodes."""
    try:
        if file_format not in ("csv", "parquet"):
            raise MultiagentError(f"--format must be csv or parquet, not {file_format!r}")
        if kind == "market":
            market = generate_market(
                SyntheticMarketConfig.model_validate(
                    {
                        "n_symbols": n_symbols,
                        "n_bars": n_bars,
                        "seed": seed,
                        "signal": signal,
                        "signal_r2": signal_r2,
                        "frequency": frequency,
                    }
                )
            )
            frame = market.to_frame()
            summary = f"oracle Sharpe {market.oracle_sharpe():.2f} (annualized, no costs)"
        elif kind == "sessions":
            panel = generate_sessions(
                SessionConfig.model_validate({"n_sessions": n_symbols, "seed": seed})
            )
            frame = panel.to_frame()
            summary = (
                f"{panel.n_symbols} sessions of {panel.observed.sum(axis=1).min()}-"
                f"{panel.observed.sum(axis=1).max()} quoted bars"
            )
        else:
            raise MultiagentError(f"--kind must be market or sessions, not {kind!r}")
        out.mkdir(parents=True, exist_ok=True)
        targets = {s: out / f"{s}.{file_format}" for s in frame["symbol"].unique()}
        existing = [p for p in targets.values() if p.exists()]
        if existing and not overwrite:
            raise MultiagentError(
                f"{len(existing)} files already exist in {out} (e.g. {existing[0].name}); "
                "pass --overwrite to replace them"
            )
        for symbol, part in frame.groupby("symbol", sort=True):
            part = part.drop(columns=["symbol"])
            target = targets[str(symbol)]
            if file_format == "csv":
                part.to_csv(target, index=False)
            else:
                part.to_parquet(target, index=False)
    except (MultiagentError, ValueError) as error:
        fail(error)
        return
    console.print(f"wrote {len(targets)} files to {out}; {summary}", highlight=False)


@app.command("run")
def run(
    config: Annotated[Path | None, typer.Option(help="Run config YAML.")] = None,
    preset: Annotated[str, typer.Option(help="Embedded preset when no --config.")] = "default",
    no_cache: Annotated[bool, typer.Option(help="Recompute features, ignore the cache.")] = False,
    train: Annotated[
        bool,
        typer.Option(help="Run the training pipeline (pretrain, symbols, master, joint)."),
    ] = True,
    curriculum: Annotated[
        Path | None, typer.Option(help="Curriculum file (curricula/*.yaml).")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow URI (default: SQLite in the run folder; 'none': off)."),
    ] = None,
) -> None:
    """The main job: load + validate data, build features, split, cut episode views, roll a
    seeded baseline through the hierarchical env, then the training pipeline (pretrain the
    shared encoder, PPO symbol policy, MAPPO master, joint fine-tuning) and the test-split
    reports."""
    from multiagent.training.prepare import prepare
    from multiagent.training.rollout import random_rollout

    try:
        run_config, run_name = run_config_from(config, preset)
        if curriculum is not None:
            run_config = with_curriculum_file(run_config, curriculum)
        with console.status("loading data and building features..."):
            prepared = prepare(run_config, use_cache=not no_cache)
        with console.status("rolling the baseline through the hierarchical env..."):
            rollout = random_rollout(prepared, run_config)
    except (MultiagentError, ValueError) as error:
        fail(error)
        return
    panel, features, split = prepared.panel, prepared.features, prepared.split
    console.print(_panel_table(panel))
    _print_notes(panel)
    table = Table(title=f"{len(features.names)} features (float32 {features.values.shape})")
    for column in ("feature", "look-back (bars)", "note"):
        table.add_column(column)
    for name, lookback in zip(features.names, features.lookbacks, strict=True):
        table.add_row(name, str(lookback), features.degraded.get(name, ""))
    for name, reason in features.skipped.items():
        table.add_row(f"[dim]{name}[/]", "-", f"skipped: {reason}")
    console.print(table)
    times = pd.DatetimeIndex(panel.timestamps)
    for part in ("train", "validation", "test"):
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
            f"episode views (train): {len(views)} of {run_config.episodes.length} bars, "
            f"volatility {vols.min():.4f}-{vols.max():.4f} per bar"
        )
    console.print(
        f"valid feature rows {features.valid.mean():.1%}; data fingerprint "
        f"{panel.fingerprint()[:16]}; feature cache key {features.cache_key[:16]}; "
        f"load {prepared.timings['load']:.2f}s, features {prepared.timings['features']:.2f}s",
        highlight=False,
    )
    env = run_config.env
    table = Table(
        title=f"Baseline: {env.n_symbols} random symbol agents + neutral master, train views"
    )
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
            str(summary["forced_trades"]),
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
    if train:
        train_main(run_config, run_name, prepared, tracking_uri)


def main(argv: list[str] | None = None) -> None:
    """The `multiagent` command (``argv`` instead of ``sys.argv[1:]`` for the job entrypoints)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(args=argv)
    except MultiagentError as error:  # anything a user caused and a command did not catch
        errors.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    from multiagent.reproducibility import pin_hash_seed

    pin_hash_seed()  # before any training: see multiagent.reproducibility
    main()
