"""`multiagent evaluate` and `multiagent report`: backtests, baselines, stress tests, gates.

Exit codes: 0 all gates passed, 1 an error, 3 a gate failed (``--no-fail-on-gates`` turns the
last into 0, for exploratory runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from multiagent.cli.common import console, fail
from multiagent.errors import MultiagentError

if TYPE_CHECKING:
    from multiagent.config import RunConfig
    from multiagent.config.evaluation import EvaluationConfig
    from multiagent.evaluation.run import ReportFiles

GATE_EXIT = 3

PartOption = Annotated[
    str | None, typer.Option(help="Split to evaluate: validation or test (default: config).")
]
GatesOption = Annotated[Path | None, typer.Option(help="Gates YAML (keys go, regression).")]
OverwriteOption = Annotated[
    bool, typer.Option(help="Replace an existing report folder instead of writing NAME-2.")
]
TrackingOption = Annotated[
    str | None,
    typer.Option(help="MLflow tracking URI to log the report to (default: $MLFLOW_TRACKING_URI)."),
]
FailOption = Annotated[bool, typer.Option(help="Exit 3 when a gate fails.")]
WalkForwardOption = Annotated[bool, typer.Option(help="Run walk-forward folds.")]
StressOption = Annotated[bool, typer.Option(help="Run stress scenarios.")]
StatisticsOption = Annotated[
    bool, typer.Option(help="Compute bootstrap intervals, PSR/DSR and the SPA test.")
]
SystemOption = Annotated[
    str | None,
    typer.Option(
        help="One system only: independent, hierarchical or joint (default: every system "
        "the checkpoint or run holds)."
    ),
]


def _settings(
    config: RunConfig,
    part: str | None,
    gates: Path | None,
    walk_forward: bool,
    stress: bool,
    statistics: bool = True,
) -> EvaluationConfig:
    from multiagent.evaluation.gates import load_gates

    settings = config.evaluation
    update: dict[str, object] = {}
    if part is not None:
        if part not in ("validation", "test"):
            raise MultiagentError(f"--part must be validation or test, got {part!r}")
        update["part"] = part
    if gates is not None:
        update["gates"] = load_gates(gates)
    if not walk_forward:
        update["walk_forward"] = settings.walk_forward.model_copy(update={"enabled": False})
    if not stress:
        update["stress"] = settings.stress.model_copy(update={"enabled": False})
    if not statistics:
        update["statistics"] = settings.statistics.model_copy(update={"enabled": False})
    return settings.model_copy(update=update)


def print_summary(files: ReportFiles) -> None:
    from multiagent.evaluation.gates import NO_GATES

    report = files.evaluation.report
    agents = set(report["agents"])
    table = Table(title=f"{report['window']['part']} split: ranking by Sharpe (top 10 + systems)")
    for column in (
        "rank",
        "policy",
        "Sharpe",
        "return",
        "max DD",
        "episode max DD",
        "turnover (% eq./bar)",
    ):
        table.add_column(column, justify="right" if column != "policy" else "left")
    for row in report["ranking"]:
        if row["rank"] > 10 and row["policy"] not in agents:
            continue
        style = "bold" if row["policy"] in agents else None
        table.add_row(
            str(row["rank"]),
            row["policy"],
            f"{row['sharpe']:.2f}",
            f"{row['total_return']:+.1%}",
            f"{row['max_drawdown']:.1%}",
            f"{row['mean_episode_max_drawdown']:.1%}",
            f"{row['turnover']:.2%}",
            style=style,
        )
    console.print(table)
    for name, gates in (report.get("system_gates") or {}).items():
        failed = [
            g["gate"] for group in ("go", "regression") for g in gates[group] if not g["passed"]
        ]
        if gates["passed"] is None:
            verdict = f"[yellow]{NO_GATES}[/]"
        else:
            verdict = "[green]PASS[/]" if gates["passed"] else f"[red]FAIL[/] ({', '.join(failed)})"
        lead = " (lead: decides the exit code)" if name == report.get("lead") else ""
        console.print(f"gates of {name}{lead}: {verdict}", highlight=False)
    comparison = report.get("comparison") or {}
    for name, entry in (comparison.get("systems") or {}).items():
        diff = entry["metrics"]["sharpe"]
        console.print(
            f"{name} - {comparison['reference']}: Sharpe {diff['difference']:+.2f} "
            f"[{diff['low']:+.2f}, {diff['high']:+.2f}] (paired block bootstrap, "
            f"p = {diff['p_value']:.2f})",
            highlight=False,
        )
    console.print(f"report: {files.markdown} (+ report.json, {len(files.plots)} plots)")


def evaluate(
    checkpoint: Annotated[
        Path, typer.Option(help="policy.pt, an RLlib checkpoint folder or a run folder.")
    ],
    config: Annotated[
        Path | None, typer.Option(help="Run config YAML (default: the run folder's).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Report folder (default: RUN/report or ./report).")
    ] = None,
    part: PartOption = None,
    gates: GatesOption = None,
    walk_forward: WalkForwardOption = True,
    stress: StressOption = True,
    statistics: StatisticsOption = True,
    overwrite: OverwriteOption = False,
    tracking_uri: TrackingOption = None,
    fail_on_gates: FailOption = True,
    system: SystemOption = None,
    episodes: Annotated[
        int | None,
        typer.Option(
            help="Single-agent runs (portfolio, regimes, sessions): test episodes each policy "
            "runs (default: agent.evaluation.episodes)."
        ),
    ] = None,
) -> None:
    """Backtest the trained systems (independent agents, the hierarchy, the joint tuning)
    against baselines on the held-out split, walk-forward folds and stress scenarios; write
    report.json, report.md and plots; exit 3 when the lead system fails a gate. A
    single-agent run (portfolio, regimes, sessions) is scored on its own env's episodes."""
    import multiagent.rllib  # noqa: F401  (registers RLlib checkpoint folders with evaluation)
    from multiagent.evaluation.run import evaluate_source
    from multiagent.evaluation.sources import resolve, run_config_for, trained_symbols

    try:
        agent_files = _evaluate_agent_run(
            checkpoint, config, out, part, gates, overwrite, tracking_uri, episodes
        )
        if agent_files is not None:
            print_summary(agent_files)
            if fail_on_gates and not agent_files.passed:
                raise typer.Exit(code=GATE_EXIT)
            return
        source = resolve(checkpoint, system)
        run_config = run_config_for(source, config)
        trained = trained_symbols(source, run_config) if config is not None else None
        settings = _settings(run_config, part, gates, walk_forward, stress, statistics)
        default = (source.run_dir or Path.cwd()) / "report"
        files = evaluate_source(
            source,
            run_config,
            out or default,
            settings=settings,
            shown_path=str(checkpoint),
            overwrite=overwrite,
            tracking_uri=tracking_uri,
            console=console,
            trained_symbols=trained,
        )
    except (MultiagentError, ValueError, OSError) as error:
        fail(error)
        return
    print_summary(files)
    if fail_on_gates and not files.passed:
        raise typer.Exit(code=GATE_EXIT)


