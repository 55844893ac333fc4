"""Reward terms: composable, weighted, each reported every step.

Symbol agents (per slot; *capital* = equity before the step x max(budget, 0.01), the money the
slot may use, so rewards do not shrink as the number of symbols grows):

| term | value before weighting | units |
|---|---|---|
| realized_pnl | P&L booked on closed shares / capital | x ``scale`` |
| unrealized_pnl | change of open P&L / capital | x ``scale`` |
| alpha | (P&L - costs) / capital - the symbol's own return (vs holding it) | x ``scale`` |
| cost | - costs / capital | x ``scale`` |
| drawdown | - increase of portfolio drawdown (fraction of peak) | x ``scale`` |
| losing_hold | -1 per bar a losing position is held beyond ``losing_grace`` bars | per step |
| idle | -1 per bar flat beyond ``idle_grace`` bars | per step |
| diversity | entropy of the recent executed-action histogram / log(A), in [0, 1] | per step |
| action_repeat | -1 when a non-HOLD action repeats the previous one | per step |

Each term is multiplied by its weight in `RewardWeights`; `info["reward_terms"]` holds the
weighted terms, which sum to the reward. With the defaults the reward is the slot's net P&L on its
capital in percent. Every term uses only the bar just filled and earlier ones.

The master gets ``portfolio_return`` (net, x scale), ``risk`` (-risk_aversion x the squared
scaled return) and ``drawdown`` (-weight x scaled increase of drawdown). The regime portfolio gets
``gross_return``, ``cost`` and ``benchmark`` (- the equal-weight return of its assets).
"""

from __future__ import annotations

import numpy as np

from multiagent.envs.config import MasterRewardConfig, RewardConfig
from multiagent.envs.orders import Fills
from multiagent.envs.simulator import Simulator

SYMBOL_TERMS = (
    "realized_pnl",
    "unrealized_pnl",
    "alpha",
    "cost",
    "drawdown",
    "losing_hold",
    "idle",
    "diversity",
    "action_repeat",
)
MASTER_TERMS = ("portfolio_return", "risk", "drawdown")
REGIME_TERMS = ("gross_return", "cost", "benchmark")
TERM_DTYPE = np.dtype([(name, np.float64) for name in SYMBOL_TERMS])


class SymbolRewards:
    """Per-slot shaped rewards; keeps the little history the context-aware terms need."""

    def __init__(self, config: RewardConfig, n_envs: int, n_slots: int, n_actions: int) -> None:
        self.config = config
        w = config.weights
        self.weights = np.array([getattr(w, name) for name in SYMBOL_TERMS])
        self.n_actions = n_actions
        self._decay = 0.5 ** (1.0 / config.diversity_halflife)
        # The idle counter and action history only advance when their term is weighted.
        self.previous = np.zeros((n_envs, n_slots), np.int64)
        self.flat_bars = np.zeros((n_envs, n_slots), np.int64)
        self.histogram = np.zeros((n_envs, n_slots, n_actions))

    def reset(self, envs: np.ndarray | None = None) -> None:
        index = slice(None) if envs is None else envs
        self.previous[index] = 0
        self.flat_bars[index] = 0
        self.histogram[index] = 0.0

    def step(
        self, fills: Fills, sim: Simulator, budget: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(reward (B, N), weighted terms (B, N, K)) of the step just taken by ``sim``.

        Terms of weight 0 are reported as 0 and not computed.
        """
        c, w = self.config, self.weights
        scale = c.scale / (fills.equity_before[:, None] * np.maximum(budget, 0.01))
        terms = np.zeros((*budget.shape, len(SYMBOL_TERMS)))
        if w[0]:
            terms[..., 0] = fills.realized * (scale * w[0])
        if w[1]:
            terms[..., 1] = fills.unrealized_change * (scale * w[1])
        if w[2] or w[3]:
            cost = fills.costs.total
            if w[2]:
                terms[..., 2] = ((fills.pnl - cost) * scale - fills.asset_return * c.scale) * w[2]
            if w[3]:
                terms[..., 3] = cost * (scale * -w[3])
        if w[4]:
            terms[..., 4] = fills.drawdown_increase[:, None] * (-c.scale * w[4])
        if w[5]:
            losing = (sim.qty * (sim.mark - sim.entry)) < 0
            terms[..., 5] = np.where(losing & (sim.hold > c.losing_grace), -w[5], 0.0)
        if w[6]:
            self.flat_bars = np.where(sim.qty != 0, 0, self.flat_bars + 1)
            terms[..., 6] = np.where(self.flat_bars > c.idle_grace, -w[6], 0.0)
        if w[7]:
            self.histogram *= self._decay
            flat = self.histogram.reshape(-1, self.n_actions)
            flat[np.arange(len(flat)), actions.reshape(-1)] += 1.0
            p = self.histogram / self.histogram.sum(axis=-1, keepdims=True)
            logs = np.log(np.where(p > 0, p, 1.0))
            terms[..., 7] = -(p * logs).sum(axis=-1) / np.log(self.n_actions) * w[7]
        if w[8]:
            repeated = (actions == self.previous) & (actions != 0)
            terms[..., 8] = np.where(repeated, -w[8], 0.0)
            self.previous = actions
        return np.add.reduce(terms, axis=-1), terms


def master_reward(
    fills: Fills, config: MasterRewardConfig, volatility: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(reward (B,), weighted terms (B, 3)) of the portfolio-level risk-adjusted return.

    ``volatility`` (B,): the portfolio's per-bar volatility known before this step (already
    floored), the unit of the ``risk_scaled`` kind; ignored by ``mean_variance``.
    """
    ret = fills.equity / fills.equity_before - 1.0
    if config.kind == "risk_scaled":
        if volatility is None:
            raise ValueError("the risk_scaled master reward needs the portfolio volatility")
        scaled = ret / volatility
        terms = np.column_stack(
            [
                scaled,
                -config.risk_aversion * scaled**2,
                -config.drawdown * fills.drawdown_increase / volatility,
            ]
        )
        return terms.sum(axis=1), terms
    ret = ret * config.scale
    terms = np.column_stack(
        [
            ret,
            -config.risk_aversion * ret**2,
            -config.drawdown * fills.drawdown_increase * config.scale,
        ]
    )
    return terms.sum(axis=1), terms


def regime_reward(fills: Fills, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(reward (B,), terms (B, 3)): net return in excess of the equal-weight benchmark."""
    cost = fills.costs.total.sum(axis=1) / fills.equity_before
    net = fills.equity / fills.equity_before - 1.0
    benchmark = fills.asset_return.mean(axis=1)
    terms = np.column_stack([net + cost, -cost, -benchmark]) * scale
    return terms.sum(axis=1), terms
