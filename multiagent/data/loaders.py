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
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from multiagent.data.errors import DataFixWarning, DataProblem, DataValidationError
from multiagent.data.panel import MarketPanel, assemble_panel, unknown_symbols_problem
from multiagent.data.readers import is_table_file, read_table, table_stem
from multiagent.data.schema import FIELDS, ROW, SYMBOL, TIMESTAMP, canonicalize_columns
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


def _split_long(
    frame: pd.DataFrame, file: str
) -> tuple[list[tuple[str, pd.DataFrame]], list[DataProblem]]:
    if SYMBOL not in frame.columns:
        return [], [
            DataProblem(
                "missing_column",
                "long-format file has no `symbol` column",
                "add a symbol/ticker column, or use the per_symbol layout",
                file=file,
                column=SYMBOL,
            )
        ]
    blank = frame[SYMBOL].isna().to_numpy() | (frame[SYMBOL].astype("string").str.strip() == "")
    blank = np.asarray(blank, dtype=bool)
    if blank.any():
        rows = frame[ROW].to_numpy()[blank]
        return [], [
            DataProblem(
                "missing_symbol",
                f"{int(blank.sum())} rows have no symbol",
                "fill or drop them",
                file=file,
                column=SYMBOL,
                rows=(int(rows[0]) + 1, int(rows[-1]) + 1),
            )
        ]
    names = frame[SYMBOL].astype("string").str.strip()
    groups = [(str(s), part.drop(columns=[SYMBOL])) for s, part in frame.groupby(names, sort=True)]
    return groups, []


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
) -> MarketPanel:
    """Load and validate a panel; raise one `DataValidationError` listing every problem.

    Auto-fixes requested in ``options`` (sort, drop_duplicates) are applied, recorded in
    ``panel.notes`` and reported as a `DataFixWarning`.
    """
    options = options or ValidationOptions()
    items = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not items:
        raise DataValidationError([DataProblem("empty", "no data paths given", "pass a file")])
    sources: list[tuple[str, str, pd.DataFrame]] = []  # (symbol, file, frame)
    problems: list[DataProblem] = []
    notes: list[str] = []
    tables: list[tuple[str | None, Path]] = []
    for item in items:
        if item.is_dir():
            tables.extend(_discover(item, frequency))
        else:
            tables.append((None, item))
    for hinted_symbol, path in tables:
        try:
            raw = read_table(path)
        except DataValidationError as error:
            problems.extend(error.problems)
            continue
        frame, column_problems, column_notes = canonicalize_columns(raw, file=str(path))
        problems.extend(column_problems)
        notes.extend(column_notes)
        kind = layout if layout != "auto" else _detect_layout(frame)
        if len(tables) > 1 and kind == "wide":
            kind = "per_symbol"  # several files are always one per symbol
        if kind == "long":
            groups, group_problems = _split_long(frame, str(path))
            problems.extend(group_problems)
            sources.extend((s, str(path), g) for s, g in groups)
        elif kind == "wide":
            groups, group_problems, wide_notes = _split_wide(frame, str(path))
            problems.extend(group_problems)
            notes.extend(wide_notes)
            sources.extend((s, str(path), g) for s, g in groups)
        else:
            symbol = hinted_symbol or table_stem(path)
            if SYMBOL in frame.columns:
                frame = frame.drop(columns=[SYMBOL])
            sources.append((symbol, str(path), frame))
    if problems:
        raise DataValidationError(problems)
    known = sorted({s for s, _, _ in sources})
    if symbols is not None:
        unknown = [s for s in symbols if s not in known]
        if unknown:
            shown = str(items[0]) if len(items) == 1 else f"{len(items)} paths"
            raise DataValidationError([unknown_symbols_problem(unknown, known, shown)])
        wanted = set(symbols)
        sources = [entry for entry in sources if entry[0] in wanted]
    validated: list[SymbolBars] = []
    for symbol, file, frame in sources:
        bars, bar_problems = validate_bars(
            _restrict(frame, start, end), file=file, symbol=symbol, options=options
        )
        problems.extend(bar_problems)
        if bars is not None:
            validated.append(bars)
    if problems:
        raise DataValidationError(problems)
    if symbols is not None:
        order = {s: i for i, s in enumerate(symbols)}
        validated.sort(key=lambda b: order[b.symbol])
    source = str(items[0]) if len(items) == 1 else ", ".join(str(p) for p in items[:3])
    panel = assemble_panel(validated, source=source, notes=notes)
    fixes = [fix for b in validated for fix in b.fixes]
    if fixes:
        warnings.warn("; ".join(fixes), DataFixWarning, stacklevel=2)
    return panel


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
