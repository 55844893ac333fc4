"""Report files: ``report.json`` (versioned schema, byte-stable), ``report.md`` and PNG plots.

``report.json`` holds no wall-clock time, host or absolute temp path, and floats are written by
Python's shortest round-trip repr, so the same checkpoint and data give the same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scipy import stats

from multiagent.evaluation.gates import NO_GATES, verdict
from multiagent.evaluation.markdown import fmt, table
from multiagent.evaluation.metrics import clean
from multiagent.evaluation.report_statistics import render_statistics

MULTISEED_SCHEMA = "multiagent.multiseed/1"
STRESS_POLICIES = ("equal_weight", "buy_and_hold", "cash")
UNITS = {
    "total_return": "fraction of capital",
    "annual_return": "fraction per year",
    "annual_volatility": "fraction per year",
    "sharpe": "annualized",
    "sortino": "annualized",
    "calmar": "annual return / max drawdown",
    "max_drawdown": "fraction of the peak",
    "max_drawdown_duration": "bars",
    "mean_episode_max_drawdown": "fraction of the peak, mean over episodes",
    "mean_episode_return": "fraction of capital, mean over episodes",
    "episodes": "book x episode-length pieces",
    "win_rate": "fraction of closed trades",
    "profit_factor": "gross wins / gross losses",
    "average_trade": "fraction of capital",
    "closed_trades": "count",
    "trades_per_episode": "closed trades per book",
    "turnover": "traded notional / equity, mean per bar",
    "cost_ratio": "costs / abs(gross P&L)",
    "exposure": "fraction of slot-bars in a position",
    "gross_exposure": "sum of abs(position) / equity, mean per bar",
    "herfindahl": "sum w^2 / (sum abs w)^2, mean",
    "excess_return": "annual return minus equal weight's",
    "mean_gross_budget": "sum of slot budgets, x equity, mean per bar",
    "defensive_share": "fraction of bars",
    "aggressive_share": "fraction of bars",
    "forced_trims_per_episode": "count per episode",
}


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(clean(report), indent=2, allow_nan=False) + "\n"


def _sharpe_return(metrics: dict[str, Any]) -> str:
    return f"{fmt(metrics['sharpe'])} / {fmt(metrics['total_return'], 'pct')}"


def paired_rows(comparison: dict[str, Any]) -> list[str]:
    """Markdown lines: each system minus the reference system, paired on the same bars."""
    reference = comparison["reference"]
    lines = [
        f"Paired differences to `{reference}` on the same books and bars (system minus "
        f"{reference}; 95% intervals):",
        "",
    ]
    rows = []
    for system, entry in comparison["systems"].items():
        metrics = entry["metrics"]
        level = entry.get("level", 0.95)
        for key, label, kind in (
            ("sharpe", "Δ Sharpe (annualized)", "num"),
            ("total_return", "Δ return (% of capital)", "pct"),
            ("max_drawdown", "Δ max drawdown (% points)", "pct"),
            ("mean_episode_max_drawdown", "Δ mean episode max drawdown (% points)", "pct"),
        ):
            diff = metrics.get(key)
            if diff is None:
                continue
            if "low" in diff:
                interval = f"[{fmt(diff['low'], kind)}, {fmt(diff['high'], kind)}]"
                method = f"block bootstrap {level:.0%}, p = {fmt(diff['p_value'])}"
            else:
                relative = diff.get("relative")
                interval = "-"
                method = f"relative change {fmt(relative, 'pct')}" if relative is not None else ""
            rows.append([system, label, fmt(diff["difference"], kind), interval, method])
        fold = entry.get("walk_forward_sharpe_difference")
        if fold is not None and fold["n"] > 1:
            rows.append(
                [
                    system,
                    "Δ Sharpe per walk-forward fold (mean)",
                    fmt(fold["mean"]),
                    f"[{fmt(fold['low'])}, {fmt(fold['high'])}]",
                    f"t-interval over {fold['n']} folds",
                ]
            )
    lines += table(["system", "difference", "estimate", "interval", "how"], rows)
    block: dict[str, Any] = next(iter(comparison["systems"].values()), {})
    if "block_length" in block:
        lines += [
            f"Stationary bootstrap: {block['replications']} resamples, mean block length "
            f"{block['block_length']:.1f} bars (Politis-White), seed {block['seed']}.",
            "",
        ]
    return lines


def _lead(report: dict[str, Any]) -> list[str]:
    """The verdict a reader wants first: the lead system's gates and how it compares."""
    lead = report.get("lead")
    if lead is None:
        return []
    metrics = report["policies"][lead]["metrics"]
    gates = report.get("gates")
    word = verdict(gates) if gates else None
    shown = {None: "", "NO GATES": ": no gates, no verdict"}.get(word, f": gates **{word}**")
    out = [
        f"## Verdict: the {lead} system{shown}",
        "",
        f"Sharpe {fmt(metrics['sharpe'])}, return {fmt(metrics['total_return'], 'pct')}, "
        f"max drawdown {fmt(metrics['max_drawdown'], 'frac')}, mean episode max drawdown "
        f"{fmt(metrics['mean_episode_max_drawdown'], 'frac')} on the {report['window']['part']} "
        "split.",
        "",
    ]
    others = [s for s in report["agents"] if s != lead]
    if others:
        verdicts = []
        for name in report["agents"]:
            system_gates = (report.get("system_gates") or {}).get(name)
            if system_gates is not None:
                verdicts.append(f"{name} {verdict(system_gates)}")
        out += [f"Gates per system: {', '.join(verdicts)}.", ""]
    comparison = report.get("comparison")
    if comparison:
        out += paired_rows(comparison)
    return out


