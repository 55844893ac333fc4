"""Performance metrics: one place for every formula the reports use.

Conventions
-----------
- ``returns`` are simple per-bar returns of a portfolio's equity (fractions), ``r_1 .. r_n``.
- ``P`` is ``periods_per_year`` (252 for daily bars; see `periods_per_year`).
- Risk-free rate 0: Sharpe and Sortino are of the raw returns (they match empyrical's
  ``sharpe_ratio``, ``sortino_ratio``, ``calmar_ratio``, ``annual_return`` and
  ``max_drawdown``; the test suite cross-checks them on the same series).

| metric | formula |
|---|---|
| total_return | ``prod(1 + r) - 1`` |
| annual_return | ``(1 + total_return) ** (P / n) - 1`` (compound annual growth) |
| annual_volatility | ``std(r, ddof=1) * sqrt(P)`` |
| sharpe | ``mean(r) / std(r, ddof=1) * sqrt(P)``; 0 for a constant series |
| sortino | ``mean(r) * P / (sqrt(mean(min(r, 0) ** 2)) * sqrt(P))``; 0 without a loss |
| max_drawdown | ``max_t (1 - E_t / max_{s<=t} E_s)`` with ``E`` the compounded equity (from 1) |
| max_drawdown_duration | longest run of bars spent below a previous equity peak |
| calmar | ``annual_return / max_drawdown``; 0 without a drawdown |
| win_rate | winning closed trades / closed trades (net of costs) |
| profit_factor | ``sum(winning P&L) / abs(sum(losing P&L))`` over trades; None without a loss |
| average_trade | mean net P&L of a closed trade / initial capital |
| trades_per_episode | closed trades / portfolios (books) evaluated |
| turnover | mean over bars of traded notional / equity (0.5 = half the book traded per bar) |
| cost_ratio | total costs / abs(gross P&L before costs); None when the gross P&L is 0 |
| exposure | fraction of (bar, slot) pairs holding a position (time in the market) |
| gross_exposure | mean over bars of sum(abs(position value)) / equity |
| herfindahl | mean over invested bars of ``sum(w_i ** 2) / sum(abs(w_i)) ** 2`` (1/N to 1) |
| excess_return | ``annual_return - annual_return(benchmark)`` |

A trade opens when a slot goes from flat to a position and closes when it is flat again (or
flips side); its P&L is the slot's gross P&L minus costs over its life, so the trades of a
book add up to its equity change. Positions still open at the end are closed at the last mark
(no exit cost), so buy-and-hold has one trade per symbol.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from multiagent.data.panel import MarketPanel


def periods_per_year(panel: MarketPanel) -> float:
    """Bars per year: 252 trading days for daily (and longer) bars, else bars observed per year."""
    if panel.bar is None:
        return 252.0
    if panel.bar >= pd.Timedelta("1D"):
        return float(252.0 * pd.Timedelta("1D") / panel.bar)
    years = (panel.timestamps[-1] - panel.timestamps[0]) / np.timedelta64(365, "D")
    return panel.n_bars / max(float(years), 1e-9)


def _array(returns: Any) -> np.ndarray:
    return np.asarray(returns, dtype=float)


def total_return(returns: np.ndarray) -> float:
    return float(np.prod(1.0 + _array(returns)) - 1.0)


def annual_return(returns: np.ndarray, periods: float = 252.0) -> float:
    returns = _array(returns)
    if returns.size == 0:
        return 0.0
    growth = 1.0 + total_return(returns)
    if growth <= 0:
        return -1.0
    return float(growth ** (periods / returns.size) - 1.0)


def annual_volatility(returns: np.ndarray, periods: float = 252.0) -> float:
    returns = _array(returns)
    if returns.size < 2:
        return 0.0
    return float(returns.std(ddof=1) * np.sqrt(periods))


def sharpe(returns: np.ndarray, periods: float = 252.0) -> float:
    """Annualized Sharpe ratio (risk-free rate 0): mean / std(ddof=1) x sqrt(periods).

    0 for fewer than 2 returns or a constant series (no risk taken, no reward claimed)."""
    returns = _array(returns)
    if returns.size < 2:
        return 0.0
    std = returns.std(ddof=1)
    if not np.isfinite(std) or std < 1e-12:
        return 0.0
    return float(returns.mean() / std * np.sqrt(periods))


def sortino(returns: np.ndarray, periods: float = 252.0) -> float:
    """Annualized mean over annualized downside deviation (target 0); 0 without any loss."""
    returns = _array(returns)
    if returns.size < 2:
        return 0.0
    downside = np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))
    if downside < 1e-12:
        return 0.0
    return float(returns.mean() * periods / (downside * np.sqrt(periods)))


def drawdown_curve(returns: np.ndarray) -> np.ndarray:
    """Fraction below the running peak of the compounded equity (starting at 1) after each bar."""
    returns = _array(returns)
    if returns.size == 0:
        return np.zeros(0)
    equity = np.cumprod(1.0 + returns)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    return np.asarray(1.0 - equity / peak)


def max_drawdown(returns: np.ndarray) -> float:
    """Largest peak-to-trough loss of the compounded equity curve, as a positive fraction."""
    curve = drawdown_curve(returns)
    return float(curve.max()) if curve.size else 0.0


def max_drawdown_duration(returns: np.ndarray) -> int:
    """Longest run of consecutive bars below a previous peak (an open drawdown counts too)."""
    below = drawdown_curve(returns) > 1e-12
    longest = run = 0
    for flag in below:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    return longest


def calmar(returns: np.ndarray, periods: float = 252.0) -> float:
    drawdown = max_drawdown(returns)
    if drawdown < 1e-12:
        return 0.0
    return annual_return(returns, periods) / drawdown


def trade_stats(trade_pnl: Sequence[float] | np.ndarray, capital: float) -> dict[str, float | None]:
    """Win rate, profit factor and average trade of closed trades' net P&L (currency)."""
    pnl = _array(trade_pnl)
    if pnl.size == 0:
        return {"win_rate": None, "profit_factor": None, "average_trade": None}
    wins, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    return {
        "win_rate": float((pnl > 0).mean()),
        "profit_factor": float(wins / losses) if losses > 0 else None,
        "average_trade": float(pnl.mean() / capital),
    }


