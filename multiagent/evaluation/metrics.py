"""Performance metrics of a per-bar return series (simple returns, fractions).

Annualization multiplies the per-bar mean by ``periods_per_year`` and the per-bar standard
deviation by its square root; `periods_per_year` derives it from the panel's bar size (252
trading days a year for daily bars and longer, bars per calendar year observed otherwise).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from multiagent.data.panel import MarketPanel


def periods_per_year(panel: MarketPanel) -> float:
    if panel.bar is None:
        return 252.0
    if panel.bar >= pd.Timedelta("1D"):
        return float(252.0 * pd.Timedelta("1D") / panel.bar)
    years = (panel.timestamps[-1] - panel.timestamps[0]) / np.timedelta64(365, "D")
    return panel.n_bars / max(float(years), 1e-9)


def sharpe(returns: np.ndarray, periods: float = 252.0) -> float:
    """Annualized Sharpe ratio (risk-free rate 0): mean / std(ddof=1) x sqrt(periods).

    0 for fewer than 2 returns or a constant series (no risk taken, no reward claimed)."""
    returns = np.asarray(returns, dtype=float)
    if returns.size < 2:
        return 0.0
    std = returns.std(ddof=1)
    if not np.isfinite(std) or std < 1e-12:
        return 0.0
    return float(returns.mean() / std * np.sqrt(periods))


def max_drawdown(returns: np.ndarray) -> float:
    """Largest peak-to-trough loss of the compounded equity curve, as a positive fraction."""
    returns = np.asarray(returns, dtype=float)
    if returns.size == 0:
        return 0.0
    equity = np.cumprod(1.0 + returns)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    return float(np.max(1.0 - equity / peak))


def total_return(returns: np.ndarray) -> float:
    return float(np.prod(1.0 + np.asarray(returns, dtype=float)) - 1.0)
