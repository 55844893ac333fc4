"""Action schemes: discrete actions -> `Orders`, plus the masks of the actions that make sense.

A slot's *budget* ``b`` is the fraction of equity its agent may deploy; ``w`` is its current
position weight and ``u = max(b - |w|, 0)`` the unused budget. Every order is resolved at the
fill price (see `multiagent.envs.simulator`).

| scheme | actions | order |
|---|---|---|
| discrete3 | HOLD, BUY, SELL | BUY: target weight ``b``; SELL: flat (or ``-b`` with ``short_on_sell``) |
| discrete7 | HOLD, BUY_SMALL, BUY_MEDIUM, BUY_LARGE, SELL_PARTIAL, SELL_ALL, ADD_POSITION | BUY_x: buy ``x`` of the unused budget; SELL_PARTIAL: sell ``partial`` of the position; ADD: add ``min(add * b, u)`` |
| limit5 | HOLD, BID_NEAR, BID_FAR, ASK_NEAR, ASK_FAR | limit orders ``offset`` quoted spreads beyond the touch, for one bar |
| regimes | one of R target-weight vectors over CASH + N assets | target weights, rebalanced at the fill |

Masks (1 = allowed): no buy without unused budget or while the circuit breaker's cooldown runs
or (when the env says so) without room for another position; no sell without a position; no add
without a winning position. A masked action that is sent anyway is executed as HOLD and counted
as *sanitized*; an action outside the declared space is an error.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from multiagent.envs.config import SchemeConfig
from multiagent.envs.orders import Orders
from multiagent.envs.simulator import Simulator

EPS = 1e-3
"""Budget room below this fraction of equity counts as none (no dust orders)."""


class SlotState(NamedTuple):
    """What a scheme needs to know about the slots, (B, N) each."""

    weight: np.ndarray
    budget: np.ndarray
    winning: np.ndarray
    can_open: np.ndarray | np.bool_
    can_grow: np.ndarray
    half_spread: np.ndarray
    """Half spread at the decision bar, price units (only when asked for: limit schemes)."""
    mark: np.ndarray


def slot_state(
    sim: Simulator,
    budget: np.ndarray,
    can_open: np.ndarray | None = None,
    *,
    need_spread: bool = True,
) -> SlotState:
    """The slots' state at the decision bar; ``need_spread`` only for quoting limit prices."""
    weight = sim.qty * sim.mark / sim.equity[:, None]
    if need_spread:
        flat = sim.symbol * sim.market.n_bars + sim.t[:, None]
        half = sim.market.half_spread.reshape(-1).take(flat)
        default = sim.mark * sim.cost_model.config.half_spread_bps * 1e-4
        half = np.where(half == half, half, default)
    else:
        half = sim.mark
    return SlotState(
        weight=weight,
        budget=budget,
        winning=(sim.qty > 0) & (sim.mark > sim.entry),
        can_open=(sim.qty != 0) | can_open if can_open is not None else np.True_,
        can_grow=(sim.cooldown == 0)[:, None],
        half_spread=half,
        mark=sim.mark,
    )


