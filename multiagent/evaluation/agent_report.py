"""The report of a single-agent system (portfolio, regimes, sessions): the trained policy and
the system's baselines on the same evaluation episodes of the held-out split, ranked by Sharpe,
judged by the run's gates; JSON + Markdown + an equity plot, logged to MLflow like every report.

The report has the hierarchy report's shape where the two share a meaning (``policies``,
``ranking``, ``agents``, ``lead``, ``gates``, ``window.part``), so `multiagent compare`, the CLI
summary and the MLflow record read both; its layout adds what the seed systems reported: win
rate, in-position %, trades per episode, the episodes behind each figure, and for sessions each
held-out market's own figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multiagent.config import RunConfig
from multiagent.envs import build_market
from multiagent.evaluation.episodes import (
    AgentPolicy,
    EpisodeRecord,
    baselines,
    episode_metrics,
    per_market,
    run_policies,
)
from multiagent.evaluation.evaluate import Evaluation
from multiagent.evaluation.gates import NO_GATES, check_gates, verdict
from multiagent.evaluation.markdown import fmt, table
from multiagent.evaluation.metrics import clean, periods_per_year
from multiagent.evaluation.report import write_json
from multiagent.evaluation.run import ReportFiles, log_to_mlflow, pipeline_run
from multiagent.runs.folders import fresh_dir
from multiagent.runs.prepare import PreparedData
from multiagent.tracking import resolve_tracking_uri

if TYPE_CHECKING:
    from rich.console import Console

SHOWN = (
    ("sharpe", "Sharpe", "num"),
    ("sortino", "Sortino", "num"),
    ("total_return", "return", "pct"),
    ("max_drawdown", "max DD", "frac"),
    ("win_rate", "win rate", "frac"),
    ("profit_factor", "profit factor", "num"),
    ("in_position", "in position", "frac"),
    ("trades_per_episode", "trades / episode", "num"),
    ("turnover", "turnover (eq./bar)", "frac"),
    ("cost_ratio", "cost ratio", "num"),
)
"""The columns of the Markdown table: the seed systems' metrics first."""


def evaluate_agent(
    agent: AgentPolicy,
    config: RunConfig,
    prepared: PreparedData,
    *,
    part: str = "test",
    source: str = "",
    extra: Sequence[AgentPolicy] = (),
) -> Evaluation:
    """``agent`` (and ``extra`` policies, e.g. an oracle) vs the system's baselines on the
    evaluation episodes of ``part``."""
    market = build_market(prepared.panel, prepared.features, config.agent.env.costs)
    policies = [agent, *extra, *baselines(config, market)]
    records = run_policies(config, market, prepared.views(part), policies)
    periods = periods_per_year(prepared.panel)
    systems = {
        p.name: {"kind": p.kind, "metrics": clean(episode_metrics(records[p.name], periods))}
        for p in policies
    }
    ranking = _ranking(systems)
    gates = check_gates(config.evaluation.gates, agent.name, systems, ranking)
    report: dict[str, Any] = {
        "system": config.system,
        "seed": config.seed,
        "source": {"path": source},
        "data": {"fingerprint": prepared.panel.fingerprint(), "source": prepared.panel.source},
        "window": {"part": part, "views": len(prepared.views(part))},
        "episodes": len(records[agent.name]),
        "agents": [agent.name],
        "lead": agent.name,
        "policies": systems,
        "ranking": ranking,
        "gates": gates,
        "system_gates": {agent.name: gates},
    }
    if config.system == "sessions":
        report["per_market"] = {
            name: clean(per_market(records[name], periods)) for name in (agent.name, "cash")
        }
    return Evaluation(report, {}, np.zeros(0), market.symbols, extra={"episodes": records})