def _evaluate_agent_run(
    checkpoint: Path,
    config: Path | None,
    out: Path | None,
    part: str | None,
    gates: Path | None,
    overwrite: bool,
    tracking_uri: str | None,
    episodes: int | None,
) -> ReportFiles | None:
    """A single-agent system's run folder (or its exported policy.pt) evaluated on its env;
    None when ``checkpoint`` belongs to a hierarchy run."""
    from multiagent.config import load_config
    from multiagent.evaluation.agent_report import (
        agent_policy_path,
        evaluate_agent,
        write_agent_report,
    )
    from multiagent.evaluation.episodes import NetAgent
    from multiagent.evaluation.gates import load_gates
    from multiagent.evaluation.sources import find_run_dir
    from multiagent.runs.folders import load_run_config
    from multiagent.runs.prepare import prepare

    run_dir = find_run_dir(checkpoint)
    run_config: RunConfig
    if config is not None:
        run_config = load_config(config)
    elif run_dir is not None:
        run_config = load_run_config(run_dir)
    else:
        return None
    if run_config.system == "hierarchy":
        return None
    if part not in (None, "validation", "test"):
        raise MultiagentError(f"--part must be validation or test, got {part!r}")
    update: dict[str, object] = {}
    if gates is not None:
        update["gates"] = load_gates(gates)
    if update:
        run_config = run_config.model_copy(
            update={"evaluation": run_config.evaluation.model_copy(update=update)}
        )
    if episodes is not None:
        agent = run_config.agent
        run_config = run_config.model_copy(
            update={
                "agent": agent.model_copy(
                    update={
                        "evaluation": agent.evaluation.model_copy(update={"episodes": episodes})
                    }
                )
            }
        )
    policy = checkpoint if checkpoint.suffix == ".pt" else None
    if policy is None:
        if run_dir is None:
            raise MultiagentError(f"{checkpoint}: give a run folder or its agent/policy.pt")
        policy = agent_policy_path(run_dir)
    agent_policy = NetAgent.load(str(policy), run_config.system)
    evaluation = evaluate_agent(
        agent_policy,
        run_config,
        prepare(run_config),
        part=part or "test",
        source=str(checkpoint),
    )
    default = (run_dir or Path.cwd()) / "report"
    return write_agent_report(
        evaluation,
        out or default,
        run_config,
        run_dir=run_dir,
        overwrite=overwrite,
        tracking_uri=tracking_uri,
        console=console,
    )


