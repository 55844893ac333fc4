"""Hand-computed trading scenarios for the simulator, the cost model and the action schemes.

Every number asserted here was worked out by hand from the documented rules (the docstrings of
`multiagent.envs.simulator`, `costs` and `schemes`) on tiny markets built directly as `EnvMarket`
arrays: 1-3 symbols, a handful of bars, round prices, 10,000 of starting cash. The arithmetic is
spelled out in each test's docstring or comments. Section 9 checks the accounting invariants over
random rollouts on a synthetic market.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from multiagent.data import SyntheticMarketConfig, generate_market
from multiagent.data.featurize import compute_features
from multiagent.envs import (
    CostConfig,
    EnvMarket,
    ExecutionConfig,
    RiskLimits,
    SchemeConfig,
    Simulator,
    TradingCore,
    build_market,
)
from multiagent.envs.config import CommonEnvConfig
from multiagent.envs.orders import Fills, Orders
from multiagent.envs.sampling import Episode
from multiagent.envs.schemes import RegimeScheme
from multiagent.errors import ConfigError

# ---------------------------------------------------------------------------------- helpers

CASH = 10_000.0
ZERO_COSTS = CostConfig(commission_bps=0, half_spread_bps=0, slippage_bps=0, impact_coef=0)
REL = 1e-9

HOLD, BUY_SMALL, BUY_MEDIUM, BUY_LARGE, SELL_PARTIAL, SELL_ALL, ADD_POSITION = range(7)
BID_NEAR, BID_FAR = 1, 2


def approx(value: Any, rel: float = REL, tol: float = 1e-9) -> Any:
    """pytest.approx with a tight relative tolerance (and an absolute one for zeros)."""
    return pytest.approx(value, rel=rel, abs=tol)


def make_market(
    close: Any,
    *,
    open_: Any = None,
    high: Any = None,
    low: Any = None,
    half_spread: Any = None,
    adv: Any = None,
    volatility: Any = None,
    day: Any = None,
    has_open: bool = True,
) -> EnvMarket:
    """An `EnvMarket` from (S, T) lists; open defaults to close, missing arrays to NaN."""
    close = np.atleast_2d(np.asarray(close, dtype=float))
    shape = close.shape

    def field(values: Any, default: np.ndarray) -> np.ndarray:
        if values is None:
            return default.copy()
        return np.broadcast_to(np.asarray(values, dtype=float), shape).copy()

    nan = np.full(shape, np.nan)
    n_symbols, n_bars = shape
    return EnvMarket(
        symbols=tuple(f"S{i}" for i in range(n_symbols)),
        open=field(open_, close if has_open else nan),
        high=field(high, nan),
        low=field(low, nan),
        close=close,
        half_spread=field(half_spread, nan),
        adv=field(adv, nan),
        volatility=field(volatility, nan),
        features=np.zeros((n_symbols, n_bars, 1), np.float32),
        feature_names=("f",),
        day=np.arange(n_bars, dtype=np.int64) if day is None else np.asarray(day, np.int64),
        has_open=has_open,
        has_range=high is not None and low is not None,
    )


def make_sim(
    market: EnvMarket,
    *,
    costs: CostConfig = ZERO_COSTS,
    limits: RiskLimits | None = None,
    start: int = 0,
    **execution: Any,
) -> Simulator:
    """One portfolio trading every symbol of ``market`` (slot i = symbol i) from ``start``."""
    execution.setdefault("initial_cash", CASH)
    sim = Simulator(
        market,
        1,
        market.n_symbols,
        costs=costs,
        execution=ExecutionConfig(**execution),
        limits=limits or RiskLimits(),
    )
    sim.reset(np.arange(market.n_symbols)[None], np.array([start]), np.array([market.n_bars]))
    return sim


def order(keep: Any, weight: Any, active: Any = True, limit: Any = None) -> Orders:
    """Orders of one portfolio; scalars or per-slot lists."""
    weight = np.atleast_1d(np.asarray(weight, dtype=float))[None]
    shape = weight.shape

    def row(values: Any, dtype: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(values, dtype=dtype), shape).copy()

    return Orders(
        active=row(active, bool),
        keep=row(keep, float),
        weight=weight,
        limit=None if limit is None else row(limit, float),
    )


def hold(sim: Simulator) -> Orders:
    """No order in any slot (HOLD)."""
    return Orders.none(1, sim.n_slots)


def make_core(
    market: EnvMarket,
    *,
    budget: float = 1.0,
    costs: CostConfig = ZERO_COSTS,
    limits: RiskLimits | None = None,
    scheme: SchemeConfig | None = None,
) -> TradingCore:
    config = CommonEnvConfig(
        costs=costs,
        execution=ExecutionConfig(initial_cash=CASH),
        limits=limits or RiskLimits(),
        scheme=scheme or SchemeConfig(kind="discrete7"),
    )
    """A B=1 core whose slot i trades symbol i over the whole market, zero costs by default."""
    core = TradingCore(market, config, n_envs=1, n_slots=market.n_symbols, budget=budget)
    core.reset([Episode(np.arange(market.n_symbols), 0, market.n_bars)])
    return core


def assert_costs(
    fills: Fills, commission: float, spread: float, slippage: float, impact: float
) -> None:
    """The four cost parts of slot 0 and their total."""
    parts = fills.costs
    assert parts.commission[0, 0] == approx(commission)
    assert parts.spread[0, 0] == approx(spread)
    assert parts.slippage[0, 0] == approx(slippage)
    assert parts.impact[0, 0] == approx(impact)
    assert fills.costs.total[0, 0] == approx(commission + spread + slippage + impact)


# ------------------------------------------------------------------- 1. timing of fills


def test_market_order_fills_at_next_open_and_is_marked_at_next_close() -> None:
    """Decided on bar 0 (close 100), filled at bar 1's open 100, marked at bar 1's close 110.

    weight 0.5 of equity 10,000 at 100 -> 50 shares, cash 5,000; equity = 5,000 + 50 x 110
    = 10,500; unrealized change 50 x (110 - 100) = 500. A HOLD on bar 1 then marks at 120.
    """
    market = make_market([100, 110, 120, 120], open_=[99, 100, 115, 120])
    sim = make_sim(market)
    fills = sim.step(order(0.0, 0.5))
    assert sim.t[0] == 1
    assert fills.price[0, 0] == 100
    assert fills.filled[0, 0] and not fills.clipped[0, 0]
    assert fills.traded[0, 0] == approx(50)
    assert sim.qty[0, 0] == approx(50)
    assert sim.entry[0, 0] == 100
    assert sim.cash[0] == approx(5_000)
    assert sim.mark[0, 0] == 110
    assert fills.realized[0, 0] == 0
    assert fills.unrealized_change[0, 0] == approx(500)
    assert fills.pnl[0, 0] == approx(500)
    assert fills.asset_return[0, 0] == approx(0.1)
    assert fills.equity[0] == approx(10_500) == sim.equity[0]
    assert fills.gross_exposure[0] == approx(5_500 / 10_500)
    assert fills.costs.total[0, 0] == 0

    fills = sim.step(hold(sim))  # bar 2: no trade, marked at 120
    assert not fills.filled[0, 0]
    assert sim.qty[0, 0] == approx(50)
    assert fills.unrealized_change[0, 0] == approx(500)
    assert sim.equity[0] == approx(11_000)


@pytest.mark.parametrize(
    ("fill_price", "expected"),
    [("next_open", 100.0), ("next_close", 110.0), ("current_close", 90.0)],
)
def test_fill_price_modes(fill_price: str, expected: float) -> None:
    """Bar 0 closes at 90, bar 1 opens at 100 and closes at 110.

    weight 0.5 -> qty = 5,000 / fill, cash 5,000, equity = 5,000 + qty x 110.
    """
    market = make_market([90, 110, 110], open_=[90, 100, 110])
    sim = make_sim(market, fill_price=fill_price)
    fills = sim.step(order(0.0, 0.5))
    qty = 5_000 / expected
    assert fills.price[0, 0] == expected
    assert sim.entry[0, 0] == expected
    assert sim.qty[0, 0] == approx(qty)
    assert sim.cash[0] == approx(5_000)
    assert sim.equity[0] == approx(5_000 + qty * 110)
    assert fills.unrealized_change[0, 0] == approx(qty * (110 - expected))


def test_next_open_needs_open_prices() -> None:
    market = make_market([100, 101, 102], has_open=False)
    with pytest.raises(ConfigError, match="next_close"):
        make_sim(market)
    make_sim(market, fill_price="next_close")  # close-only data is fine at the next close


def test_symbol_without_next_bar_does_not_trade_and_keeps_its_last_close() -> None:
    """S0 trades every bar; S1 has no bar 1 (first buy) and no bar 3 (a sell).

    Bar 0 -> 1: both ask weight 0.4. S0 fills 40 @ 100; S1 has no bar: no trade, price NaN, mark
    stays 50. Equity = 6,000 + 40 x 100 = 10,000.
    Bar 1 -> 2: HOLD; S1's order lapsed, so nothing trades.
    Bar 2 -> 3: S1 buys weight 0.4 of equity 10,000 -> 80 @ 50 (cash 2,000).
    Bar 3 -> 4: S1 SELL (keep 0) but S1 has no bar 4: no trade, marked at its last close 50;
    S0 closes 105: equity = 2,000 + 40 x 105 + 80 x 50 = 10,200. Bar 4 -> 5: HOLD, S1 marked 60.
    """
    nan = np.nan
    market = make_market(
        [[100, 100, 100, 100, 105, 105], [50, nan, 50, 50, nan, 60]],
        open_=[[100, 100, 100, 100, 105, 105], [50, nan, 50, 50, nan, 58]],
    )
    sim = make_sim(market)
    fills = sim.step(order(0.0, [0.4, 0.4]))
    assert fills.price[0, 0] == 100 and np.isnan(fills.price[0, 1])
    assert fills.filled.tolist() == [[True, False]]
    assert sim.qty[0].tolist() == approx([40, 0])
    assert sim.mark[0].tolist() == [100, 50]
    assert fills.asset_return[0, 1] == 0
    assert sim.cash[0] == approx(6_000)
    assert sim.equity[0] == approx(10_000)

    fills = sim.step(hold(sim))
    assert not fills.filled.any()
    assert sim.qty[0, 1] == 0

    sim.step(order([1.0, 0.0], [0.0, 0.4]))
    assert sim.qty[0].tolist() == approx([40, 80])
    assert sim.cash[0] == approx(2_000)

    fills = sim.step(order([1.0, 0.0], [0.0, 0.0]))
    assert not fills.filled[0, 1]
    assert sim.qty[0, 1] == approx(80)
    assert sim.mark[0, 1] == 50
    assert sim.equity[0] == approx(2_000 + 40 * 105 + 80 * 50)

    fills = sim.step(hold(sim))
    assert sim.mark[0, 1] == 60
    assert fills.unrealized_change[0, 1] == approx(80 * 10)
    assert sim.equity[0] == approx(2_000 + 40 * 105 + 80 * 60)


# ---------------------------------------------------------------- 2. discrete7 actions


def test_buy_sizes_are_fractions_of_the_unused_budget() -> None:
    """Three slots with budget 0.3 each, prices 100.

    BUY_SMALL/MEDIUM/LARGE buy 0.25/0.5/1 of the unused budget 0.3 x 10,000 = 3,000:
    750, 1,500, 3,000 -> 7.5, 15, 30 shares; cash 10,000 - 5,250 = 4,750.
    Then S0 opens bar 2 at 125: equity at the fill = 4,750 + 7.5 x 125 + 4,500 = 10,187.5;
    BUY_SMALL buys 0.25 x (0.3 x 10,187.5 - 937.5) = 529.6875 -> 4.2375 shares (11.7375 held).
    """
    flat = [100.0] * 4
    market = make_market(
        [[100, 100, 125, 125], flat, flat], open_=[[100, 100, 125, 125], flat, flat]
    )
    core = make_core(market, budget=0.3)
    step = core.step(np.array([[BUY_SMALL, BUY_MEDIUM, BUY_LARGE]]))
    assert not step.sanitized.any()
    assert core.sim.qty[0].tolist() == approx([7.5, 15, 30])
    assert core.sim.cash[0] == approx(4_750)
    assert not step.fills.clipped.any()

    step = core.step(np.array([[BUY_SMALL, HOLD, HOLD]]))
    assert step.fills.price[0, 0] == 125
    assert step.fills.traded[0, 0] == approx(529.6875 / 125)
    assert core.sim.qty[0, 0] == approx(11.7375)
    assert core.sim.cash[0] == approx(4_750 - 529.6875)
    assert core.sim.entry[0, 0] == approx((750 + 529.6875) / 11.7375)


def test_sell_partial_then_sell_all_book_realized_pnl() -> None:
    """BUY_LARGE 100 @ 100 (cash 0); SELL_PARTIAL (partial 0.5) sells 50 @ 105: realized
    50 x 5 = 250, cash 5,250, equity 5,250 + 50 x 110 = 10,750; SELL_ALL sells 50 @ 115:
    realized 750, cash 11,000, flat; SELL_ALL when flat is masked: executed as HOLD, sanitized.
    """
    market = make_market([100, 100, 110, 120, 120], open_=[100, 100, 105, 115, 120])
    core = make_core(market)
    core.step(np.array([[BUY_LARGE]]))
    assert core.sim.qty[0, 0] == approx(100)
    assert core.sim.cash[0] == approx(0)

    step = core.step(np.array([[SELL_PARTIAL]]))
    assert step.fills.price[0, 0] == 105
    assert step.fills.traded[0, 0] == approx(-50)
    assert step.fills.realized[0, 0] == approx(250)
    assert core.sim.qty[0, 0] == approx(50)
    assert core.sim.entry[0, 0] == 100
    assert core.sim.cash[0] == approx(5_250)
    assert core.sim.equity[0] == approx(10_750)

    step = core.step(np.array([[SELL_ALL]]))
    assert step.fills.realized[0, 0] == approx(750)
    assert core.sim.qty[0, 0] == 0 and core.sim.entry[0, 0] == 0
    assert core.sim.cash[0] == approx(11_000) == core.sim.equity[0]
    assert core.sim.realized[0, 0] == approx(1_000)

    masks = core.masks()
    assert not masks[0, 0, SELL_ALL] and not masks[0, 0, SELL_PARTIAL]
    step = core.step(np.array([[SELL_ALL]]), masks)
    assert step.sanitized[0, 0] and step.executed[0, 0] == HOLD
    assert not step.fills.filled[0, 0]
    assert core.telemetry.sanitized[0, 0] == 1


def test_add_position_only_when_winning() -> None:
    """BUY_MEDIUM 0.5 x 10,000 at 100 -> 50 shares, cash 5,000. ADD is masked while the mark
    equals the entry (bar 1, 100) and while losing (bar 2, 90); sent anyway it runs as HOLD and is
    flagged sanitized. Bar 3 closes 110 > entry 100: ADD is allowed, weight 0.524, unused 0.476,
    so it adds min(0.25 x 1, 0.476) = 0.25 of the equity at the fill (bar 4 opens 110):
    E = 5,000 + 50 x 110 = 10,500 -> 2,625 = 23.8636 shares; cash 2,375;
    entry = (5,000 + 2,625) / 73.8636.
    """
    market = make_market([100, 100, 90, 110, 110, 110], open_=[100, 100, 100, 95, 110, 110])
    core = make_core(market)
    core.step(np.array([[BUY_MEDIUM]]))
    assert core.sim.qty[0, 0] == approx(50)
    for _ in range(2):
        masks = core.masks()
        assert not masks[0, 0, ADD_POSITION] and masks[0, 0, BUY_SMALL]
        step = core.step(np.array([[ADD_POSITION]]), masks)
        assert step.sanitized[0, 0] and step.executed[0, 0] == HOLD
        assert not step.fills.filled[0, 0]
        assert core.sim.qty[0, 0] == approx(50)
    assert core.sim.mark[0, 0] == 110
    masks = core.masks()
    assert masks[0, 0, ADD_POSITION]
    step = core.step(np.array([[ADD_POSITION]]), masks)
    assert not step.sanitized[0, 0]
    assert step.fills.traded[0, 0] == approx(2_625 / 110)
    assert core.sim.cash[0] == approx(2_375)
    assert core.sim.entry[0, 0] == approx(7_625 / (50 + 2_625 / 110))
    assert core.telemetry.sanitized[0, 0] == 2


def test_add_position_is_capped_by_the_unused_budget() -> None:
    """Two BUY_MEDIUMs at 100 hold 50 + (25 + 50) = 75 shares, cash 2,500. Bar 2 closes 110:
    E = 2,500 + 8,250 = 10,750, weight 0.7674, unused 0.2326 < 0.25: ADD adds the unused budget,
    2,500 at 110, so the position reaches the budget exactly (weight 1, cash 0).
    """
    market = make_market([100, 100, 110, 110, 110], open_=[100, 100, 100, 110, 110])
    core = make_core(market)
    core.step(np.array([[BUY_MEDIUM]]))
    core.step(np.array([[BUY_MEDIUM]]))
    assert core.sim.qty[0, 0] == approx(75)
    assert core.sim.cash[0] == approx(2_500)
    step = core.step(np.array([[ADD_POSITION]]))
    assert not step.sanitized[0, 0]
    assert step.fills.traded[0, 0] == approx(2_500 / 110)
    assert core.sim.cash[0] == approx(0, tol=1e-6)
    assert core.sim.weights()[0, 0] == approx(1.0)


# ------------------------------------------------------------ 3. average-entry accounting


def test_average_entry_price_and_realized_pnl_on_the_closed_part() -> None:
    """Buy 50 @ 100; add 25 @ 120 -> entry (5,000 + 3,000) / 75 = 106.667; sell 30 @ 130 ->
    realized 30 x (130 - 106.667) = 700, entry unchanged; sell the last 45 @ 130 -> realized 1,050.

    Equity: 10,000 -> 10,000 (bar 1 close 100) -> 11,000 (75 x 120 + 2,000) -> 11,750
    (45 x 130 + 5,900); each step's equity change = realized + unrealized change.
    """
    market = make_market([100, 100, 120, 130, 130], open_=[100, 100, 120, 130, 130])
    sim = make_sim(market)
    sim.step(order(0.0, 0.5))
    assert sim.qty[0, 0] == approx(50) and sim.entry[0, 0] == 100

    # add 25 shares at 120: equity at the fill 5,000 + 50 x 120 = 11,000, value 3,000
    fills = sim.step(order(1.0, 3_000 / 11_000))
    entry = 8_000 / 75
    assert fills.traded[0, 0] == approx(25)
    assert sim.qty[0, 0] == approx(75)
    assert sim.entry[0, 0] == approx(entry)
    assert fills.realized[0, 0] == 0
    assert sim.cash[0] == approx(2_000)
    assert sim.unrealized()[0, 0] == approx(1_000)
    assert fills.equity[0] == approx(11_000)
    assert fills.equity[0] - fills.equity_before[0] == approx(fills.pnl[0, 0])

    fills = sim.step(order(0.6, 0.0))  # keep 45 of 75
    assert fills.traded[0, 0] == approx(-30)
    assert fills.realized[0, 0] == approx(30 * (130 - entry)) == approx(700)
    assert sim.entry[0, 0] == approx(entry)
    assert sim.cash[0] == approx(5_900)
    assert sim.unrealized()[0, 0] == approx(1_050)
    assert fills.unrealized_change[0, 0] == approx(50)
    assert fills.equity[0] == approx(11_750)
    assert fills.equity[0] - fills.equity_before[0] == approx(fills.pnl[0, 0]) == approx(750)

    fills = sim.step(order(0.0, 0.0))
    assert fills.realized[0, 0] == approx(1_050)
    assert sim.qty[0, 0] == 0 and sim.entry[0, 0] == 0
    assert sim.realized[0, 0] == approx(1_750)
    assert sim.cash[0] == approx(11_750) == sim.equity[0]


# ------------------------------------------------------------------------------ 4. costs

# A buy of 50 shares at 100 (notional 5,000) decided on bar 0 and filled on bar 1, then their
# sale decided on bar 1. Impact uses the ADV and volatility of the *decision* bar:
# buy  (bar 0): 0.5 x 0.02 x 5,000 x sqrt(5,000 / 5e6) = 1.5811388...
# sell (bar 1): 0.5 x 0.03 x 5,000 x sqrt(5,000 / 2e6) = 75 x 0.05 = 3.75
ADV = [[5e6, 2e6, 2e6]]
VOL = [[0.02, 0.03, 0.03]]
IMPACT_BUY = 0.5 * 0.02 * 5_000 * np.sqrt(5_000 / 5e6)
IMPACT_SELL = 3.75


@pytest.mark.parametrize(
    ("costs", "market_arrays", "buy", "sell"),
    [
        pytest.param(
            CostConfig(commission_bps=10, half_spread_bps=0, slippage_bps=0, impact_coef=0),
            {},
            (5.0, 0.0, 0.0, 0.0),  # 5,000 x 10e-4
            None,
            id="commission",
        ),
        pytest.param(
            CostConfig(commission_bps=0, half_spread_bps=4, slippage_bps=0, impact_coef=0),
            {},
            (0.0, 2.0, 0.0, 0.0),  # 50 x (100 x 4e-4)
            None,
            id="spread-from-bps",
        ),
        pytest.param(
            CostConfig(commission_bps=0, half_spread_bps=4, slippage_bps=0, impact_coef=0),
            {"half_spread": 0.05},
            (0.0, 2.5, 0.0, 0.0),  # 50 x 0.05: the data's spread wins over the bps default
            None,
            id="spread-from-data",
        ),
        pytest.param(
            CostConfig(commission_bps=0, half_spread_bps=0, slippage_bps=20, impact_coef=0),
            {},
            (0.0, 0.0, 10.0, 0.0),  # 5,000 x 20e-4
            None,
            id="slippage",
        ),
        pytest.param(
            CostConfig(commission_bps=0, half_spread_bps=0, slippage_bps=0, impact_coef=0.5),
            {"adv": ADV, "volatility": VOL},
            (0.0, 0.0, 0.0, IMPACT_BUY),
            (0.0, 0.0, 0.0, IMPACT_SELL),
            id="impact",
        ),
        pytest.param(
            CostConfig(commission_bps=0, half_spread_bps=0, slippage_bps=0, impact_coef=0.5),
            {},
            (0.0, 0.0, 0.0, 0.0),  # no ADV and no fallback_adv: no impact
            None,
            id="impact-without-adv",
        ),
        pytest.param(
            CostConfig(
                commission_bps=0,
                half_spread_bps=0,
                slippage_bps=0,
                impact_coef=0.5,
                fallback_adv=2e6,
                fallback_volatility=0.03,
            ),
            {},
            (0.0, 0.0, 0.0, 3.75),  # 0.5 x 0.03 x 5,000 x sqrt(5,000 / 2e6)
            None,
            id="impact-fallbacks",
        ),
        pytest.param(
            CostConfig(
                commission_bps=10,
                half_spread_bps=0,
                slippage_bps=20,
                impact_coef=0.5,
                cost_multiplier=2,
                spread_multiplier=3,
                slippage_multiplier=4,
            ),
            {"half_spread": 0.05, "adv": ADV, "volatility": VOL},
            (10.0, 15.0, 80.0, 2 * IMPACT_BUY),  # (5, 2.5, 10, impact) x (2, 2x3, 2x4, 2)
            (10.0, 15.0, 80.0, 2 * IMPACT_SELL),
            id="multipliers",
        ),
    ],
)
def test_cost_parts(
    costs: CostConfig,
    market_arrays: dict[str, Any],
    buy: tuple[float, float, float, float],
    sell: tuple[float, float, float, float] | None,
) -> None:
    """Each part by its formula, for a buy and a sale of 50 shares at 100; the quantity is set
    by the order, the costs come out of cash, every part is >= 0."""
    sell = sell or buy
    market = make_market([100, 100, 100], **market_arrays)
    sim = make_sim(market, costs=costs)
    fills = sim.step(order(0.0, 0.5))
    assert sim.qty[0, 0] == approx(50)
    assert_costs(fills, *buy)
    assert sim.cash[0] == approx(5_000 - sum(buy))
    assert sim.cost_paid[0, 0] == approx(sum(buy))
    assert sim.equity[0] == approx(CASH - sum(buy))
    assert fills.equity[0] - fills.equity_before[0] == approx(fills.pnl[0, 0] - sum(buy))

    fills = sim.step(order(0.0, 0.0))
    assert fills.traded[0, 0] == approx(-50)
    assert_costs(fills, *sell)
    assert sim.cash[0] == approx(CASH - sum(buy) - sum(sell))
    assert sim.cost_paid[0, 0] == approx(sum(buy) + sum(sell))


def test_build_market_adv_and_volatility_are_causal_window_statistics() -> None:
    """adv[s, t] = mean of volume x close over bars t-2..t (adv_window 3); volatility[s, t] = the
    sample std (ddof 1) of the log returns of those bars, NaN with fewer than 2 returns;
    half_spread = spread / 2."""
    panel = generate_market(SyntheticMarketConfig(n_symbols=1, n_bars=12, seed=4)).panel
    market = build_market(panel, compute_features(panel), CostConfig(adv_window=3))
    close, volume = panel.close[0], panel.fields["volume"][0]
    returns = np.diff(np.log(close))  # returns[t - 1] is the return of bar t
    assert market.adv[0, 0] == approx(volume[0] * close[0])
    assert market.adv[0, 1] == approx((volume[:2] * close[:2]).mean())
    assert market.adv[0, 7] == approx((volume[5:8] * close[5:8]).mean())
    assert np.isnan(market.volatility[0, :2]).all()  # bar 1 has one return
    assert market.volatility[0, 2] == approx(np.std(returns[0:2], ddof=1))
    assert market.volatility[0, 7] == approx(np.std(returns[4:7], ddof=1))
    assert market.half_spread[0].tolist() == approx((panel.fields["spread"][0] / 2).tolist())


# ------------------------------------------------------------------------------- 5. cash


def test_buy_larger_than_cash_is_scaled_down() -> None:
    """weight 1 at 100 with 10 bps commission would spend 10,000 + 10 > 10,000: the buy is
    scaled to qty = 10,000 / (100 x 1.001) = 99.9001; cash ends at ~0, never below."""
    costs = CostConfig(commission_bps=10, half_spread_bps=0, slippage_bps=0, impact_coef=0)
    sim = make_sim(make_market([100, 100, 100]), costs=costs)
    fills = sim.step(order(0.0, 1.0))
    qty = CASH / 100.1
    assert sim.qty[0, 0] == approx(qty)
    assert fills.costs.commission[0, 0] == approx(qty * 100 * 1e-3)
    assert fills.clipped[0, 0]
    assert sim.cash[0] >= 0
    assert sim.cash[0] == approx(0, tol=1e-6)


def test_several_buys_share_the_cash_pro_rata() -> None:
    """Two buys of weight 0.6 (gross limit 2 so that only cash binds) at 100 and 50 ask for
    60 + 120 shares = 12,000 of 10,000 cash: both scaled by 10,000 / 12,000 -> 50 and 100."""
    market = make_market([[100, 100, 100], [50, 50, 50]])
    sim = make_sim(market, limits=RiskLimits(max_gross_exposure=2.0))
    fills = sim.step(order(0.0, [0.6, 0.6]))
    assert sim.qty[0].tolist() == approx([50, 100])
    assert fills.clipped[0].tolist() == [True, True]
    assert sim.cash[0] >= 0
    assert sim.cash[0] == approx(0, tol=1e-6)


def test_sales_fund_buys_in_the_same_step() -> None:
    """Hold 50 S0 bought at 100 (commission 10 bps: 5, cash 4,995, equity 9,995). Sell S0 and buy
    S1 at 50 with weight 1: the buy asks 9,995 / 50 = 199.9 shares, but cash after the sale is
    4,995 + 5,000 - 5 = 9,990 and each bought share costs 50 x 1.001: 9,990 / 50.05 = 199.6004.
    """
    costs = CostConfig(commission_bps=10, half_spread_bps=0, slippage_bps=0, impact_coef=0)
    market = make_market([[100, 100, 100], [50, 50, 50]])
    sim = make_sim(market, costs=costs)
    sim.step(order(0.0, [0.5, 0.0], active=[True, False]))
    assert sim.cash[0] == approx(4_995)
    fills = sim.step(order(0.0, [0.0, 1.0]))
    assert sim.qty[0].tolist() == approx([0, 9_990 / 50.05])
    assert fills.clipped[0].tolist() == [False, True]
    assert sim.cash[0] >= 0
    assert sim.cash[0] == approx(0, tol=1e-6)


# ----------------------------------------------------------------------------- 6. limits


def test_max_weight_clips_buys_and_never_forces_a_sale_after_a_drift() -> None:
    """max_weight 0.3: a weight-0.5 buy at 100 gets 30 shares. S0 then opens at 200: the
    position is 6,000 of 13,000 (0.46 > 0.3) but is not sold, and a further buy is refused."""
    market = make_market([100, 100, 200, 200], open_=[100, 100, 200, 200])
    sim = make_sim(market, limits=RiskLimits(max_weight=0.3))
    fills = sim.step(order(0.0, 0.5))
    assert sim.qty[0, 0] == approx(30)
    assert fills.clipped[0, 0]
    fills = sim.step(order(1.0, 0.1))
    assert not fills.filled[0, 0] and fills.clipped[0, 0]
    assert sim.qty[0, 0] == approx(30)
    assert sim.weights()[0, 0] == approx(6_000 / 13_000)


def test_max_gross_exposure_scales_the_growing_part() -> None:
    """max_gross_exposure 0.5; hold S0 weight 0.2 (20 @ 100). Orders: S0 to 0.4, S1 (at 50) to
    0.4. Kept 2,000, growth 2,000 + 4,000 over a room of 5,000 - 2,000: scale 0.5 ->
    S0 2,000 + 1,000 = 30 shares, S1 2,000 = 40 shares; gross 5,000 / 10,000 = 0.5."""
    market = make_market([[100, 100, 100], [50, 50, 50]])
    sim = make_sim(market, limits=RiskLimits(max_gross_exposure=0.5))
    sim.step(order(0.0, [0.2, 0.0], active=[True, False]))
    fills = sim.step(order(0.0, [0.4, 0.4]))
    assert sim.qty[0].tolist() == approx([30, 40])
    assert fills.clipped[0].tolist() == [True, True]
    assert fills.gross_exposure[0] == approx(0.5)


def test_max_open_positions_refuses_later_slots() -> None:
    """max_open_positions 2, three symbols at 100, weight 0.2 each.

    All three open at once: slots 0 and 1 fill, slot 2 is refused. With slot 1 already held,
    slots 0 and 2 asking: only slot 0 fills. A slot that sells out frees its room that same step.
    """
    flat = [[100.0] * 4] * 3
    limits = RiskLimits(max_open_positions=2)

    sim = make_sim(make_market(flat), limits=limits)
    fills = sim.step(order(0.0, 0.2))
    assert sim.qty[0].tolist() == approx([20, 20, 0])
    assert fills.clipped[0].tolist() == [False, False, True]

    sim = make_sim(make_market(flat), limits=limits)
    sim.step(order(0.0, [0, 0.2, 0], active=[False, True, False]))
    fills = sim.step(order(0.0, [0.2, 0, 0.2], active=[True, False, True]))
    assert sim.qty[0].tolist() == approx([20, 20, 0])
    assert fills.clipped[0].tolist() == [False, False, True]

    sim = make_sim(make_market(flat), limits=RiskLimits(max_open_positions=1))
    sim.step(order(0.0, [0.2, 0, 0], active=[True, False, False]))
    sim.step(order(0.0, [0.0, 0.3, 0], active=[True, True, False]))
    assert sim.qty[0].tolist() == approx([0, 30, 0])


def test_max_trades_per_day_counts_fills_per_calendar_day_of_the_fill_bar() -> None:
    """Bars 0-2 are day 0, bars 3-5 day 1; one trade per symbol per day.

    fill bar 1 (day 0): buy 10 -> fills; bar 2 (day 0): buy more -> refused; bar 3 (day 1):
    fills; bars 4 and 5 (day 1): sell all -> refused; bar 6 (day 2): the sale fills.
    """
    market = make_market([100.0] * 7, day=[0, 0, 0, 1, 1, 1, 2])
    sim = make_sim(market, limits=RiskLimits(max_trades_per_day=1))
    fills = sim.step(order(0.0, 0.1))
    assert fills.filled[0, 0] and sim.qty[0, 0] == approx(10)
    fills = sim.step(order(1.0, 0.1))
    assert not fills.filled[0, 0] and fills.clipped[0, 0] and sim.qty[0, 0] == approx(10)
    fills = sim.step(order(1.0, 0.1))
    assert fills.filled[0, 0] and sim.qty[0, 0] == approx(20)
    for _ in range(2):
        fills = sim.step(order(0.0, 0.0))
        assert not fills.filled[0, 0] and fills.clipped[0, 0] and sim.qty[0, 0] == approx(20)
    fills = sim.step(order(0.0, 0.0))  # fill bar 6 is day 2
    assert fills.filled[0, 0] and sim.qty[0, 0] == 0


def test_drawdown_breaker_derisks_next_bar_and_freezes_growth_during_cooldown() -> None:
    """breaker 10 %, de-risk 50 %, cooldown 2 bars.

    bar 1: buy 100 @ 100 (cash 0), close 85: equity 8,500, drawdown 15 % -> tripped.
    bar 2: the agent HOLDs; 50 shares are sold at the open 86 (forced): realized 50 x -14 = -700,
    cash 4,300, equity 4,300 + 50 x 86 = 8,600 (drawdown 14 %, not tripped again in cooldown).
    bar 3: a buy to weight 1 is frozen (cooldown 1 left): no trade, clipped (sales: next tests).
    bar 4: cooldown over: weight 0.6 of E = 4,300 + 50 x 90 = 8,800 at 90 -> 58.667 shares.
    """
    market = make_market([100, 85, 86, 88, 90, 90], open_=[100, 100, 86, 87, 90, 90])
    limits = RiskLimits(drawdown_breaker=0.1, breaker_derisk=0.5, breaker_cooldown=2)
    sim = make_sim(market, limits=limits)
    fills = sim.step(order(0.0, 1.0))
    assert sim.qty[0, 0] == approx(100)
    assert fills.drawdown[0] == approx(0.15)
    assert fills.breaker_tripped[0] and sim.cooldown[0] == 2

    fills = sim.step(hold(sim))
    assert fills.forced[0, 0] and fills.filled[0, 0] and not fills.clipped[0, 0]
    assert fills.price[0, 0] == 86
    assert fills.traded[0, 0] == approx(-50)
    assert fills.realized[0, 0] == approx(-700)
    assert sim.cash[0] == approx(4_300)
    assert sim.equity[0] == approx(8_600)
    assert not fills.breaker_tripped[0] and sim.cooldown[0] == 1

    fills = sim.step(order([0.0], [1.0]))
    assert not fills.filled[0, 0] and fills.clipped[0, 0]
    assert sim.qty[0, 0] == approx(50)
    assert sim.cooldown[0] == 0

    fills = sim.step(order(0.0, 0.6))
    equity = 4_300 + 50 * 90
    assert fills.filled[0, 0]
    assert sim.qty[0, 0] == approx(0.6 * equity / 90)


def test_breaker_cooldown_masks_buys() -> None:
    """discrete7 after the breaker trips (buy 100 @ 100, close 85): every BUY and ADD is masked
    for the 2 cooldown bars, sells stay allowed; a BUY sent anyway is sanitized."""
    market = make_market([100, 85, 86, 88, 90, 90], open_=[100, 100, 86, 87, 90, 90])
    limits = RiskLimits(drawdown_breaker=0.1, breaker_derisk=0.5, breaker_cooldown=2)
    core = make_core(market, limits=limits)
    core.step(np.array([[BUY_LARGE]]))
    for _ in range(2):
        masks = core.masks()[0, 0]
        assert not masks[[BUY_SMALL, BUY_MEDIUM, BUY_LARGE, ADD_POSITION]].any()
        assert masks[[HOLD, SELL_PARTIAL, SELL_ALL]].all()
        step = core.step(np.array([[BUY_SMALL]]))
        assert step.sanitized[0, 0]
    assert core.sim.qty[0, 0] == approx(50)
    assert core.telemetry.forced[0, 0] == 1
    assert core.masks()[0, 0, BUY_SMALL]


def test_sales_are_allowed_during_the_breaker_cooldown() -> None:
    """Same path as above; on bar 3 (cooldown) selling 10 of the 50 shares at 87 goes through."""
    market = make_market([100, 85, 86, 88, 90], open_=[100, 100, 86, 87, 90])
    limits = RiskLimits(drawdown_breaker=0.1, breaker_derisk=0.5, breaker_cooldown=2)
    sim = make_sim(market, limits=limits)
    sim.step(order(0.0, 1.0))
    sim.step(hold(sim))
    fills = sim.step(order(0.8, 0.0))
    assert fills.filled[0, 0] and not fills.clipped[0, 0]
    assert sim.qty[0, 0] == approx(40)
    assert fills.realized[0, 0] == approx(10 * (87 - 100))


def test_short_positions_refused_unless_allowed() -> None:
    """allow_short False: a negative weight from flat does nothing (clipped); from a long of 50 it
    only sells to flat. allow_short True: short 50 @ 100 (cash 15,000), marked at 90: equity
    15,000 - 4,500 = 10,500; covering at 80 realizes 50 x (100 - 80) = 1,000."""
    sim = make_sim(make_market([100.0] * 4))
    fills = sim.step(order(0.0, -0.5))
    assert sim.qty[0, 0] == 0 and not fills.filled[0, 0] and fills.clipped[0, 0]
    sim.step(order(0.0, 0.5))
    assert sim.qty[0, 0] == approx(50)
    fills = sim.step(order(0.0, -0.5))
    assert sim.qty[0, 0] == 0 and fills.traded[0, 0] == approx(-50)

    sim = make_sim(make_market([100, 90, 80, 80], open_=[100, 100, 80, 80]), allow_short=True)
    fills = sim.step(order(0.0, -0.5))
    assert sim.qty[0, 0] == approx(-50)
    assert sim.entry[0, 0] == 100
    assert sim.cash[0] == approx(15_000)
    assert sim.equity[0] == approx(10_500)
    assert fills.unrealized_change[0, 0] == approx(500)
    fills = sim.step(order(0.0, 0.0))
    assert fills.realized[0, 0] == approx(1_000)
    assert sim.qty[0, 0] == 0
    assert sim.cash[0] == approx(11_000) == sim.equity[0]


# ---------------------------------------------------------------------- 7. limit orders

# bar:      0      1      2      3      4
# open    100    100     97    101    101
# high    100    102     98  101.5    101
# low     100     98   96.5    100    101
# close   100    101   97.5    101    101      half spread 0.1 everywhere
LIMIT_BARS = {
    "close": [100, 101, 97.5, 101, 101],
    "open_": [100, 100, 97, 101, 101],
    "high": [100, 102, 98, 101.5, 101],
    "low": [100, 98, 96.5, 100, 101],
    "half_spread": 0.1,
    "adv": 5e6,
    "volatility": 0.02,
}
# Market fills would pay every part; passive limit fills pay the 10 bps commission only.
ALL_COSTS = CostConfig(commission_bps=10, half_spread_bps=3, slippage_bps=20, impact_coef=0.5)


def _limit_market() -> EnvMarket:
    bars = dict(LIMIT_BARS)
    return make_market(bars.pop("close"), **bars)


def test_limit_bid_and_ask_fill_at_the_limit_when_the_range_reaches_it() -> None:
    """Bid 99 on bar 1: lowest ask 98 + 0.1 = 98.1 <= 99, open ask 100.1 > 99 -> fills at 99.
    weight 0.495 -> 50 shares, commission 4,950 x 1e-3 = 4.95, cash 5,045.05.
    Ask 97.5 on bar 2: highest bid 98 - 0.1 = 97.9 >= 97.5, open bid 96.9 < 97.5 -> fills at
    97.5: realized 50 x (97.5 - 99) = -75, commission 4.875, cash 9,915.175."""
    sim = make_sim(_limit_market(), costs=ALL_COSTS)
    fills = sim.step(order(0.0, 0.495, limit=99.0))
    assert fills.filled[0, 0]
    assert fills.price[0, 0] == 99
    assert sim.qty[0, 0] == approx(50)
    assert sim.entry[0, 0] == 99
    assert_costs(fills, 4.95, 0.0, 0.0, 0.0)
    assert sim.cash[0] == approx(5_045.05)
    assert sim.equity[0] == approx(5_045.05 + 50 * 101)

    fills = sim.step(order(0.0, 0.0, limit=97.5))
    assert fills.price[0, 0] == 97.5
    assert fills.traded[0, 0] == approx(-50)
    assert fills.realized[0, 0] == approx(-75)
    assert_costs(fills, 4.875, 0.0, 0.0, 0.0)
    assert sim.cash[0] == approx(9_915.175) == sim.equity[0]


def test_limit_orders_that_are_not_reached_lapse() -> None:
    """Bid 98.05 on bar 1: lowest ask 98.1 > 98.05 -> no fill, no cost. Bar 2's lowest ask 96.6
    would reach it, but orders live one bar: a HOLD on bar 2 trades nothing."""
    sim = make_sim(_limit_market(), costs=ALL_COSTS)
    fills = sim.step(order(0.0, 0.5, limit=98.05))
    assert not fills.filled[0, 0]
    assert fills.traded[0, 0] == 0 and fills.costs.total[0, 0] == 0
    assert sim.qty[0, 0] == 0 and sim.cash[0] == CASH
    fills = sim.step(hold(sim))
    assert not fills.filled[0, 0] and sim.qty[0, 0] == 0


def test_limit_orders_gap_fill_at_the_open() -> None:
    """From bar 1: bid 99 on bar 2, which opens at 97 (ask 97.1 <= 99): fills at 97.1, the better
    price; weight 0.4855 -> 50 shares. Ask 100 on bar 3, which opens at 101 (bid 100.9 >= 100):
    fills at 100.9, realized 50 x (100.9 - 97.1) = 190. An ask at 101.5 on bar 3 (highest bid
    101.4) would not fill."""
    sim = make_sim(_limit_market(), costs=ALL_COSTS, start=1)
    fills = sim.step(order(0.0, 0.4855, limit=99.0))
    assert fills.price[0, 0] == approx(97.1)
    assert sim.qty[0, 0] == approx(50)
    assert_costs(fills, 50 * 97.1 * 1e-3, 0.0, 0.0, 0.0)

    before = sim.cash[0]
    fills = sim.step(order(0.0, 0.0, limit=101.5))
    assert not fills.filled[0, 0] and sim.cash[0] == before

    sim = make_sim(_limit_market(), costs=ALL_COSTS, start=1)
    sim.step(order(0.0, 0.4855, limit=99.0))
    fills = sim.step(order(0.0, 0.0, limit=100.0))
    assert fills.price[0, 0] == approx(100.9)
    assert fills.realized[0, 0] == approx(50 * (100.9 - 97.1))
    assert_costs(fills, 50 * 100.9 * 1e-3, 0.0, 0.0, 0.0)


def test_limit_orders_on_close_only_data_use_the_close() -> None:
    """No open/high/low: a bid fills when the next close + half spread reaches it (98.5 + 0.1 =
    98.6 <= 99 -> fills at 99); a bid at 98.55 does not."""
    market = make_market([100, 98.5, 98.5], half_spread=0.1, has_open=False)
    sim = make_sim(market, fill_price="next_close")
    fills = sim.step(order(0.0, 0.495, limit=99.0))
    assert fills.price[0, 0] == 99 and sim.qty[0, 0] == approx(50)
    sim = make_sim(market, fill_price="next_close")
    fills = sim.step(order(0.0, 0.495, limit=98.55))
    assert not fills.filled[0, 0]


@pytest.mark.parametrize(("action", "limit"), [(BID_NEAR, 99.9), (BID_FAR, 99.7)])
def test_limit5_bids_quote_beyond_the_touch(action: int, limit: float) -> None:
    """limit5 with offsets (0, 1) quoted spreads: on bar 0 (mark 100, half spread 0.1) BID_NEAR
    quotes 100 - 0.1 = 99.9 and BID_FAR 100 - 0.1 - 1 x 0.2 = 99.7; both are reached on bar 1
    (lowest ask 98.1, open ask 100.1) and buy limit_size 0.5 of the budget at the limit:
    5,000 / limit shares, commission only. ASK_NEAR on bar 1 (mark 101 -> 101.1) is not reached
    on bar 2 (highest bid 97.9)."""
    core = make_core(_limit_market(), costs=ALL_COSTS, scheme=SchemeConfig(kind="limit5"))
    step = core.step(np.array([[action]]))
    assert step.fills.price[0, 0] == approx(limit)
    assert core.sim.qty[0, 0] == approx(5_000 / limit)
    assert_costs(step.fills, 5_000 * 1e-3, 0.0, 0.0, 0.0)
    step = core.step(np.array([[3]]))  # ASK_NEAR
    assert not step.sanitized[0, 0]
    assert not step.fills.filled[0, 0]
    assert core.sim.qty[0, 0] == approx(5_000 / limit)


# ------------------------------------------------------------------ 8. regime rebalancing


def test_regime_rebalance_reaches_the_target_weights_at_the_fill() -> None:
    """Regimes (0.5, 0.3, 0.2) then (0.1, 0.6, 0), zero costs.

    Bar 1 (opens 100, 50, 20): 50, 60, 100 shares, cash 0.
    Bar 2 (opens 110, 45, 22): E = 5,500 + 2,700 + 2,200 = 10,400 -> 1,040 / 110, 6,240 / 45
    and 0 shares, cash 0.3 x 10,400 = 3,120; weights at the fill equal the targets.
    """
    market = make_market(
        [[100, 100, 115, 115], [50, 50, 40, 40], [20, 20, 25, 25]],
        open_=[[100, 100, 110, 115], [50, 50, 45, 40], [20, 20, 22, 25]],
    )
    scheme = RegimeScheme(
        SchemeConfig(kind="regimes", regimes=((0.5, 0.3, 0.2), (0.1, 0.6, 0.0))), 3
    )
    assert scheme.n_actions == 2
    sim = make_sim(market)
    fills = sim.step(scheme.orders(np.array([0])))
    assert sim.qty[0].tolist() == approx([50, 60, 100])
    assert sim.cash[0] == approx(0, tol=1e-6)
    assert (sim.qty[0] * fills.price[0] / CASH).tolist() == approx([0.5, 0.3, 0.2])

    fills = sim.step(scheme.orders(np.array([1])))
    equity = 10_400
    assert fills.price[0].tolist() == [110, 45, 22]
    assert sim.qty[0].tolist() == approx([1_040 / 110, 6_240 / 45, 0])
    assert sim.cash[0] == approx(3_120)
    assert (sim.qty[0] * fills.price[0] / equity).tolist() == approx([0.1, 0.6, 0.0])
    assert fills.realized[0].tolist() == approx(
        [(50 - 1_040 / 110) * 10, 0.0, 100 * 2]  # 50 -> 9.45 @ 110 (entry 100); 100 @ 22 (20)
    )


def test_default_regime_tables() -> None:
    """Multiples of 1/3 with sum <= 1: 20 vectors for 3 assets, 10 for 2."""
    config = SchemeConfig(kind="regimes")
    assert RegimeScheme(config, 3).n_actions == 20
    table = RegimeScheme(config, 2).table
    assert len(table) == 10
    assert (table.sum(axis=1) <= 1 + 1e-12).all() and (table >= 0).all()


# ------------------------------------------------------------- 9. rollout invariants

LIMIT_MIX = RiskLimits(
    max_weight=0.5,
    max_gross_exposure=0.9,
    max_open_positions=2,
    max_trades_per_day=1,
    drawdown_breaker=0.01,
    breaker_cooldown=3,
)


@pytest.fixture(scope="module")
def synthetic_market() -> EnvMarket:
    """4 synthetic symbols x 120 bars, default costs, and a few missing bars in symbol 1."""
    panel = generate_market(SyntheticMarketConfig(n_symbols=4, n_bars=120, seed=11)).panel
    market = build_market(panel, compute_features(panel), CostConfig())
    holes = np.zeros(market.close.shape, bool)
    holes[1, [5, 17, 18, 60, 61, 62]] = True
    arrays = {
        name: np.where(holes, np.nan, getattr(market, name))
        for name in ("open", "high", "low", "close", "half_spread")
    }
    return EnvMarket(
        symbols=market.symbols,
        **arrays,
        adv=market.adv,
        volatility=market.volatility,
        features=market.features,
        feature_names=market.feature_names,
        day=market.day,
        has_open=market.has_open,
        has_range=market.has_range,
    )


def _check_step(sim: Simulator, fills: Fills) -> None:
    equity = sim.cash + (sim.qty * sim.mark).sum(axis=1)
    np.testing.assert_allclose(sim.equity, equity, rtol=1e-12)
    np.testing.assert_array_equal(fills.equity, sim.equity)
    assert (sim.cash >= 0).all(), sim.cash
    for part in fills.costs:
        assert (part >= 0).all()
    change = fills.equity - fills.equity_before
    expected = fills.pnl.sum(axis=1) - fills.costs.total.sum(axis=1)
    np.testing.assert_allclose(change, expected, rtol=0, atol=1e-7 * CASH)
    np.testing.assert_allclose(fills.pnl, fills.realized + fills.unrealized_change, atol=1e-9)
    np.testing.assert_allclose(sim.unrealized(), sim.qty * (sim.mark - sim.entry), atol=1e-9)


@pytest.mark.parametrize("kind", ["discrete3", "discrete7", "limit5"])
@pytest.mark.parametrize("limits", [RiskLimits(), LIMIT_MIX], ids=["no-limits", "limits"])
def test_random_rollout_invariants(
    synthetic_market: EnvMarket, kind: str, limits: RiskLimits
) -> None:
    """Random actions (masked ones included) for 3 portfolios x 3 slots over a whole episode:
    equity = cash + sum(qty x mark), cash >= 0, costs >= 0, equity change = pnl - costs, and the
    default reward is the slot's net P&L on its capital in percent."""
    market = synthetic_market
    config = CommonEnvConfig(
        execution=ExecutionConfig(initial_cash=CASH),
        limits=limits,
        scheme=SchemeConfig(kind=kind),
    )
    core = TradingCore(market, config, n_envs=3, n_slots=3, budget=1 / 3)
    orders = [np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([3, 1, 0])]
    core.reset([Episode(rows, 0, market.n_bars) for rows in orders])
    rng = np.random.default_rng(0)
    traded = sanitized = 0
    for _ in range(market.n_bars - 1):
        equity_before = core.sim.equity.copy()
        actions = rng.integers(core.scheme.n_actions, size=(3, 3))
        step = core.step(actions)
        _check_step(core.sim, step.fills)
        capital = equity_before[:, None] / 3
        net = step.fills.pnl - step.fills.costs.total
        np.testing.assert_allclose(step.reward, net / capital * 100, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(step.reward, step.terms.sum(axis=-1), rtol=1e-12)
        traded += int(step.fills.filled.sum())
        sanitized += int(step.sanitized.sum())
        if step.fills.done.all():
            break
    assert step.fills.done.all()
    assert traded > 20 and sanitized > 0
    if limits is LIMIT_MIX:  # the breaker (1 % drawdown) trips and forces de-risking trades
        assert core.telemetry.forced.sum() > 0


def test_random_regime_rollout_invariants(synthetic_market: EnvMarket) -> None:
    """The same invariants for random target-weight regimes over 3 assets, default costs."""
    sim = Simulator(
        synthetic_market, 2, 3, costs=CostConfig(), execution=ExecutionConfig(initial_cash=CASH)
    )
    sim.reset(np.array([[0, 1, 2], [3, 2, 1]]), np.array([0, 0]), np.array([100, 100]))
    scheme = RegimeScheme(SchemeConfig(kind="regimes"), 3)
    rng = np.random.default_rng(1)
    for _ in range(99):
        fills = sim.step(scheme.orders(rng.integers(scheme.n_actions, size=2)))
        _check_step(sim, fills)
    assert fills.done.all()
