"""Risk limits 4 and 6 of the simulator (`multiagent.envs.simulator`): the two that weigh a
portfolio's slots together.

``max_open_positions`` refuses new positions beyond the room left, in slot order;
``max_gross_exposure`` scales the growing part of every position so that ``sum |value| <= cap *
equity``. Each needs the whole (B, N) row at once, unlike the per-slot rules the step applies
inline, so they are pure functions of arrays, kept out of the step's state handling.
"""

from __future__ import annotations

import numpy as np


def limit_open_positions(qty: np.ndarray, target: np.ndarray, max_open: int) -> np.ndarray:
    opening = (target != 0) & (qty == 0)
    if not opening.any():
        return target
    staying = ((target != 0) & (qty != 0)).sum(axis=1)
    rank = np.cumsum(opening, axis=1)
    refused = opening & (rank > (max_open - staying)[:, None])
    return np.where(refused, 0.0, target)


def limit_gross_exposure(
    qty: np.ndarray, target: np.ndarray, price: np.ndarray, equity: np.ndarray, cap: float
) -> np.ndarray:
    size = np.abs(target)
    limit = cap * np.maximum(equity, 0.0)
    over = np.add.reduce(size * price, axis=1) > limit * (1 + 1e-12)
    if not over.any():
        return target
    kept = np.where(qty * target > 0, np.minimum(size, np.abs(qty)), 0.0)
    grown = size - kept
    base = np.add.reduce(kept * price, axis=1)
    extra = np.add.reduce(grown * price, axis=1)
    scale = np.clip((limit - base) / np.where(extra > 0, extra, 1.0), 0.0, 1.0)
    scale = np.where(over, scale, 1.0)[:, None]
    return np.sign(target) * (kept + scale * grown)