def render_markdown(report: dict[str, Any], plots: Sequence[str] = ()) -> str:
    window, source = report["window"], report["source"]
    agents = report["agents"]
    costs = report["env"]["costs"]
    systems = source.get("systems", {})
    described = "; ".join(
        f"{name}: `{entry['policy']}`"
        + (f" + master `{entry['master']}`" if entry["master"] else "")
        for name, entry in systems.items()
    )
    origin = f"- systems ({source['path']}): {described}" if described else f"- source: {source}"
    out = [
        "# Evaluation report",
        "",
        origin,
        *(f"- note: {note}" for note in source.get("notes", [])),
        f"- data: {len(report['data']['symbols'])} symbols, fingerprint "
        f"`{report['data']['fingerprint'][:16]}`; seed {report['seed']}",
        f"- window: the **{window['part']}** split, fills {window['first_fill']} .. "
        f"{window['last_fill']} ({window['steps']} bars, {len(window['universe'])} symbols, "
        f"books of {report['env']['slots_per_book']})",
        f"- costs as in training: {costs['commission_bps']:g} bps commission, "
        f"{costs['slippage_bps']:g} bps slippage, half spread from the data (else "
        f"{costs['half_spread_bps']:g} bps), impact coefficient {costs['impact_coef']:g}; "
        f"fills at {report['env']['execution']['fill_price']}",
        "",
        *_lead(report),
    ]
    for name, gates in (report.get("system_gates") or {}).items():
        out += [f"## Gates of {name}: **{verdict(gates)}**", ""]
        if gates["passed"] is None:
            out += [NO_GATES, ""]
            continue
        rows = [
            [
                group,
                g["gate"],
                fmt(g["value"]),
                fmt(g["threshold"]),
                g["against"] or "",
                "pass" if g["passed"] else "**FAIL**",
            ]
            for group in ("go", "regression")
            for g in gates[group]
        ]
        out += table(["kind", "gate", "value", "threshold", "baseline", "result"], rows)
    out += ["## Ranking by Sharpe", ""]
    rows = [
        [
            str(r["rank"]),
            f"**{r['policy']}**" if r["policy"] in agents else r["policy"],
            fmt(r["sharpe"]),
            fmt(r["total_return"], "pct"),
            fmt(r["max_drawdown"], "frac"),
            fmt(r.get("mean_episode_max_drawdown"), "frac"),
            fmt(r["turnover"], "frac2"),
            fmt(r["win_rate"], "frac"),
            fmt(r["cost_ratio"], "frac"),
        ]
        for r in report["ranking"]
    ]
    out += table(
        [
            "rank",
            "policy",
            "Sharpe (annualized)",
            "return (% of capital)",
            "max DD (%)",
            "mean episode max DD (%)",
            "turnover (% of equity per bar)",
            "win rate (% of closed trades)",
            "cost ratio (% of gross P&L)",
        ],
        rows,
    )
    out += render_statistics(report.get("statistics"))
    for agent in agents:
        metrics = report["policies"][agent]["metrics"]
        out += [f"## {agent}: all metrics", ""]
        out += table(
            ["metric", "value", "unit"],
            [[k, fmt(v), UNITS.get(k, "")] for k, v in metrics.items()],
        )
    stress = report.get("stress")
    if stress:
        shown = [*agents, *(p for p in report["policies"] if p in STRESS_POLICIES)]
        shown += [p for p in report["policies"] if p.startswith(("momentum", "random"))]
        out += ["## Stress tests (Sharpe annualized / return, % of capital)", ""]
        rows = [
            [s["name"], s["description"]] + [_sharpe_return(s["policies"][p]) for p in shown]
            for s in stress["scenarios"]
        ]
        out += table(["scenario", "what", *shown], rows)
    walk = report.get("walk_forward")
    if walk and walk.get("folds"):
        names = [n for n in walk["aggregate"] if not n.startswith("ALL_")]
        out += ["## Walk-forward folds (Sharpe, annualized)", "", walk["note"] + ".", ""]
        rows = [
            [str(f["fold"]), f"{f['test_bars'][0]}-{f['test_bars'][1] - 1}", f["part"]]
            + [fmt(f["policies"][n]["sharpe"]) for n in names]
            for f in walk["folds"]
        ]
        rows.append(
            ["mean", "", ""] + [fmt(walk["aggregate"][n]["mean_fold_sharpe"]) for n in names]
        )
        rows.append(
            ["pooled", "", ""] + [fmt(walk["aggregate"][n]["pooled"]["sharpe"]) for n in names]
        )
        out += table(["fold", "bars", "part", *names], rows)
    elif walk:
        out += ["## Walk-forward", "", f"skipped: {walk.get('skipped')}", ""]
    for agent, general in (report.get("generalization") or {}).items():
        out += [f"## {agent}: per book (episode)", ""]
        rows = [
            [
                str(b["book"]),
                " ".join(b["symbols"]),
                fmt(b["metrics"]["sharpe"]),
                fmt(b["metrics"]["total_return"], "pct"),
                fmt(b["metrics"]["max_drawdown"], "frac"),
            ]
            for b in general["books"]
        ]
        out += table(
            ["book", "symbols", "Sharpe (annualized)", "return (% of capital)", "max DD (%)"], rows
        )
        out += [f"## {agent}: per symbol", ""]
        rows = [
            [
                s["symbol"] + (" (held out)" if s["held_out"] else ""),
                fmt(s["return_on_budget"], "pct"),
                fmt(s["buy_and_hold_return"], "pct"),
                str(s["closed_trades"]),
                fmt(s["win_rate"], "frac"),
                fmt(s["exposure"], "frac"),
            ]
            for s in general["symbols"]
        ]
        out += table(
            [
                "symbol",
                "return on budget (%)",
                "buy-and-hold (%)",
                "closed trades",
                "win rate (%)",
                "in position (% of bars)",
            ],
            rows,
        )
    if plots:
        out += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    return "\n".join(out)


