"""Telemetry: what agents did in an episode, and the portfolio's risk picture.

`EpisodeTelemetry` counts per portfolio: trades, voluntary vs forced trades (breaker de-risking,
budget trims), sanitized actions (masked actions sent anyway, executed as HOLD), clipped orders
(changed by a limit or by cash), the executed-action histogram, mean gross exposure, turnover
(traded notional / equity, mean per bar, as in reports) and costs. Envs put `summary()` in the
final step's info.

`PortfolioRisk` keeps exponentially weighted statistics with O(1) work per bar whatever the
history length: portfolio volatility (per bar), the mean pairwise correlation of the slots'
returns, and the Herfindahl concentration of the position weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from multiagent.envs.simulator import Fills


class EpisodeTelemetry:
    def __init__(self, n_envs: int, n_slots: int, action_names: tuple[str, ...]) -> None:
        self.action_names = action_names
        shape = (n_envs, n_slots)
        self.trades = np.zeros(shape, np.int64)
        self.forced = np.zeros(shape, np.int64)
        self.sanitized = np.zeros(shape, np.int64)
        self.clipped = np.zeros(shape, np.int64)
        self.actions = np.zeros((n_envs, len(action_names)), np.int64)
        self.exposure = np.zeros(n_envs)
        self.turnover = np.zeros(n_envs)
        self.costs = np.zeros(n_envs)
        self.steps = np.zeros(n_envs, np.int64)

    def reset(self, envs: np.ndarray | None = None) -> None:
        index = slice(None) if envs is None else envs
        for array in (
            self.trades,
            self.forced,
            self.sanitized,
            self.clipped,
            self.actions,
            self.exposure,
            self.turnover,
            self.costs,
            self.steps,
        ):
            array[index] = 0

    def record(
        self,
        fills: Fills,
        executed: np.ndarray | None = None,
        sanitized: np.ndarray | None = None,
    ) -> None:
        self.trades += fills.filled
        self.forced += fills.forced
        self.clipped += fills.clipped
        if sanitized is not None:
            self.sanitized += sanitized
        if executed is not None:
            n_envs, n_actions = self.actions.shape
            if n_envs == 1:
                self.actions[0] += np.bincount(executed.reshape(-1), minlength=n_actions)
            else:
                offsets = np.arange(n_envs)[:, None] * n_actions
                counts = np.bincount((executed + offsets).reshape(-1), minlength=n_envs * n_actions)
                self.actions += counts.reshape(n_envs, n_actions)
        self.turnover += fills.traded_notional / fills.equity_before
        self.costs += np.add.reduce(fills.costs.total, axis=1)
        self.exposure += fills.gross_exposure
        self.steps += 1

    def summary(self, env: int = 0) -> dict[str, Any]:
        steps = max(int(self.steps[env]), 1)
        trades = int(self.trades[env].sum())
        forced = int(self.forced[env].sum())
        return {
            "steps": int(self.steps[env]),
            "trades": trades,
            "voluntary_trades": trades - forced,
            "forced_trades": forced,
            "sanitized_actions": int(self.sanitized[env].sum()),
            "clipped_orders": int(self.clipped[env].sum()),
            "action_histogram": dict(
                zip(self.action_names, self.actions[env].tolist(), strict=True)
            ),
            "mean_exposure": float(self.exposure[env] / steps),
            # One meaning everywhere (as in reports): traded notional / equity, mean per bar.
            "turnover": float(self.turnover[env] / steps),
            "costs": float(self.costs[env]),
        }


class PortfolioRisk:
    def __init__(self, n_envs: int, n_slots: int, halflife: float) -> None:
        self.alpha = 1.0 - 0.5 ** (1.0 / halflife)
        self.n_slots = n_slots
        self.portfolio_var = np.zeros(n_envs)
        self.cov = np.zeros((n_envs, n_slots, n_slots))
        self.slot_pnl = np.zeros((n_envs, n_slots))
        """EWMA of each slot's net P&L per bar, as a fraction of equity (the master's view of
        how each symbol agent is doing lately)."""
        self.seen = np.zeros(n_envs, np.int64)

    def reset(self, envs: np.ndarray | None = None) -> None:
        index = slice(None) if envs is None else envs
        self.portfolio_var[index] = 0.0
        self.cov[index] = 0.0
        self.slot_pnl[index] = 0.0
        self.seen[index] = 0

    def update(
        self,
        portfolio_return: np.ndarray,
        asset_returns: np.ndarray,
        slot_returns: np.ndarray | None = None,
    ) -> None:
        a = self.alpha
        self.portfolio_var = (1 - a) * self.portfolio_var + a * portfolio_return**2
        self.cov *= 1 - a
        self.cov += a * asset_returns[:, :, None] * asset_returns[:, None, :]
        if slot_returns is not None:
            self.slot_pnl = (1 - a) * self.slot_pnl + a * slot_returns
        self.seen += 1

    def volatility(self) -> np.ndarray:
        return np.sqrt(self.portfolio_var)

    def mean_correlation(self) -> np.ndarray:
        """Mean off-diagonal correlation of slot returns (0 with fewer than 2 slots).

        ``(s^-1)' C s^-1 - n`` is the sum of the off-diagonal correlations: one quadratic form.
        """
        n = self.n_slots
        if n < 2:
            return np.zeros(len(self.cov))
        variance = self.cov.reshape(len(self.cov), -1)[:, :: n + 1]
        known = variance > 0
        inverse = np.where(known, 1.0 / np.sqrt(np.where(known, variance, 1.0)), 0.0)
        total = np.einsum("bi,bij,bj->b", inverse, self.cov, inverse)
        return (total - known.sum(axis=1)) / (n * (n - 1))

    @staticmethod
    def herfindahl(weights: np.ndarray) -> np.ndarray:
        """sum w_i^2 / (sum |w_i|)^2: 1/N when spread evenly, 1 when all in one (0 when flat)."""
        gross = np.add.reduce(np.abs(weights), axis=1)
        squares = np.add.reduce(weights * weights, axis=1)
        return np.where(gross > 0, squares / np.where(gross > 0, gross * gross, 1.0), 0.0)