def distinct_runs(run_dirs: list[Path]) -> None:
    """Refuse a run folder given twice (``runs/x`` and ``./runs/x/`` alike, compared resolved):
    the same seed twice reads as two agreeing seeds and narrows the intervals to nothing."""
    spellings: dict[Path, list[str]] = {}
    for run_dir in run_dirs:
        spellings.setdefault(run_dir.resolve(), []).append(str(run_dir))
    repeated = [
        # typer's Path already reads ``./runs/x/`` as ``runs/x``: name the spellings left
        f"{folder} is given {len(names)} times"
        + (f" (as {', '.join(dict.fromkeys(names))})" if len(set(names)) > 1 else "")
        for folder, names in spellings.items()
        if len(names) > 1
    ]
    if repeated:
        raise MultiagentError(
            "; ".join(repeated) + ": give each run once (the runs of a report are its seeds)"
        )


def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders (several: seeds).")],
    out: Annotated[
        Path | None, typer.Option(help="Multi-seed summary folder (default: RUNS/multiseed).")
    ] = None,
    part: PartOption = None,
    gates: GatesOption = None,
    walk_forward: WalkForwardOption = True,
    stress: StressOption = True,
    statistics: StatisticsOption = True,
    overwrite: OverwriteOption = False,
    tracking_uri: TrackingOption = None,
    fail_on_gates: FailOption = True,
    system: SystemOption = None,
) -> None:
    """Evaluate each run's trained systems into RUN/report; with several runs (seeds), also
    write mean and 95% confidence intervals over them."""
    import multiagent.rllib  # noqa: F401  (registers RLlib checkpoint folders with evaluation)
    from multiagent.evaluation.report import (
        aggregate_seeds,
        render_multiseed,
        write_json,
    )
    from multiagent.evaluation.run import evaluate_source
    from multiagent.evaluation.sources import resolve, run_config_for
    from multiagent.runs.folders import fresh_dir

    results = []
    try:
        distinct_runs(run_dirs)
        for run_dir in run_dirs:
            if not (run_dir / "config.yaml").is_file():
                raise MultiagentError(
                    f"{run_dir}: not a run folder (no config.yaml; train one first: "
                    "multiagent train pipeline)"
                )
            source = resolve(run_dir, system)
            run_config = run_config_for(source, None)
            settings = _settings(run_config, part, gates, walk_forward, stress, statistics)
            console.print(f"[bold]{run_dir}[/]", highlight=False)
            files = evaluate_source(
                source,
                run_config,
                run_dir / "report",
                settings=settings,
                shown_path=str(run_dir),
                overwrite=overwrite,
                tracking_uri=tracking_uri,
                console=console,
            )
            print_summary(files)
            results.append(files)
        if len(results) > 1:
            summary = aggregate_seeds(
                [f.evaluation.report for f in results], [str(d) for d in run_dirs]
            )
            folder = fresh_dir(out or run_dirs[0].parent / "multiseed", overwrite)
            write_json(folder / "multiseed.json", summary)
            text = render_multiseed(summary)
            (folder / "multiseed.md").write_text(text, encoding="utf-8")
            console.print(text, highlight=False)
            console.print(f"multi-seed summary: {folder / 'multiseed.md'}", highlight=False)
    except (MultiagentError, ValueError, OSError) as error:
        fail(error)
        return
    if fail_on_gates and not all(f.passed for f in results):
        raise typer.Exit(code=GATE_EXIT)
