"""The batched market simulator: B independent portfolios x N symbol slots, pure numpy.

Every env in this package (B = 1) and the evaluation backtester (B large) step through this one
class, so training and backtests share one set of fill, cost and limit rules.

Timing (the one rule that matters for honesty)
----------------------------------------------
An order passed to `step()` was decided on bar ``t`` (the agent has seen bar t's close). It fills
on bar ``t + 1`` at ``execution.fill_price``: the next open by default, the next close for
close-only data. The portfolio is then marked at bar t+1's close and ``t`` becomes ``t + 1``.
``current_close`` (fill at a price the agent has seen) exists only to measure how much such a
look-ahead flatters a backtest. A symbol with no bar at t+1 is not traded (the order lapses) and
is marked at its last close. State changes only in `reset()` and `step()`.

Orders
------
A market order asks for ``target = keep * qty + weight * equity / price``: ``keep`` is the fraction
of the current position kept, ``weight`` the value added as a fraction of equity, both resolved at
the fill price with equity marked at that price (for a limit order: marked at the market fill
price, then divided by the limit fill price). Every action scheme is a choice of (keep, weight):
SELL_ALL is (0, 0), a target weight w is (0, w), "buy a quarter of the unused budget b" is
(0.75, 0.25 b). A limit order also carries a limit price (see `fill_limit_orders`).

Limits, applied in this order (a changed order is *clipped*; a refused one keeps its position)
--------------------------------------------------------------------------------------------
1. circuit breaker: the bar after drawdown reaches ``drawdown_breaker`` every position is cut by
   ``breaker_derisk`` (a forced trade); for ``breaker_cooldown`` bars no position may grow;
2. no short positions unless ``allow_short``;
3. ``|value| <= max_weight * equity`` per symbol (and ``<= cap``, a slot's risk budget);
4. ``max_open_positions``: new positions beyond the room left are refused, in slot order;
5. ``max_trades_per_day`` per symbol (UTC calendar day of the fill bar);
6. ``sum |value| <= max_gross_exposure * equity``: the growing part of every position is scaled;
7. cash: without ``margin`` the buys are scaled so that cash after costs stays >= 0.
Trades smaller than ``min_trade_fraction`` of equity are skipped.

P&L accounting: average entry price; ``realized`` is booked on the closed part of a position at
``fill - entry``; ``unrealized = qty * (mark - entry)``; costs are booked separately, so
``equity change = sum(realized + unrealized change) - costs`` exactly.
"""

from __future__ import annotations

import numpy as np

from multiagent.envs.config import CostConfig, ExecutionConfig, RiskLimits
from multiagent.envs.costs import CostModel, CostParts
from multiagent.envs.market import EnvMarket
from multiagent.envs.orders import Fills, Orders
from multiagent.envs.portfolio_limits import limit_gross_exposure, limit_open_positions


