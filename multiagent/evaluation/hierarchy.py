"""The hierarchy comparison: independent symbol agents vs hierarchical vs jointly tuned.

The systems (`multiagent.evaluation.sources`) are scored by the one backtester, on the same
books and bars of one split, by the report's own code: `comparison_from_report` only selects
from a report, so ``hierarchy/comparison.md`` and ``report.md`` can never disagree.

`compare_runs` aggregates several seeds: mean and 95% t-interval of each metric per system, and
of each system's difference to ``independent`` (paired by seed). The gate of the phase-3 seeds:
the master raises Sharpe by ``min_sharpe_gain`` and cuts the mean episode max drawdown by
``min_drawdown_cut`` (a fraction) against the independent agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multiagent.evaluation.report import confidence_interval, dumps, paired_rows
from multiagent.evaluation.sources import SYSTEMS

COMPARED = (
    "sharpe",
    "total_return",
    "mean_episode_max_drawdown",
    "max_drawdown",
    "turnover",
    "mean_episode_return",
    "mean_gross_budget",
    "forced_trims_per_episode",
)
SCHEMA = "multiagent.hierarchy/2"
HEADER = [
    "system",
    "Sharpe (annualized)",
    "return (% of capital)",
    "mean episode max DD (%)",
    "max DD (%)",
    "turnover (% of equity per bar)",
    "gross budget (x equity)",
]


def comparison_from_report(report: dict[str, Any]) -> dict[str, Any]:
    """The systems' figures and paired differences of one report (same numbers, no rerun)."""
    systems = {}
    for name in report["agents"]:
        metrics = report["policies"][name]["metrics"]
        systems[name] = {key: metrics.get(key) for key in COMPARED}
        systems[name]["source"] = report["source"].get("systems", {}).get(name)
    window = report["window"]
    return {
        "schema": SCHEMA,
        "part": window["part"],
        "bars": window["steps"],
        "books_of": report["env"]["slots_per_book"],
        "symbols": len(window["universe"]),
        "systems": systems,
        "paired": report.get("comparison"),
    }


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.1%}"


def system_rows(comparison: dict[str, Any]) -> list[list[str]]:
    rows = []
    for system in SYSTEMS:
        metrics = comparison["systems"].get(system)
        if metrics is None:
            continue
        budget = metrics.get("mean_gross_budget")
        rows.append(
            [
                system,
                f"{metrics['sharpe']:.2f}",
                f"{metrics['total_return']:+.1%}",
                _pct(metrics["mean_episode_max_drawdown"]),
                _pct(metrics["max_drawdown"]),
                f"{metrics['turnover']:.2%}",
                "-" if budget is None else f"{budget:.2f}",
            ]
        )
    return rows


def render_comparison(comparison: dict[str, Any]) -> str:
    lines = [
        f"# Hierarchy comparison ({comparison['part']} split, {comparison['bars']} bars, "
        f"{comparison['symbols']} symbols in books of {comparison['books_of']})",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in system_rows(comparison)]
    paired = comparison.get("paired")
    if paired:
        lines += ["", *paired_rows(paired)]
    return "\n".join(lines) + "\n"


def write_comparison(comparison: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "comparison.json").write_text(dumps(comparison), encoding="utf-8")
    (out_dir / "comparison.md").write_text(render_comparison(comparison), encoding="utf-8")
    return out_dir


def compare_runs(
    comparisons: Sequence[dict[str, Any]],
    *,
    min_sharpe_gain: float = 0.2,
    min_drawdown_cut: float = 0.15,
) -> dict[str, Any]:
    """Seeds -> per system and metric the mean and CI, the paired differences to the
    independent agents, and the gate verdict per hierarchical system."""
    out: dict[str, Any] = {"schema": SCHEMA, "seeds": len(comparisons), "systems": {}}
    for system in SYSTEMS:
        if not all(system in c["systems"] for c in comparisons):
            continue
        entry: dict[str, Any] = {}
        for metric in COMPARED:
            values = [c["systems"][system][metric] for c in comparisons]
            base = [c["systems"]["independent"][metric] for c in comparisons]
            if any(v is None for v in (*values, *base)):
                continue
            entry[metric] = confidence_interval(values)
            entry[f"{metric}_vs_independent"] = confidence_interval(
                [v - b for v, b in zip(values, base, strict=True)]
            )
        out["systems"][system] = entry
    gates = {}
    independent = out["systems"].get("independent")
    for system in ("hierarchical", "joint"):
        entry = out["systems"].get(system)
        if entry is None or independent is None:
            continue
        gain = entry["sharpe_vs_independent"]["mean"]
        base_dd = independent["mean_episode_max_drawdown"]["mean"]
        own_dd = entry["mean_episode_max_drawdown"]["mean"]
        cut = 1.0 - own_dd / base_dd if base_dd > 0 else 0.0
        gates[system] = {
            "sharpe_gain": gain,
            "drawdown_cut": cut,
            "passed": bool(gain >= min_sharpe_gain - 1e-9 and cut >= min_drawdown_cut - 1e-9),
        }
    out["gate"] = {
        "min_sharpe_gain": min_sharpe_gain,
        "min_drawdown_cut": min_drawdown_cut,
        "systems": gates,
        "passed": bool(gates.get("hierarchical", {}).get("passed", False)),
    }
    return out


def render_multiseed(summary: dict[str, Any]) -> str:
    def ci(entry: dict[str, Any], fmt: str) -> str:
        return f"{entry['mean']:{fmt}} [{entry['low']:{fmt}}, {entry['high']:{fmt}}]"

    lines = [
        f"# Hierarchy comparison over {summary['seeds']} seeds (mean [95% t-interval])",
        "",
        "| system | Sharpe | Δ Sharpe vs independent | mean episode max DD (%) | "
        "turnover (% of equity per bar) |",
        "|---|---|---|---|---|",
    ]
    for system, entry in summary["systems"].items():
        lines.append(
            f"| {system} | {ci(entry['sharpe'], '.2f')} | "
            f"{ci(entry['sharpe_vs_independent'], '+.2f')} | "
            f"{ci(entry['mean_episode_max_drawdown'], '.1%')} | "
            f"{ci(entry['turnover'], '.2%')} |"
        )
    gate = summary["gate"]
    lines += [
        "",
        f"Gate: Sharpe +{gate['min_sharpe_gain']} and mean episode max drawdown "
        f"-{gate['min_drawdown_cut']:.0%} vs independent",
    ]
    for system, verdict in gate["systems"].items():
        lines.append(
            f"- {system}: Sharpe {verdict['sharpe_gain']:+.2f}, drawdown cut "
            f"{verdict['drawdown_cut']:+.1%}: {'PASS' if verdict['passed'] else 'FAIL'}"
        )
    return "\n".join(lines) + "\n"
