"""Validation of one symbol's bars: every check reports where, what, and how to fix it.

Checks run on the raw user table after column mapping. Structural checks (columns, timestamps)
come first; value checks (NaN, prices, OHLC order) next; time-series checks (order, duplicates,
frequency, gaps, jumps, stale prices) only when the timestamps and closes are sound, so one
broken column does not drown the report in follow-on noise.

Timestamp parsing lives in `multiagent.data.timestamps` (exogenous series read time the same way)
and the thresholds in `multiagent.data.validation_options` (the run config embeds them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from multiagent.data.errors import DataProblem, row_span
from multiagent.data.schema import FIELDS, PRICE_FIELDS, ROW, TIMESTAMP
from multiagent.data.timestamps import infer_bar, parse_timestamps, show_time
from multiagent.data.validation_options import ValidationOptions


@dataclass
class SymbolBars:
    """One symbol's validated bars as numpy arrays (sorted, unique timestamps)."""

    symbol: str
    file: str
    timestamps: np.ndarray
    """datetime64[ns]; UTC wall time when the source was time-zone aware."""
    fields: dict[str, np.ndarray]
    """Canonical field -> float64 values; only the fields the source has."""
    timezone: str | None
    bar: pd.Timedelta | None
    fixes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _rows(frame: pd.DataFrame, mask: np.ndarray) -> tuple[int, int] | None:
    positions = frame[ROW].to_numpy()[mask]
    return row_span(positions) if len(positions) else None


def _first_time(times: pd.Series, mask: np.ndarray) -> str | None:
    hits = times[mask]
    return show_time(hits.iloc[0]) if len(hits) else None


def _check_values(
    frame: pd.DataFrame, times: pd.Series, file: str, symbol: str
) -> list[DataProblem]:
    problems: list[DataProblem] = []
    where: dict[str, Any] = {"file": file, "symbol": symbol}
    for name in FIELDS:
        if name not in frame.columns:
            continue
        raw = frame[name]
        values = pd.to_numeric(raw, errors="coerce")
        not_numeric = (values.isna() & raw.notna()).to_numpy()
        if not_numeric.any():
            problems.append(
                DataProblem(
                    "not_numeric",
                    f"{int(not_numeric.sum())} values are not numbers "
                    f"(first: {raw[not_numeric].iloc[0]!r})",
                    "write plain numbers",
                    column=name,
                    rows=_rows(frame, not_numeric),
                    timestamp=_first_time(times, not_numeric),
                    **where,
                )
            )
        array = values.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(array) & ~not_numeric
        if missing.any():
            problems.append(
                DataProblem(
                    "nan",
                    f"{int(missing.sum())} NaN values",
                    "drop or fill them",
                    column=name,
                    rows=_rows(frame, missing),
                    timestamp=_first_time(times, missing),
                    **where,
                )
            )
        infinite = np.isinf(array)
        if infinite.any():
            problems.append(
                DataProblem(
                    "inf",
                    f"{int(infinite.sum())} infinite values",
                    "replace them with real values",
                    column=name,
                    rows=_rows(frame, infinite),
                    timestamp=_first_time(times, infinite),
                    **where,
                )
            )
        finite = np.isfinite(array)
        if name in PRICE_FIELDS:
            bad = finite & (array <= 0)
            what, fix = (
                "zero or negative prices",
                "prices must be > 0; remove or correct the rows, or load with repair=True "
                "(--repair) to make them missing bars",
            )
        else:
            bad = finite & (array < 0)
            what, fix = f"negative {name}", f"{name} must be >= 0"
        if bad.any():
            problems.append(
                DataProblem(
                    "nonpositive_price" if name in PRICE_FIELDS else f"negative_{name}",
                    f"{int(bad.sum())} {what} (first: {array[bad][0]:g})",
                    fix,
                    column=name,
                    rows=_rows(frame, bad),
                    timestamp=_first_time(times, bad),
                    **where,
                )
            )
        frame[name] = array
    problems.extend(_check_ohlc(frame, times, file, symbol))
    return problems


