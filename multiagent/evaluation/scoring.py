"""How one system's backtest becomes figures: every metric of a run, and `score_policy`, the
scoring that ranks checkpoints during training and is, by construction, the report's main
section for that system (same books, coverage and metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from multiagent.config import RunConfig
from multiagent.data.splits import Window
from multiagent.envs.market import EnvMarket
from multiagent.evaluation.backtest import Backtester, PolicyRun
from multiagent.evaluation.metrics import (
    annual_return,
    episode_metrics,
    herfindahl,
    return_metrics,
    trade_stats,
)
from multiagent.evaluation.policies import BacktestPolicy

SUMMARY_KEYS = (  # the figures every summary table (ranking, folds, stress) shows
    "sharpe",
    "total_return",
    "max_drawdown",
    "mean_episode_max_drawdown",
    "turnover",
    "win_rate",
    "cost_ratio",
)


def policy_metrics(
    run: PolicyRun,
    periods: float,
    books: Sequence[int] | None = None,
    benchmark: np.ndarray | None = None,
    *,
    episode_bars: int | None = None,
) -> dict[str, Any]:
    """Every metric of `multiagent.evaluation.metrics` for the combined books of a run.

    Units: returns, drawdowns, exposure and ``turnover`` (traded notional / equity, mean per
    bar) are fractions; episode figures cut each book's per-bar returns into episodes of
    ``episode_bars`` (the training episode length)."""
    index = np.arange(run.equity.shape[0]) if books is None else np.asarray(books)
    returns = run.returns(index)
    out: dict[str, Any] = return_metrics(returns, periods)
    book_equity = run.equity[index]
    out.update(episode_metrics(book_equity[:, 1:] / book_equity[:, :-1] - 1.0, episode_bars))
    mine = np.isin(run.trades["book"], index)
    out.update(trade_stats(run.trades["pnl"][mine], run.capital))
    out["closed_trades"] = int(mine.sum())
    out["trades_per_episode"] = float(mine.sum() / index.size)
    equity = run.equity[index].sum(axis=0)
    out["turnover"] = float(np.mean(run.traded[index].sum(axis=0) / equity[:-1]))
    costs = float(run.costs[index].sum())
    gross = float(run.net_pnl[index].sum()) + costs
    out["cost_ratio"] = costs / abs(gross) if abs(gross) > 1e-9 else None
    values = run.values[index]
    out["exposure"] = float((values != 0).mean())
    out["gross_exposure"] = float(np.mean(np.abs(values).sum(axis=(0, 1)) / equity[1:]))
    out["herfindahl"] = herfindahl(symbol_weights(run, index)[1].T)
    out["excess_return"] = (
        out["annual_return"] - annual_return(benchmark, periods) if benchmark is not None else None
    )
    if run.budgets is not None and run.risk_modes is not None and run.forced is not None:
        # What the master did: the gross budget it handed out (1 = equal shares of the whole
        # book), how often it was defensive or aggressive, and the trims its cuts forced.
        out["mean_gross_budget"] = float(run.budgets[index].sum(axis=1).mean())
        modes = run.risk_modes[index]
        out["defensive_share"] = float((modes == 0).mean())
        out["aggressive_share"] = float((modes == 2).mean())
        out["forced_trims_per_episode"] = float(run.forced[index].sum() / max(out["episodes"], 1))
    return out


def score_policy(
    policy: BacktestPolicy,
    market: EnvMarket,
    config: RunConfig,
    window: Window,
    periods: float,
) -> dict[str, Any]:
    """One system on one window, scored exactly as a report's main section scores it (same
    books, coverage and metrics): checkpoint ranking during training and sweep objectives go
    through here, so a checkpoint's validation figures are what `multiagent evaluate --part
    validation` reports for it."""
    return run_metrics(backtest_policy(policy, market, config, window), config, periods)


def backtest_policy(
    policy: BacktestPolicy, market: EnvMarket, config: RunConfig, window: Window
) -> PolicyRun:
    """The backtest `score_policy` scores (its per-bar returns: ``.returns()``, what a sweep
    keeps of each trial's validation for the overfitting statistics)."""
    tester = Backtester(
        market,
        config.env,
        n_slots=config.env.n_symbols,
        min_coverage=config.evaluation.min_coverage,
    )
    return tester.run([policy], window)[policy.name]


def run_metrics(run: PolicyRun, config: RunConfig, periods: float) -> dict[str, Any]:
    """`score_policy`'s figures of a run `backtest_policy` made."""
    return policy_metrics(run, periods, episode_bars=config.episodes.length)


def symbol_weights(
    run: PolicyRun, books: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(symbol rows, (S, T) weights of the combined books' equity held in each symbol)."""
    index = np.arange(run.equity.shape[0]) if books is None else books
    symbols = run.symbols[index]
    rows, where = np.unique(symbols, return_inverse=True)
    totals = np.zeros((rows.size, run.n_steps))
    np.add.at(totals, where.reshape(-1), run.values[index].reshape(-1, run.n_steps))
    return rows, totals / run.equity[index].sum(axis=0)[1:]
