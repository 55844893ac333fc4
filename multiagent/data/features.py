"""Causal market features, computed per symbol from its own observed bars.

Every feature at bar t is a function of bars <= t only, and declares its look-back: the number
of earlier observed bars it needs (bars before that are marked invalid, warm-up). Families live
in `FAMILIES`; the leak-proofing tests run every registered family, so a new family that peeks
at the future fails the suite. Exact formulas and look-backs: ``docs/data.md``.

Missing bars (a symbol not yet listed, an exchange holiday) are skipped, not filled: a symbol's
features are computed on its observed bars and scattered back onto the panel's time axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from multiagent.data.panel import MarketPanel
from multiagent.schema import Settings

Inputs = dict[str, pd.Series]
"""One symbol's observed bars: canonical field -> series on a 0..n-1 index."""


class MacdConfig(Settings):
    fast: int = Field(12, ge=1, description="Fast EMA span, bars.")
    slow: int = Field(26, ge=2, description="Slow EMA span, bars.")
    signal: int = Field(9, ge=1, description="Signal-line EMA span, bars.")


class RegimeConfig(Settings):
    short: int = Field(20, ge=2, description="Short volatility window, bars.")
    long: int = Field(120, ge=3, description="Long volatility and trend window, bars.")


class AutocorrelationConfig(Settings):
    windows: tuple[int, ...] = Field(
        (60,), min_length=1, description="Bars of return pairs each correlation is taken over."
    )
    lags: tuple[int, ...] = Field((1, 2), min_length=1, description="Lags, bars.")

    @field_validator("windows")
    @classmethod
    def _enough_pairs(cls, windows: tuple[int, ...]) -> tuple[int, ...]:
        if min(windows) < 3:
            raise ValueError(f"a correlation needs windows of 3 bars or more, got {windows}")
        return windows

    @field_validator("lags")
    @classmethod
    def _positive_lags(cls, lags: tuple[int, ...]) -> tuple[int, ...]:
        if min(lags) < 1:
            raise ValueError(f"lags are 1 bar or more, got {lags}")
        return lags


class VarianceRatioConfig(Settings):
    window: int = Field(120, ge=3, description="Bars each variance is taken over.")
    periods: tuple[int, ...] = Field(
        (2, 5), min_length=1, description="Holding periods q (bars) of VR(q)."
    )

    @field_validator("periods")
    @classmethod
    def _periods_above_one(cls, periods: tuple[int, ...]) -> tuple[int, ...]:
        if min(periods) < 2:
            raise ValueError(f"VR(q) compares q-bar with 1-bar returns: q >= 2, got {periods}")
        return periods


class HurstConfig(Settings):
    window: int = Field(120, ge=3, description="Bars each dispersion is taken over.")
    scales: tuple[int, ...] = Field(
        (1, 2, 4, 8), description="Return horizons (bars) the scaling slope is fitted over."
    )

    @field_validator("scales")
    @classmethod
    def _distinct_scales(cls, scales: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(scales)) < 2 or min(scales) < 1:
            raise ValueError(f"the slope needs two or more distinct horizons >= 1, got {scales}")
        return tuple(sorted(set(scales)))


class FeatureConfig(Settings):
    """Which features to build; windows are in bars of the panel's frequency."""

    returns: tuple[int, ...] = Field((1, 5, 20), description="Log-return horizons.")
    volatility: tuple[int, ...] = Field((20, 60), description="Realized-volatility windows.")
    momentum: tuple[int, ...] = Field((20, 60), description="log(close / SMA) windows.")
    rsi: tuple[int, ...] = Field((14,), description="Wilder RSI windows.")
    macd: MacdConfig | None = Field(default_factory=MacdConfig, description="MACD; null = off.")
    zscore: tuple[int, ...] = Field((20,), description="Price z-score vs rolling mean windows.")
    volume: tuple[int, ...] = Field((20,), description="log volume vs rolling mean windows.")
    range_volatility: tuple[int, ...] = Field(
        (14,), description="Parkinson high-low volatility windows (close-only: close-to-close)."
    )
    regime: RegimeConfig | None = Field(default_factory=RegimeConfig, description="Regime flags.")
    autocorrelation: AutocorrelationConfig | None = Field(
        None, description="Rolling autocorrelation of 1-bar returns; null = off."
    )
    variance_ratio: VarianceRatioConfig | None = Field(
        None, description="Lo-MacKinlay variance ratio ln VR(q); null = off."
    )
    hurst: HurstConfig | None = Field(
        None, description="Hurst-style persistence from the scaling of return dispersion."
    )
    cross_sectional: tuple[str, ...] = Field(
        ("ret_5", "ret_20"), description="Features ranked across symbols at each bar."
    )


