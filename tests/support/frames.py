"""Small market files: a clean daily OHLCV table and a writer by suffix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def ohlcv_frame(
    n: int = 60, seed: int = 0, start: str = "2021-01-04", freq: str = "B"
) -> pd.DataFrame:
    """A clean daily OHLCV table that passes validation."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * 1.005
    low = np.minimum(open_, close) * 0.995
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=n, freq=freq).strftime("%Y-%m-%d"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.integers(1000, 5000, n).astype(float),
        }
    )


def write(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` at ``path`` (parquet for ``.parquet``, else CSV), parent folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path
