"""The simulator's contract: `Orders` in, `Fills` out, one (B, N) array per slot field.

Action schemes, reward terms, telemetry, the master and the backtester build or read only these
two records; they live apart from `Simulator` so those modules depend on the records, not on the
engine. What the fields mean when an order is resolved (``keep``/``weight``, timing, the order in
which limits apply, P&L accounting) is specified in `multiagent.envs.simulator`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from multiagent.envs.costs import CostParts


class Orders(NamedTuple):
    """Orders decided on bar t, (B, N) each."""

    active: np.ndarray
    """bool: the slot sends an order."""
    keep: np.ndarray
    """Fraction of the current position kept."""
    weight: np.ndarray
    """Position value added, as a fraction of equity at the fill price."""
    limit: np.ndarray | None = None
    """Limit price, NaN for a market order; None = all market orders."""
    voluntary: np.ndarray | None = None
    """bool: False where the env, not the agent, imposed the order; None = all voluntary."""
    cap: np.ndarray | None = None
    """Per-slot max |value| / equity (a risk budget), on top of ``max_weight``; None = none."""

    @staticmethod
    def none(n_envs: int, n_slots: int) -> Orders:
        shape = (n_envs, n_slots)
        return Orders(np.zeros(shape, bool), np.ones(shape), np.zeros(shape))


class Fills(NamedTuple):
    """What one step did, (B, N) per slot or (B,) per portfolio; currency unless stated."""

    price: np.ndarray
    """Price a market order of the slot filled (or would have filled) at; NaN without a bar.
    A filled limit order shows its limit fill price."""
    traded: np.ndarray
    """Shares bought (+) or sold (-)."""
    filled: np.ndarray
    """bool: a trade happened."""
    clipped: np.ndarray
    """bool: an order was changed or refused by a limit or by cash."""
    forced: np.ndarray
    """bool: a trade the agent did not ask for (breaker de-risking, budget trims)."""
    costs: CostParts
    realized: np.ndarray
    """P&L booked on the closed part of positions this step (before costs)."""
    unrealized_change: np.ndarray
    pnl: np.ndarray
    """Gross P&L of each slot this step: realized + unrealized change."""
    asset_return: np.ndarray
    """Close-to-close simple return of each slot's symbol this step (0 without a bar)."""
    equity_before: np.ndarray
    equity: np.ndarray
    gross_exposure: np.ndarray
    """sum |position value| / equity after the step."""
    traded_notional: np.ndarray
    """(B,) sum of |shares traded| x fill price."""
    drawdown: np.ndarray
    """Fraction below peak equity after the step."""
    drawdown_increase: np.ndarray
    breaker_tripped: np.ndarray
    done: np.ndarray
    """bool (B,): no next bar left, or equity exhausted."""
    bankrupt: np.ndarray
