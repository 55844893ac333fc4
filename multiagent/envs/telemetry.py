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

import warnings
from typing import Any

import numpy as np
import pandas as pd

from multiagent.envs.orders import Fills


def reset_rows(owner: object, names: tuple[str, ...], envs: np.ndarray | None) -> None:
    """Zero the rows ``envs`` (all when None) of each counter array ``owner.<name>``."""
    index = slice(None) if envs is None else envs
    for name in names:
        getattr(owner, name)[index] = 0


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

    COUNTERS = (
        "trades", "forced", "sanitized", "clipped", "actions", "exposure", "turnover", "costs",
        "steps",
    )  # fmt: skip

    def reset(self, envs: np.ndarray | None = None) -> None:
        reset_rows(self, self.COUNTERS, envs)

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
    def __init__(
        self, n_envs: int, n_slots: int, halflife: float, *, edge_halflife: float = 60.0
    ) -> None:
        self.alpha = 1.0 - 0.5 ** (1.0 / halflife)
        self.edge_alpha = 1.0 - 0.5 ** (1.0 / edge_halflife)
        self.edge_mean = np.zeros((n_envs, n_slots))
        self.edge_square = np.zeros((n_envs, n_slots))
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
        self.edge_mean[index] = 0.0
        self.edge_square[index] = 0.0
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
            e = self.edge_alpha
            self.edge_mean = (1 - e) * self.edge_mean + e * slot_returns
            self.edge_square = (1 - e) * self.edge_square + e * slot_returns**2
        self.seen += 1

    def slot_edge(self) -> np.ndarray:
        """(B, N) each slot's recent risk-adjusted edge: EWMA net return / EWMA root mean
        square (a per-bar Sharpe over about two half-lives, in [-1, 1]). Scale-free, so a slot
        whose budget was halved keeps its edge; 0 for a slot that has not traded."""
        root = np.sqrt(self.edge_square)
        return np.divide(self.edge_mean, root, out=np.zeros_like(root), where=root > 1e-12)

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


STRESS_RATIO = 1.5
"""A bar is stressed when the market's `stress_ratio` exceeds this."""


class MasterTelemetry:
    """What a master did in an episode, per book: how it used its budget levels and risk
    modes, how much it allocated and how much the books held on calm vs stressed bars (does it
    cut risk when markets turn?), and the turnover its cuts forced.

    ``stressed`` (T,) bool labels the market's bars from data alone (`stressed_bars`), so the
    same figures exist on real data, where no regime is known.
    """

    def __init__(self, n_envs: int, n_levels: int, stressed: np.ndarray) -> None:
        self.stressed = stressed
        self.levels = np.zeros((n_envs, n_levels), np.int64)
        self.modes = np.zeros((n_envs, 3), np.int64)
        self.budget = np.zeros((n_envs, 2))
        self.exposure = np.zeros((n_envs, 2))
        self.bars = np.zeros((n_envs, 2), np.int64)
        self.forced_turnover = np.zeros(n_envs)
        self.steps = np.zeros(n_envs, np.int64)

    COUNTERS = ("levels", "modes", "budget", "exposure", "bars", "forced_turnover", "steps")

    def reset(self, envs: np.ndarray | None = None) -> None:
        reset_rows(self, self.COUNTERS, envs)

    def decision(self, actions: np.ndarray) -> None:
        """(B, N + 1) master actions applied on this step."""
        n_envs, n_levels = self.levels.shape
        offsets = np.arange(n_envs)[:, None] * n_levels
        counts = np.bincount((actions[:, :-1] + offsets).reshape(-1), minlength=n_envs * n_levels)
        self.levels += counts.reshape(n_envs, n_levels)
        self.modes[np.arange(n_envs), actions[:, -1]] += 1

    def record(
        self, t: np.ndarray, budget: np.ndarray, fills: Fills, forced: np.ndarray | None
    ) -> None:
        """One step: ``t`` (B,) fill bars, ``budget`` (B, N) the step's budgets, ``forced``
        (B, N) slots trimmed to a cut budget (None: none)."""
        bucket = self.stressed[t].astype(np.int64)
        rows = np.arange(len(t))
        self.budget[rows, bucket] += budget.sum(axis=1)
        self.exposure[rows, bucket] += fills.gross_exposure
        self.bars[rows, bucket] += 1
        if forced is not None:
            notional = np.abs(fills.traded) * np.nan_to_num(fills.price)
            self.forced_turnover += np.where(forced, notional, 0.0).sum(axis=1) / (
                fills.equity_before
            )
        self.steps += 1

    def summary(self, env: int = 0) -> dict[str, Any]:
        levels = self.levels[env]
        modes = self.modes[env]

        def per_bar(values: np.ndarray, bucket: int) -> float | None:
            bars = int(self.bars[env, bucket])
            return float(values[env, bucket] / bars) if bars else None

        return {
            "decisions": int(modes.sum()),
            "level_share": (levels / max(levels.sum(), 1)).tolist(),
            "mode_share": (modes / max(modes.sum(), 1)).tolist(),
            "budget_calm": per_bar(self.budget, 0),
            "budget_stressed": per_bar(self.budget, 1),
            "exposure_calm": per_bar(self.exposure, 0),
            "exposure_stressed": per_bar(self.exposure, 1),
            "stressed_share": float(self.bars[env, 1] / max(self.steps[env], 1)),
            "forced_turnover": float(self.forced_turnover[env] / max(self.steps[env], 1)),
        }


def stress_ratio(close: np.ndarray, short: int = 20, long: int = 250) -> np.ndarray:
    """(T,) how turbulent the market is at each bar, causally: per symbol the std of log
    returns over the last ``short`` bars against the last ``long`` bars (each needs half its
    window), the median over symbols; 1 where unknown (the first bars)."""
    log_close = np.log(close)
    returns = pd.DataFrame((log_close[:, 1:] - log_close[:, :-1]).T)
    recent = returns.rolling(short, min_periods=short // 2).std()
    longer = returns.rolling(long, min_periods=long // 2).std()
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = (recent / longer).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # bars before any window: all NaN
        median = np.nanmedian(ratios, axis=1)
    return np.concatenate([[1.0], np.nan_to_num(median, nan=1.0)])


def stressed_bars(
    close: np.ndarray, short: int = 20, long: int = 250, ratio: float = STRESS_RATIO
) -> np.ndarray:
    """(T,) bool: bars whose `stress_ratio` exceeds ``ratio`` (recent volatility 1.5x the
    longer-run one by default). Only bars up to t enter bar t's label."""
    return stress_ratio(close, short, long) > ratio
