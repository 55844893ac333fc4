"""Typed configuration of the trading environments.

Every env is built from one of these models; YAML files are data for them (unknown keys are
rejected, see `multiagent.config.validate_mapping`). Units are stated per field: *fraction* means
a fraction of portfolio equity unless said otherwise, *bps* is 1e-4 of the traded notional.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from multiagent.schema import Settings

FillPrice = Literal["next_open", "next_close", "current_close"]


class CostConfig(Settings):
    """Transaction costs, in named parts; each is charged on the traded notional at fill."""

    commission_bps: float = Field(1.0, ge=0, description="Broker commission, bps of notional.")
    half_spread_bps: float = Field(
        2.0,
        ge=0,
        description="Half the quoted spread, bps; used only where the data has no spread field.",
    )
    slippage_bps: float = Field(1.0, ge=0, description="Extra adverse price move, bps.")
    impact_coef: float = Field(
        0.5,
        ge=0,
        description="Square-root impact: cost = coef * vol * sqrt(notional / ADV) * notional.",
    )
    adv_window: int = Field(
        20, ge=2, description="Bars of past dollar volume (ADV) and returns (vol) averaged."
    )
    fallback_volatility: float = Field(
        0.02, gt=0, description="Per-bar volatility where too few past bars exist."
    )
    fallback_adv: float | None = Field(
        None,
        gt=0,
        description="ADV (currency) where the data has no volume; null = no impact cost there.",
    )
    cost_multiplier: float = Field(1.0, ge=0, description="Stress multiplier on every part.")
    spread_multiplier: float = Field(1.0, ge=0, description="Stress: spread widening.")
    slippage_multiplier: float = Field(1.0, ge=0, description="Stress: slippage shock.")


class ExecutionConfig(Settings):
    """When and at what price an order decided on bar t is filled."""

    fill_price: FillPrice = Field(
        "next_open",
        description=(
            "next_open: bar t+1's open (needs an open field); next_close: bar t+1's close "
            "(close-only data); current_close: bar t's close, already seen by the agent "
            "(optimistic, for comparison only)."
        ),
    )
    initial_cash: float = Field(1_000_000.0, gt=0, description="Starting equity (currency).")
    margin: bool = Field(
        False, description="Allow negative cash (borrowing); off = buys are cut to the cash held."
    )
    allow_short: bool = Field(False, description="Allow negative positions.")
    min_trade_fraction: float = Field(
        1e-6, ge=0, description="Trades smaller than this fraction of equity are skipped."
    )


class RiskLimits(Settings):
    """Portfolio risk limits; orders that would break one are clipped or refused (forced)."""

    max_weight: float = Field(1.0, gt=0, description="Max |position value| per symbol, fraction.")
    max_gross_exposure: float = Field(1.0, gt=0, description="Max sum of |position values|.")
    max_open_positions: int | None = Field(None, ge=1, description="Max symbols held at once.")
    max_trades_per_day: int | None = Field(
        None, ge=1, description="Max fills per symbol per calendar day (UTC)."
    )
    drawdown_breaker: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Drawdown from peak equity that trips the circuit breaker.",
    )
    breaker_derisk: float = Field(
        0.5, gt=0, le=1, description="Fraction of every position cut when the breaker trips."
    )
    breaker_cooldown: int = Field(
        20, ge=1, description="Bars during which a tripped breaker refuses position increases."
    )


class RewardWeights(Settings):
    """Weights of the composable reward terms (see `multiagent.envs.rewards`)."""

    realized_pnl: float = 1.0
    unrealized_pnl: float = 1.0
    alpha: float = 0.0
    cost: float = 1.0
    drawdown: float = 0.0
    losing_hold: float = 0.0
    idle: float = 0.0
    diversity: float = 0.0
    action_repeat: float = 0.0


class RewardConfig(Settings):
    weights: RewardWeights = Field(default_factory=RewardWeights)
    scale: float = Field(
        100.0, gt=0, description="Reward units per unit return on allocated capital."
    )
    losing_grace: int = Field(10, ge=0, description="Bars a losing position may be held free.")
    idle_grace: int = Field(20, ge=0, description="Bars the agent may stay flat free.")
    diversity_halflife: float = Field(
        20.0, gt=0, description="Half-life (steps) of the action histogram behind `diversity`."
    )


class MasterRewardConfig(Settings):
    """The master's portfolio-level risk-adjusted return (`multiagent.envs.rewards`)."""

    kind: Literal["mean_variance", "risk_scaled"] = Field(
        "mean_variance",
        description="mean_variance: scale x return - risk_aversion x (scale x return)^2 - "
        "drawdown x scale x drawdown increase. risk_scaled: each term divided by the "
        "portfolio's recent volatility, so the reward does not grow with leverage (as Sharpe "
        "does not) and cutting risk pays only before losses, not always.",
    )
    scale: float = Field(
        100.0, gt=0, description="Reward units per unit portfolio return (mean_variance)."
    )
    risk_aversion: float = Field(
        0.02,
        ge=0,
        description="Penalty on squared scaled return. The optimum exposure is about "
        "mu / (2 risk_aversion sigma^2) in percent units: 0.02 holds a daily book with a "
        "Sharpe near 1 fully invested in calm markets and cuts it as the variance jumps (0.5, "
        "the old default, made ~10% exposure optimal: a master that sits in cash).",
    )
    drawdown: float = Field(0.5, ge=0, description="Penalty on each increase of drawdown.")
    baseline: Literal["none", "neutral"] = Field(
        "neutral",
        description="neutral: the reward is the difference to a shadow book that takes the "
        "same symbol actions under the neutral allocation (equal budgets, no trims), so the "
        "market's noise common to both cancels and the master is paid for what its allocation "
        "adds to the independent agents, net of the trims it forces.",
    )
    volatility_floor: float = Field(
        0.1,
        gt=0,
        description="risk_scaled: the portfolio volatility used is at least this fraction of "
        "the slots' mean asset volatility (a flat book early in an episode has none).",
    )


