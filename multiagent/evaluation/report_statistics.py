"""The report's Markdown section on the overfitting statistics (`significance`): each agent's
figures with their intervals, PSR / DSR, its differences to each baseline, and the SPA test."""

from __future__ import annotations

from typing import Any

from multiagent.evaluation.markdown import fmt, table


def _interval(entry: dict[str, Any], kind: str = "num") -> str:
    return f"{fmt(entry['value'], kind)} [{fmt(entry['low'], kind)}, {fmt(entry['high'], kind)}]"


def render_statistics(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    level = section["settings"]["level"]
    selection = section["selection"]
    trials = selection["trials"]
    source = f" (chosen by {selection['source']})" if selection.get("source") else ""
    best = section.get("best_baseline")
    out = [
        "## Statistics a skeptic asks for",
        "",
        f"Stationary block-bootstrap {level:.0%} intervals ({section['settings']['replications']} "
        f"resamples, seed {section['settings']['seed']}). PSR: the probability that the true "
        f"Sharpe ratio exceeds 0 / the best baseline's ({best}). DSR: the PSR against the Sharpe "
        f"the best of {trials} trial{'s' if trials != 1 else ''}{source} would reach by luck "
        "(the number to gate on: >= 0.95).",
        "",
    ]
    rows = [
        [
            agent,
            _interval(entry["intervals"]["sharpe"]),
            _interval(entry["intervals"]["total_return"], "pct"),
            _interval(entry["intervals"]["max_drawdown"], "frac"),
            fmt(entry["psr"]),
            fmt(entry["psr_vs_best_baseline"]),
            fmt(entry["dsr"]),
            fmt(entry["expected_max_sharpe"]),
        ]
        for agent, entry in section["policies"].items()
    ]
    out += table(
        [
            "system",
            "Sharpe [interval]",
            "return (% of capital) [interval]",
            "max DD (%) [interval]",
            "PSR vs 0",
            f"PSR vs {best}",
            "DSR",
            "luck's best Sharpe (SR0)",
        ],
        rows,
    )
    diffs = [
        [
            agent,
            baseline,
            f"{fmt(d['sharpe']['difference'])} [{fmt(d['sharpe']['low'])}, "
            f"{fmt(d['sharpe']['high'])}]",
            fmt(d["sharpe"]["p_value"]),
            f"{fmt(d['total_return']['difference'], 'pct')} "
            f"[{fmt(d['total_return']['low'], 'pct')}, {fmt(d['total_return']['high'], 'pct')}]",
        ]
        for agent, entry in section["policies"].items()
        for baseline, d in entry["versus"].items()
    ]
    out += ["Each system minus each baseline on the same bars (paired block bootstrap):", ""]
    out += table(["system", "baseline", "Δ Sharpe [interval]", "p", "Δ return [interval]"], diffs)
    spa_rows = [
        [
            baseline,
            fmt(test["pvalue"]),
            test.get("skipped") or ", ".join(test["superior"]) or "none",
        ]
        for baseline, test in section["spa"].items()
    ]
    out += [
        'Hansen\'s SPA test, per baseline: the p-value of "no system beats this baseline" over '
        f"all {len(section['policies'])} systems compared (corrected for comparing several), "
        f"and the systems StepM finds better at {1 - level:.0%}:",
        "",
    ]
    out += table(["baseline", "SPA p-value", "systems better than it"], spa_rows)
    return out
