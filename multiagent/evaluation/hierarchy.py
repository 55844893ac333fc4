"""The hierarchy comparison: independent symbol agents vs hierarchical vs jointly tuned.

The systems (`multiagent.evaluation.sources`) are scored by the one backtester, on the same
books and bars of one split, by the report's own code: `comparison_from_report` only selects
from a report, so ``hierarchy/comparison.md`` and ``report.md`` can never disagree.

`compare_runs` aggregates several seeds: mean and 95% t-interval of each metric per system, and
of each system's difference to ``independent`` (paired by seed). The gate of the phase-3 seeds:
the master raises Sharpe by ``min_sharpe_gain`` and cuts the mean episode max drawdown by
``min_drawdown_cut`` (a fraction) against the independent agents, and the seeds' paired interval
of the drawdown change lies below 0.

Two more figures say how far to trust and how far to push:

- ``evidence``: the half-width of the 95% interval of the mean Sharpe gain, from the per-seed
  block-bootstrap intervals (test-period noise: longer tests shrink it) and over seeds (t, which
  adds the seed-to-seed spread of training). A half-width at or above the gate's Sharpe gain
  means the test cannot tell a gain of that size from none.
- ``oracle_capture``: on synthetic markets, the share of the oracle allocator's gain over the
  independent agents (`oracle_allocator`) that each trained master achieves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multiagent.evaluation.oracle_allocator import ORACLE_SYSTEM
from multiagent.evaluation.report import confidence_interval, dumps, paired_rows
from multiagent.evaluation.sources import SYSTEMS

COMPARED_SYSTEMS = (*SYSTEMS, ORACLE_SYSTEM)
"""Trained systems, then the yardstick (present only where the market's truth is known)."""
Z_975 = 1.959963984540054

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


def pool_markets(comparisons: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One seed's comparisons on several test markets -> one comparison: each metric the mean
    over the markets; each paired Sharpe difference the mean, with the interval of a mean of
    independent estimates (each market's bootstrap interval read as normal, se = width / 2z).
    The markets are the same system's out-of-sample tests, so their noise is independent but
    their training is shared: seeds, not markets, are the units of `compare_runs`."""
    if len(comparisons) == 1:
        return dict(comparisons[0])
    first = comparisons[0]
    systems: dict[str, Any] = {}
    for name in first["systems"]:
        metrics: dict[str, Any] = {}
        for key in COMPARED:
            values = [c["systems"][name].get(key) for c in comparisons]
            metrics[key] = None if any(v is None for v in values) else sum(values) / len(values)
        systems[name] = metrics
    paired: dict[str, Any] | None = None
    if all(c.get("paired") for c in comparisons):
        paired = {"reference": first["paired"]["reference"], "systems": {}}
        for name in first["paired"]["systems"]:
            sharpe = [c["paired"]["systems"][name]["metrics"]["sharpe"] for c in comparisons]
            mean = sum(x["difference"] for x in sharpe) / len(sharpe)
            errors = [(x["high"] - x["low"]) / (2 * Z_975) for x in sharpe]
            half = Z_975 * math.sqrt(sum(e * e for e in errors)) / len(errors)
            paired["systems"][name] = {
                "metrics": {"sharpe": {"difference": mean, "low": mean - half, "high": mean + half}}
            }
    return {
        "schema": SCHEMA,
        "part": first["part"],
        "bars": sum(c["bars"] for c in comparisons),
        "books_of": first["books_of"],
        "symbols": first["symbols"],
        "markets": len(comparisons),
        "systems": systems,
        "paired": paired,
    }


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.1%}"


def system_rows(comparison: dict[str, Any]) -> list[list[str]]:
    rows = []
    for system in COMPARED_SYSTEMS:
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


def _pooled_half_width(comparisons: Sequence[dict[str, Any]], system: str) -> float | None:
    """Half-width of the 95% interval of the seeds' mean Sharpe gain from their per-seed
    bootstrap intervals (each read as normal: se = width / 2z), None where one is missing."""
    errors = []
    for comparison in comparisons:
        entry = ((comparison.get("paired") or {}).get("systems") or {}).get(system)
        if not entry:
            return None
        sharpe = entry["metrics"]["sharpe"]
        errors.append((sharpe["high"] - sharpe["low"]) / (2 * Z_975))
    return Z_975 * math.sqrt(sum(e * e for e in errors)) / len(errors)


def compare_runs(
    comparisons: Sequence[dict[str, Any]],
    *,
    min_sharpe_gain: float = 0.2,
    min_drawdown_cut: float = 0.15,
) -> dict[str, Any]:
    """Seeds -> per system and metric the mean and CI, the paired differences to the
    independent agents, the evidence and oracle capture, and the gate verdict per
    hierarchical system."""
    out: dict[str, Any] = {"schema": SCHEMA, "seeds": len(comparisons), "systems": {}}
    for system in COMPARED_SYSTEMS:
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
    independent = out["systems"].get("independent")
    oracle = out["systems"].get(ORACLE_SYSTEM)
    gates, evidence, capture = {}, {}, {}
    for system in ("hierarchical", "joint"):
        entry = out["systems"].get(system)
        if entry is None or independent is None:
            continue
        gain = entry["sharpe_vs_independent"]["mean"]
        base_dd = independent["mean_episode_max_drawdown"]["mean"]
        own_dd = entry["mean_episode_max_drawdown"]["mean"]
        cut = 1.0 - own_dd / base_dd if base_dd > 0 else 0.0
        dd_change = entry["mean_episode_max_drawdown_vs_independent"]
        gates[system] = {
            "sharpe_gain": gain,
            "drawdown_cut": cut,
            "drawdown_change_high": dd_change["high"],
            "passed": bool(
                gain >= min_sharpe_gain - 1e-9
                and cut >= min_drawdown_cut - 1e-9
                and dd_change["high"] < 0
            ),
        }
        sharpe = entry["sharpe_vs_independent"]
        pooled = _pooled_half_width(comparisons, system)
        evidence[system] = {
            "bootstrap_half_width": pooled,
            "seed_half_width": (sharpe["high"] - sharpe["low"]) / 2 if sharpe["n"] > 1 else None,
            "enough": pooled is not None and pooled < min_sharpe_gain,
        }
        if oracle is not None:
            capture[system] = {
                "sharpe": _share(gain, oracle["sharpe_vs_independent"]["mean"]),
                "drawdown": _share(
                    dd_change["mean"], oracle["mean_episode_max_drawdown_vs_independent"]["mean"]
                ),
            }
    out["gate"] = {
        "min_sharpe_gain": min_sharpe_gain,
        "min_drawdown_cut": min_drawdown_cut,
        "systems": gates,
        "passed": bool(gates.get("hierarchical", {}).get("passed", False)),
    }
    out["evidence"] = evidence
    if oracle is not None:
        out["oracle_capture"] = capture
    return out


def _share(gain: float, ceiling: float) -> float | None:
    """``gain`` as a fraction of ``ceiling`` (None when the ceiling is no gain at all)."""
    return gain / ceiling if abs(ceiling) > 1e-12 else None


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
        f"-{gate['min_drawdown_cut']:.0%} vs independent, drawdown change interval below 0",
    ]
    for system, verdict in gate["systems"].items():
        high = verdict.get("drawdown_change_high")
        interval = "" if high is None else f" (interval high {high:+.1%})"
        lines.append(
            f"- {system}: Sharpe {verdict['sharpe_gain']:+.2f}, drawdown cut "
            f"{verdict['drawdown_cut']:+.1%}{interval}: {'PASS' if verdict['passed'] else 'FAIL'}"
        )
    evidence = summary.get("evidence") or {}
    if evidence:
        lines += ["", "Evidence (half-width of the 95% interval of the mean Sharpe gain):"]
        for system, entry in evidence.items():
            pooled, seeds = entry["bootstrap_half_width"], entry["seed_half_width"]
            verdict = (
                "enough to tell a gain of the gate's size"
                if entry["enough"]
                else "NOT enough: the test cannot tell a gain of the gate's size from none"
            )
            lines.append(
                f"- {system}: test-period bootstrap "
                + ("-" if pooled is None else f"±{pooled:.2f}")
                + ", over seeds "
                + ("-" if seeds is None else f"±{seeds:.2f}")
                + f": {verdict}"
            )
    capture = summary.get("oracle_capture") or {}
    if capture:
        lines += ["", "Share of the oracle allocator's gain over independent agents captured:"]
        for system, entry in capture.items():
            lines.append(
                f"- {system}: Sharpe {_pct(entry['sharpe'])}, "
                f"drawdown change {_pct(entry['drawdown'])}"
            )
    return "\n".join(lines) + "\n"
