"""`EnvMarket`: the read-only arrays every environment steps over.

Built once from a validated `MarketPanel` and its causal `FeatureSet`, so that nothing in an env's
step path touches pandas. Prices keep NaN where a symbol has no bar: the simulator refuses to
trade a symbol on a missing bar and marks it at its last close.

`adv[s, t]` is the mean dollar volume of bars ``t - adv_window + 1 .. t`` and `volatility[s, t]`
the std of the log returns of those bars (both known at the close of t): the liquidity and
volatility the impact model uses for an order decided on bar t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multiagent.data.featurize import FeatureSet
from multiagent.data.panel import MarketPanel
from multiagent.envs.config import CostConfig, ExecutionConfig
from multiagent.errors import ConfigError

NANOSECONDS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True, eq=False)
class EnvMarket:
    symbols: tuple[str, ...]
    """Names, for reports only: never part of an observation."""
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    half_spread: np.ndarray
    """(S, T) half the quoted spread in price units; NaN where the data has no spread."""
    adv: np.ndarray
    """(S, T) causal mean dollar volume; NaN where unknown."""
    volatility: np.ndarray
    """(S, T) causal std of one-bar log returns; NaN with fewer than 2 past returns."""
    features: np.ndarray
    """(S, T, F) float32, 0 where a feature is not valid yet."""
    feature_names: tuple[str, ...]
    day: np.ndarray
    """(T,) int64 calendar day (UTC) of each bar, for per-day trade limits."""
    has_open: bool
    has_range: bool

    @property
    def n_symbols(self) -> int:
        return self.close.shape[0]

    @property
    def n_bars(self) -> int:
        return self.close.shape[1]

    @property
    def n_features(self) -> int:
        return self.features.shape[2]

    def check_execution(self, execution: ExecutionConfig) -> None:
        if execution.fill_price == "next_open" and not self.has_open:
            raise ConfigError(
                "the market data has no open prices, so orders cannot fill at the next open "
                "(execution.fill_price: next_open); set `execution.fill_price: next_close` to "
                "fill at the next bar's close (in a run config: `env.execution.fill_price`)"
            )


def _causal_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over the last ``window`` finite values up to and including each bar."""
    finite = np.isfinite(values)
    filled = np.where(finite, values, 0.0)
    sums = np.cumsum(filled, axis=1)
    counts = np.cumsum(finite, axis=1)
    sums[:, window:] -= sums[:, :-window].copy()
    counts[:, window:] -= counts[:, :-window].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    return np.where(counts > 0, mean, np.nan)


def _causal_std(values: np.ndarray, window: int) -> np.ndarray:
    finite = np.isfinite(values)
    filled = np.where(finite, values, 0.0)
    mean = _causal_mean(values, window)
    square = _causal_mean(np.where(finite, filled**2, np.nan), window)
    counts = np.cumsum(finite, axis=1)
    counts[:, window:] -= counts[:, :-window].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = (square - mean**2) * counts / (counts - 1)
    return np.where(counts > 1, np.sqrt(np.maximum(variance, 0.0)), np.nan)


def build_market(
    panel: MarketPanel, features: FeatureSet, costs: CostConfig | None = None
) -> EnvMarket:
    """Arrays for the envs; ``features`` must have been computed on ``panel``."""
    costs = costs or CostConfig()
    if features.symbols != panel.symbols or len(features.timestamps) != panel.n_bars:
        raise ValueError("the feature set was not computed on this panel (symbols or bars differ)")
    close = panel.close
    has_open = panel.has("open")
    has_range = panel.has("high", "low")
    nan = np.full_like(close, np.nan)
    no_bar = np.isnan(close)  # every field is NaN where there is no bar, so no check per step

    def field(name: str, present: bool) -> np.ndarray:
        return np.where(no_bar, np.nan, panel.fields[name]) if present else nan

    open_ = field("open", has_open)
    high = field("high", has_range)
    low = field("low", has_range)
    half_spread = field("spread", panel.has("spread")) / 2
    adv = (
        _causal_mean(panel.fields["volume"] * close, costs.adv_window)
        if panel.has("volume")
        else nan
    )
    log_close = np.log(close)
    returns = np.full_like(close, np.nan)
    returns[:, 1:] = log_close[:, 1:] - log_close[:, :-1]
    volatility = _causal_std(returns, costs.adv_window)
    day = panel.timestamps.astype("datetime64[ns]").astype(np.int64) // NANOSECONDS_PER_DAY
    return EnvMarket(
        symbols=panel.symbols,
        open=np.ascontiguousarray(open_, dtype=np.float64),
        high=np.ascontiguousarray(high, dtype=np.float64),
        low=np.ascontiguousarray(low, dtype=np.float64),
        close=np.ascontiguousarray(close, dtype=np.float64),
        half_spread=np.ascontiguousarray(half_spread, dtype=np.float64),
        adv=adv,
        volatility=volatility,
        features=np.ascontiguousarray(features.values, dtype=np.float32),
        feature_names=features.names,
        day=day,
        has_open=has_open,
        has_range=has_range,
    )
