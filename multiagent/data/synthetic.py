"""Seeded synthetic markets whose best policy is known.

`generate_market` draws correlated multi-asset log returns whose volatility and drift switch
between regimes (calm / volatile / crash, a Markov chain), then plants a predictable component
of chosen strength in each symbol's next-bar return:

- ``signal="ar1"``: r[t+1] includes ``sqrt(R2) * sigma * x[t]`` where x is a unit-variance AR(1)
  signal published in ``SyntheticMarket.signal`` (an exogenous per-symbol column a policy may
  read). R2 is the fraction of next-bar return variance the signal explains.
- ``signal="momentum"``: r[t+1] = phi * r[t] + noise with phi = sqrt(R2): predictable from the
  price history alone (features ``ret_1`` carry it).
- ``signal="none"``: a pure regime-switching GBM (no policy beats buy-and-hold in expectation).

``signal_sign`` sets the direction of the momentum signal per symbol: ``positive`` (every
symbol trends), ``mixed`` (symbols cycle through momentum, mean reversion and no signal:
+1, -1, 0, +1, ...) or an explicit tuple of -1/0/+1. With mixed signs no single rule works
on every symbol: a policy that never sees a symbol's identity must read the sign from the
symbol's own history, which is what the mixed learn check measures.

With ``signal_switching`` set, each symbol's R2 is not fixed: it is redrawn from the listed
``signal_r2`` values at random times (mean ``signal_switching`` bars apart, per symbol), so the
symbols' signal strengths differ at any time and change over time, and no fixed allocation
across symbols is best. The R2 in force on each bar is published (`SyntheticMarket.signal_r2`),
with the regime path, for yardsticks that know the truth (the oracle allocator).

Bars open at the previous close (``gap_vol`` = 0 by default), so an order decided at the close of
t and filled at the open of t+1 earns exactly r[t+1]: the oracle position is
``sign(E[r[t+1] | info at t])`` and its Sharpe is measured on the generated path by
`oracle_sharpe`. `generate_sessions` makes prediction-market style episodes (prices in (0, 1),
10-1000+ bars, varying spread, volatility and coverage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from multiagent.data.panel import MarketPanel
from multiagent.schema import Settings

REGIMES = ("calm", "volatile", "crash")
R2 = Annotated[float, Field(ge=0, lt=1)]


class RegimeSpec(Settings):
    vol: float = Field(gt=0, description="Per-bar return volatility (fraction).")
    drift: float = Field(description="Per-bar mean log return (fraction).")
    mean_duration: float = Field(ge=1, description="Expected bars before leaving the regime.")


def _default_regimes() -> dict[str, RegimeSpec]:
    return {
        "calm": RegimeSpec(vol=0.008, drift=0.0004, mean_duration=250),
        "volatile": RegimeSpec(vol=0.02, drift=0.0, mean_duration=60),
        "crash": RegimeSpec(vol=0.045, drift=-0.004, mean_duration=15),
    }


class SyntheticMarketConfig(Settings):
    """Everything that defines a synthetic market; the same config and seed give the same data."""

    n_symbols: int = Field(8, ge=1, le=2000, description="Number of symbols.")
    n_bars: int = Field(2000, ge=10, description="Bars per symbol.")
    seed: int = Field(0, description="Seed of every random draw.")
    start: str = Field("2000-01-03", description="Timestamp of the first bar.")
    frequency: str = Field("1D", description="Bar size (pandas offset alias: 1D, 1h, 5min).")
    correlation: float = Field(0.3, ge=0, lt=1, description="Pairwise correlation of returns.")
    regimes: dict[str, RegimeSpec] = Field(default_factory=_default_regimes)
    signal: Literal["ar1", "momentum", "none"] = Field("ar1", description="Planted signal kind.")
    signal_r2: R2 | tuple[R2, ...] = Field(
        0.02,
        description="Next-bar return variance explained by the signal; one value or per symbol.",
    )
    signal_sign: Literal["positive", "mixed"] | tuple[Literal[-1, 0, 1], ...] = Field(
        "positive",
        description="Direction of the momentum signal per symbol: positive (trend), mixed "
        "(+1, -1, 0 cycling over symbols: momentum, mean reversion, none) or one of -1/0/1 "
        "per symbol.",
    )
    signal_persistence: float = Field(0.9, ge=0, lt=1, description="AR(1) coefficient of x.")
    signal_switching: float | None = Field(
        None,
        ge=1,
        description="Mean bars between redraws of each symbol's R2 from the signal_r2 values "
        "(None: each symbol keeps its own R2 throughout).",
    )
    initial_price: float = Field(100.0, gt=0)
    spread_bps: float = Field(5.0, ge=0, description="Quoted spread in calm markets, bps.")
    volume: float = Field(1e6, gt=0, description="Mean volume per bar in calm markets.")
    gap_vol: float = Field(0.0, ge=0, description="Open-vs-previous-close noise (fraction).")

    @model_validator(mode="after")
    def _check(self) -> SyntheticMarketConfig:
        unknown = set(self.regimes) - set(REGIMES)
        if unknown or not self.regimes:
            raise ValueError(
                f"regimes must be a non-empty subset of {REGIMES}, got {sorted(self.regimes)}"
            )
        if isinstance(self.signal_r2, tuple) and len(self.signal_r2) != self.n_symbols:
            raise ValueError(
                f"signal_r2 lists {len(self.signal_r2)} values for {self.n_symbols} symbols"
            )
        if isinstance(self.signal_sign, tuple) and len(self.signal_sign) != self.n_symbols:
            raise ValueError(
                f"signal_sign lists {len(self.signal_sign)} values for {self.n_symbols} symbols"
            )
        if self.signal != "momentum" and self.signal_sign != "positive":
            raise ValueError(
                f"signal_sign {self.signal_sign!r} applies to signal 'momentum' only "
                f"(signal is {self.signal!r})"
            )
        return self

    def signs(self) -> np.ndarray:
        """(S,) the direction of each symbol's momentum signal: +1, -1 or 0 (none)."""
        if self.signal_sign == "positive":
            return np.ones(self.n_symbols)
        if self.signal_sign == "mixed":
            return np.array([1.0, -1.0, 0.0])[np.arange(self.n_symbols) % 3]
        return np.asarray(self.signal_sign, dtype=float)

    def r2_per_symbol(self) -> np.ndarray:
        if isinstance(self.signal_r2, tuple):
            return np.asarray(self.signal_r2, dtype=float)
        return np.full(self.n_symbols, float(self.signal_r2))

    def r2_path(self) -> np.ndarray:
        """(S, T) the R2 in force on each bar: constant per symbol, or redrawn at random times
        with ``signal_switching`` (its own random stream, so the rest of the market is the one
        the same seed draws without switching)."""
        base = self.r2_per_symbol()
        if self.signal_switching is None:
            return np.repeat(base[:, None], self.n_bars, axis=1)
        rng = np.random.default_rng([self.seed, 1])
        path = np.empty((self.n_symbols, self.n_bars))
        path[:, 0] = rng.choice(base, self.n_symbols)
        switch = rng.random((self.n_symbols, self.n_bars)) < 1.0 / self.signal_switching
        draws = rng.choice(base, (self.n_symbols, self.n_bars))
        for t in range(1, self.n_bars):
            path[:, t] = np.where(switch[:, t], draws[:, t], path[:, t - 1])
        return path