def _check_ohlc(frame: pd.DataFrame, times: pd.Series, file: str, symbol: str) -> list[DataProblem]:
    if not {"high", "low"} <= set(frame.columns):
        return []
    where: dict[str, Any] = {"file": file, "symbol": symbol}
    high = frame["high"].to_numpy(dtype=float)
    low = frame["low"].to_numpy(dtype=float)
    tolerance = 1e-9 * np.abs(high)
    problems: list[DataProblem] = []
    # Only rows whose prices are all real and positive: bad values are reported once, above.
    prices = np.column_stack([frame[f].to_numpy(dtype=float) for f in PRICE_FIELDS if f in frame])
    sound = np.isfinite(prices).all(axis=1) & (prices > 0).all(axis=1)
    inverted = sound & (high < low - tolerance)
    if inverted.any():
        problems.append(
            DataProblem(
                "high_below_low",
                f"{int(inverted.sum())} bars have high < low",
                "swap or correct high and low, or load with repair=True (--repair) to make "
                "them missing bars",
                column="high",
                rows=_rows(frame, inverted),
                timestamp=_first_time(times, inverted),
                **where,
            )
        )
    for name in ("open", "close"):
        if name not in frame.columns:
            continue
        price = frame[name].to_numpy(dtype=float)
        outside = sound & ~inverted & ((price > high + tolerance) | (price < low - tolerance))
        if outside.any():
            problems.append(
                DataProblem(
                    f"{name}_outside_range",
                    f"{int(outside.sum())} bars have {name} outside [low, high]",
                    f"correct {name}, high or low (is one of them unadjusted?), or load with "
                    "repair=True (--repair) to make them missing bars",
                    column=name,
                    rows=_rows(frame, outside),
                    timestamp=_first_time(times, outside),
                    **where,
                )
            )
    return problems


def _check_order(
    frame: pd.DataFrame,
    times: pd.Series,
    options: ValidationOptions,
    file: str,
    symbol: str,
    repairs: list[str],
) -> tuple[pd.DataFrame, pd.Series, list[DataProblem], list[str]]:
    """Sort and de-duplicate when asked, else report; a repair's row notes go to ``repairs``."""
    where: dict[str, Any] = {"file": file, "symbol": symbol, "column": TIMESTAMP}
    problems: list[DataProblem] = []
    fixes: list[str] = []
    values = times.to_numpy()
    backwards = np.flatnonzero(np.diff(values) < np.timedelta64(0, "ns")) + 1
    if len(backwards):
        if options.sort:
            order = np.argsort(values, kind="stable")
            frame, times = frame.iloc[order], times.iloc[order]
            fixes.append(f"{file} [{symbol}]: sorted {len(backwards)} out-of-order rows")
        else:
            problems.append(
                DataProblem(
                    "unsorted",
                    f"timestamps go backwards {len(backwards)} times "
                    f"(first: {show_time(values[backwards[0] - 1])} "
                    f"then {show_time(values[backwards[0]])})",
                    "sort the file by timestamp, or load with sort=True (--sort)",
                    rows=row_span(frame[ROW].to_numpy()[backwards]),
                    **where,
                )
            )
            return frame, times, problems, fixes
    duplicated = times.duplicated(keep="last").to_numpy()
    if duplicated.any() and options.repair and not options.drop_duplicates:
        frame, times, notes = repair_duplicates(frame, times, file, symbol)
        repairs.extend(notes)
    elif duplicated.any():
        if options.drop_duplicates:
            keep = ~duplicated
            frame, times = frame[keep], times[keep]
            fixes.append(
                f"{file} [{symbol}]: dropped {int(duplicated.sum())} rows with duplicated "
                "timestamps (kept the last of each)"
            )
        else:
            problems.append(
                DataProblem(
                    "duplicate_timestamps",
                    f"{int(duplicated.sum())} duplicated timestamps "
                    f"(first: {show_time(times[duplicated].iloc[0])})",
                    "remove them, or load with drop_duplicates=True (--drop-duplicates) "
                    "to keep the last row of each, or repair=True (--repair) to keep identical "
                    "ones once and make conflicting ones a missing bar",
                    rows=_rows(frame, duplicated),
                    **where,
                )
            )
    return frame, times, problems, fixes


def _check_spacing(
    frame: pd.DataFrame,
    times: np.ndarray,
    bar: pd.Timedelta,
    options: ValidationOptions,
    file: str,
    symbol: str,
) -> list[DataProblem]:
    where: dict[str, Any] = {"file": file, "symbol": symbol, "column": TIMESTAMP}
    problems: list[DataProblem] = []
    steps = np.diff(times)
    rows = frame[ROW].to_numpy()
    if not options.allow_irregular:
        # Daily bars stamped in a local zone are 23 h or 25 h apart in UTC across DST changes.
        slack = pd.Timedelta("1h") if bar >= pd.Timedelta("1D") else pd.Timedelta(0)
        short = np.flatnonzero(steps < (bar - slack).to_timedelta64()) + 1
        if len(short):
            problems.append(
                DataProblem(
                    "mixed_frequency",
                    f"the usual bar is {bar} but {len(short)} bars are closer "
                    f"(first: {pd.Timedelta(steps[short[0] - 1])} "
                    f"before {show_time(times[short[0]])})",
                    "resample to one bar size, or pass allow_irregular=True",
                    rows=row_span(rows[short]),
                    **where,
                )
            )
    limit = options.gap_limit(bar)
    gaps = np.flatnonzero(steps > limit.to_timedelta64()) + 1
    if len(gaps):
        widest = int(np.argmax(steps[gaps - 1]))
        problems.append(
            DataProblem(
                "gap",
                f"{len(gaps)} gaps longer than {limit} (widest: "
                f"{pd.Timedelta(steps[gaps[widest] - 1])} ending {show_time(times[gaps[widest]])})",
                "fill the missing bars, split the file, or raise max_gap (--max-gap)",
                rows=row_span(rows[gaps]),
                timestamp=show_time(times[gaps[0]]),
                **where,
            )
        )
    return problems


