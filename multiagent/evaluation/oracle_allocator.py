"""The oracle allocator: the yardstick a learned master is measured against on synthetic data.

A synthetic market knows what no master can see: the regime in force and each symbol's current
signal strength (`multiagent.data.synthetic.SyntheticMarket`). The oracle allocator reads both
and sets budgets through the same `MasterSeat` a trained master uses, over the same trained
symbol agents, under the same costs, limits and forced trims. Its gain over the independent
agents (equal budgets) is how much allocation alone can add on that market; the share of it a
trained master captures says how far the master has come.

The rule, on decision bar t for the next bar's truth (the orders fill on t + 1):

- budget of slot i proportional to the information coefficient ``sqrt(R2_i)`` of its symbol,
  scaled so the slots' mean stays the equal share (snapped to the nearest budget level, 0 for
  a symbol without signal); equal budgets when no slot has a signal;
- risk mode by regime, a volatility target at the equal budgets' risk: ``calm`` neutral,
  ``volatile`` and ``crash`` defensive (their volatility is several times calm's). Aggressive
  in calm would lever the books past the gross-exposure limit, whose clipping flattens the
  strength allocation: on the learn check's market it scored a lower Sharpe and a deeper
  drawdown than this rule (`tests/evaluation/test_oracle_allocator.py` measures the rule).

Privileged by construction: never a baseline a policy could match from data, only a ceiling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from multiagent.data.synthetic import SyntheticMarket
from multiagent.envs.observations import NEUTRAL
from multiagent.errors import ConfigError

ORACLE_SYSTEM = "oracle_allocator"
DEFENSIVE = 0
REGIME_MODES = {"calm": NEUTRAL, "volatile": DEFENSIVE, "crash": DEFENSIVE}


class OracleAllocator:
    """A master that reads the synthetic market's truth (see the module docstring)."""

    reads_truth = True
    """The backtester calls `decide_at` (bars and symbols) instead of `decide`."""

    def __init__(
        self,
        truth: SyntheticMarket,
        budget_levels: Sequence[float],
        n_slots: int,
        name: str = f"{ORACLE_SYSTEM}_master",
        *,
        levels: bool = True,
        modes: bool = True,
    ) -> None:
        """``levels`` / ``modes`` False: keep the equal budgets / the neutral mode, to see what
        each half of the rule is worth (`scripts/oracle_parts.py`)."""
        self.name = name
        self.use_levels, self.use_modes = levels, modes
        self.levels = np.asarray(budget_levels, dtype=float)
        self.n_slots = n_slots
        self.strength = np.sqrt(truth.signal_r2)
        by_regime = np.array([REGIME_MODES.get(n, NEUTRAL) for n in truth.regime_names])
        self.mode = by_regime[truth.regime]

    def check(self, observation_dim: int, market_dim: int, nvec: Sequence[int]) -> None:
        wanted = [len(self.levels)] * self.n_slots + [3]
        if [int(n) for n in nvec] != wanted:
            raise ConfigError(
                f"the oracle allocator was built for actions {wanted}, the env's master action "
                f"is {[int(n) for n in nvec]}"
            )

    def decide(self, observations: np.ndarray, market: np.ndarray) -> np.ndarray:
        raise ConfigError("the oracle allocator reads the market's truth: call decide_at")

    def decide_at(self, t: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        """(R,) decision bars and (R, N) market rows -> (R, N + 1) master actions."""
        bar = np.minimum(np.asarray(t) + 1, self.strength.shape[1] - 1)
        strength = self.strength[symbols, bar[:, None]]
        mean = strength.mean(axis=1, keepdims=True)
        multiple = np.divide(strength, mean, out=np.ones_like(strength), where=mean > 0)
        if not self.use_levels:
            multiple = np.ones_like(strength)
        levels = np.abs(multiple[..., None] - self.levels).argmin(axis=-1)
        mode = self.mode[bar] if self.use_modes else np.full(len(bar), NEUTRAL)
        return np.column_stack([levels, mode]).astype(np.int64)