@dataclass(frozen=True, eq=False)
class SyntheticMarket:
    """A generated market with its hidden truth."""

    panel: MarketPanel
    config: SyntheticMarketConfig
    regime: np.ndarray
    """(T,) int index into `regime_names` of the regime in force at each bar."""
    regime_names: tuple[str, ...]
    signal: np.ndarray
    """(S, T) the observable signal x[t] (ar1), r[t] (momentum), zeros (none)."""
    log_returns: np.ndarray
    """(S, T) close-to-close log returns; column 0 is 0."""
    signal_r2: np.ndarray
    """(S, T) the R2 of the planted signal in the return into bar t (the decision at bar t
    faces ``signal_r2[:, t + 1]``)."""

    def oracle_positions(self) -> np.ndarray:
        """(S, T) the position in {-1, 0, 1} held from t to t+1 by the Bayes-optimal sign policy."""
        return np.sign(self.signal)

    def oracle_sharpe(self, periods_per_year: float = 252.0, start: int = 0) -> float:
        """Annualized Sharpe of the equal-weight oracle (no costs), from bar ``start`` on."""
        pnl = (self.oracle_positions()[:, start:-1] * self.log_returns[:, start + 1 :]).mean(axis=0)
        std = pnl.std(ddof=1)
        return float(pnl.mean() / std * np.sqrt(periods_per_year)) if std > 0 else 0.0

    def to_frame(self) -> pd.DataFrame:
        """Long-format bars plus the ``signal`` column (for writing to disk)."""
        frame = self.panel.to_frame()
        frame["signal"] = self.signal.reshape(-1)
        return frame


