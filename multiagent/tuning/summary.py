"""A sweep's ``summary.json`` / ``summary.md``: the choice, the statistics of the search behind
it (`tuning.selection`), and the in-sample best objective next to the one test evaluation, so
the decay from the one to the other is visible."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from multiagent.runs.folders import write_atomic, write_json
from multiagent.tuning.selection import SelectionStatistics


def sweep_summary(
    *,
    name: str,
    search: str,
    target: str,
    metric: str,
    best: dict[str, Any] | None,
    final: dict[str, Any] | None,
    stats: SelectionStatistics,
    total_trials: int,
) -> dict[str, Any]:
    """``summary.json``'s content: the choice, the search's statistics, and the decay from the
    in-sample best to the one test evaluation."""
    chosen = None
    if best is not None:
        trial_id = str(best["trial_id"])
        chosen = {
            "trial_id": trial_id,
            "config": best["config"],
            "objective": best["objective"],
            "validation_sharpe": stats.trial_sharpes.get(trial_id),
        }
    decay = None
    if best is not None and final is not None:
        test_value = final["metrics"].get(metric)
        decay = {
            "metric": metric,
            "validation_objective": best["objective"],
            "test": test_value,
            "change": (
                test_value - best["objective"] if isinstance(test_value, int | float) else None
            ),
            "validation_sharpe": chosen["validation_sharpe"] if chosen else None,
            "test_sharpe": final["metrics"].get("sharpe"),
        }
    return {
        "sweep": name,
        "search": search,
        "target": target,
        "metric": metric,
        "date": dt.date.today().isoformat(),
        "trials": {
            "total": total_trials,
            "scored": stats.trials,
            "in_pbo": len(stats.pbo_trials) if stats.pbo is not None else 0,
        },
        "best": chosen,
        "selection": stats.record.model_dump(mode="json"),
        "pbo": stats.pbo.pbo if stats.pbo is not None else None,
        "pbo_skipped": stats.pbo_skipped,
        "pbo_detail": (
            {
                "blocks": stats.pbo.n_blocks,
                "bars": stats.pbo.n_bars,
                "combinations": stats.pbo.n_combinations,
                "degradation_slope": stats.pbo.to_json()["degradation"]["slope"],
                "probability_of_loss": stats.pbo.probability_of_loss,
            }
            if stats.pbo is not None
            else None
        ),
        "excluded": stats.excluded,
        "sharpe_variance": stats.sharpe_variance,
        "dsr": stats.dsr,
        "dsr_inputs": stats.dsr_inputs,
        "final_test": final["metrics"] if final is not None else None,
        "decay": decay,
    }


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "-"
    return str(value)


def summary_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# Sweep {summary['sweep']} ({summary['search']}, target {summary['target']})",
        "",
        f"{summary['date']}: {summary['trials']['scored']} scored trial(s) of "
        f"{summary['trials']['total']}; objective: mean validation {summary['metric']} over the "
        "folds.",
        "",
    ]
    best = summary["best"]
    if best is not None:
        lines += [f"Chosen: trial {best['trial_id']}, `{json.dumps(best['config'])}`.", ""]
    lines += ["| statistic | value |", "|---|---|"]
    pbo = summary["pbo"]
    lines.append(
        f"| PBO (probability of backtest overfitting) | {_fmt(pbo)} |"
        if pbo is not None
        else f"| PBO | skipped: {summary['pbo_skipped']} |"
    )
    if summary["pbo_detail"]:
        detail = summary["pbo_detail"]
        lines.append(
            f"| CSCV | {detail['blocks']} blocks, {detail['bars']} bars, "
            f"{detail['combinations']:,} combinations |"
        )
        lines.append(
            f"| degradation slope (OOS on IS Sharpe) | {_fmt(detail['degradation_slope'])} |"
        )
        lines.append(f"| P(OOS Sharpe < 0) of the pick | {_fmt(detail['probability_of_loss'])} |")
    lines.append(f"| trials (N) | {summary['selection']['trials']} |")
    lines.append(
        f"| variance of the trials' annualized validation Sharpe (V) | "
        f"{_fmt(summary['sharpe_variance'], 4)} |"
    )
    inputs = summary["dsr_inputs"]
    lines.append(
        f"| DSR of the choice (validation Sharpe {_fmt(inputs.get('sharpe'))} vs "
        f"{_fmt(inputs.get('expected_max_sharpe'))} expected of the best of N by luck) | "
        f"{_fmt(summary['dsr'])} |"
    )
    decay = summary["decay"]
    if decay is not None:
        lines += [
            "",
            "| | validation (in-sample best) | test (opened once) |",
            "|---|---|---|",
            f"| {decay['metric']} | {_fmt(decay['validation_objective'])} | "
            f"{_fmt(decay['test'])} |",
        ]
        if decay["metric"] != "sharpe":
            lines.append(
                f"| sharpe | {_fmt(decay['validation_sharpe'])} | {_fmt(decay['test_sharpe'])} |"
            )
    if summary["excluded"]:
        lines += ["", "Left out of the PBO matrix:", ""]
        lines += [f"- trial {k}: {v}" for k, v in summary["excluded"].items()]
    lines += [
        "",
        "PBO near 0: the in-sample winner keeps winning out of sample; near 0.5 or above: the "
        "choice is luck (see docs/tuning.md, Overfitting). The DSR is the probability that the "
        "choice's true Sharpe beats what the best of N trials shows by chance.",
    ]
    return "\n".join(lines) + "\n"


def write_summary(directory: Path, summary: dict[str, Any]) -> list[Path]:
    write_json(directory / "summary.json", summary)
    write_atomic(directory / "summary.md", summary_markdown(summary))
    return [directory / "summary.json", directory / "summary.md"]