def _stack(columns: list[np.ndarray | np.bool_], shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty((*shape, len(columns)), bool)
    for i, column in enumerate(columns):
        out[..., i] = column
    return out


class DiscreteScheme:
    """Base of the per-slot discrete schemes."""

    names: tuple[str, ...] = ()

    def __init__(self, config: SchemeConfig) -> None:
        self.config = config

    @property
    def n_actions(self) -> int:
        return len(self.names)

    def masks(self, state: SlotState) -> np.ndarray:
        raise NotImplementedError

    def _orders(self, actions: np.ndarray, state: SlotState) -> Orders:
        raise NotImplementedError

    def check(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.dtype.kind not in "iu" and not (
            actions.dtype.kind == "f" and np.all(actions == np.round(actions))
        ):
            raise ValueError(f"actions must be integers, got dtype {actions.dtype}")
        actions = actions.astype(np.int64)
        if actions.size and (actions.min() < 0 or actions.max() >= self.n_actions):
            raise ValueError(
                f"action {int(actions.max() if actions.max() >= self.n_actions else actions.min())}"
                f" is outside Discrete({self.n_actions}) {self.names}"
            )
        return actions

    def orders(
        self, actions: np.ndarray, state: SlotState, masks: np.ndarray | None = None
    ) -> tuple[Orders, np.ndarray, np.ndarray]:
        """Orders for ``actions`` (B, N); returns (orders, executed actions, sanitized mask)."""
        actions = self.check(actions)
        masks = self.masks(state) if masks is None else masks
        allowed = np.take_along_axis(masks, actions[..., None], axis=-1)[..., 0]
        executed = np.where(allowed, actions, 0)
        return self._orders(executed, state), executed, ~allowed


class ThreeActions(DiscreteScheme):
    names = ("HOLD", "BUY", "SELL")

    def masks(self, state: SlotState) -> np.ndarray:
        buy = (state.weight < state.budget - EPS) & state.can_open & state.can_grow
        if self.config.short_on_sell:
            sell = state.weight > -state.budget + EPS
        else:
            sell = state.weight > EPS
        return _stack([np.True_, buy, sell], state.weight.shape)

    def _orders(self, actions: np.ndarray, state: SlotState) -> Orders:
        buy, sell = actions == 1, actions == 2
        short = -state.budget if self.config.short_on_sell else 0.0
        weight = np.where(buy, state.budget, np.where(sell, short, 0.0))
        # A BUY never sells (the budget may have been cut below the position since the mask).
        active = (actions != 0) & ~(buy & (state.weight >= state.budget))
        return Orders(active, np.zeros_like(weight), weight, cap=state.budget)


class SevenActions(DiscreteScheme):
    names = (
        "HOLD",
        "BUY_SMALL",
        "BUY_MEDIUM",
        "BUY_LARGE",
        "SELL_PARTIAL",
        "SELL_ALL",
        "ADD_POSITION",
    )

    def __init__(self, config: SchemeConfig) -> None:
        super().__init__(config)
        # Per action: fraction of the position kept, budget fraction added, is it a buy.
        # Buying a fraction s of the unused budget b*E - value: target = (1-s) value + s b E.
        sizes = np.array([0.0, config.small, config.medium, config.large, 0.0, 0.0, 0.0])
        self._keep = 1.0 - sizes
        self._keep[4] = 1.0 - config.partial
        self._keep[5] = 0.0
        self._budget_share = sizes
        self._buys = np.array([False, True, True, True, False, False, True])

    def masks(self, state: SlotState) -> np.ndarray:
        unused = state.budget - np.abs(state.weight)
        buy = (unused > EPS) & state.can_open & state.can_grow
        held = state.weight > EPS
        add = buy & state.winning
        return _stack([np.True_, buy, buy, buy, held, held, add], state.weight.shape)

    def _orders(self, actions: np.ndarray, state: SlotState) -> Orders:
        unused = state.budget - np.abs(state.weight)
        weight = self._budget_share.take(actions) * state.budget
        adding = actions == 6
        if adding.any():
            weight = np.where(adding, np.minimum(self.config.add * state.budget, unused), weight)
        # A buy never sells (the budget may have been cut below the position since the mask).
        active = (actions != 0) & ~(self._buys.take(actions) & (unused <= 0))
        return Orders(active, self._keep.take(actions), weight, cap=state.budget)


class LimitActions(DiscreteScheme):
    names = ("HOLD", "BID_NEAR", "BID_FAR", "ASK_NEAR", "ASK_FAR")

    def masks(self, state: SlotState) -> np.ndarray:
        unused = state.budget - np.abs(state.weight)
        bid = (unused > EPS) & state.can_open & state.can_grow
        ask = state.weight > EPS
        return _stack([np.True_, bid, bid, ask, ask], state.weight.shape)

    def _orders(self, actions: np.ndarray, state: SlotState) -> Orders:
        c = self.config
        near, far = c.limit_offsets
        offset = np.array([0.0, near, far, near, far])[actions]
        side = np.array([0.0, -1.0, -1.0, 1.0, 1.0])[actions]
        half = state.half_spread
        limit = state.mark + side * (half + offset * 2 * half)
        unused = np.maximum(state.budget - np.abs(state.weight), 0.0)
        bid, ask = side < 0, side > 0
        keep = np.where(ask, 1.0 - c.limit_size, 1.0)
        weight = np.where(bid, np.minimum(c.limit_size * state.budget, unused), 0.0)
        limit = np.where(actions != 0, limit, np.nan)
        return Orders(actions != 0, keep, weight, limit=limit, cap=state.budget)


SLOT_SCHEMES: dict[str, type[DiscreteScheme]] = {
    "discrete3": ThreeActions,
    "discrete7": SevenActions,
    "limit5": LimitActions,
}


def make_slot_scheme(config: SchemeConfig) -> DiscreteScheme:
    if config.kind not in SLOT_SCHEMES:
        raise ValueError(f"{config.kind} is not a per-symbol scheme ({', '.join(SLOT_SCHEMES)})")
    return SLOT_SCHEMES[config.kind](config)


class RegimeScheme:
    """CASH + N assets; action r rebalances every asset to ``regimes[r]`` (cash = the rest).

    Default regimes: every vector of multiples of ``regime_step`` over the N assets with sum <= 1
    (20 for 3 assets and step 1/3, 10 for 2 assets and step 1/3), ordered as generated.
    """

    def __init__(self, config: SchemeConfig, n_assets: int) -> None:
        self.config = config
        if config.regimes is not None:
            bad = [r for r in config.regimes if len(r) != n_assets]
            if bad:
                raise ValueError(f"regime {bad[0]} has {len(bad[0])} weights for {n_assets} assets")
            table = np.asarray(config.regimes, dtype=float)
        else:
            levels = round(1 / config.regime_step)
            grid = [
                combo
                for combo in itertools.product(range(levels + 1), repeat=n_assets)
                if sum(combo) <= levels
            ]
            table = np.asarray(grid, dtype=float) / levels
        if len(table) > 4096:
            raise ValueError(f"{len(table)} regimes; raise regime_step or list regimes explicitly")
        self.table = table
        self.n_assets = n_assets

    @property
    def n_actions(self) -> int:
        return len(self.table)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple("/".join(f"{w:.2f}" for w in row) for row in self.table)

    def check(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions).astype(np.int64)
        if actions.size and (actions.min() < 0 or actions.max() >= self.n_actions):
            raise ValueError(f"regime action outside Discrete({self.n_actions})")
        return actions

    def orders(self, actions: np.ndarray) -> Orders:
        """Orders for one regime index per portfolio, ``actions`` (B,)."""
        weights = self.table[self.check(actions)]
        return Orders(np.ones_like(weights, bool), np.zeros_like(weights), weights)
