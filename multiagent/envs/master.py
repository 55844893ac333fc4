"""`MasterSeat`: the master's side of a `TradingCore` with B books of N slots.

The hierarchical env (B = 1) and the backtester (B = books x systems) both run the master
through this class, so a master scored in a backtest decides on the same bars, from the same
observation, with the same budgets, risk modes and forced trims as in training. What it owns:

- the schedule: the master decides on steps 0, k, 2k, ... (k = ``communication_interval``);
- the action -> budgets map: ``MultiDiscrete([L] * N + [3])``, budget of slot i =
  ``min(level_i x max_gross_exposure / N x risk_mode_scale, max_weight)``;
- the forced trims: with ``enforce_budget_cuts``, a slot whose budget was just cut and whose
  position is above it is trimmed to it by the fill of the same step;
- the observation (see the table in `multiagent.envs.hierarchical_env`).

State changes only in `reset`, `apply` and `record`; `observe` and `trims` read the core.
`record` keeps the master's telemetry (`multiagent.envs.telemetry.MasterTelemetry`).
"""

from __future__ import annotations

import warnings

import numpy as np

from multiagent.envs.config import HierarchicalEnvConfig
from multiagent.envs.core import TradingCore
from multiagent.envs.observations import NEUTRAL, PORTFOLIO_FIELDS
from multiagent.envs.orders import Fills, Orders
from multiagent.envs.telemetry import STRESS_RATIO, MasterTelemetry, stress_ratio

MASTER_EXTRA_FIELDS = 6
"""Portfolio volatility, mean correlation, Herfindahl, market stress, decision flag, bars to
next decision."""


SLOT_FIELDS = 4
"""Per slot: weight, budget, recent net P&L, recent edge."""


def master_observation_dim(n_features: int, n_slots: int) -> int:
    return 2 * n_features + len(PORTFOLIO_FIELDS) + SLOT_FIELDS * n_slots + MASTER_EXTRA_FIELDS


def neutral_master_action(n_slots: int, levels: tuple[float, ...] | list[float]) -> np.ndarray:
    """The master action keeping equal budgets (level 1.0 if listed) and the neutral mode."""
    level = list(levels).index(1.0) if 1.0 in levels else len(levels) - 1
    return np.array([level] * n_slots + [NEUTRAL], dtype=np.int64)


