"""The hierarchy comparison: independent symbol agents vs hierarchical vs jointly tuned.

One system per pipeline phase, each run greedily on the same views of one split:

- ``independent``: phase 2's symbol policy, equal budgets, neutral mode (no master);
- ``hierarchical``: phase 3's master over the same (frozen) symbol actors;
- ``joint``: phase 4's master and symbol actors after joint fine-tuning.

`compare_runs` aggregates several seeds: mean and 95% t-interval of each metric per system, and
of each system's difference to ``independent`` (paired by seed). The gate of the phase-3 seeds:
the master raises Sharpe by ``min_sharpe_gain`` and cuts the mean episode max drawdown by
``min_drawdown_cut`` (a fraction) against the independent agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multiagent.evaluation.report import confidence_interval, dumps

SYSTEMS = ("independent", "hierarchical", "joint")
COMPARED = ("sharpe", "mean_max_drawdown", "max_drawdown", "turnover", "mean_episode_return")
SCHEMA = "multiagent.hierarchy/1"


def system_rows(comparison: dict[str, Any]) -> list[list[str]]:
    rows = []
    for system in SYSTEMS:
        metrics = comparison["systems"].get(system)
        if metrics is None:
            continue
        rows.append(
            [
                system,
                f"{metrics['sharpe']:.2f}",
                f"{metrics['mean_max_drawdown']:.1%}",
                f"{metrics['max_drawdown']:.1%}",
                f"{metrics['turnover']:.2f}",
                f"{metrics['mean_episode_return']:+.2%}",
            ]
        )
    return rows


HEADER = ["system", "Sharpe", "mean episode max DD", "worst max DD", "turnover", "episode return"]


def render_comparison(comparison: dict[str, Any]) -> str:
    lines = [
        f"# Hierarchy comparison ({comparison['part']} split, {comparison['episodes']} episodes)",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in system_rows(comparison)]
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
        base_dd = independent["mean_max_drawdown"]["mean"]
        cut = 1.0 - entry["mean_max_drawdown"]["mean"] / base_dd if base_dd > 0 else 0.0
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
        f"# Hierarchy comparison over {summary['seeds']} seeds (mean [95% CI])",
        "",
        "| system | Sharpe | Δ Sharpe vs independent | mean episode max DD | turnover |",
        "|---|---|---|---|---|",
    ]
    for system, entry in summary["systems"].items():
        lines.append(
            f"| {system} | {ci(entry['sharpe'], '.2f')} | "
            f"{ci(entry['sharpe_vs_independent'], '+.2f')} | "
            f"{ci(entry['mean_max_drawdown'], '.1%')} | {ci(entry['turnover'], '.2f')} |"
        )
    gate = summary["gate"]
    lines += [
        "",
        f"Gate: Sharpe +{gate['min_sharpe_gain']} and max drawdown "
        f"-{gate['min_drawdown_cut']:.0%} vs independent",
    ]
    for system, verdict in gate["systems"].items():
        lines.append(
            f"- {system}: Sharpe {verdict['sharpe_gain']:+.2f}, drawdown cut "
            f"{verdict['drawdown_cut']:+.1%}: {'PASS' if verdict['passed'] else 'FAIL'}"
        )
    return "\n".join(lines) + "\n"
