"""`MarketPanel`: validated multi-symbol bars aligned on one time axis, as numpy arrays.

Arrays are (symbols, time) float64 with NaN where a symbol has no bar (not yet listed, delisted,
or a holiday on its exchange); `observed` says which cells hold a real bar. Nothing is
forward-filled here: features decide how to treat missing bars, causally.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from multiagent.data.errors import DataProblem, DataValidationError
from multiagent.data.readers import release_unused_memory
from multiagent.data.schema import FIELDS
from multiagent.data.timestamps import infer_bar
from multiagent.data.validation import SymbolBars


@dataclass(frozen=True, eq=False)
class MarketPanel:
    """Aligned market data of several symbols. Arrays are (n_symbols, n_bars)."""

    symbols: tuple[str, ...]
    timestamps: np.ndarray
    """datetime64[ns], strictly increasing; UTC wall time when `timezone` is set."""
    fields: dict[str, np.ndarray]
    """Canonical field name -> (S, T) float64, NaN where the symbol has no bar."""
    timezone: str | None = None
    bar: pd.Timedelta | None = None
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    """What loading did that a user should know (adjustments, auto-fixes, curation)."""

    def __post_init__(self) -> None:
        if "close" not in self.fields:
            raise ValueError("a MarketPanel needs a close field")
        shape = (len(self.symbols), len(self.timestamps))
        for name, array in self.fields.items():
            if array.shape != shape:
                raise ValueError(f"field {name} has shape {array.shape}, expected {shape}")

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def n_bars(self) -> int:
        return len(self.timestamps)

    @property
    def close(self) -> np.ndarray:
        return self.fields["close"]

    @property
    def observed(self) -> np.ndarray:
        """(S, T) bool: the symbol has a real bar at this time."""
        return ~np.isnan(self.fields["close"])

    def has(self, *names: str) -> bool:
        return all(name in self.fields for name in names)

    def symbol_index(self, symbol: str) -> int:
        return self.symbols.index(symbol)

    def select(
        self,
        symbols: Sequence[str] | None = None,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
    ) -> MarketPanel:
        """A sub-panel by symbols and an inclusive time range; unknown symbols are an error."""
        rows = np.arange(self.n_symbols)
        if symbols is not None:
            unknown = [s for s in symbols if s not in self.symbols]
            if unknown:
                raise DataValidationError(
                    [unknown_symbols_problem(unknown, self.symbols, self.source)]
                )
            rows = np.array([self.symbols.index(s) for s in symbols], dtype=int)
        keep = np.ones(self.n_bars, dtype=bool)
        if start is not None:
            keep &= self.timestamps >= np.datetime64(pd.Timestamp(start).tz_localize(None), "ns")
        if end is not None:
            keep &= self.timestamps <= np.datetime64(pd.Timestamp(end).tz_localize(None), "ns")
        fields = {name: array[np.ix_(rows, keep)] for name, array in self.fields.items()}
        any_bar = ~np.all(np.isnan(fields["close"]), axis=0)
        fields = {name: array[:, any_bar] for name, array in fields.items()}
        return replace(
            self,
            symbols=tuple(self.symbols[i] for i in rows),
            timestamps=self.timestamps[keep][any_bar],
            fields=fields,
        )

    def to_frame(self) -> pd.DataFrame:
        """Long format (timestamp, symbol, fields...), observed bars only."""
        frames = []
        for i, symbol in enumerate(self.symbols):
            mask = self.observed[i]
            data = {name: array[i, mask] for name, array in self.fields.items()}
            frame = pd.DataFrame({"timestamp": self.timestamps[mask], "symbol": symbol, **data})
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def fingerprint(self) -> str:
        """A stable SHA-256 of symbols, timestamps and values: logs say exactly which data ran."""
        digest = hashlib.sha256()
        digest.update(b"multiagent-panel-v1\0")
        digest.update("\0".join(self.symbols).encode())
        digest.update(np.ascontiguousarray(self.timestamps.astype("datetime64[ns]")).tobytes())
        for name in sorted(self.fields):
            digest.update(name.encode())
            values = np.ascontiguousarray(self.fields[name], dtype="<f8")
            digest.update(np.where(np.isnan(values), np.nan, values).tobytes())
        return digest.hexdigest()


def unknown_symbols_problem(
    unknown: Sequence[str], known: Sequence[str], source: str
) -> DataProblem:
    import difflib

    suggestions = {s: difflib.get_close_matches(s, known, n=1) for s in unknown}
    hints = [f"{s} -> {m[0]}?" for s, m in suggestions.items() if m]
    return DataProblem(
        "unknown_symbol",
        f"unknown symbol{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}",
        (f"did you mean {', '.join(hints)} " if hints else "")
        + f"(available: {', '.join(known[:30])}{' ...' if len(known) > 30 else ''})",
        file=source or None,
    )


def _union_times(times: Sequence[np.ndarray]) -> np.ndarray:
    """The sorted union of strictly increasing timestamp arrays, merged one at a time rather
    than concatenated whole (a copy of every symbol's timestamps, then its sorted copy). A symbol
    whose times are all in the union so far (the same clock, or fewer bars) adds nothing."""
    if not times:
        raise ValueError("a panel needs at least one symbol")
    union = times[0].copy()  # the panel's own array, as np.unique would give
    for values in times[1:]:
        at = np.minimum(np.searchsorted(union, values), max(len(union) - 1, 0))
        if not len(union) or not np.array_equal(union[at], values):
            union = np.union1d(union, values)
    return union


def assemble_panel(
    bars: Sequence[SymbolBars],
    *,
    source: str,
    notes: Sequence[str] = (),
    release: bool = False,
) -> MarketPanel:
    """Align validated symbols on the union of their timestamps; cross-symbol checks happen here.

    With ``release`` each symbol's field arrays are taken out of its `SymbolBars` as they are
    copied, field by field, so a large load holds its bars and its panel together only for one
    field (issue 23); the bars keep their timestamps, fixes and notes.
    """
    problems: list[DataProblem] = []
    seen: dict[str, str] = {}
    for item in bars:
        if item.symbol in seen:
            problems.append(
                DataProblem(
                    "duplicate_symbol",
                    f"symbol {item.symbol} appears twice ({seen[item.symbol]} and {item.file})",
                    "keep one file per symbol",
                    file=item.file,
                    symbol=item.symbol,
                )
            )
        seen[item.symbol] = item.file
    zones = {item.timezone for item in bars}
    if len(zones) > 1:
        described = ", ".join(
            f"{item.symbol}: {item.timezone or 'no time zone'}" for item in bars[:6]
        )
        problems.append(
            DataProblem(
                "mixed_timezones",
                f"symbols use different time zones ({described})",
                "convert every file to one time zone (prefer UTC) so bars align",
                file=source,
            )
        )
    sizes = {item.bar for item in bars if item.bar is not None}
    if len(sizes) > 1:
        by_size: dict[pd.Timedelta, list[str]] = {}
        for item in bars:
            if item.bar is not None:
                by_size.setdefault(item.bar, []).append(item.symbol)
        described = "; ".join(f"{size}: {', '.join(s[:4])}" for size, s in by_size.items())
        problems.append(
            DataProblem(
                "mixed_frequency",
                f"symbols have different bar sizes ({described})",
                "load one frequency at a time (resample the others)",
                file=source,
            )
        )
    if problems:
        raise DataValidationError(problems)
    timestamps = _union_times([item.timestamps for item in bars])
    present = [name for name in FIELDS if all(name in item.fields for item in bars)]
    dropped = sorted({name for item in bars for name in item.fields} - set(present))
    # A symbol with a bar at every time fills its whole row: no index array to hold.
    columns = [
        np.searchsorted(timestamps, item.timestamps)
        if len(item.timestamps) < len(timestamps)
        else slice(None)
        for item in bars
    ]
    fields: dict[str, np.ndarray] = {}
    for name in present:
        array = np.full((len(bars), len(timestamps)), np.nan)
        for row, item in enumerate(bars):
            array[row, columns[row]] = item.fields.pop(name) if release else item.fields[name]
        fields[name] = array
        if release:
            release_unused_memory()  # the next field's array takes the pages this one freed
    if release:
        for item in bars:
            item.fields.clear()
    all_notes = list(notes)
    if dropped:
        all_notes.append(
            f"fields {', '.join(dropped)} are missing for some symbols and were dropped for all"
        )
    for item in bars:
        all_notes.extend(item.notes)
        all_notes.extend(item.fixes)
    return MarketPanel(
        symbols=tuple(item.symbol for item in bars),
        timestamps=timestamps,
        fields=fields,
        timezone=next(iter(zones)),
        bar=next(iter(sizes)) if sizes else infer_bar(timestamps),
        source=source,
        notes=tuple(all_notes),
    )
