"""Observation interpreter: simulator state + precomputed features -> float32 vectors.

Every symbol-level observation (all envs share the layout, so one symbol policy can act in any of
them) is ``[features window | slot block | portfolio block]``:

| block | fields | units |
|---|---|---|
| features window | the causal features of the slot's symbol at bars ``t-W+1 .. t``, oldest first, flattened (W x F) | normalized (see `multiagent.data.normalization`); 0 before the data starts |
| slot | weight, budget, unused_budget | fraction of equity |
| | unrealized_return | ``(mark / entry - 1)`` signed by the position, 0 when flat |
| | hold | bars held / ``hold_scale`` |
| | is_open | 1 when a position is held |
| portfolio | cash, gross_exposure, drawdown | fraction of equity / of peak equity |
| | breaker | 1 while the circuit breaker's cooldown runs |
| | time_left | bars left in the episode / episode length |
| | mode_defensive, mode_neutral, mode_aggressive | one-hot risk mode set by the master (neutral elsewhere) |
| | open_positions | open positions / max open positions (1 when unlimited: / N) |

No field names the symbol, its price level or the calendar: market identity is never observed.
Everything at bar t is known at bar t's close (the leak tests perturb bars after t and compare).
"""

from __future__ import annotations

import numpy as np

from multiagent.envs.config import ObservationConfig
from multiagent.envs.market import EnvMarket
from multiagent.envs.simulator import Simulator

SLOT_FIELDS = ("weight", "budget", "unused_budget", "unrealized_return", "hold", "is_open")
PORTFOLIO_FIELDS = (
    "cash",
    "gross_exposure",
    "drawdown",
    "breaker",
    "time_left",
    "mode_defensive",
    "mode_neutral",
    "mode_aggressive",
    "open_positions",
)
NEUTRAL = 1


class ObservationBuilder:
    def __init__(self, market: EnvMarket, config: ObservationConfig) -> None:
        self.market = market
        self.config = config
        self.window = config.window
        self._lags = np.arange(config.window - 1, -1, -1)

    @property
    def feature_dim(self) -> int:
        return self.window * self.market.n_features

    @property
    def dim(self) -> int:
        return self.feature_dim + len(SLOT_FIELDS) + len(PORTFOLIO_FIELDS)

    def feature_names(self) -> tuple[str, ...]:
        names = [f"{name}@t-{lag}" for lag in self._lags for name in self.market.feature_names]
        return (*names, *SLOT_FIELDS, *PORTFOLIO_FIELDS)

    def feature_windows(self, symbol: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(B, N, W * F) feature windows ending at bar ``t`` (B,)."""
        bars = t[:, None] - self._lags
        windows = self.market.features[symbol[:, :, None], np.maximum(bars, 0)[:, None, :]]
        if bars.min() < 0:
            windows = windows * (bars >= 0)[:, None, :, None]
        return windows.reshape(*symbol.shape, -1)

    def build(
        self,
        sim: Simulator,
        budget: np.ndarray,
        risk_mode: np.ndarray | None = None,
        max_open: int | None = None,
    ) -> np.ndarray:
        """(B, N, dim) float32 observations of every slot."""
        n_envs, n_slots = budget.shape
        out = np.empty((n_envs, n_slots, self.dim), np.float32)
        f = self.feature_dim
        out[..., :f] = self.feature_windows(sim.symbol, sim.t)
        qty, mark, equity = sim.qty, sim.mark, sim.equity[:, None]
        values = qty * mark
        weight = values / equity
        is_open = qty != 0
        slot = out[..., f : f + len(SLOT_FIELDS)]
        slot[..., 0] = weight
        slot[..., 1] = budget
        slot[..., 2] = np.maximum(budget - np.abs(weight), 0.0)
        entry = np.where(is_open, sim.entry, mark)
        slot[..., 3] = (mark / np.where(entry > 0, entry, 1.0) - 1.0) * np.sign(qty)
        slot[..., 4] = sim.hold / self.config.hold_scale
        slot[..., 5] = is_open
        port = out[..., f + len(SLOT_FIELDS) :]
        length = np.maximum(sim.stop - 1 - sim.start, 1)
        port[..., 0] = sim.cash[:, None] / equity
        port[..., 1] = np.add.reduce(np.abs(values), axis=1)[:, None] / equity
        port[..., 2] = 1.0 - equity / sim.peak[:, None]
        port[..., 3] = (sim.cooldown > 0)[:, None]
        port[..., 4] = ((sim.stop - 1 - sim.t) / length)[:, None]
        port[..., 5:8] = 0.0
        mode = np.full(n_envs, NEUTRAL) if risk_mode is None else risk_mode
        if n_envs == 1:
            port[..., 5 + int(mode[0])] = 1.0
        else:
            port[np.arange(n_envs), :, 5 + mode] = 1.0
        port[..., 8] = np.add.reduce(is_open, axis=1)[:, None] / (max_open or n_slots)
        return out