def _regime_path(config: SyntheticMarketConfig, rng: np.random.Generator) -> np.ndarray:
    names = [n for n in REGIMES if n in config.regimes]
    stay = np.array([1 - 1 / config.regimes[n].mean_duration for n in names])
    path = np.empty(config.n_bars, dtype=np.int64)
    state = 0
    for t in range(config.n_bars):
        path[t] = state
        if len(names) > 1 and rng.random() > stay[state]:
            # Leave to another regime; crashes are reached from volatile more often than calm.
            others = [i for i in range(len(names)) if i != state]
            state = int(rng.choice(others))
    return path


def generate_market(config: SyntheticMarketConfig | None = None) -> SyntheticMarket:
    """Draw a synthetic market; pure function of ``config`` (including its seed)."""
    config = config or SyntheticMarketConfig()
    rng = np.random.default_rng(config.seed)
    n_sym, n_bar = config.n_symbols, config.n_bars
    names = tuple(n for n in REGIMES if n in config.regimes)
    regime = _regime_path(config, rng)
    vol = np.array([config.regimes[n].vol for n in names])[regime]
    drift = np.array([config.regimes[n].drift for n in names])[regime]
    market = rng.standard_normal(n_bar)
    idio = rng.standard_normal((n_sym, n_bar))
    shocks = np.sqrt(config.correlation) * market + np.sqrt(1 - config.correlation) * idio
    r2 = config.r2_path()
    if config.signal == "momentum":
        r2 = r2 * (config.signs() != 0)[:, None]  # a symbol without a signal has none to explain
    signal = np.zeros((n_sym, n_bar))
    returns = np.zeros((n_sym, n_bar))
    if config.signal == "ar1":
        phi = config.signal_persistence
        innovations = rng.standard_normal((n_sym, n_bar)) * np.sqrt(1 - phi**2)
        signal[:, 0] = rng.standard_normal(n_sym)
        for t in range(1, n_bar):
            signal[:, t] = phi * signal[:, t - 1] + innovations[:, t]
        predictable = np.zeros((n_sym, n_bar))
        predictable[:, 1:] = np.sqrt(r2[:, 1:]) * signal[:, :-1]
        returns = drift + vol * (predictable + np.sqrt(1 - r2) * shocks)
    elif config.signal == "momentum":
        phi_r = config.signs()[:, None] * np.sqrt(r2)
        unit = np.zeros((n_sym, n_bar))
        unit[:, 0] = shocks[:, 0]
        for t in range(1, n_bar):
            phi = phi_r[:, t]
            unit[:, t] = phi * unit[:, t - 1] + np.sqrt(1 - phi**2) * shocks[:, t]
        returns = drift + vol * unit
        # The next return's predictable part has the sign of phi * (r[t] - drift) where the
        # next bar carries a signal (phi < 0: mean reversion), none where its R2 is 0.
        next_phi = np.concatenate([phi_r[:, 1:], phi_r[:, -1:]], axis=1)
        signal = np.sign(next_phi) * (returns - drift)
    else:
        returns = drift + vol * shocks
    returns[:, 0] = 0.0
    close = config.initial_price * np.exp(np.cumsum(returns, axis=1))
    previous = np.concatenate([np.full((n_sym, 1), config.initial_price), close[:, :-1]], axis=1)
    open_ = previous * np.exp(config.gap_vol * rng.standard_normal((n_sym, n_bar)))
    # Intrabar extremes: beyond the open/close by a half-normal fraction of the bar volatility.
    excursion = np.abs(rng.standard_normal((2, n_sym, n_bar))) * vol * 0.5
    high = np.maximum(open_, close) * np.exp(excursion[0])
    low = np.minimum(open_, close) * np.exp(-excursion[1])
    stress = vol / config.regimes[names[0]].vol
    spread = (
        close
        * config.spread_bps
        * 1e-4
        * stress
        * np.exp(0.2 * rng.standard_normal((n_sym, n_bar)))
    )
    volume = config.volume * stress * np.exp(0.5 * rng.standard_normal((n_sym, n_bar)))
    timestamps = pd.date_range(config.start, periods=n_bar, freq=config.frequency).to_numpy()
    panel = MarketPanel(
        symbols=tuple(f"SYN{i:03d}" for i in range(n_sym)),
        timestamps=timestamps.astype("datetime64[ns]"),
        fields={
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "spread": spread,
        },
        bar=pd.Timedelta(config.frequency),
        source=f"synthetic:seed={config.seed}",
    )
    return SyntheticMarket(panel, config, regime, names, signal, returns, r2)