def confidence_interval(values: Sequence[float], level: float = 0.95) -> dict[str, float | int]:
    """Mean and two-sided t interval of the mean; the half-width is 0 for one value."""
    data = [float(v) for v in values]
    n = len(data)
    mean = sum(data) / n
    if n < 2:
        return {"n": n, "mean": mean, "std": 0.0, "low": mean, "high": mean}
    std = math.sqrt(sum((v - mean) ** 2 for v in data) / (n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "low": mean - half, "high": mean + half}


def aggregate_seeds(reports: Sequence[dict[str, Any]], labels: Sequence[str]) -> dict[str, Any]:
    """Each policy's summary metrics over several training seeds: mean and 95% CI."""
    policies = [p for p in reports[0]["policies"] if not p.startswith("ALL_")]
    keys = (
        "sharpe",
        "sortino",
        "total_return",
        "annual_return",
        "max_drawdown",
        "turnover",
        "win_rate",
        "profit_factor",
        "cost_ratio",
    )
    table: dict[str, Any] = {}
    for policy in policies:
        row: dict[str, Any] = {}
        for key in keys:
            values = [
                r["policies"][policy]["metrics"].get(key)
                for r in reports
                if policy in r["policies"]
            ]
            finite = [v for v in values if v is not None]
            row[key] = confidence_interval(finite) if finite else None
        table[policy] = row
    gates = [r.get("gates") or {} for r in reports]
    # None: a run without gates, no verdict (not a failure, not a pass)
    passed = [None if g.get("passed") is None else bool(g["passed"]) for g in gates]
    return {
        "schema": MULTISEED_SCHEMA,
        "runs": list(labels),
        "seeds": [r["seed"] for r in reports],
        "window": reports[0]["window"],
        "policies": table,
        "gates_passed": passed,
    }


def render_multiseed(summary: dict[str, Any]) -> str:
    out = [
        "# Multi-seed evaluation",
        "",
        f"{len(summary['runs'])} runs (seeds {', '.join(map(str, summary['seeds']))}); the "
        f"{summary['window']['part']} split; mean [95% CI].",
        "",
    ]
    keys = ("sharpe", "total_return", "max_drawdown", "turnover", "win_rate")

    def cell(ci: dict[str, Any] | None) -> str:
        if ci is None:
            return "-"
        return f"{ci['mean']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]"

    rows = [[p] + [cell(summary["policies"][p][k]) for k in keys] for p in summary["policies"]]
    out += table(["policy", *keys], rows)
    judged = [p for p in summary["gates_passed"] if p is not None]
    if judged:
        unjudged = len(summary["gates_passed"]) - len(judged)
        rest = f" ({unjudged} without gates: no verdict)" if unjudged else ""
        out += [f"Gates passed in {sum(judged)} of {len(judged)} runs{rest}.", ""]
    else:
        out += [NO_GATES, ""]
    return "\n".join(out)


def write_json(path: Path, report: dict[str, Any]) -> Path:
    path.write_text(dumps(report), encoding="utf-8")
    return path