@dataclass(frozen=True)
class FeatureDef:
    """One output column: how to compute it from a symbol's bars, and what it needs."""

    name: str
    lookback: int
    """Earlier observed bars needed; the first `lookback` bars of a symbol are warm-up."""
    compute: Callable[[Inputs], pd.Series]
    requires: tuple[str, ...] = ("close",)
    fallback: Callable[[Inputs], pd.Series] | None = None
    """Used when a required field is missing; the feature is then reported as degraded."""
    normalize: bool = True
    """False for bounded features (flags, ranks, RSI) that normalization would distort."""


def _log_close(x: Inputs) -> pd.Series:
    return pd.Series(np.log(x["close"].to_numpy()), index=x["close"].index)


def _one_bar_returns(x: Inputs) -> pd.Series:
    return _log_close(x).diff()


def _safe_ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    den_values = den.to_numpy()
    out = np.divide(
        num.to_numpy(),
        den_values,
        out=np.zeros(len(num)),
        where=np.abs(np.nan_to_num(den_values)) > 1e-12,
    )
    out[np.isnan(num.to_numpy()) | np.isnan(den_values)] = np.nan
    return pd.Series(out, index=num.index)


def _returns(h: int) -> FeatureDef:
    return FeatureDef(f"ret_{h}", h, lambda x: _log_close(x).diff(h))


def _volatility(w: int) -> FeatureDef:
    return FeatureDef(f"vol_{w}", w, lambda x: _one_bar_returns(x).rolling(w, min_periods=w).std())


def _momentum(w: int) -> FeatureDef:
    return FeatureDef(
        f"mom_{w}",
        w - 1,
        lambda x: _log_close(x) - np.log(x["close"].rolling(w, min_periods=w).mean()),
    )


def _rsi(w: int) -> FeatureDef:
    def compute(x: Inputs) -> pd.Series:
        change = x["close"].diff()
        gain = change.clip(lower=0).ewm(alpha=1 / w, adjust=False, min_periods=w).mean()
        loss = (-change).clip(lower=0).ewm(alpha=1 / w, adjust=False, min_periods=w).mean()
        total = gain + loss
        # Scaled to [-1, 1]: (RSI - 50) / 50 = (gain - loss) / (gain + loss).
        return _safe_ratio(gain - loss, total)

    return FeatureDef(f"rsi_{w}", w, compute, normalize=False)


def _macd(cfg: MacdConfig) -> list[FeatureDef]:
    def line(x: Inputs) -> pd.Series:
        close = x["close"]
        fast = close.ewm(span=cfg.fast, adjust=False, min_periods=cfg.slow).mean()
        slow = close.ewm(span=cfg.slow, adjust=False, min_periods=cfg.slow).mean()
        return (fast - slow) / close

    def signal(x: Inputs) -> pd.Series:
        return line(x).ewm(span=cfg.signal, adjust=False, min_periods=cfg.signal).mean()

    warm = cfg.slow - 1
    return [
        FeatureDef("macd", warm, line),
        FeatureDef("macd_signal", warm + cfg.signal - 1, signal),
        FeatureDef("macd_hist", warm + cfg.signal - 1, lambda x: line(x) - signal(x)),
    ]


def _zscore(w: int) -> FeatureDef:
    def compute(x: Inputs) -> pd.Series:
        close = x["close"]
        mean = close.rolling(w, min_periods=w).mean()
        std = close.rolling(w, min_periods=w).std()
        return _safe_ratio(close - mean, std)

    return FeatureDef(f"zscore_{w}", w - 1, compute)


def _volume(w: int) -> FeatureDef:
    def compute(x: Inputs) -> pd.Series:
        volume = pd.Series(np.log1p(x["volume"].to_numpy()), index=x["volume"].index)
        return volume - volume.rolling(w, min_periods=w).mean()

    return FeatureDef(f"volume_{w}", w - 1, compute, requires=("volume",))


