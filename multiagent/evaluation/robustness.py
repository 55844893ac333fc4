"""The report's robustness sections: walk-forward folds after the training split, and stress
scenarios (cost and slippage shocks, the most volatile windows, a synthetic crash), each a
backtest by the evaluator's engine on other bars or another market."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from multiagent.data.featurize import build_features
from multiagent.data.splits import Fold, WalkForwardConfig, Window, walk_forward_folds
from multiagent.envs.config import CommonEnvConfig
from multiagent.envs.market import EnvMarket, build_market
from multiagent.evaluation.backtest import universe
from multiagent.evaluation.metrics import return_metrics
from multiagent.evaluation.policies import BacktestPolicy
from multiagent.evaluation.scenarios import cost_scenarios, crashed_panel, most_volatile_windows
from multiagent.evaluation.scoring import SUMMARY_KEYS, policy_metrics

if TYPE_CHECKING:
    from multiagent.evaluation.evaluate import Evaluator


def walk_forward_folds_after_training(ev: Evaluator) -> tuple[list[Fold], str | None]:
    """Walk-forward folds after the training split, or why there are none."""
    settings = ev.settings.walk_forward
    if not settings.enabled:
        return [], "disabled"
    try:
        folds = walk_forward_folds(
            ev.prepared.panel.n_bars,
            WalkForwardConfig(
                scheme=settings.scheme,
                train_bars=ev.prepared.split.train.stop,
                test_bars=settings.test_bars,
                step=settings.step,
                purge=ev.config.split.purge,
                max_folds=settings.max_folds,
            ),
        )
    except ValueError as error:
        return [], str(error)
    return folds, None


def walk_forward_section(
    ev: Evaluator, policies: Sequence[BacktestPolicy], folds: list[Fold], skipped: str | None
) -> dict[str, Any] | None:
    settings = ev.settings.walk_forward
    if not settings.enabled:
        return None
    if skipped is not None:
        return {"skipped": skipped, "folds": [], "aggregate": {}}
    split = ev.prepared.split
    rows: list[dict[str, Any]] = []
    pooled: dict[str, list[np.ndarray]] = {}
    for fold in folds:
        runs = ev.run_window(policies, ev.market, ev.env, fold.test, f"fold {fold.index}")
        section = ev.section(runs)
        validation = split.validation
        part = (
            "validation"
            if fold.test.stop <= validation.stop
            else "test"
            if fold.test.start >= split.test.start
            else "validation+test"
        )
        rows.append(
            {
                "fold": fold.index,
                "train_bars": [fold.train.start, fold.train.stop],
                "test_bars": [fold.test.start, fold.test.stop],
                "part": part,
                "policies": {
                    name: {k: row["metrics"][k] for k in SUMMARY_KEYS}
                    for name, row in section["policies"].items()
                    if not name.startswith("ALL_")
                },
            }
        )
        for name, run in runs.items():
            pooled.setdefault(name, []).append(run.returns())
    aggregate = {}
    for name, series in pooled.items():
        sharpes = [r["policies"][name]["sharpe"] for r in rows]
        aggregate[name] = {
            "mean_fold_sharpe": float(np.mean(sharpes)),
            "std_fold_sharpe": float(np.std(sharpes, ddof=1)) if len(sharpes) > 1 else 0.0,
            "positive_folds": int(sum(s > 0 for s in sharpes)),
            "pooled": return_metrics(np.concatenate(series), ev.periods),
        }
    return {
        "settings": settings.model_dump(mode="json"),
        "note": "folds start after the training split; a fixed policy is not retrained "
        "per fold, and folds in the validation split were seen by checkpoint selection",
        "folds": rows,
        "aggregate": aggregate,
    }


def stress_jobs(
    ev: Evaluator, window: Window
) -> list[tuple[str, str, tuple[EnvMarket, CommonEnvConfig], list[Window]]]:
    """Every stress scenario: (name, description, (market, env), windows), in a fixed order."""
    settings = ev.settings.stress
    jobs: list[tuple[str, str, tuple[EnvMarket, CommonEnvConfig], list[Window]]] = []
    if not settings.enabled:
        return jobs
    for name, description, env in cost_scenarios(ev.env, settings):
        jobs.append((name, description, (ev.market, env), [window]))
    rows = universe(ev.market, window, ev.settings.min_coverage)
    volatile = most_volatile_windows(
        ev.market, rows, window, settings.volatile_windows, settings.volatile_window_bars
    )
    if volatile:
        jobs.append(
            (
                "volatile_windows",
                f"the {len(volatile)} most volatile {settings.volatile_window_bars}-bar "
                "windows of the evaluated split, returns chained",
                (ev.market, ev.env),
                volatile,
            )
        )
    if settings.crash.enabled:
        jobs.append(
            (
                "crash",
                f"synthetic crash: every price -{settings.crash.drop:.0%} over "
                f"{settings.crash.bars} bars, {settings.crash.at:.0%} into the split",
                (crashed_market(ev, window), ev.env),
                [window],
            )
        )
    return jobs


def crashed_market(ev: Evaluator, window: Window) -> EnvMarket:
    panel = crashed_panel(ev.prepared.panel, window, ev.settings.stress.crash)
    method = ev.config.features.normalization.method
    features = build_features(
        panel,
        ev.config.features,
        fit_end=ev.prepared.split.train.stop - 1 if method == "train" else None,
        use_cache=False,
    )
    return build_market(panel, features, ev.env.costs)


def stress_section(
    ev: Evaluator,
    policies: Sequence[BacktestPolicy],
    jobs: list[tuple[str, str, tuple[EnvMarket, CommonEnvConfig], list[Window]]],
    base: dict[str, dict[str, Any]],
) -> dict[str, Any] | None:
    if not ev.settings.stress.enabled:
        return None
    names = [p.name for p in policies]
    scenarios: list[dict[str, Any]] = [
        {
            "name": "base",
            "description": "the evaluated split as is",
            "windows": [],
            "policies": {n: {k: base[n]["metrics"][k] for k in SUMMARY_KEYS} for n in names},
        }
    ]
    for name, description, (market, env), windows in jobs:
        series: dict[str, list[np.ndarray]] = {}
        merged: dict[str, dict[str, Any]] = {}
        for window in windows:
            runs = ev.run_window(policies, market, env, window, name)
            for policy, run in runs.items():
                series.setdefault(policy, []).append(run.returns())
                if len(windows) == 1:
                    merged[policy] = policy_metrics(run, ev.periods, episode_bars=ev.episode_bars)
        if len(windows) > 1:  # chained windows: return metrics of the joined series
            merged = {p: return_metrics(np.concatenate(s), ev.periods) for p, s in series.items()}
        scenarios.append(
            {
                "name": name,
                "description": description,
                "windows": [[w.start, w.stop] for w in windows],
                "policies": {p: {k: merged[p].get(k) for k in SUMMARY_KEYS} for p in names},
            }
        )
    return {"scenarios": scenarios}