class MasterSeat:
    def __init__(self, core: TradingCore, config: HierarchicalEnvConfig) -> None:
        self.core = core
        self.config = config
        n = core.n_slots
        self.n_slots = n
        self.levels = np.asarray(config.budget_levels, dtype=float)
        self.nvec = np.array([len(self.levels)] * n + [3], np.int64)
        self.base_budget = config.limits.max_gross_exposure / n
        """The equal share: every slot's budget before the master's first decision."""
        self.mode_scales = np.asarray(config.risk_mode_scales, dtype=float)
        self.interval = config.communication_interval
        self.dim = master_observation_dim(core.market.n_features, n)
        self.neutral = neutral_master_action(n, config.budget_levels)
        self.cut = np.zeros((core.n_envs, n), bool)
        """Slots whose budget the last decision lowered (only those may be trimmed)."""
        core.track_risk = True  # the observation reads the EWMA risk estimates
        self.stress = _stress_ratios(core.market.close)
        """(T,) the market's causal stress ratio (`telemetry.stress_ratio`), observed and used
        to label the telemetry's stressed bars."""
        self.telemetry = MasterTelemetry(core.n_envs, len(self.levels), self.stress > STRESS_RATIO)

    def reset(self, envs: np.ndarray | None = None) -> None:
        self.cut[slice(None) if envs is None else envs] = False
        self.telemetry.reset(envs)

    def decision_due(self, step: int) -> bool:
        """Whether the master's action is applied on episode step ``step`` (0-based)."""
        return step % self.interval == 0

    def check(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.ndim == 1:
            actions = actions[None, :]
        bad = (
            actions.shape[-1] != self.n_slots + 1
            or not np.all(np.isfinite(actions))
            or np.any(actions < 0)
            or np.any(actions >= self.nvec)
        )
        if bad:
            raise ValueError(
                f"master action {actions!r} is outside MultiDiscrete({self.nvec.tolist()})"
            )
        return actions.astype(np.int64)

    def apply(self, actions: np.ndarray) -> None:
        """Set every book's budgets and risk mode from ``actions`` (B, N + 1) or (N + 1,)."""
        actions = self.check(actions)
        core = self.core
        levels = self.levels[actions[:, :-1]]
        mode = actions[:, -1]
        budget = np.minimum(
            levels * self.base_budget * self.mode_scales[mode][:, None],
            self.config.limits.max_weight,
        )
        self.cut = budget < core.budget - 1e-12
        core.budget[:] = budget
        core.risk_mode[:] = mode
        self.telemetry.decision(actions)

    def reward_volatility(self) -> np.ndarray:
        """(B,) the unit of the ``risk_scaled`` master reward, read before a step: the
        portfolio's EWMA volatility per bar, at least ``volatility_floor`` x the slots' mean
        asset volatility (causal: `EnvMarket.volatility` at the decision bar); infinite (a
        reward of 0) on the first bars of the data, where no volatility is known yet."""
        core = self.core
        market_vol = core.market.volatility[core.sim.symbol, core.sim.t[:, None]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a book without any bar yet
            typical = np.nanmean(market_vol, axis=1)
        # Before any slot has two returns there is no scale at all: such a bar earns 0.
        typical = np.where(np.isfinite(typical) & (typical > 0), typical, np.inf)
        floor = self.config.master_reward.volatility_floor * typical
        return np.maximum(core.risk.volatility(), floor)

    def record(self, fills: Fills, trimmed: np.ndarray | None) -> None:
        """After the core's step: the master's telemetry of that step (``trimmed``: the mask
        of the trims `trims` returned for it, None when none)."""
        self.telemetry.record(self.core.sim.t, self.core.budget, fills, trimmed)

    def trims(self) -> tuple[Orders | None, np.ndarray | None]:
        """Orders trimming the slots above a budget the last decision cut (None: none)."""
        if not self.config.enforce_budget_cuts:
            return None, None
        sim = self.core.sim
        weight = np.abs(sim.weights())
        # Only a cut budget forces a trim; a position that grew past its budget by price drift
        # is left alone (budgets bind orders, not prices).
        over = self.cut & (weight > self.core.budget * 1.001 + 1e-9)
        if not over.any():
            return None, None
        shape = over.shape
        orders = Orders(
            active=np.ones(shape, bool),
            keep=np.zeros(shape),
            weight=self.core.budget * np.sign(sim.qty),
            voluntary=np.zeros(shape, bool),
        )
        return orders, over

    def observe(self, observations: np.ndarray, step: int) -> np.ndarray:
        """(B, dim) float32 master observations from the slots' observations (B, N, D) on
        episode step ``step``."""
        core = self.core
        f_dim = core.market.n_features
        end = core.observations.feature_dim
        current = observations[:, :, end - f_dim : end]
        n = self.n_slots
        batch = observations.shape[0]
        out = np.empty((batch, self.dim), np.float32)
        out[:, :f_dim] = np.add.reduce(current, axis=1) / n
        out[:, f_dim : 2 * f_dim] = np.maximum.reduce(current, axis=1)
        k = 2 * f_dim
        p = len(PORTFOLIO_FIELDS)
        out[:, k : k + p] = observations[:, 0, -p:]
        k += p
        weights = observations[:, :, end]  # the slot block starts with the weight
        out[:, k : k + n] = weights
        out[:, k + n : k + 2 * n] = core.budget
        out[:, k + 2 * n : k + 3 * n] = core.risk.slot_pnl * 100.0
        out[:, k + 3 * n : k + 4 * n] = core.risk.slot_edge()
        k += SLOT_FIELDS * n
        to_decision = (-step) % self.interval
        out[:, k] = np.sqrt(core.risk.portfolio_var) * 100.0
        out[:, k + 1] = core.risk.mean_correlation()
        out[:, k + 2] = core.risk.herfindahl(weights)
        out[:, k + 3] = np.log(self.stress[core.sim.t])
        out[:, k + 4] = to_decision == 0
        out[:, k + 5] = to_decision / self.interval
        return out


_STRESS_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _stress_ratios(close: np.ndarray) -> np.ndarray:
    """`stress_ratio` of a market's close, computed once per close array in a process (every
    env of a runner shares the market)."""
    cached = _STRESS_CACHE.get(id(close))
    if cached is None or cached[0] is not close:
        cached = (close, stress_ratio(close))
        _STRESS_CACHE.clear()
        _STRESS_CACHE[id(close)] = cached
    return cached[1]
