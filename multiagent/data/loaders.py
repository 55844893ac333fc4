"""Load a multi-symbol panel from the three layouts users have, validating everything.

Layouts (``layout="auto"`` tells them apart):

- ``per_symbol``: one table per symbol: ``DIR/AAPL.csv``, ``DIR/AAPL/1Hour/data.parquet``,
  ``DIR/AAPL/data.parquet`` or explicit file paths; the symbol is the file stem or the folder.
- ``long``: one table with a ``symbol`` column (timestamp, symbol, open, high, low, close, ...).
- ``wide``: one table of close prices, a column per symbol; leading/trailing blanks mean the
  symbol was not listed yet / any more.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from multiagent.data.errors import DataFixWarning, DataProblem, DataValidationError
from multiagent.data.panel import MarketPanel, assemble_panel, unknown_symbols_problem
from multiagent.data.readers import (
    Part,
    ProgressHook,
    SplitTable,
    TableFile,
    is_table_file,
    open_table,
    part_frame,
    release_unused_memory,
    table_stem,
)
from multiagent.data.schema import (
    FIELDS,
    ROW,
    SYMBOL,
    TIMESTAMP,
    canonical_name,
    canonicalize_columns,
)
from multiagent.data.validation import SymbolBars, validate_bars
from multiagent.data.validation_options import ValidationOptions

Layout = Literal["auto", "per_symbol", "long", "wide"]
PathLike = str | Path


def _discover(directory: Path, frequency: str | None) -> list[tuple[str, Path]]:
    """Find per-symbol files in a folder: flat files, SYMBOL/data.*, or SYMBOL/FREQ/data.*."""
    flat = sorted(p for p in directory.iterdir() if is_table_file(p))
    if flat:
        return [(table_stem(p), p) for p in flat]
    found: list[tuple[str, Path]] = []
    problems: list[DataProblem] = []
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        direct = sorted(p for p in folder.iterdir() if is_table_file(p))
        if direct:
            found.append((folder.name, direct[0]))
            continue
        by_freq = {
            sub.name: tables[0]
            for sub in sorted(q for q in folder.iterdir() if q.is_dir())
            if (tables := sorted(p for p in sub.iterdir() if is_table_file(p)))
        }
        if not by_freq:
            continue
        if frequency is not None:
            if frequency in by_freq:
                found.append((folder.name, by_freq[frequency]))
            else:
                problems.append(
                    DataProblem(
                        "missing_frequency",
                        f"no `{frequency}` folder (found {', '.join(by_freq)})",
                        "pick a frequency that every symbol has",
                        file=str(folder),
                        symbol=folder.name,
                    )
                )
        elif len(by_freq) == 1:
            found.append((folder.name, next(iter(by_freq.values()))))
        else:
            problems.append(
                DataProblem(
                    "ambiguous_frequency",
                    f"several frequencies ({', '.join(by_freq)})",
                    "choose one with frequency=... (--frequency)",
                    file=str(folder),
                    symbol=folder.name,
                )
            )
    if problems:
        raise DataValidationError(problems)
    if not found:
        raise DataValidationError(
            [
                DataProblem(
                    "empty",
                    "folder holds no CSV or parquet tables",
                    "point at a folder of SYMBOL.csv files, SYMBOL/FREQ/data.parquet, or a file",
                    file=str(directory),
                )
            ]
        )
    return found


def _detect_layout(frame: pd.DataFrame) -> Layout:
    columns = set(frame.columns)
    if SYMBOL in columns:
        return "long"
    # Any OHLCV-named column means bars of one symbol (a missing close is then reported);
    # a wide file has only a timestamp and symbol-named price columns.
    if columns & set(FIELDS):
        return "per_symbol"
    return "wide"


def _split_long(split: SplitTable, file: str) -> list[DataProblem]:
    """Rows without a symbol belong to no one: a problem, whatever symbols were asked for."""
    if not split.blank_rows:
        return []
    rows = sorted(split.blank_rows)
    return [
        DataProblem(
            "missing_symbol",
            f"{len(rows)} rows have no symbol",
            "fill or drop them",
            file=file,
            column=SYMBOL,
            rows=(rows[0] + 1, rows[-1] + 1),
        )
    ]


def _read_columns(header: list[str], kind: Layout, wanted: set[str] | None) -> list[str]:
    """The file's columns a layout needs: known fields (and, for a wide file, the asked-for
    symbol columns); other columns are never parsed."""
    known = [c for c in header if canonical_name(c) is not None]
    if kind != "wide":
        return known
    timestamp = [c for c in header if canonical_name(c) == TIMESTAMP]
    prices = [c for c in header if c not in timestamp and (wanted is None or c in wanted)]
    return timestamp + prices


def _split_wide(
    frame: pd.DataFrame, file: str
) -> tuple[list[tuple[str, pd.DataFrame]], list[DataProblem], list[str]]:
    if TIMESTAMP not in frame.columns:
        found = ", ".join(f"`{c}`" for c in frame.columns if c != ROW)
        return (
            [],
            [
                DataProblem(
                    "missing_column",
                    f"missing column `timestamp` (found {found})",
                    "a wide file needs a timestamp/date column and a close-price column per symbol",
                    file=file,
                    column=TIMESTAMP,
                )
            ],
            [],
        )
    symbols = [c for c in frame.columns if c not in (TIMESTAMP, ROW)]
    if not symbols:
        return (
            [],
            [
                DataProblem(
                    "missing_column",
                    "no price columns besides the timestamp",
                    "add one close-price column per symbol",
                    file=file,
                )
            ],
            [],
        )
    groups: list[tuple[str, pd.DataFrame]] = []
    notes: list[str] = []
    for symbol in symbols:
        values = pd.to_numeric(frame[symbol], errors="coerce")
        present = np.flatnonzero((values.notna() | frame[symbol].notna()).to_numpy())
        if not len(present):
            notes.append(f"{file}: column {symbol} is empty and was skipped")
            continue
        first, last = present[0], present[-1]
        if first > 0 or last < len(frame) - 1:
            notes.append(f"{file}: {symbol} trades only from row {first + 1} to row {last + 1}")
        part = frame.iloc[first : last + 1][[TIMESTAMP, symbol, ROW]].rename(
            columns={symbol: "close"}
        )
        groups.append((str(symbol), part))
    return groups, [], notes


def load_panel(
    paths: PathLike | Sequence[PathLike],
    *,
    layout: Layout = "auto",
    symbols: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    frequency: str | None = None,
    options: ValidationOptions | None = None,
    progress: ProgressHook | None = None,
) -> MarketPanel:
    """Load and validate a panel; raise one `DataValidationError` listing every problem.

    Only what is asked is read (issue 23): a long CSV streams through pyarrow keeping the rows
    of ``symbols`` only, a wide file parses only their columns, a per-symbol file of another
    symbol is not opened beyond its header, and columns that are no known field are skipped.
    ``progress`` is told each streamed CSV's size and byte count (the CLI shows a bar).

    Auto-fixes and repairs requested in ``options`` (sort, drop_duplicates, repair) are applied,
    recorded in ``panel.notes`` and reported as a `DataFixWarning`.
    """
    options = options or ValidationOptions()
    items = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not items:
        raise DataValidationError([DataProblem("empty", "no data paths given", "pass a file")])
    sources: list[tuple[str, str, Part]] = []  # (symbol, file, rows)
    problems: list[DataProblem] = []
    notes: list[str] = []
    available: set[str] = set()  # symbols seen in the files, read or not
    wanted = set(symbols) if symbols is not None else None
    tables: list[tuple[str | None, Path]] = []
    for item in items:
        if item.is_dir():
            tables.extend(_discover(item, frequency))
        else:
            tables.append((None, item))
    for hinted_symbol, path in tables:
        read = _read_file(path, hinted_symbol, layout, len(tables) > 1, wanted, progress)
        problems.extend(read.problems)
        notes.extend(read.notes)
        sources.extend((s, str(path), part) for s, part in read.parts)
        available |= read.available
        read.parts.clear()  # `sources` alone holds each part, so it is freed once converted
    if problems:
        raise DataValidationError(problems)
    known = sorted({s for s, _, _ in sources})
    if symbols is not None:
        unknown = [s for s in symbols if s not in known]
        if unknown:
            shown = str(items[0]) if len(items) == 1 else f"{len(items)} paths"
            listed = sorted(available | set(known))
            raise DataValidationError([unknown_symbols_problem(unknown, listed, shown)])
        sources = [entry for entry in sources if entry[0] in wanted]  # type: ignore[operator]
    validated: list[SymbolBars] = []
    sources.reverse()
    while sources:  # one symbol at a time: its raw rows are freed once its bars are made
        symbol, file, part = sources.pop()
        frame, _, _ = canonicalize_columns(part_frame(part), file=file)
        del part
        bars, bar_problems = validate_bars(
            _restrict(frame, start, end), file=file, symbol=symbol, options=options
        )
        del frame
        release_unused_memory()
        problems.extend(bar_problems)
        if bars is not None:
            validated.append(bars)
    if problems:
        raise DataValidationError(problems)
    if symbols is not None:
        order = {s: i for i, s in enumerate(symbols)}
        validated.sort(key=lambda b: order[b.symbol])
    source = str(items[0]) if len(items) == 1 else ", ".join(str(p) for p in items[:3])
    fixes = [fix for b in validated for fix in b.fixes]
    # The bars' arrays are dropped as they are copied: bars and panel are never whole together.
    panel = assemble_panel(validated, source=source, notes=notes, release=True)
    if fixes:
        warnings.warn("; ".join(fixes), DataFixWarning, stacklevel=2)
    return panel


@dataclass
class _Read:
    """What one file gave: (symbol, rows) parts, problems, notes, and every symbol it holds."""

    parts: list[tuple[str, Part]] = field(default_factory=list)
    problems: list[DataProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    available: set[str] = field(default_factory=set)


def _read_file(
    path: Path,
    hinted_symbol: str | None,
    layout: Layout,
    several: bool,
    wanted: set[str] | None,
    progress: ProgressHook | None,
) -> _Read:
    """Open one file and read its layout's rows. Its `TableFile` (a parquet file's whole frame)
    ends here, so only the parts asked for outlive the call."""
    try:
        table = open_table(path)
    except DataValidationError as error:
        return _Read(problems=list(error.problems))
    header, column_problems, column_notes = canonicalize_columns(
        pd.DataFrame(columns=table.header), file=str(path)
    )
    if column_problems:
        return _Read(problems=column_problems, notes=column_notes)
    kind = layout if layout != "auto" else _detect_layout(header)
    if several and kind == "wide":
        kind = "per_symbol"  # several files are always one per symbol
    try:
        read = _read_source(table, kind, hinted_symbol, wanted, progress)
    except DataValidationError as error:
        return _Read(problems=list(error.problems), notes=column_notes)
    read.notes[:0] = column_notes
    return read


def _read_source(
    table: TableFile,
    kind: Layout,
    hinted_symbol: str | None,
    wanted: set[str] | None,
    progress: ProgressHook | None,
) -> _Read:
    """Read one file's rows for its layout, only the symbols in ``wanted`` (all when None)."""
    file = str(table.path)
    columns = _read_columns(table.header, kind, wanted)
    if kind == "long":
        by = next((c for c in table.header if canonical_name(c) == SYMBOL), None)
        if by is None:
            return _Read(
                problems=[
                    DataProblem(
                        "missing_column",
                        "long-format file has no `symbol` column",
                        "add a symbol/ticker column, or use the per_symbol layout",
                        file=file,
                        column=SYMBOL,
                    )
                ]
            )
        split = table.read_split(columns, by, wanted, progress)
        problems = _split_long(split, file)
        return _Read(sorted(split.parts.items()), problems, available=split.seen)
    if kind == "wide":
        frame, _, _ = canonicalize_columns(table.read(columns, progress), file=file)
        groups, problems, notes = _split_wide(frame, file)
        others = {c for c in table.header if canonical_name(c) != TIMESTAMP}
        return _Read(list(groups), problems, notes, available=others)
    symbol = hinted_symbol or table_stem(table.path)
    if wanted is not None and symbol not in wanted:
        return _Read(available={symbol})  # another symbol's file: not read
    frame = table.read([c for c in columns if canonical_name(c) != SYMBOL], progress)
    return _Read([(symbol, frame)], available={symbol})


def _restrict(frame: pd.DataFrame, start: str | None, end: str | None) -> pd.DataFrame:
    """Cut to [start, end] before validation, so a bad bar outside the window does not matter."""
    if start is None and end is None:
        return frame
    times = pd.to_datetime(frame[TIMESTAMP], errors="coerce", utc=True, format="mixed")
    keep = np.ones(len(frame), dtype=bool)  # unparseable rows stay, so validation reports them
    if start is not None:
        keep &= ~(times < pd.Timestamp(start, tz="UTC")).to_numpy()
    if end is not None:
        keep &= ~(times > pd.Timestamp(end, tz="UTC")).to_numpy()
    return frame[keep]


__all__ = ["Layout", "load_panel"]
