"""The statistics a skeptic asks for, computed for every report from the evaluated returns.

For each agent system of a report:

- **intervals**: its Sharpe ratio, total return and max drawdown with stationary
  block-bootstrap percentile intervals (Politis & Romano 1994; block length from the data,
  Politis & White 2004), the same resampling as the paired comparison (`paired`);
- **versus each baseline**: the paired difference (agent - baseline) of the same three figures
  with its interval and bootstrap p-value (`paired.paired_difference`);
- **PSR** against 0 and against the best baseline's Sharpe, and the **DSR** with the trials the
  config's selection saw (`sharpe_stats`; ``config.selection``: 1 for a hand-written config, the
  sweep's trial count and Sharpe variance for one `multiagent tune` exported);

and for the report, **Hansen's SPA test** (2005) against each baseline over the agent systems:
the p-value of "no system beats this baseline" corrected for having compared several systems
(the data-snooping the test is named for), with the systems StepM (Romano & Wolf 2005) finds
superior at the report's level. `spa_pvalue` (the SPA p-value against the best baseline) and the
PSR / DSR figures join each agent's metrics; gates read those and `spa_pvalue` (`dsr >= 0.95`,
`spa_pvalue <= 0.05`). The SPA p-value stays out of the metrics: it is a figure of the family of
systems a report compares, and a system must score the same alone or beside others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from arch.bootstrap import SPA

from multiagent.config.evaluation import POLICY_STATISTICS
from multiagent.evaluation.metrics import max_drawdown, sharpe, total_return
from multiagent.evaluation.paired import (
    MIN_BARS_FOR_BLOCK_ESTIMATE,
    block_length,
    paired_difference,
    resample,
)
from multiagent.evaluation.sharpe_stats import (
    annualized,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    per_bar,
    probabilistic_sharpe_ratio,
    sharpe_moments,
)


def metric_intervals(
    returns: np.ndarray, periods: float, *, seed: int, replications: int, level: float
) -> dict[str, Any]:
    """Sharpe (annualized), total return and max drawdown of one per-bar return series with
    stationary block-bootstrap percentile intervals."""
    series = np.asarray(returns, dtype=float)
    block = block_length(series)
    replicates = resample(
        (series,),
        lambda star: [sharpe(star, periods), total_return(star), max_drawdown(star)],
        block,
        seed=seed,
        replications=replications,
    )
    tail = (1.0 - level) / 2.0
    out: dict[str, Any] = {"block_length": block}
    for j, (name, value) in enumerate(
        (
            ("sharpe", sharpe(series, periods)),
            ("total_return", total_return(series)),
            ("max_drawdown", max_drawdown(series)),
        )
    ):
        low, high = np.quantile(replicates[:, j], [tail, 1.0 - tail])
        out[name] = {"value": value, "low": float(low), "high": float(high)}
    return out


def sharpe_confidence(
    returns: np.ndarray,
    periods: float,
    benchmark_sharpe: float | None,
    trials: int,
    trial_sharpe_variance: float,
) -> dict[str, Any]:
    """PSR against 0 and against ``benchmark_sharpe`` (annualized), and the DSR for ``trials``
    whose annualized Sharpe ratios vary by ``trial_sharpe_variance``."""
    sr, skew, kurtosis, bars = sharpe_moments(returns)
    variance = trial_sharpe_variance / periods  # annualized variance -> per bar
    vs_best = (
        probabilistic_sharpe_ratio(sr, per_bar(benchmark_sharpe, periods), bars, skew, kurtosis)
        if benchmark_sharpe is not None
        else float("nan")
    )
    return {
        "bars": bars,
        "skew": skew,
        "kurtosis": kurtosis,
        "psr": probabilistic_sharpe_ratio(sr, 0.0, bars, skew, kurtosis),
        "psr_vs_best_baseline": vs_best,
        "trials": trials,
        "trial_sharpe_variance": trial_sharpe_variance,
        "expected_max_sharpe": annualized(expected_max_sharpe(trials, variance), periods),
        "dsr": deflated_sharpe_ratio(sr, bars, trials, variance, skew, kurtosis),
    }


def spa_test(
    benchmark: np.ndarray,
    models: dict[str, np.ndarray],
    *,
    seed: int,
    replications: int,
    level: float,
) -> dict[str, Any]:
    """Hansen's SPA of "no model's mean return beats the benchmark's", with the models StepM
    finds superior at ``1 - level`` (losses are negative returns).

    Not run (p-value NaN, with the reason) on fewer than `MIN_BARS_FOR_BLOCK_ESTIMATE` bars, and
    a model whose returns differ from the benchmark's by a constant on every bar (the same
    series, e.g. a system that never trades against cash) is left out: its studentized
    statistic divides by a zero variance, which would read as certainty."""
    bars = int(np.asarray(benchmark).size)
    names = [n for n in models if np.ptp(np.asarray(models[n]) - benchmark) > 0.0]
    left_out = [n for n in models if n not in names]
    reason = None
    if bars < MIN_BARS_FOR_BLOCK_ESTIMATE:
        reason = f"{bars} bars: too few for the test (at least {MIN_BARS_FOR_BLOCK_ESTIMATE})"
    elif not names:
        reason = "no system's returns differ from this baseline's bar by bar"
    if reason is not None:
        return {"pvalue": float("nan"), "pvalues": {}, "superior": [], "skipped": reason}
    frame = pd.DataFrame({name: -np.asarray(models[name], dtype=float) for name in names})
    losses = -np.asarray(benchmark, dtype=float)
    best = max(names, key=lambda n: float(np.mean(models[n])))
    block = max(1, round(block_length(np.asarray(models[best]) - benchmark)))
    spa = SPA(losses, frame, block_size=block, reps=replications, seed=np.random.default_rng(seed))
    spa.compute()
    pvalues = {str(k): float(v) for k, v in spa.pvalues.items()}
    superior = step_down(spa, len(names), size=1.0 - level)
    spa.subset(np.ones(len(names), dtype=bool))
    return {
        "block_length": block,
        "pvalue": pvalues["consistent"],
        "pvalues": pvalues,
        "superior": [names[i] for i in superior],
    } | ({"left_out": left_out} if left_out else {})


def step_down(spa: SPA, models: int, size: float) -> list[int]:
    """Romano & Wolf's StepM over a computed SPA: the models better than the benchmark at
    ``size``, found step by step (each step re-tests the models not yet found). The loop of
    `arch.bootstrap.StepM` (8.0) stops only when one step finds every model at once; when the
    last models are found over several steps it re-tests an empty set and fails, so the same
    steps are run here with the stopping rule "no model left, or none found"."""
    remaining = np.ones(models, dtype=bool)
    found: list[int] = []
    while remaining.any():
        spa.subset(remaining)
        spa.compute()
        better = [int(i) for i in spa.better_models(size) if remaining[int(i)]]
        if not better:
            break
        found += better
        remaining[better] = False
    return sorted(found)


def significance_section(
    returns: dict[str, np.ndarray],
    agents: Sequence[str],
    baselines: Sequence[str],
    baseline_sharpes: dict[str, float],
    periods: float,
    *,
    seed: int,
    replications: int,
    level: float = 0.95,
    trials: int = 1,
    trial_sharpe_variance: float = 0.0,
    selection_source: str | None = None,
) -> dict[str, Any]:
    """The report's ``statistics`` section (see the module docstring). ``returns``: per-bar
    returns of every policy over the same bars; ``baseline_sharpes``: their annualized Sharpe
    ratios (the best one is the PSR's and SPA's benchmark)."""
    best = max(sorted(baseline_sharpes), key=lambda n: baseline_sharpes[n], default=None)
    policies: dict[str, Any] = {}
    for agent in agents:
        series = returns[agent]
        policies[agent] = {
            "intervals": metric_intervals(
                series, periods, seed=seed, replications=replications, level=level
            ),
            **sharpe_confidence(
                series,
                periods,
                baseline_sharpes.get(best) if best is not None else None,
                trials,
                trial_sharpe_variance,
            ),
            "versus": {
                name: paired_difference(
                    series,
                    returns[name],
                    periods,
                    seed=seed,
                    replications=replications,
                    level=level,
                )["metrics"]
                for name in baselines
            },
        }
    spa = {
        name: spa_test(
            returns[name],
            {a: returns[a] for a in agents},
            seed=seed,
            replications=replications,
            level=level,
        )
        for name in baselines
    }
    spa_pvalue = spa[best]["pvalue"] if best is not None else float("nan")
    for agent in agents:
        policies[agent]["spa_pvalue"] = spa_pvalue
    return {
        "settings": {"replications": replications, "level": level, "seed": seed},
        "selection": {"trials": trials, "sharpe_variance": trial_sharpe_variance}
        | ({"source": selection_source} if selection_source else {}),
        "best_baseline": best,
        "policies": policies,
        "spa": spa,
    }


def statistic_metrics(section: dict[str, Any], agent: str) -> dict[str, float]:
    """The figures an agent's metrics gain from the section (its own, not the family's)."""
    entry = section["policies"][agent]
    return {key: _finite(entry.get(key)) for key in POLICY_STATISTICS}


def report_figures(section: dict[str, Any] | None, agent: str) -> dict[str, float]:
    """What gates also read for ``agent``: the SPA p-value of the report's family of systems."""
    if not section:
        return {}
    return {"spa_pvalue": _finite(section["policies"][agent].get("spa_pvalue"))}


def _finite(value: Any) -> float:
    return float(value) if value is not None and math.isfinite(float(value)) else float("nan")
