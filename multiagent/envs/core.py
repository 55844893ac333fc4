"""`TradingCore`: simulator + action scheme + observations + rewards + telemetry for B x N slots.

The one engine under every per-symbol env: `SymbolTradingEnv` is B=1, N=1; the hierarchical env
and the rotating `PortfolioEnv` are B=1, N symbols; `BatchedTradingCore` steps B portfolios at once
with automatic resets, for backtests and benchmarks. Shape-polymorphic, numpy only, no Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from multiagent.envs.config import CommonEnvConfig
from multiagent.envs.market import EnvMarket
from multiagent.envs.observations import NEUTRAL, ObservationBuilder
from multiagent.envs.orders import Fills, Orders
from multiagent.envs.rewards import SymbolRewards
from multiagent.envs.sampling import Episode, EpisodeSampler
from multiagent.envs.schemes import DiscreteScheme, SlotState, make_slot_scheme, slot_state
from multiagent.envs.simulator import Simulator
from multiagent.envs.telemetry import EpisodeTelemetry, PortfolioRisk


class CoreStep(NamedTuple):
    fills: Fills
    reward: np.ndarray
    """(B, N) shaped reward of each slot."""
    terms: np.ndarray
    """(B, N, K) weighted reward terms (sum over K = reward)."""
    executed: np.ndarray
    """(B, N) actions actually executed (masked ones become HOLD)."""
    sanitized: np.ndarray
    """(B, N) bool: the sent action was masked and replaced by HOLD."""


class TradingCore:
    def __init__(
        self,
        market: EnvMarket,
        config: CommonEnvConfig,
        n_envs: int = 1,
        n_slots: int = 1,
        budget: float = 1.0,
    ) -> None:
        self.market = market
        self.config = config
        self.n_envs, self.n_slots = n_envs, n_slots
        self.sim = Simulator(
            market,
            n_envs,
            n_slots,
            costs=config.costs,
            execution=config.execution,
            limits=config.limits,
        )
        self.scheme: DiscreteScheme = make_slot_scheme(config.scheme)
        self.observations = ObservationBuilder(market, config.observation)
        self.rewards = SymbolRewards(config.reward, n_envs, n_slots, self.scheme.n_actions)
        self.telemetry = EpisodeTelemetry(n_envs, n_slots, self.scheme.names)
        self.risk = PortfolioRisk(
            n_envs,
            n_slots,
            config.observation.correlation_halflife,
            edge_halflife=config.observation.edge_halflife,
        )
        self.default_budget = budget
        self.budget = np.full((n_envs, n_slots), budget)
        self.risk_mode = np.full(n_envs, NEUTRAL, np.int64)
        self.max_open = config.limits.max_open_positions
        self.track_risk = False
        """Update `risk` (EWMA volatility and correlations) every step; the master needs it."""
        self._state: SlotState | None = None

    def reset(self, episodes: Sequence[Episode], envs: np.ndarray | None = None) -> None:
        symbols = np.stack([e.symbols for e in episodes])
        start = np.array([e.start for e in episodes])
        stop = np.array([e.stop for e in episodes])
        self.sim.reset(symbols, start, stop, envs)
        index = slice(None) if envs is None else envs
        self.budget[index] = self.default_budget
        self.risk_mode[index] = NEUTRAL
        self.rewards.reset(envs)
        self.telemetry.reset(envs)
        self.risk.reset(envs)
        self._state = None

    def masks(self, can_open: np.ndarray | None = None) -> np.ndarray:
        """(B, N, A) bool masks of allowed actions."""
        if can_open is None and self.max_open is not None:
            room = self.max_open - (self.sim.qty != 0).sum(axis=1)
            can_open = (room > 0)[:, None]
        self._state = slot_state(
            self.sim, self.budget, can_open, need_spread=self.config.scheme.kind == "limit5"
        )
        return self.scheme.masks(self._state)

    def observe(self) -> np.ndarray:
        """(B, N, D) float32 observations."""
        return self.observations.build(self.sim, self.budget, self.risk_mode, self.max_open)

    def step(
        self,
        actions: np.ndarray,
        masks: np.ndarray | None = None,
        imposed: Orders | None = None,
        imposed_mask: np.ndarray | None = None,
    ) -> CoreStep:
        """Execute ``actions`` (B, N); ``imposed`` orders replace the agents' where ``imposed_mask``.

        ``masks`` are those shown with the last observation (recomputed when omitted).
        """
        if masks is None or self._state is None:
            masks = self.masks()
        assert self._state is not None
        orders, executed, sanitized = self.scheme.orders(actions, self._state, masks)
        self._state = None
        if imposed is not None and imposed_mask is not None:
            orders = override_orders(orders, imposed, imposed_mask)
        fills = self.sim.step(orders)
        reward, terms = self.rewards.step(fills, self.sim, self.budget, executed)
        self.telemetry.record(fills, executed, sanitized)
        if self.track_risk:
            net = fills.pnl - fills.costs.total
            self.risk.update(
                fills.equity / fills.equity_before - 1.0,
                fills.asset_return,
                net / fills.equity_before[:, None],
            )
        return CoreStep(fills, reward, terms, executed, sanitized)


def override_orders(orders: Orders, imposed: Orders, where: np.ndarray) -> Orders:
    """``imposed`` orders where ``where`` (forced unless they say otherwise), else ``orders``."""

    def pick(a: np.ndarray | None, b: np.ndarray | None, fill: float) -> np.ndarray | None:
        if a is None and b is None:
            return None
        a = np.full(where.shape, fill) if a is None else a
        b = np.full(where.shape, fill) if b is None else b
        return np.where(where, b, a)

    voluntary = np.where(
        where,
        imposed.voluntary if imposed.voluntary is not None else False,
        True if orders.voluntary is None else orders.voluntary,
    )
    return Orders(
        active=np.where(where, imposed.active, orders.active),
        keep=np.where(where, imposed.keep, orders.keep),
        weight=np.where(where, imposed.weight, orders.weight),
        limit=pick(orders.limit, imposed.limit, np.nan),
        voluntary=voluntary,
        cap=pick(orders.cap, imposed.cap, np.inf),
    )


class BatchedTradingCore(TradingCore):
    """B portfolios x N slots with automatic resets from a seeded `EpisodeSampler`.

    ``step`` returns the observations of the next bar; a portfolio whose episode ended is reset
    at once (its `done` flag is set on that step and its new first observation returned).
    """

    def __init__(
        self,
        market: EnvMarket,
        config: CommonEnvConfig,
        sampler: EpisodeSampler,
        n_envs: int,
        *,
        seed: int | None = None,
        budget: float | None = None,
    ) -> None:
        n_slots = sampler.n_slots
        super().__init__(
            market, config, n_envs, n_slots, budget if budget is not None else 1.0 / n_slots
        )
        self.sampler = sampler
        self.rng = np.random.default_rng(seed)
        self.reset([sampler.sample(self.rng) for _ in range(n_envs)])

    def step_auto(self, actions: np.ndarray) -> tuple[CoreStep, np.ndarray]:
        """Step every portfolio and reset the finished ones; returns (step, done (B,))."""
        result = self.step(actions)
        done = result.fills.done
        if done.any():
            envs = np.flatnonzero(done)
            self.reset([self.sampler.sample(self.rng) for _ in envs], envs)
        return result, done
