"""Typed configuration of evaluation: the window, baselines, walk-forward, stress tests, gates.

It lives in the run config under ``evaluation:``; a gates file (``--gates FILE``) holds a
`GateSet` alone. Defaults are the seeds' go/no-go and regression criteria.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from multiagent.schema import Settings

METRICS = (
    "total_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration",
    "mean_episode_max_drawdown",
    "mean_episode_return",
    "win_rate",
    "profit_factor",
    "average_trade",
    "closed_trades",
    "trades_per_episode",
    "turnover",
    "cost_ratio",
    "exposure",
    "gross_exposure",
    "herfindahl",
    "excess_return",
    "mean_gross_budget",
    "defensive_share",
    "aggressive_share",
    "forced_trims_per_episode",
)
"""Every metric a report holds per policy (see `multiagent.evaluation.metrics`; the last four
only for agent systems: what their master did)."""
POLICY_STATISTICS = ("psr", "psr_vs_best_baseline", "dsr")
"""The overfitting statistics every agent system's metrics carry (`evaluation.significance`):
PSR against 0 and against the best baseline, the deflated Sharpe ratio. Each depends on the
system's own returns and the baselines only, so a system scores the same in any report."""
STATISTIC_METRICS = (*POLICY_STATISTICS, "spa_pvalue")
"""Gate names: plus Hansen's SPA p-value against the best baseline, a figure of the report (the
family of systems it compares), so it is kept in the report's `statistics`, not the metrics."""
GATE_METRICS = (*METRICS, *STATISTIC_METRICS, "rank_fraction")
"""Plus the system's rank among itself and the baselines by Sharpe / their number (0.5 =
middle); the other systems of the report are not counted."""


class Gate(Settings):
    """``metric op value``, or ``metric op (baseline's metric + offset)``."""

    metric: Literal[GATE_METRICS]  # type: ignore[valid-type]
    op: Literal[">", ">=", "<", "<="]
    value: float | None = Field(None, description="Fixed threshold.")
    baseline: Literal["best_buy_and_hold", "equal_weight", "best_baseline"] | None = Field(
        None, description="Compare with this baseline's value of the metric instead."
    )
    offset: float = Field(0.0, description="Added to the baseline's value.")

    @model_validator(mode="after")
    def _one_threshold(self) -> Gate:
        if (self.value is None) == (self.baseline is None):
            raise ValueError("a gate needs exactly one of `value` and `baseline`")
        return self

    def describe(self) -> str:
        if self.baseline is None:
            return f"{self.metric} {self.op} {self.value:g}"
        offset = f" {'+' if self.offset >= 0 else '-'} {abs(self.offset):g}" if self.offset else ""
        return f"{self.metric} {self.op} {self.baseline}{offset}"


def _gate(metric: str, op: str, value: float | None = None, **kw: object) -> Gate:
    return Gate.model_validate({"metric": metric, "op": op, "value": value, **kw})


class GateSet(Settings):
    """Go/no-go gates (is it good enough to deploy) and regression gates (did it get worse)."""

    go: tuple[Gate, ...] = (
        _gate("sharpe", ">", 0.8),
        _gate("max_drawdown", "<", 0.30),
        _gate("win_rate", ">", 0.48),
        _gate("profit_factor", ">", 1.1),
    )
    regression: tuple[Gate, ...] = (
        _gate("sharpe", ">=", 0.0),
        _gate("sharpe", ">=", baseline="best_buy_and_hold", offset=-0.5),
        _gate("turnover", "<=", 0.5),
        _gate("rank_fraction", "<=", 0.5),
    )


class BaselineSettings(Settings):
    momentum_lookback: int = Field(20, ge=1, description="Bars of past return the rule follows.")
    rebalance_every: int = Field(21, ge=1, description="Equal weight: bars between rebalances.")
    random_seed: int | None = Field(None, description="Random policy's seed; null = run seed.")


class WalkForwardSettings(Settings):
    """Folds over the bars after the training split (a trained policy never sees them)."""

    enabled: bool = True
    scheme: Literal["rolling", "expanding"] = "expanding"
    test_bars: int = Field(250, ge=2, description="Bars per fold.")
    step: int | None = Field(None, ge=1, description="Bars between fold starts; default test_bars.")
    max_folds: int | None = Field(8, ge=1)


class CrashSettings(Settings):
    """A synthetic crash: every price falls by ``drop`` over ``bars`` bars and stays down."""

    enabled: bool = True
    drop: float = Field(0.25, gt=0, lt=1, description="Total fall, fraction of the price.")
    bars: int = Field(5, ge=1, description="Bars the fall is spread over.")
    at: float = Field(0.5, gt=0, lt=1, description="Where in the window it starts (fraction).")


class StatisticsSettings(Settings):
    """The overfitting statistics of every report (`evaluation.significance`)."""

    enabled: bool = Field(True, description="Compute them (off: faster reports, no PSR/DSR/SPA).")
    replications: int = Field(
        500,
        ge=100,
        description="Resamples of each stationary block bootstrap and of the SPA test. 500 keeps "
        "a 95% interval's ends within about 0.02 of their limit for Sharpe ratios near 1 and "
        "the report on the default run within a few seconds (docs/benchmarks.md).",
    )
    level: float = Field(0.95, gt=0.5, lt=1.0, description="Confidence level of the intervals.")


class StressSettings(Settings):
    enabled: bool = True
    cost_multipliers: tuple[float, ...] = Field(
        (1.5, 2.0), description="Every cost part x this (1.5 = +50%)."
    )
    spread_multiplier: float | None = Field(3.0, gt=0, description="Spread widening; null = off.")
    slippage_multiplier: float | None = Field(3.0, gt=0, description="Slippage shock; null = off.")
    volatile_windows: int = Field(2, ge=0, description="Most volatile windows replayed.")
    volatile_window_bars: int = Field(63, ge=2, description="Length of a volatile window.")
    crash: CrashSettings = Field(default_factory=CrashSettings)


class EvaluationConfig(Settings):
    part: Literal["validation", "test"] = Field(
        "test", description="Split evaluated (validation picked the checkpoint: test is honest)."
    )
    min_coverage: float = Field(
        0.9, gt=0, le=1, description="Symbols with bars on fewer of the window's bars are left out."
    )
    baselines: BaselineSettings = Field(default_factory=BaselineSettings)
    walk_forward: WalkForwardSettings = Field(default_factory=WalkForwardSettings)
    stress: StressSettings = Field(default_factory=StressSettings)
    statistics: StatisticsSettings = Field(default_factory=StatisticsSettings)
    gates: GateSet = Field(default_factory=GateSet)
    bootstrap_replications: int = Field(
        1000,
        ge=100,
        description="Resamples of the stationary block bootstrap behind the paired system "
        "comparison's intervals.",
    )

    def system_comparison(self) -> EvaluationConfig:
        """These settings on the test split with no walk-forward, stress scenarios or
        overfitting statistics: how the pipeline's hierarchy comparison (and the learn check)
        score the trained systems (the full report, run after it, has them)."""
        return self.model_copy(
            update={
                "part": "test",
                "walk_forward": self.walk_forward.model_copy(update={"enabled": False}),
                "stress": self.stress.model_copy(update={"enabled": False}),
                "statistics": self.statistics.model_copy(update={"enabled": False}),
            }
        )