def _check_close_path(
    frame: pd.DataFrame, times: np.ndarray, options: ValidationOptions, file: str, symbol: str
) -> list[DataProblem]:
    where: dict[str, Any] = {"file": file, "symbol": symbol, "column": "close"}
    close = frame["close"].to_numpy(dtype=float)
    rows = frame[ROW].to_numpy()
    problems: list[DataProblem] = []
    if options.max_abs_log_return is not None and len(close) > 1:
        jumps = np.abs(np.diff(np.log(close)))
        hits = np.flatnonzero(jumps > options.max_abs_log_return) + 1
        if len(hits):
            first = hits[0]
            problems.append(
                DataProblem(
                    "jump",
                    f"{len(hits)} bar-to-bar moves beyond "
                    f"x{math.exp(options.max_abs_log_return):.2f} "
                    f"(first: {close[first - 1]:g} -> {close[first]:g})",
                    "check for an unadjusted split or a bad tick; adjust the prices, or raise "
                    "max_abs_log_return (--max-jump) if the move is real",
                    rows=row_span(rows[hits]),
                    timestamp=show_time(times[first]),
                    **where,
                )
            )
    if options.max_stale_bars is not None and len(close) > options.max_stale_bars:
        same = np.concatenate([[False], close[1:] == close[:-1]])
        # Length of the run of unchanged closes ending at each bar.
        run_id = np.cumsum(~same)
        run_length = np.bincount(run_id)[run_id]
        stale = run_length > options.max_stale_bars
        if stale.any():
            problems.append(
                DataProblem(
                    "stale",
                    f"close is unchanged for {int(run_length.max())} bars in a row "
                    f"(limit {options.max_stale_bars})",
                    "check the feed for stale prices, trim the period, or raise max_stale_bars",
                    rows=_rows(frame, stale),
                    timestamp=show_time(times[stale][0]),
                    **where,
                )
            )
    return problems


def _repair_note(file: str, symbol: str, row: int, time: object, what: str) -> str:
    return (
        f"{file}: symbol {symbol}, row {row + 1}, at {show_time(time)}: {what}; made a missing bar"
    )


def repair_values(
    frame: pd.DataFrame, times: pd.Series, file: str, symbol: str
) -> tuple[pd.DataFrame, pd.Series, list[str]]:
    """Opt-in repair (issue 23): drop bars whose prices cannot be a trade (zero or negative,
    high < low, open or close outside [low, high]); each becomes a missing bar, like a
    holiday, and is reported row by row. Non-numbers, NaN and inf stay errors."""
    prices = {
        name: pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        for name in PRICE_FIELDS
        if name in frame.columns
    }
    reasons: list[list[str]] = [[] for _ in range(len(frame))]
    for name, values in prices.items():
        for i in np.flatnonzero(np.isfinite(values) & (values <= 0)):
            reasons[i].append(f"{name} {values[i]:g} is not a positive price")
    if "high" in prices and "low" in prices:
        high, low = prices["high"], prices["low"]
        tolerance = 1e-9 * np.abs(high)
        stacked = np.column_stack(list(prices.values()))
        sound = np.isfinite(stacked).all(axis=1) & (stacked > 0).all(axis=1)
        inverted = sound & (high < low - tolerance)
        for i in np.flatnonzero(inverted):
            reasons[i].append(f"high {high[i]:g} < low {low[i]:g}")
        for name in ("open", "close"):
            if name in prices:
                value = prices[name]
                outside = (
                    sound & ~inverted & ((value > high + tolerance) | (value < low - tolerance))
                )
                for i in np.flatnonzero(outside):
                    reasons[i].append(f"{name} {value[i]:g} outside [{low[i]:g}, {high[i]:g}]")
    bad = np.array([bool(r) for r in reasons], dtype=bool)
    if not bad.any():
        return frame, times, []
    rows = frame[ROW].to_numpy()
    notes = [
        _repair_note(file, symbol, int(rows[i]), times.iloc[i], ", ".join(reasons[i]))
        for i in np.flatnonzero(bad)
    ]
    keep = ~bad
    return frame[keep].reset_index(drop=True), times[keep].reset_index(drop=True), notes