def herfindahl(weights: np.ndarray) -> float:
    """Mean concentration of the invested part over bars with any position; (T, K) weights."""
    weights = np.abs(_array(weights))
    gross = weights.sum(axis=1)
    invested = gross > 1e-12
    if not invested.any():
        return 0.0
    shares = weights[invested] / gross[invested, None]
    return float((shares**2).sum(axis=1).mean())


def episode_segments(book_returns: np.ndarray, bars: int | None) -> list[np.ndarray]:
    """Each book's per-bar returns (K, T) cut into consecutive episodes of ``bars`` bars (a
    last, shorter piece of at least ``bars // 2`` bars counts too; a window shorter than one
    episode is one episode): the training episodes' length applied to a backtest."""
    book_returns = np.atleast_2d(np.asarray(book_returns, dtype=float))
    steps = book_returns.shape[1]
    if steps == 0:
        return []
    bars = steps if bars is None else max(1, int(bars))  # None: the whole window
    starts = list(range(0, steps, bars))
    if len(starts) > 1 and steps - starts[-1] < max(1, bars // 2):
        starts.pop()  # too short to be an episode: it joins the one before
    stops = [*starts[1:], steps]
    return [book[a:b] for book in book_returns for a, b in zip(starts, stops, strict=True)]


def episode_metrics(book_returns: np.ndarray, bars: int | None) -> dict[str, float]:
    """Mean and worst of the episodes' max drawdown and their mean return (`episode_segments`)."""
    segments = episode_segments(book_returns, bars)
    if not segments:
        return {"mean_episode_max_drawdown": 0.0, "mean_episode_return": 0.0, "episodes": 0.0}
    drawdowns = [max_drawdown(s) for s in segments]
    return {
        "mean_episode_max_drawdown": float(np.mean(drawdowns)),
        "mean_episode_return": float(np.mean([total_return(s) for s in segments])),
        "episodes": float(len(segments)),
    }


def return_metrics(returns: np.ndarray, periods: float) -> dict[str, float]:
    """Every metric of a return series alone."""
    return {
        "total_return": total_return(returns),
        "annual_return": annual_return(returns, periods),
        "annual_volatility": annual_volatility(returns, periods),
        "sharpe": sharpe(returns, periods),
        "sortino": sortino(returns, periods),
        "calmar": calmar(returns, periods),
        "max_drawdown": max_drawdown(returns),
        "max_drawdown_duration": float(max_drawdown_duration(returns)),
    }


def clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None, numpy scalars plain Python numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
