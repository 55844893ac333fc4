"""Exogenous series joined causally: a value is usable only once it is published.

Market-wide series (VIX, rates, macro prints) have a timestamp and value columns; per-symbol
series (sentiment, model signals) add a symbol column. A value stamped at time τ with
publication lag L is visible at every bar whose timestamp is >= τ + L, and the bar takes the
latest such value (an as-of join). Bar timestamps mark when the bar's close is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from multiagent.data.errors import DataProblem, DataValidationError
from multiagent.data.panel import MarketPanel
from multiagent.data.readers import read_table
from multiagent.data.schema import ROW, SYMBOL, TIMESTAMP, canonical_name
from multiagent.data.timestamps import parse_timestamps


@dataclass(frozen=True)
class ExogenousSeries:
    """Values of named columns on their own timestamps; ``symbol`` None = market-wide."""

    timestamps: np.ndarray
    values: dict[str, np.ndarray]
    symbols: np.ndarray | None = None
    source: str = ""


def load_exogenous(path: str | Path, columns: list[str] | None = None) -> ExogenousSeries:
    """Read an exogenous file; timestamps must parse and values must be numbers."""
    path = Path(path)
    frame = read_table(path)
    mapping = {c: canonical_name(c) for c in frame.columns}
    frame = frame.rename(columns={c: m for c, m in mapping.items() if m in (TIMESTAMP, SYMBOL)})
    file = str(path)
    if TIMESTAMP not in frame.columns:
        raise DataValidationError(
            [DataProblem("missing_column", "no timestamp/date column", "add one", file=file)]
        )
    value_columns = columns or [c for c in frame.columns if c not in (TIMESTAMP, SYMBOL, ROW)]
    problems: list[DataProblem] = []
    missing = [c for c in value_columns if c not in frame.columns]
    if missing:
        problems.append(
            DataProblem("missing_column", f"no column(s) {', '.join(missing)}", "", file=file)
        )
    times, _, time_problems, _ = parse_timestamps(
        frame[TIMESTAMP], file=file, symbol=None, fmt=None
    )
    problems.extend(time_problems)
    values: dict[str, np.ndarray] = {}
    for column in value_columns:
        if column in missing:
            continue
        numbers = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(numbers)
        if bad.any():
            rows = np.flatnonzero(bad)
            problems.append(
                DataProblem(
                    "nan",
                    f"{int(bad.sum())} missing or non-numeric values",
                    "drop those rows: the as-of join carries the last good value forward",
                    file=file,
                    column=column,
                    rows=(int(rows[0]) + 1, int(rows[-1]) + 1),
                )
            )
        values[column] = numbers
    if problems or times is None:
        raise DataValidationError(problems)
    symbols = frame[SYMBOL].astype(str).to_numpy() if SYMBOL in frame.columns else None
    return ExogenousSeries(times.to_numpy().astype("datetime64[ns]"), values, symbols, file)


def _asof(bar_times: np.ndarray, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    # Last published value at or before each bar: searchsorted(side="right") - 1.
    position = np.searchsorted(times, bar_times, side="right") - 1
    out = np.full(len(bar_times), np.nan)
    known = position >= 0
    out[known] = values[position[known]]
    return out


def asof_join(
    panel: MarketPanel,
    series: ExogenousSeries,
    publication_lag: timedelta | str = "0s",
) -> dict[str, np.ndarray]:
    """Join each value column onto the panel: name -> (S, T) array, NaN before first publication.

    Market-wide columns are broadcast to every symbol; per-symbol columns go to their symbol
    (symbols absent from the series get NaN).
    """
    lag = pd.Timedelta(publication_lag).to_timedelta64()
    available = series.timestamps + lag
    out: dict[str, np.ndarray] = {}
    for name, values in series.values.items():
        joined = np.full((panel.n_symbols, panel.n_bars), np.nan)
        if series.symbols is None:
            joined[:] = _asof(panel.timestamps, available, values)
        else:
            for s, symbol in enumerate(panel.symbols):
                mine = series.symbols == symbol
                if mine.any():
                    joined[s] = _asof(panel.timestamps, available[mine], values[mine])
        out[name] = joined
    return out