def _range_volatility(w: int) -> FeatureDef:
    def parkinson(x: Inputs) -> pd.Series:
        log_range = np.log(x["high"] / x["low"]) ** 2
        return np.sqrt(log_range.rolling(w, min_periods=w).mean() / (4 * np.log(2)))

    def close_only(x: Inputs) -> pd.Series:
        return np.sqrt((_one_bar_returns(x) ** 2).rolling(w, min_periods=w).mean())

    return FeatureDef(f"range_vol_{w}", w, parkinson, requires=("high", "low"), fallback=close_only)


def _regime(cfg: RegimeConfig) -> list[FeatureDef]:
    def high_vol(x: Inputs) -> pd.Series:
        returns = _one_bar_returns(x)
        short = returns.rolling(cfg.short, min_periods=cfg.short).std()
        long = returns.rolling(cfg.long, min_periods=cfg.long).std()
        flag = (short > long).astype(float)
        flag[long.isna()] = np.nan
        return flag

    def trend(x: Inputs) -> pd.Series:
        close = x["close"]
        mean = close.rolling(cfg.long, min_periods=cfg.long).mean()
        return pd.Series(np.sign((close - mean).to_numpy()), index=close.index)

    return [
        FeatureDef("regime_high_vol", cfg.long, high_vol, normalize=False),
        FeatureDef("regime_trend", cfg.long - 1, trend, normalize=False),
    ]


# Serial dependence: how a symbol's returns follow each other. A shared policy never sees which
# market it trades, so to trade momentum on one symbol and mean reversion on the next it must
# measure the dependence from the symbol's own past. All three are scale-free and bounded in
# practice, and are not normalized: a per-symbol z-score (the default `expanding` method) would
# subtract each symbol's own level of dependence, the very thing that tells markets apart.


def _autocorrelation(w: int, lag: int) -> FeatureDef:
    def compute(x: Inputs) -> pd.Series:
        returns = _one_bar_returns(x)
        rho = returns.rolling(w, min_periods=w).corr(returns.shift(lag))
        return rho.clip(-1.0, 1.0).where(np.isfinite(rho))

    # r[t-w+1-lag] is the earliest return read; it needs the close one bar before it.
    return FeatureDef(f"acf_{w}_{lag}", w + lag, compute, normalize=False)


def _variance_ratio(w: int, q: int) -> FeatureDef:
    """ln VR(q): VR = var(q-bar returns) / (q var(1-bar returns)), both over the last w bars;
    0 for a random walk, > 0 trending, < 0 mean reverting."""

    def compute(x: Inputs) -> pd.Series:
        one = _one_bar_returns(x).rolling(w, min_periods=w).var()
        many = _log_close(x).diff(q).rolling(w, min_periods=w).var()
        ratio = _safe_ratio(many, q * one)
        return pd.Series(np.log(ratio.where(ratio > 0).to_numpy()), index=ratio.index)

    return FeatureDef(f"vr_{w}_{q}", w + q - 1, compute, normalize=False)


def _hurst(cfg: HurstConfig) -> FeatureDef:
    """H - 1/2 from the aggregated-dispersion law std(q-bar returns) ~ q^H, fitted by least
    squares over the configured horizons on the last w bars: 0 for a random walk."""
    scales = np.asarray(cfg.scales, dtype=float)
    x_centered = np.log(scales) - np.log(scales).mean()
    weights = x_centered / (x_centered**2).sum()

    def compute(x: Inputs) -> pd.Series:
        log_close = _log_close(x)
        slope = pd.Series(0.0, index=log_close.index)
        for q, weight in zip(cfg.scales, weights, strict=True):
            std = log_close.diff(q).rolling(cfg.window, min_periods=cfg.window).std()
            slope = slope + weight * np.log(std.where(std > 0))
        return slope - 0.5

    return FeatureDef(
        f"hurst_{cfg.window}", cfg.window + max(cfg.scales) - 1, compute, normalize=False
    )