def _ranking(systems: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    def key(name: str) -> float:
        sharpe = systems[name]["metrics"].get("sharpe")
        return -float(sharpe) if sharpe is not None else float("inf")

    rows = []
    for rank, name in enumerate(sorted(systems, key=lambda n: (key(n), n)), start=1):
        metrics = systems[name]["metrics"]
        rows.append(
            {
                "rank": rank,
                "policy": name,
                "kind": systems[name]["kind"],
                **{
                    k: metrics.get(k) or 0.0
                    for k in ("sharpe", "total_return", "max_drawdown", "turnover")
                },
                "mean_episode_max_drawdown": metrics.get("max_drawdown") or 0.0,
            }
        )
    return rows


def render_agent_markdown(report: dict[str, Any], plots: Sequence[str] = ()) -> str:
    part = report["window"]["part"]
    lead = report["lead"]
    gates = report["gates"]
    lines = [
        f"# {report['system']} system: {part} split",
        "",
        f"Source: `{report['source']['path']}`; data `{report['data']['source']}` "
        f"(fingerprint {report['data']['fingerprint'][:16]}); {report['episodes']} evaluation "
        f"episodes over {report['window']['views']} {part} views; seed {report['seed']}.",
        "",
        f"**{lead}**: rank {next(r['rank'] for r in report['ranking'] if r['policy'] == lead)} "
        f"of {len(report['ranking'])} by Sharpe; "
        + ("no gates, no verdict." if gates["passed"] is None else f"gates **{verdict(gates)}**."),
        "",
        "## Policies",
        "",
    ]
    header = ["rank", "policy", *(label for _, label, _ in SHOWN)]
    rows = []
    for row in report["ranking"]:
        metrics = report["policies"][row["policy"]]["metrics"]
        name = f"**{row['policy']}**" if row["policy"] == lead else row["policy"]
        rows.append(
            [str(row["rank"]), name, *(fmt(metrics.get(key), kind) for key, _, kind in SHOWN)]
        )
    lines += table(header, rows)
    lines += ["", "## Gates", ""]
    gate_rows = [
        [group, g["gate"], fmt(g["value"]), fmt(g["threshold"]), "pass" if g["passed"] else "FAIL"]
        for group in ("go", "regression")
        for g in gates[group]
    ]
    if gate_rows:
        lines += table(["group", "gate", "value", "threshold", "result"], gate_rows)
    else:
        lines.append(NO_GATES)
    markets = report.get("per_market")
    if markets:
        lines += ["", f"## Held-out markets ({lead} vs staying in cash)", ""]
        mine = markets[lead]
        market_rows = [
            [
                name.split("@")[0],
                str(figures["bars"]),
                fmt(figures["total_return"], "pct"),
                fmt(figures["sharpe"]),
                fmt(figures["max_drawdown"], "frac"),
                str(figures["trades"]),
                fmt(figures["in_position"], "frac"),
            ]
            for name, figures in sorted(mine.items())
        ]
        lines += table(
            ["market", "bars", "return", "Sharpe", "max DD", "trades", "in position"], market_rows
        )
    for plot in plots:
        lines += ["", f"![{plot}]({plot})"]
    return "\n".join(lines) + "\n"


def plot_equity(evaluation: Evaluation, directory: Path) -> list[Path]:
    """Growth of 1 over the evaluation episodes in sequence, one line per policy (the agent
    bold): what a quant looks at first."""
    import matplotlib.pyplot as plt

    from multiagent.evaluation.plots import REFERENCE_ZORDER, legend_beside, line_style

    records: dict[str, list[EpisodeRecord]] = evaluation.extra["episodes"]
    lead = evaluation.report["lead"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name, episodes in records.items():
        returns = np.concatenate([r.returns for r in episodes]) if episodes else np.zeros(0)
        growth = np.concatenate([[1.0], np.cumprod(1.0 + returns)])
        ax.plot(growth, label=name, **line_style(name, {lead}))
    ax.axhline(1.0, color="grey", linewidth=0.6, zorder=REFERENCE_ZORDER)
    ax.set_xlabel("bar (evaluation episodes in sequence)")
    ax.set_ylabel("growth of 1")
    ax.set_title(f"{evaluation.report['system']}: {evaluation.report['window']['part']} episodes")
    legend_beside(ax, fontsize=8)
    fig.tight_layout()
    path = directory / "equity.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def write_agent_report(
    evaluation: Evaluation,
    out_dir: Path,
    config: RunConfig,
    *,
    run_dir: Path | None = None,
    overwrite: bool = False,
    plots: bool = True,
    tracking_uri: str | None = None,
    console: Console | None = None,
) -> ReportFiles:
    """``report.json``, ``report.md`` and ``equity.png`` into ``out_dir`` (``out_dir-2``...
    when it holds an earlier report), logged to MLflow (nested under the run's pipeline run
    when there is one), as `evaluation.run.evaluate_source` does for the hierarchy."""
    directory = fresh_dir(out_dir, overwrite)
    written = plot_equity(evaluation, directory) if plots else []
    json_path = write_json(directory / "report.json", evaluation.report)
    markdown = directory / "report.md"
    markdown.write_text(
        render_agent_markdown(evaluation.report, [p.name for p in written]), encoding="utf-8"
    )
    files = ReportFiles(directory, json_path, markdown, written, evaluation)
    parent = pipeline_run(run_dir)
    uri = resolve_tracking_uri(tracking_uri, recorded=(parent or {}).get("uri"))
    if uri is not None:
        log_to_mlflow(files, uri, config, run_dir, console)
    return files


def agent_policy_path(run_dir: Path) -> Path:
    """The exported policy of a single-agent run folder (its ``agent`` phase's best)."""
    import json

    from multiagent.errors import ConfigError
    from multiagent.runs.folders import run_path

    record = run_dir / "pipeline.json"
    try:
        phases = json.loads(record.read_text(encoding="utf-8"))["phases"]
        path = run_path(run_dir, phases["agent"]["policy"])
    except (OSError, ValueError, KeyError, TypeError):
        path = run_dir / "agent" / "policy.pt"
    if not path.is_file():
        raise ConfigError(
            f"{run_dir} has no trained agent policy ({path}): train it first "
            "(`multiagent train pipeline --resume` continues a killed run)"
        )
    return path