class ObservationConfig(Settings):
    window: int = Field(8, ge=1, description="Bars of features in each observation.")
    hold_scale: float = Field(50.0, gt=0, description="Hold steps are divided by this.")
    correlation_halflife: float = Field(
        20.0, gt=0, description="Half-life (bars) of the EWMA volatility and correlation."
    )
    edge_halflife: float = Field(
        60.0,
        gt=0,
        description="Half-life (bars) of each slot's recent edge in the master's observation.",
    )


Scheme = Literal["discrete3", "discrete7", "limit5", "regimes"]


class SchemeConfig(Settings):
    """Action scheme and its sizes; fractions are of the slot's risk budget."""

    kind: Scheme = "discrete7"
    small: float = Field(0.25, gt=0, le=1, description="BUY_SMALL: fraction of unused budget.")
    medium: float = Field(0.5, gt=0, le=1, description="BUY_MEDIUM: fraction of unused budget.")
    large: float = Field(1.0, gt=0, le=1, description="BUY_LARGE: fraction of unused budget.")
    partial: float = Field(0.5, gt=0, lt=1, description="SELL_PARTIAL: fraction of position.")
    add: float = Field(0.25, gt=0, le=1, description="ADD_POSITION: fraction of budget added.")
    short_on_sell: bool = Field(
        False, description="discrete3: SELL goes short the budget (needs allow_short)."
    )
    limit_offsets: tuple[float, float] = Field(
        (0.0, 1.0),
        description="limit5: near/far offsets beyond the touch, in quoted spreads.",
    )
    limit_size: float = Field(
        0.5, gt=0, le=1, description="limit5: bid = this fraction of budget, ask = of position."
    )
    regime_step: float = Field(
        1 / 3, gt=0, le=1, description="regimes: target weights are multiples of this."
    )
    regimes: tuple[tuple[float, ...], ...] | None = Field(
        None, description="regimes: explicit target weights per asset (cash = 1 - sum)."
    )

    @model_validator(mode="after")
    def _check(self) -> SchemeConfig:
        near, far = self.limit_offsets
        if not 0 <= near <= far:
            raise ValueError("limit_offsets must be 0 <= near <= far")
        if self.regimes is not None:
            for weights in self.regimes:
                if any(w < 0 for w in weights) or sum(weights) > 1 + 1e-9:
                    raise ValueError(f"regime {weights}: weights must be >= 0 and sum to <= 1")
        return self


class CommonEnvConfig(Settings):
    costs: CostConfig = Field(default_factory=CostConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    limits: RiskLimits = Field(default_factory=RiskLimits)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    observation: ObservationConfig = Field(default_factory=ObservationConfig)
    scheme: SchemeConfig = Field(default_factory=SchemeConfig)
    max_episode_bars: int | None = Field(
        None, ge=2, description="Cut episodes to this many bars (random start inside the view)."
    )


class SymbolEnvConfig(CommonEnvConfig):
    """`SymbolTradingEnv`: one symbol per episode."""

    budget: float = Field(1.0, gt=0, le=1, description="Fraction of equity the agent may deploy.")


class PortfolioEnvConfig(CommonEnvConfig):
    """`PortfolioEnv`: a pool of symbols, traded by rotation or by target-weight regimes."""

    max_open_positions: int = Field(3, ge=1, description="Concurrent positions (rotation).")
    pool_size: int | None = Field(
        None, ge=1, description="Symbols per episode; default 2 x max_open_positions."
    )

    @property
    def resolved_pool_size(self) -> int:
        return self.pool_size or 2 * self.max_open_positions


class HierarchicalEnvConfig(CommonEnvConfig):
    """`HierarchicalTradingEnv`: N symbol agents and one master."""

    n_symbols: int = Field(4, ge=1, description="Symbol agents (slots) per episode.")
    communication_interval: int = Field(4, ge=1, description="Bars between master decisions.")
    budget_levels: tuple[float, ...] = Field(
        (0.0, 0.5, 1.0, 1.5, 2.0),
        description="Master's per-symbol budget choices, in multiples of the equal share.",
    )
    risk_mode_scales: tuple[float, float, float] = Field(
        (0.5, 1.0, 1.5), description="Budget multipliers of the defensive/neutral/aggressive modes."
    )
    enforce_budget_cuts: bool = Field(
        True, description="Trim positions above a newly cut budget (counted as forced trades)."
    )
    master_reward: MasterRewardConfig = Field(default_factory=MasterRewardConfig)

    @model_validator(mode="after")
    def _check_levels(self) -> HierarchicalEnvConfig:
        if not self.budget_levels or any(level < 0 for level in self.budget_levels):
            raise ValueError("budget_levels must be a non-empty list of values >= 0")
        if self.scheme.kind == "regimes":
            raise ValueError("symbol agents trade one symbol each: use discrete3/7 or limit5")
        return self
