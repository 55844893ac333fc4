"""Feature normalizers fitted only on the past.

- ``expanding`` (default): z-score with the mean and std of all earlier-or-equal valid values of
  the same symbol and feature. Fully causal.
- ``rolling``: the same over the last ``window`` bars.
- ``train``: one mean/std per feature, pooled over symbols, from bars up to ``fit_end`` only
  (the end of the training split). Causal for every bar after ``fit_end``; bars inside the
  training period are scaled with statistics of the training period, the usual
  fit-on-train convention, never with validation or test data.
- ``none``: raw values.

Statistics use running sums over time, so the value at bar t is computed from the same prefix
whatever comes after t (the leak tests check bit-for-bit equality).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from multiagent.schema import Settings

NormalizationMethod = Literal["expanding", "rolling", "train", "none"]


class NormalizationConfig(Settings):
    method: NormalizationMethod = Field("expanding", description="How statistics are fitted.")
    window: int = Field(252, ge=2, description="Bars in the rolling window (method=rolling).")
    min_periods: int = Field(20, ge=2, description="Valid values needed before output is valid.")
    clip: float | None = Field(5.0, gt=0, description="Clip z-scores to [-clip, clip]; null=off.")


@dataclass(frozen=True)
class NormalizerStats:
    """Fitted statistics of the ``train`` method, kept for reuse at inference time."""

    mean: np.ndarray
    """(F,) per-feature mean over the fit period."""
    std: np.ndarray
    """(F,) per-feature standard deviation over the fit period."""


def _running_moments(
    values: np.ndarray, valid: np.ndarray, window: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and sample std over time axis 1 of (S, T, F) arrays, prefix- or window-wise."""
    x = np.where(valid, values, 0.0)
    count = np.cumsum(valid, axis=1, dtype=np.float64)
    total = np.cumsum(x, axis=1)
    squares = np.cumsum(x * x, axis=1)
    if window is not None:
        for array in (count, total, squares):
            shifted = np.zeros_like(array)
            shifted[:, window:] = array[:, :-window]
            array -= shifted
    safe = np.maximum(count, 1.0)
    mean = total / safe
    variance = np.maximum(squares - safe * mean * mean, 0.0) / np.maximum(count - 1.0, 1.0)
    return count, mean, np.sqrt(variance)


def normalize(
    values: np.ndarray,
    valid: np.ndarray,
    which: tuple[bool, ...],
    config: NormalizationConfig,
    fit_end: int | None = None,
) -> tuple[np.ndarray, np.ndarray, NormalizerStats | None]:
    """Normalize the features flagged in ``which``; return (values, valid, train stats)."""
    out = values.copy()
    out_valid = valid.copy()
    selected = np.array(which, dtype=bool)
    if config.method == "none" or not selected.any():
        return out, out_valid, None
    x, ok = values[:, :, selected], valid[:, :, selected]
    stats: NormalizerStats | None = None
    if config.method == "train":
        if fit_end is None:
            raise ValueError("method 'train' needs fit_end (the last bar of the training split)")
        head, head_ok = x[:, : fit_end + 1], ok[:, : fit_end + 1]
        count = head_ok.sum(axis=(0, 1))
        mean = np.where(head_ok, head, 0.0).sum(axis=(0, 1)) / np.maximum(count, 1)
        squares = np.where(head_ok, (head - mean) ** 2, 0.0).sum(axis=(0, 1))
        std = np.sqrt(squares / np.maximum(count - 1, 1))
        stats = NormalizerStats(mean=mean, std=std)
        z = (x - mean) / np.maximum(std, 1e-8)
        enough = np.broadcast_to(count >= config.min_periods, x.shape)
    else:
        window = config.window if config.method == "rolling" else None
        count, mean, std = _running_moments(x, ok, window)
        z = (x - mean) / np.maximum(std, 1e-8)
        enough = count >= config.min_periods
    if config.clip is not None:
        z = np.clip(z, -config.clip, config.clip)
    out[:, :, selected] = z
    out_valid[:, :, selected] = ok & enough
    return out, out_valid, stats