FAMILIES: dict[str, Callable[[FeatureConfig], list[FeatureDef]]] = {
    "returns": lambda c: [_returns(h) for h in c.returns],
    "volatility": lambda c: [_volatility(w) for w in c.volatility],
    "momentum": lambda c: [_momentum(w) for w in c.momentum],
    "rsi": lambda c: [_rsi(w) for w in c.rsi],
    "macd": lambda c: _macd(c.macd) if c.macd else [],
    "zscore": lambda c: [_zscore(w) for w in c.zscore],
    "volume": lambda c: [_volume(w) for w in c.volume],
    "range_volatility": lambda c: [_range_volatility(w) for w in c.range_volatility],
    "regime": lambda c: _regime(c.regime) if c.regime else [],
    "autocorrelation": lambda c: (
        [_autocorrelation(w, k) for w in c.autocorrelation.windows for k in c.autocorrelation.lags]
        if c.autocorrelation
        else []
    ),
    "variance_ratio": lambda c: (
        [_variance_ratio(c.variance_ratio.window, q) for q in c.variance_ratio.periods]
        if c.variance_ratio
        else []
    ),
    "hurst": lambda c: [_hurst(c.hurst)] if c.hurst else [],
}
"""Per-symbol feature families, keyed like the `FeatureConfig` fields that switch them on."""


def feature_defs(config: FeatureConfig) -> list[FeatureDef]:
    defs = [d for family in FAMILIES.values() for d in family(config)]
    names = [d.name for d in defs]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise ValueError(f"feature names repeat: {sorted(duplicated)} (windows listed twice?)")
    return defs


@dataclass(frozen=True)
class RawFeatures:
    """Un-normalized features on the panel's axis. Arrays are (S, T, F) / (S, T, F) bool."""

    values: np.ndarray
    valid: np.ndarray
    names: tuple[str, ...]
    lookbacks: tuple[int, ...]
    normalize: tuple[bool, ...]
    degraded: dict[str, str]
    skipped: dict[str, str]


def compute_raw_features(panel: MarketPanel, config: FeatureConfig) -> RawFeatures:
    """Compute every configured feature for every symbol; report degraded and skipped ones."""
    defs = feature_defs(config)
    usable: list[FeatureDef] = []
    degraded: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for d in defs:
        missing = [f for f in d.requires if not panel.has(f)]
        if not missing:
            usable.append(d)
        elif d.fallback is not None:
            usable.append(FeatureDef(d.name, d.lookback, d.fallback, ("close",), None, d.normalize))
            degraded[d.name] = f"computed from close only (no {', '.join(missing)})"
        else:
            skipped[d.name] = f"needs {', '.join(missing)}, which the data does not have"
    per_symbol = [d.name for d in usable]
    ranked = [name for name in config.cross_sectional if name in per_symbol]
    for name in config.cross_sectional:
        if name not in per_symbol:
            skipped[f"xs_rank_{name}"] = f"ranks {name}, which is not computed"
    n_sym, n_bar = panel.n_symbols, panel.n_bars
    n_feat = len(usable) + len(ranked)
    values = np.full((n_sym, n_bar, n_feat), np.nan)
    valid = np.zeros((n_sym, n_bar, n_feat), dtype=bool)
    observed = panel.observed
    for s in range(n_sym):
        columns = np.flatnonzero(observed[s])
        if not len(columns):
            continue
        inputs: Inputs = {
            name: pd.Series(array[s, columns]) for name, array in panel.fields.items()
        }
        position = np.arange(len(columns))
        for f, d in enumerate(usable):
            series = d.compute(inputs).to_numpy(dtype=float)
            values[s, columns, f] = series
            valid[s, columns, f] = (position >= d.lookback) & np.isfinite(series)
    lookbacks = [d.lookback for d in usable]
    for k, name in enumerate(ranked):
        source = per_symbol.index(name)
        f = len(usable) + k
        values[:, :, f], valid[:, :, f] = cross_sectional_rank(
            values[:, :, source], valid[:, :, source]
        )
        lookbacks.append(usable[source].lookback)
    return RawFeatures(
        values=values,
        valid=valid,
        names=(*per_symbol, *(f"xs_rank_{n}" for n in ranked)),
        lookbacks=tuple(lookbacks),
        normalize=(*(d.normalize for d in usable), *([False] * len(ranked))),
        degraded=degraded,
        skipped=skipped,
    )


def cross_sectional_rank(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank (S, T) values across symbols at each bar, scaled to [-1, 1]; ties share a rank.

    A bar with a single valid symbol gets 0. Only values at the same bar are compared, so the
    rank is as causal as its input.
    """
    frame = pd.DataFrame(np.where(valid, values, np.nan).T)
    ranks = frame.rank(axis=1, method="average").to_numpy().T
    counts = valid.sum(axis=0, keepdims=True)
    scaled = np.where(counts > 1, 2 * (ranks - 1) / np.maximum(counts - 1, 1) - 1, 0.0)
    return np.where(valid, scaled, np.nan), valid.copy()
