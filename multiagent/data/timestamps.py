"""Timestamp columns: parse them strictly, show them as people write them, infer the bar size.

Market bars (`multiagent.data.validation`) and exogenous series share this one reader of time, so
a mix of time zones, unparseable dates or a guessed day-first format is refused or reported the
same way wherever a timestamp comes from, and every series lands on one UTC clock.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from multiagent.data.errors import DataProblem, row_span
from multiagent.data.schema import TIMESTAMP

_OFFSET = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})$"
_HAS_OFFSET = re.compile(_OFFSET.replace("(Z|", "(?:Z|"))
_TIME_WITH_OFFSET = re.compile(_OFFSET)


def show_time(value: object) -> str:
    """A timestamp as people write it: the date alone for midnight bars."""
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    return str(stamp.date()) if stamp == stamp.normalize() else str(stamp)


class ParsedTimes(NamedTuple):
    times: pd.Series | None
    """Parsed datetime64[ns] (UTC wall time when aware), or None when there are problems."""
    timezone: str | None
    problems: list[DataProblem]
    note: str | None = None
    """Set when the format was guessed, so the guess is reported, never silent."""


def parse_timestamps(
    raw: pd.Series, *, file: str, symbol: str | None, fmt: str | None
) -> ParsedTimes:
    """Parse a timestamp column; aware values become UTC. Returns (times, timezone, problems)."""
    where: dict[str, Any] = {"file": file, "symbol": symbol, "column": TIMESTAMP}
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        zone = str(raw.dtype.tz)
        return ParsedTimes(raw.dt.tz_convert("UTC").dt.tz_localize(None), zone, [])
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        return ParsedTimes(pd.to_datetime(raw).astype("datetime64[ns]"), None, [])
    if pd.api.types.is_numeric_dtype(raw.dtype) and fmt is None:
        return ParsedTimes(
            None,
            None,
            [
                DataProblem(
                    "bad_timestamp",
                    "timestamps are numbers, not dates",
                    "write ISO 8601 dates (2020-01-31 or 2020-01-31T14:00:00Z) or pass "
                    "timestamp_format",
                    **where,
                )
            ],
        )
    text = raw.astype("string").str.strip()
    aware = text.str.contains(_HAS_OFFSET, na=False).to_numpy()
    if aware.any() and not aware.all():
        naive = ~aware
        return ParsedTimes(
            None,
            None,
            [
                DataProblem(
                    "mixed_timezones",
                    f"{int(naive.sum())} timestamps have no UTC offset while "
                    f"{int(aware.sum())} have one",
                    "write every timestamp with the same time zone (prefer UTC, suffix Z)",
                    rows=row_span(np.flatnonzero(naive)),
                    timestamp=str(text[naive].iloc[0]),
                    **where,
                )
            ],
        )
    tz: str | None = None
    if aware.any():
        offsets = text.str.extract(_TIME_WITH_OFFSET, expand=False).str.replace(
            r"^Z$", "+00:00", regex=True
        )
        distinct = sorted(offsets.dropna().unique())
        # A local zone with daylight saving shows two offsets; more means mixed zones.
        if len(distinct) > 2:
            return ParsedTimes(
                None,
                None,
                [
                    DataProblem(
                        "mixed_timezones",
                        f"timestamps carry {len(distinct)} UTC offsets ({', '.join(distinct[:4])})",
                        "convert all timestamps to one time zone",
                        **where,
                    )
                ],
            )
        tz = "UTC" if distinct == ["+00:00"] else "/".join(distinct)
    guessed = ""
    try:
        if fmt is not None:
            parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=tz is not None)
        else:
            try:
                parsed = pd.to_datetime(text, format="ISO8601", errors="raise", utc=tz is not None)
            except (ValueError, TypeError):
                # Not ISO: guess one format from the first value and hold every row to it, so a
                # day-first file can never be read month-first row by row without a trace.
                first = str(text.dropna().iloc[0]) if text.notna().any() else ""
                guessed = guess_datetime_format(first) or ""
                parsed = pd.to_datetime(
                    text, format=guessed or None, errors="coerce", utc=tz is not None
                )
    except (ValueError, TypeError) as exc:
        return ParsedTimes(
            None, None, [DataProblem("bad_timestamp", str(exc), "check the format", **where)]
        )
    bad = parsed.isna().to_numpy()
    if bad.any():
        return ParsedTimes(
            None,
            None,
            [
                DataProblem(
                    "bad_timestamp",
                    f"{int(bad.sum())} timestamps cannot be parsed (first: {text[bad].iloc[0]!r}"
                    + (f"; format guessed from row 1: {guessed!r})" if guessed else ")"),
                    "fix them or pass timestamp_format (e.g. '%d.%m.%Y %H:%M')",
                    rows=row_span(np.flatnonzero(bad)),
                    **where,
                )
            ],
        )
    if tz is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    note = (
        f"{file}: timestamps are not ISO 8601; read with the format {guessed!r} guessed from "
        "row 1 (pass timestamp_format to be explicit)"
        if guessed
        else None
    )
    return ParsedTimes(parsed.astype("datetime64[ns]"), tz, [], note)


def infer_bar(timestamps: np.ndarray) -> pd.Timedelta | None:
    """The bar size: the most common spacing between consecutive timestamps."""
    if len(timestamps) < 2:
        return None
    steps = np.diff(timestamps.astype("datetime64[ns]").astype(np.int64))
    steps = steps[steps > 0]
    if not len(steps):
        return None
    values, counts = np.unique(steps, return_counts=True)
    return pd.Timedelta(int(values[np.argmax(counts)]), unit="ns")