def repair_duplicates(
    frame: pd.DataFrame, times: pd.Series, file: str, symbol: str
) -> tuple[pd.DataFrame, pd.Series, list[str]]:
    """Opt-in repair of duplicated timestamps (issue 23). Identical rows are one bar sent twice:
    the first is kept. Rows that disagree leave no way to know which is right, so picking one
    would be arbitrary: the bar becomes missing. Either way each dropped row is reported."""
    present = [name for name in FIELDS if name in frame.columns]
    clash = times.duplicated(keep=False).to_numpy()
    rows = frame[ROW].to_numpy()
    values = frame[present].to_numpy(dtype=float)
    drop = np.zeros(len(frame), dtype=bool)
    notes: list[str] = []
    positions = np.flatnonzero(clash)
    for _, group in pd.Series(positions).groupby(times.to_numpy()[positions]):
        members = group.to_numpy()
        block = values[members]
        same = bool(np.all((block == block[0]) | (np.isnan(block) & np.isnan(block[0]))))
        shown = ", ".join(str(int(rows[i]) + 1) for i in members)
        if same:
            drop[members[1:]] = True
            for i in members[1:]:
                notes.append(
                    f"{file}: symbol {symbol}, row {int(rows[i]) + 1}, at "
                    f"{show_time(times.iloc[i])}: repeats row {int(rows[members[0]]) + 1} "
                    "exactly; dropped"
                )
        else:
            drop[members] = True
            notes.append(
                _repair_note(
                    file,
                    symbol,
                    int(rows[members[0]]),
                    times.iloc[members[0]],
                    f"rows {shown} give different bars for the same time",
                )
            )
    keep = ~drop
    return frame[keep].reset_index(drop=True), times[keep].reset_index(drop=True), notes


def validate_bars(
    frame: pd.DataFrame, *, file: str, symbol: str, options: ValidationOptions
) -> tuple[SymbolBars | None, list[DataProblem]]:
    """Validate one symbol's canonical table; return its bars, or None with the problems."""
    where: dict[str, Any] = {"file": file, "symbol": symbol}
    missing = [name for name in (TIMESTAMP, "close") if name not in frame.columns]
    if missing:
        found = ", ".join(f"`{c}`" for c in frame.columns if c != ROW)
        return None, [
            DataProblem(
                "missing_column",
                f"missing column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(f'`{m}`' for m in missing)} (found {found})",
                "name the columns timestamp/date and close (open, high, low, volume optional)",
                column=missing[0],
                **where,
            )
        ]
    times, tz, problems, note = parse_timestamps(
        frame[TIMESTAMP].reset_index(drop=True),
        file=file,
        symbol=symbol,
        fmt=options.timestamp_format,
    )
    frame = frame.reset_index(drop=True).copy()
    if times is None:
        return None, problems
    present = [name for name in FIELDS if name in frame.columns]
    repairs: list[str] = []
    if options.repair:
        frame, times, repairs = repair_values(frame, times, file, symbol)
    problems.extend(_check_values(frame, times, file, symbol))
    if problems:
        return None, problems
    frame, times, order_problems, fixes = _check_order(frame, times, options, file, symbol, repairs)
    if order_problems:
        return None, order_problems
    if not len(frame):
        return None, [
            DataProblem(
                "empty",
                "no bars are left after repair",
                "check the file: every row was a placeholder or a conflicting duplicate",
                **where,
            )
        ]
    if repairs:
        fixes.append(f"{file} [{symbol}]: repaired {len(repairs)} rows into missing bars")
    values = times.to_numpy().astype("datetime64[ns]")
    bar = infer_bar(values)
    if bar is not None:
        problems.extend(_check_spacing(frame, values, bar, options, file, symbol))
    problems.extend(_check_close_path(frame, values, options, file, symbol))
    if problems:
        return None, problems
    return (
        SymbolBars(
            symbol=symbol,
            file=file,
            timestamps=values,
            # Copies, not views of the table's one float block: the panel frees each field as
            # soon as it is copied in, so bars and panel are never whole together (issue 23).
            fields={name: frame[name].to_numpy(dtype=np.float64, copy=True) for name in present},
            timezone=tz,
            bar=bar,
            fixes=fixes,
            notes=([note] if note else []) + repairs,
        ),
        [],
    )