class Simulator:
    """State of B portfolios; arrays are public for interpreters but only mutated here."""

    def __init__(
        self,
        market: EnvMarket,
        n_envs: int,
        n_slots: int,
        *,
        costs: CostConfig | None = None,
        execution: ExecutionConfig | None = None,
        limits: RiskLimits | None = None,
    ) -> None:
        self.market = market
        self.execution = execution or ExecutionConfig()
        market.check_execution(self.execution)
        self.limits = limits or RiskLimits()
        self.cost_model = CostModel(costs or CostConfig())
        self.n_envs, self.n_slots = n_envs, n_slots
        self._n_bars = market.n_bars
        self._flat = {
            name: getattr(market, name).reshape(-1)
            for name in ("open", "high", "low", "close", "half_spread")
        }
        # Everything a fill on bar t+1 reads, in one row per (symbol, bar): one gather per step.
        fill_reference = market.open if self.execution.fill_price == "next_open" else market.close
        self._rows = np.stack(
            [market.close, fill_reference, *self._cost_columns()], axis=-1
        ).reshape(-1, 5)
        shape = (n_envs, n_slots)
        self.symbol = np.zeros(shape, np.int64)
        self.t = np.zeros(n_envs, np.int64)
        self.start = np.zeros(n_envs, np.int64)
        self.stop = np.zeros(n_envs, np.int64)
        self.cash = np.zeros(n_envs)
        self.qty = np.zeros(shape)
        self.entry = np.zeros(shape)
        self.hold = np.zeros(shape, np.int64)
        self.mark = np.zeros(shape)
        self.realized = np.zeros(shape)
        self.cost_paid = np.zeros(shape)
        self.equity = np.zeros(n_envs)
        self.peak = np.zeros(n_envs)
        self.day = np.zeros(n_envs, np.int64)
        self.trades_today = np.zeros(shape, np.int64)
        self.cooldown = np.zeros(n_envs, np.int64)
        self.derisk_next = np.zeros(n_envs, bool)
        self._no_trip = np.zeros(n_envs, bool)
        self._no_trade = np.zeros(shape, bool)
        zeros = np.zeros(shape)
        self._no_costs = CostParts(zeros, zeros, zeros, zeros)

    def _cost_columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(S, T) half spread (price units), half spread rate and the impact factor of a fill."""
        market = self.market
        fixed, rate, impact = self.cost_model.bind(
            market.half_spread, market.adv, market.volatility
        )
        decided = np.zeros_like(impact)
        decided[:, 1:] = impact[:, :-1]  # the impact of a fill on t+1 uses bar t's ADV and vol
        return fixed, rate, decided

    @property
    def cost_multiplier(self) -> float:
        """The cost level set by `set_cost_multiplier` (1 = the configured costs)."""
        return self.cost_model.scale

    def set_cost_multiplier(self, multiplier: float) -> None:
        """Charge every cost part at ``multiplier`` x the configured costs from the next
        `step()` on, episodes in flight included (a curriculum's cost level: 0 = free trading,
        1 = the configured costs, which keep their own stress ``cost_multiplier``). Only what a
        fill is charged changes: limit prices and fills still see the quoted spread."""
        if multiplier == self.cost_model.scale:
            return
        self.cost_model = CostModel(self.cost_model.config, scale=multiplier)
        for column, values in enumerate(self._cost_columns(), start=2):
            self._rows[:, column] = values.reshape(-1)

    # ----------------------------------------------------------------------------- reset
    def reset(
        self,
        symbols: np.ndarray,
        start: np.ndarray,
        stop: np.ndarray,
        envs: np.ndarray | None = None,
    ) -> None:
        """Start episodes: env b trades rows ``symbols[b]`` from bar ``start[b]`` to ``stop[b]``.

        ``envs`` restarts only those portfolios (the batched core's auto-reset); the agent first
        observes bar ``start`` and the last fill happens on bar ``stop - 1``.
        """
        index = np.arange(self.n_envs) if envs is None else np.asarray(envs)
        start = np.asarray(start, np.int64)
        stop = np.asarray(stop, np.int64)
        if np.any(stop - start < 2) or np.any(start < 0) or np.any(stop > self._n_bars):
            raise ValueError("episodes need 2 <= stop - start bars inside the market")
        self.symbol[index] = symbols
        self.t[index] = start
        self.start[index] = start
        self.stop[index] = stop
        cash = self.execution.initial_cash
        self.cash[index] = cash
        self.qty[index] = 0.0
        self.entry[index] = 0.0
        self.hold[index] = 0
        self.realized[index] = 0.0
        self.cost_paid[index] = 0.0
        self.equity[index] = cash
        self.peak[index] = cash
        self.trades_today[index] = 0
        self.cooldown[index] = 0
        self.derisk_next[index] = False
        self.day[index] = self.market.day[start]
        flat = self.symbol[index] * self._n_bars + start[..., None]
        # The last close at or before the start marks positions (none yet, but it anchors returns).
        self.mark[index] = self._last_close(flat)

    def _last_close(self, flat: np.ndarray) -> np.ndarray:
        close = self._flat["close"]
        mark = close[flat]
        missing = ~np.isfinite(mark)
        back = flat.copy()
        while missing.any():  # only at a reset onto a missing bar: walk back to the last close
            rows_start = (back // self._n_bars) * self._n_bars
            can = missing & (back > rows_start)
            if not can.any():
                break
            back = np.where(can, back - 1, back)
            mark = np.where(can, close[back], mark)
            missing = ~np.isfinite(mark) & can
        return np.where(np.isfinite(mark), mark, 0.0)

    # ----------------------------------------------------------------------------- views
    def weights(self) -> np.ndarray:
        """(B, N) position value / equity."""
        return self.qty * self.mark / self.equity[:, None]

    def unrealized(self) -> np.ndarray:
        return self.qty * (self.mark - self.entry)

    # ----------------------------------------------------------------------------- step
    def step(self, orders: Orders) -> Fills:
        limits, execution = self.limits, self.execution
        qty, mark, entry = self.qty, self.mark, self.entry
        nxt = self.t + 1
        flat_next = self.symbol * self._n_bars + nxt[:, None]
        rows = self._rows.take(flat_next, axis=0)
        close_next = rows[..., 0]
        has_bar = close_next == close_next  # not NaN
        if execution.fill_price == "current_close":
            reference = np.where(has_bar, mark, np.nan)
        else:  # next open or next close; NaN without a bar (see EnvMarket)
            reference = rows[..., 1]
        tradable = reference == reference
        price = np.where(tradable, reference, mark)
        equity_fill = self.cash + np.add.reduce(qty * price, axis=1)
        active = orders.active & tradable

        passive = None
        if orders.limit is not None:
            limit_mask = active & (orders.limit == orders.limit)
            if limit_mask.any():
                buy = (orders.keep - 1.0) * qty * orders.limit + orders.weight * equity_fill[
                    :, None
                ] > 0
                limit_fill = self.fill_limit_orders(orders.limit, buy, flat_next, limit_mask)
                passive = limit_fill == limit_fill
                active = active & (passive | ~limit_mask)
                price = np.where(passive, limit_fill, price)
        equity_ratio = equity_fill[:, None] / np.where(price > 0, price, 1.0)
        requested = np.where(active, orders.keep * qty + orders.weight * equity_ratio, qty)
        target = requested
        forced = active & ~orders.voluntary if orders.voluntary is not None else self._no_trade

        # 1. circuit breaker
        if limits.drawdown_breaker is not None:
            derisk = self.derisk_next[:, None] & tradable & (qty != 0)
            if derisk.any():
                target = np.where(derisk, qty * (1.0 - limits.breaker_derisk), target)
                forced = forced | derisk
            frozen = (self.cooldown > 0)[:, None] & (np.abs(target) > np.abs(qty))
            target = np.where(frozen, qty, target)
        # 2. shorts
        if not execution.allow_short:
            target = np.maximum(target, 0.0)
        # 3. per-symbol weight (a limit blocks growth; it never forces a sale after a drift)
        weight_cap = limits.max_weight
        if orders.cap is not None:
            weight_cap = np.minimum(orders.cap, weight_cap)
        cap = weight_cap * np.maximum(equity_ratio, 0.0)
        if execution.allow_short:
            bound = np.maximum(cap, np.where(qty * target > 0, np.abs(qty), 0.0))
            target = np.clip(target, -bound, bound)
        else:
            target = np.minimum(target, np.maximum(cap, qty))
        # 4. open positions
        if limits.max_open_positions is not None:
            target = limit_open_positions(qty, target, limits.max_open_positions)
        # 5. trades per day
        if limits.max_trades_per_day is not None:
            day_next = self.market.day[nxt]
            today = np.where((day_next != self.day)[:, None], 0, self.trades_today)
            target = np.where(today >= limits.max_trades_per_day, qty, target)
        # 6. gross exposure
        target = limit_gross_exposure(qty, target, price, equity_fill, limits.max_gross_exposure)
        clipped = active & (target != requested)
        traded = target - qty
        size = np.abs(traded)
        # skip dust (and every slot without a bar, whose target is its position already)
        dust = size * price <= execution.min_trade_fraction * np.abs(equity_fill)[:, None]
        traded[dust] = 0.0
        size[dust] = 0.0
        filled = ~dust

        if filled.any():
            half_spread = rows[..., 2] + price * rows[..., 3]
            impact = rows[..., 4]
            costs = self.cost_model.parts(size, price, half_spread, impact, passive)
            cost = costs.total
            # 7. cash
            if not execution.margin:
                spend = np.add.reduce(traded * price + cost, axis=1)
                short = self.cash - spend < 0
                if short.any():
                    buys = traded > 0
                    buy_spend = np.add.reduce(np.where(buys, traded * price + cost, 0.0), axis=1)
                    room = np.maximum(self.cash - (spend - buy_spend), 0.0)
                    scale = np.where(
                        short, room / np.where(buy_spend > 0, buy_spend, 1.0) * (1 - 1e-12), 1.0
                    )
                    traded = np.where(buys, traded * np.clip(scale, 0.0, 1.0)[:, None], traded)
                    size = np.abs(traded)
                    costs = self.cost_model.parts(size, price, half_spread, impact, passive)
                    cost = costs.total
                    filled = traded != 0
                    clipped = clipped | (active & buys & short[:, None])
        else:
            costs = self._no_costs
            cost = costs.commission
        new_qty = qty + traded
        clipped = clipped & ~forced

        # accounting (average entry price)
        same_side = qty * traded
        realized = np.where(
            same_side < 0, np.minimum(size, np.abs(qty)) * (price - entry) * np.sign(qty), 0.0
        )
        opened = (qty * new_qty <= 0) & (new_qty != 0)
        grown = (same_side > 0) & ~opened
        if grown.any():
            averaged = (qty * entry + traded * price) / np.where(new_qty != 0, new_qty, 1.0)
            entry = np.where(grown, averaged, entry)
        entry = np.where(opened, price, np.where(new_qty == 0, 0.0, entry))
        new_mark = np.where(has_bar, close_next, mark)
        unrealized_change = new_qty * (new_mark - entry) - qty * (mark - self.entry)
        flows = traded * price
        self.cash = self.cash - np.add.reduce(flows + cost, axis=1)
        known = mark > 0  # 0 = no close yet (a slot whose symbol starts later)
        asset_return = np.where(known, new_mark / np.where(known, mark, 1.0) - 1.0, 0.0)
        equity_before = self.equity
        values = new_qty * new_mark
        equity = self.cash + np.add.reduce(values, axis=1)
        drawdown_before = 1.0 - equity_before / self.peak
        peak = np.maximum(self.peak, equity)
        drawdown = 1.0 - equity / peak

        self.hold = np.where(new_qty == 0, 0, np.where(opened, 1, self.hold + 1))
        self.qty, self.entry, self.mark = new_qty, entry, new_mark
        self.realized = self.realized + realized
        self.cost_paid = self.cost_paid + cost
        self.equity, self.peak = equity, peak
        if limits.max_trades_per_day is not None:
            day_next = self.market.day[nxt]
            today = np.where((day_next != self.day)[:, None], 0, self.trades_today)
            self.trades_today = today + filled
            self.day = day_next
        tripped = self._no_trip
        if limits.drawdown_breaker is not None:
            tripped = (drawdown >= limits.drawdown_breaker) & (self.cooldown == 0)
            self.cooldown = np.where(
                tripped, limits.breaker_cooldown, np.maximum(self.cooldown - 1, 0)
            )
            self.derisk_next = tripped
        self.t = nxt
        bankrupt = equity <= 0
        return Fills(
            price=reference if passive is None else np.where(tradable, price, np.nan),
            traded=traded,
            filled=filled,
            clipped=clipped,
            forced=forced & filled,
            costs=costs,
            realized=realized,
            unrealized_change=unrealized_change,
            pnl=realized + unrealized_change,
            asset_return=asset_return,
            equity_before=equity_before,
            equity=equity,
            gross_exposure=np.add.reduce(np.abs(values), axis=1) / equity,
            traded_notional=np.add.reduce(np.abs(flows), axis=1),
            drawdown=drawdown,
            drawdown_increase=np.maximum(drawdown - drawdown_before, 0.0),
            breaker_tripped=tripped,
            done=(nxt >= self.stop - 1) | bankrupt,
            bankrupt=bankrupt,
        )

    # ----------------------------------------------------------------------------- rules
    def fill_limit_orders(
        self, limit: np.ndarray, buy: np.ndarray, flat_next: np.ndarray, mask: np.ndarray
    ) -> np.ndarray:
        """Fill price of each limit order on the next bar, NaN where it does not fill.

        A buy at L fills when the next bar's lowest ask (low + half spread; its close + half
        spread for close-only data) reaches L; a sell when the highest bid (high - half spread)
        reaches L. The fill is at L, or at the open's ask/bid when the bar opens through L (a gap
        fills at the better open). Orders live one bar: unfilled ones lapse.
        """
        flat = self._flat
        half = flat["half_spread"][flat_next]
        close = flat["close"][flat_next]
        half = np.where(
            np.isfinite(half), half, close * self.cost_model.config.half_spread_bps * 1e-4
        )
        low = flat["low"][flat_next]
        high = flat["high"][flat_next]
        low = np.where(np.isfinite(low), low, close)
        high = np.where(np.isfinite(high), high, close)
        open_ = flat["open"][flat_next]
        best_ask = low + half
        best_bid = high - half
        reaches = np.where(buy, best_ask <= limit, best_bid >= limit)
        open_ask, open_bid = open_ + half, open_ - half
        gap = np.isfinite(open_) & np.where(buy, open_ask <= limit, open_bid >= limit)
        price = np.where(gap, np.where(buy, open_ask, open_bid), limit)
        return np.where(mask & reaches & np.isfinite(close), price, np.nan)