class SessionConfig(Settings):
    """Prediction-market style sessions: many short episodes on one time grid."""

    n_sessions: int = Field(50, ge=1, description="Number of sessions (episodes).")
    min_bars: int = Field(10, ge=2, description="Shortest session, bars.")
    max_bars: int = Field(1000, ge=2, description="Longest session, bars.")
    seed: int = 0
    start: str = "2024-01-01"
    frequency: str = "5min"
    coverage: tuple[float, float] = Field(
        (0.6, 1.0), description="Range of the fraction of a session's bars that have a quote."
    )
    spread: tuple[float, float] = Field((0.005, 0.05), description="Spread range, price units.")
    volatility: tuple[float, float] = Field((0.02, 0.2), description="Logit-volatility range.")
    autocorrelation: float = Field(
        0.0,
        gt=-1,
        lt=1,
        description="Planted serial dependence: AR(1) coefficient of each session's logit "
        "increments (0 = a random walk, > 0 momentum, < 0 mean reversion).",
    )

    @model_validator(mode="after")
    def _check(self) -> SessionConfig:
        if self.min_bars > self.max_bars:
            raise ValueError(f"min_bars {self.min_bars} > max_bars {self.max_bars}")
        return self


def _ar1(noise: np.ndarray, phi: float) -> np.ndarray:
    """An AR(1) series with the variance of ``noise``: x[t] = phi x[t-1] + sqrt(1-phi^2) e[t]."""
    out = np.empty_like(noise)
    scale = np.sqrt(1.0 - phi * phi)
    out[0] = noise[0]
    for t in range(1, len(noise)):
        out[t] = phi * out[t - 1] + scale * noise[t]
    return out


def generate_sessions(config: SessionConfig | None = None) -> MarketPanel:
    """Sessions as symbols ``S0000``...; bars without a quote are missing (NaN), not filled.

    Session lengths are log-uniform between ``min_bars`` and ``max_bars``, so short and long
    episodes are both common. Prices are probabilities: a logit random walk, spread around them.
    """
    config = config or SessionConfig()
    rng = np.random.default_rng(config.seed)
    lengths = (
        np.exp(rng.uniform(np.log(config.min_bars), np.log(config.max_bars + 1), config.n_sessions))
        .astype(int)
        .clip(config.min_bars, config.max_bars)
    )
    horizon = int(lengths.max() * 2)
    starts = rng.integers(0, horizon - lengths + 1)
    shape = (config.n_sessions, horizon)
    close = np.full(shape, np.nan)
    spread = np.full(shape, np.nan)
    volume = np.full(shape, np.nan)
    for i, (begin, length) in enumerate(zip(starts, lengths, strict=True)):
        sigma = rng.uniform(*config.volatility)
        level = rng.normal(0, 1)  # drawn first: the same draws as before momentum existed
        steps = rng.normal(0, sigma, length)
        if config.autocorrelation:
            steps = _ar1(steps, config.autocorrelation)
        logit = level + np.cumsum(steps)
        price = 1 / (1 + np.exp(-logit))
        half = rng.uniform(*config.spread) / 2
        price = np.clip(price, half + 1e-3, 1 - half - 1e-3)
        quoted = rng.random(length) < rng.uniform(*config.coverage)
        quoted[0] = quoted[-1] = True  # a session is defined by its first and last quote
        cols = begin + np.flatnonzero(quoted)
        close[i, cols] = price[quoted]
        spread[i, cols] = 2 * half
        volume[i, cols] = rng.poisson(50, int(quoted.sum())).astype(float)
    timestamps = pd.date_range(config.start, periods=horizon, freq=config.frequency).to_numpy()
    return MarketPanel(
        symbols=tuple(f"S{i:04d}" for i in range(config.n_sessions)),
        timestamps=timestamps.astype("datetime64[ns]"),
        fields={"close": close, "volume": volume, "spread": spread},
        bar=pd.Timedelta(config.frequency),
        source=f"sessions:seed={config.seed}",
    )
