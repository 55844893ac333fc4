"""The `multiagent` command: thin wrappers that print; the work lives in the packages."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from multiagent import logs
from multiagent.cli.common import console, errors, fail, options_error, run_config_from
from multiagent.cli.compare import compare
from multiagent.cli.configs import config_app
from multiagent.cli.evaluate import evaluate, report
from multiagent.cli.train import pretrain, train_app
from multiagent.cli.tune import tune_command
from multiagent.errors import ConfigError, MultiagentError

if TYPE_CHECKING:
    from multiagent.config import RunConfig
    from multiagent.data.panel import MarketPanel
    from multiagent.data.validation_options import ValidationOptions

# The commands import what they use when they run: `multiagent --help` and the data commands
# must not pay for torch, scipy or the simulator (docs/benchmarks.md, "CLI start-up").

app = typer.Typer(help="Hierarchical multi-agent RL trading on Ray.", no_args_is_help=True)
data_app = typer.Typer(
    help="Load, validate, inspect and synthesize market data.", no_args_is_help=True
)


@app.callback()
def _everywhere(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help="Also print Ray, RLlib and MLflow output (a run keeps it in RUN/logs/run.log).",
        ),
    ] = False,
) -> None:
    """Hierarchical multi-agent RL trading on Ray."""
    logs.configure(verbose)


app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
app.add_typer(config_app, name="config")
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
    repair: bool = False,
) -> ValidationOptions:
    from multiagent.data.validation_options import ValidationOptions

    fields: dict[str, object] = {
        "repair": repair,
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
RepairOpt = Annotated[
    bool,
    typer.Option(
        help="Repair exchange artifacts into missing bars, each reported: zero prices, open/close "
        "outside [low, high], high < low; duplicated times keep one identical row, else go missing."
    ),
]


def _load(
    paths: list[str],
    layout: str,
    symbols: str | None,
    frequency: str | None,
    options: ValidationOptions,
) -> MarketPanel:
    from multiagent.cli.data_progress import read_progress
    from multiagent.data.bundled import load_bundled
    from multiagent.data.loaders import Layout, load_panel

    wanted = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
    if len(paths) == 1 and paths[0].startswith("bundled:"):
        return load_bundled(paths[0].split(":", 1)[1], symbols=wanted, options=options)
    if layout not in ("auto", "per_symbol", "long", "wide"):
        raise MultiagentError(f"--layout must be auto, per_symbol, long or wide, not {layout!r}")
    chosen: Layout = layout  # type: ignore[assignment]
    with read_progress() as progress:
        return load_panel(
            paths,
            layout=chosen,
            symbols=wanted,
            frequency=frequency,
            options=options,
            progress=progress,
        )


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
    repair: RepairOpt = False,
) -> None:
    """Validate market data; exit 1 listing every problem (file, symbol, rows, column, fix)."""
    from multiagent.cli.main_job import print_notes
    from multiagent.data.errors import DataFixWarning

    try:
        options = _options(
            max_gap,
            max_jump,
            max_stale,
            allow_irregular,
            sort,
            drop_duplicates,
            timestamp_format,
            repair,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataFixWarning)  # fixes are printed as notes below
            panel = _load(paths, layout, symbols, frequency, options)
    except (MultiagentError, ValueError) as error:
        fail(error)
        return
    print_notes(panel)
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
    repair: RepairOpt = False,
) -> None:
    """Summarize a dataset per symbol (it is validated first)."""
    from multiagent.cli.main_job import panel_table, print_notes
    from multiagent.data.validation_options import ValidationOptions

    try:
        panel = _load(paths, layout, symbols, frequency, ValidationOptions(repair=repair))
    except (MultiagentError, ValueError) as error:
        fail(error)
        return
    console.print(panel_table(panel))
    console.print(
        f"bar {panel.bar}, time zone {panel.timezone or 'none (naive)'}, fields "
        f"{', '.join(panel.fields)}, fingerprint {panel.fingerprint()}",
        highlight=False,
    )
    print_notes(panel)


@data_app.command("bundled")
def bundled() -> None:
    """List the datasets shipped with the package (use them as bundled:NAME)."""
    from multiagent.data.bundled import BUNDLED

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
    signal_sign: Annotated[
        str,
        typer.Option(
            help="momentum: positive (every symbol trends) or mixed (trend, reversion, none "
            "cycling over the symbols)."
        ),
    ] = "positive",
    frequency: Annotated[str, typer.Option(help="Bar size, e.g. 1D, 1h, 5min.")] = "1D",
    file_format: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    overwrite: Annotated[bool, typer.Option(help="Replace files already in OUT.")] = False,
) -> None:
    """Write a seeded synthetic market (with its planted signal) or session episodes."""
    from pydantic import ValidationError

    from multiagent.data.synthetic import (
        SessionConfig,
        SyntheticMarketConfig,
        generate_market,
        generate_sessions,
    )

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
                        "signal_sign": signal_sign,
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
    except ValidationError as error:
        fail(options_error(error, "data synth", {"n_sessions": "n_symbols"}))
        return
    except (MultiagentError, ValueError) as error:
        fail(error)
        return
    console.print(f"wrote {len(targets)} files to {out}; {summary}", highlight=False)


@app.command("run")
def run(
    config: Annotated[Path | None, typer.Option(help="Run config YAML.")] = None,
    preset: Annotated[str, typer.Option(help="Embedded preset when no --config.")] = "default",
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Recompute features, ignore the cache.")
    ] = False,
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
    policy: Annotated[
        str | None,
        typer.Option(
            help="Single-agent presets (portfolio, regimes, sessions): the policy's core, "
            "mlp, lstm or gru (agent.policy.recurrent; agent.policy.max_seq_len is the BPTT "
            "sequence length)."
        ),
    ] = None,
    episodes: Annotated[
        int | None,
        typer.Option(
            help="Single-agent presets: test episodes each policy runs (agent.evaluation.episodes)."
        ),
    ] = None,
    seq_len: Annotated[
        int | None,
        typer.Option(
            help="Single-agent presets with an lstm/gru policy: the BPTT sequence length "
            "(agent.policy.max_seq_len)."
        ),
    ] = None,
) -> None:
    """The main job: load + validate data, build features, split, cut episode views, roll a
    seeded baseline through the system's env, then the training pipeline (hierarchy: pretrain
    the shared encoder, PPO symbol policy, MAPPO master, joint fine-tuning; single-agent
    presets: pretrain, then PPO on the agent) and the test-split reports."""
    from multiagent.cli.main_job import ConsoleView
    from multiagent.config import with_curriculum_file
    from multiagent.training.main_job import run_main_job

    try:
        run_config, run_name = run_config_from(config, preset)
        if curriculum is not None:
            run_config = with_curriculum_file(run_config, curriculum)
        run_config = with_agent_options(run_config, policy, episodes, seq_len)
        run_main_job(
            run_config,
            run_name,
            train=train,
            use_cache=not no_cache,
            tracking_uri=tracking_uri,
            console=console,
            view=ConsoleView(),
        )
        if config is None and preset in SMOKE_PRESETS:
            console.print(SMOKE_NOTE, highlight=False)
    except (MultiagentError, ValueError) as error:
        fail(error)


SMOKE_PRESETS = ("quick",)
SMOKE_NOTE = (
    "[bold]What this run shows.[/] The quick preset is a smoke test: 5 stocks and a few PPO "
    "iterations per phase. It proves the pipeline runs end to end, not that anything learns: "
    "trained systems ranking near the bottom, gates that FAIL and an encoder without skill are "
    "expected at this size.\nFor a result that means something: `multiagent run` (the default "
    "preset, 20 stocks), or the learning checks on markets with a known best policy: "
    "`python scripts/learn_check_symbols.py --as-test` and "
    "`python scripts/learn_check_hierarchy.py --as-test`."
)


def with_agent_options(
    config: RunConfig, policy: str | None, episodes: int | None, seq_len: int | None = None
) -> RunConfig:
    """``--policy`` / ``--episodes`` / ``--seq-len`` applied to a single-agent system's config
    (validated like the file)."""
    from multiagent.config import RunConfig, validate_mapping

    if policy is None and episodes is None and seq_len is None:
        return config
    if config.system == "hierarchy":
        raise ConfigError(
            "--policy, --episodes and --seq-len configure the single-agent presets (portfolio, "
            "regimes, "
            "sessions); the hierarchy's policy is symbols.policy in a config file"
        )
    cores = {"mlp": "none", "none": "none", "lstm": "lstm", "gru": "gru"}
    if policy is not None and policy not in cores:
        raise ConfigError(f"--policy must be mlp, lstm or gru, not {policy!r}")
    data = config.model_dump(mode="json")
    if policy is not None:
        data["agent"]["policy"]["recurrent"] = cores[policy]
    if episodes is not None:
        data["agent"]["evaluation"]["episodes"] = episodes
    if seq_len is not None:
        data["agent"]["policy"]["max_seq_len"] = seq_len
    return validate_mapping(RunConfig, data, file="command line")


def main(argv: list[str] | None = None) -> None:
    """The `multiagent` command (``argv`` instead of ``sys.argv[1:]`` for the job entrypoints)."""
    logs.install()
    try:
        app(args=argv)
    except MultiagentError as error:  # anything a user caused and a command did not catch
        errors.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)
