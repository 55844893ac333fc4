"""Read one table file (CSV, compressed CSV, parquet) into a DataFrame, or say why not.

A large CSV is read by pyarrow's streaming reader (issue 23): only the columns asked for, typed
while parsed (a timestamp column as datetime64 when its first value is naive ISO 8601, prices as
float64), and split by symbol batch by batch, keeping only the symbols asked for. Whatever the
stream cannot take (another delimiter, a value that is not a number, a later timestamp that is
not naive ISO) falls back to pandas, which reads the whole file and lets validation say what is
wrong, so both paths accept and reject the same files.
"""

from __future__ import annotations

import ctypes
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from multiagent.data.errors import DataProblem, DataValidationError
from multiagent.data.schema import ROW

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
SUPPORTED_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES


def is_table_file(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and name.endswith(SUPPORTED_SUFFIXES)


def table_stem(path: Path) -> str:
    """File name without its table suffix: ``AAPL.csv.gz`` -> ``AAPL``."""
    name = path.name
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def read_table(path: Path) -> pd.DataFrame:
    """Read a table, adding the hidden `_row` column (0-based row position in the file).

    Raises `DataValidationError` naming the file for a missing, unreadable, unsupported or
    empty file, or one with a column name twice (pandas would read the second as `name.1`).
    """
    return open_table(path).read()


PARSE_PROBLEM_HINT = "check that the file is a valid CSV or parquet table and not truncated"
ARROW_SUFFIXES = {".csv": None, ".txt": None, ".csv.gz": "gzip", ".csv.bz2": "bz2"}
"""CSV suffixes the streaming reader takes, with their compression (zip and xz go to pandas)."""
PANDAS_NA_VALUES = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
"""pandas.read_csv's documented default ``na_values``: the stream reads blanks as pandas does."""
_NAIVE_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
BLOCK_BYTES = 2 << 20
"""CSV bytes parsed per streamed batch. Small blocks keep the reader's own buffers small: with
8 MiB blocks a 481 MiB file's stream peaked about 150 MiB higher than with 2 MiB, which also
parse faster (issue 23, docs/benchmarks.md)."""

ProgressHook = Callable[[str, int], Callable[[int], None] | None]
"""Called with (file, size in bytes) before a CSV is streamed; returns a callback that is given
each chunk's byte count, or None for no progress (the CLI shows it for large files only)."""
Part: TypeAlias = pd.DataFrame | pa.Table
"""One symbol's rows: a DataFrame, or an Arrow table converted only when its turn comes."""


def part_frame(part: Part) -> pd.DataFrame:
    """One symbol's rows as a DataFrame (an Arrow part is converted here, one symbol at a time,
    so a large file never exists twice in pandas form)."""
    return part if isinstance(part, pd.DataFrame) else part.to_pandas()


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library is another."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _malloc_trim()


def release_unused_memory() -> None:
    """Hand freed pages back to the system: those Arrow's memory pool keeps, and those malloc
    keeps in its heap (numpy's arrays of a few MiB live there). A large load frees its streamed
    parts and then its validated arrays one symbol or field at a time while the next stage's
    arrays grow: with the freed pages still resident, both would count at once (issue 23)."""
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@dataclass
class SplitTable:
    """A long table split by its symbol column: only the symbols asked for, by stripped name."""

    parts: dict[str, Part]
    blank_rows: list[int] = field(default_factory=list)
    """0-based file rows without a symbol (kept whatever was asked, so they are reported)."""
    seen: set[str] = field(default_factory=set)
    """Every symbol in the file, read or not (for the unknown-symbol message)."""


def _unreadable(shown: str, exc: BaseException) -> DataValidationError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataValidationError(
        [DataProblem("unreadable", f"cannot be read ({reason})", PARSE_PROBLEM_HINT, file=shown)]
    )


def _empty(shown: str) -> DataValidationError:
    return DataValidationError(
        [DataProblem("empty", "file has no data rows", "remove it or fill it", file=shown)]
    )


def duplicate_columns_problem(names: Sequence[str], shown: str) -> DataProblem | None:
    """A column name given twice: pandas would rename the second `name.1` (a phantom symbol in a
    wide file, a silently ignored `close` in a long one), so it is refused (issue 23)."""
    counts = pd.Series([str(n) for n in names]).value_counts(sort=False)
    repeated = [str(n) for n, c in counts.items() if c > 1]
    if not repeated:
        return None
    return DataProblem(
        "duplicate_column",
        f"column{'s' if len(repeated) > 1 else ''} {', '.join(f'`{n}`' for n in repeated)} "
        f"appear{'' if len(repeated) > 1 else 's'} more than once in the header",
        "rename or remove the repeated columns",
        file=shown,
        column=repeated[0],
    )


def _csv_header(path: Path) -> tuple[list[str], str | None, list[str]]:
    """(column names, delimiter or None when sniffed, the first data row's values)."""
    top = pd.read_csv(
        path, header=None, nrows=2, dtype=str, keep_default_na=False, skipinitialspace=True
    )
    sep: str | None = ","
    if top.shape[1] == 1 and any(c in str(top.iloc[0, 0]) for c in ";\t|"):
        # One column whose name holds a separator: not comma-delimited; sniff it.
        sep = None
        top = pd.read_csv(
            path,
            header=None,
            nrows=2,
            dtype=str,
            keep_default_na=False,
            sep=None,
            engine="python",
            skipinitialspace=True,
        )
    names = [str(v) if v != "" else f"Unnamed: {i}" for i, v in enumerate(top.iloc[0])]
    first = [str(v) for v in top.iloc[1]] if len(top) > 1 else []
    return names, sep, first


class TableFile:
    """One table file, opened: its header is known before any data is read, so a loader can ask
    for only the columns and symbols it needs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.shown = str(path)
        self._frame: pd.DataFrame | None = None
        self._sep: str | None = ","
        self._first: list[str] = []
        name = path.name.lower()
        if not path.exists():
            raise DataValidationError(
                [DataProblem("not_found", "file does not exist", "check the path", file=self.shown)]
            )
        if not name.endswith(SUPPORTED_SUFFIXES):
            raise DataValidationError(
                [
                    DataProblem(
                        "unsupported_format",
                        f"unsupported file type `{path.suffix}`",
                        f"use one of {', '.join(SUPPORTED_SUFFIXES)}",
                        file=self.shown,
                    )
                ]
            )
        self.is_csv = name.endswith(CSV_SUFFIXES)
        try:
            if self.is_csv:
                self.header, self._sep, self._first = _csv_header(path)
            else:
                self._frame = self._read_pandas(None)
                self.header = [str(c) for c in self._frame.columns if c != ROW]
        except DataValidationError:
            raise
        except pd.errors.EmptyDataError:
            raise _empty(self.shown) from None
        except Exception as exc:  # any parser failure means the same thing to the user
            raise _unreadable(self.shown, exc) from None
        problem = duplicate_columns_problem(self.header, self.shown)
        if problem is not None:
            raise DataValidationError([problem])

    # pandas: parquet, and any CSV the stream cannot take ------------------------------------
    def _read_pandas(self, columns: Sequence[str] | None) -> pd.DataFrame:
        if self._frame is not None:
            frame = self._frame
            return frame if columns is None else frame[[*columns, ROW]]
        try:
            if not self.is_csv:
                frame = pd.read_parquet(self.path)
                if not isinstance(frame.index, pd.RangeIndex):
                    frame = frame.reset_index()
            elif self._sep is None:
                frame = pd.read_csv(self.path, sep=None, engine="python", skipinitialspace=True)
            else:
                frame = pd.read_csv(
                    self.path, skipinitialspace=True, usecols=list(columns) if columns else None
                )
        except pd.errors.EmptyDataError:
            frame = pd.DataFrame()
        except Exception as exc:  # any parser failure means the same thing to the user
            raise _unreadable(self.shown, exc) from None
        if frame.empty:
            raise _empty(self.shown)
        frame = frame.copy()
        frame[ROW] = range(len(frame))
        if columns is not None:
            frame = frame[[*columns, ROW]]
        return frame

    def read(
        self, columns: Sequence[str] | None = None, progress: ProgressHook | None = None
    ) -> pd.DataFrame:
        """The table (only ``columns`` when given) with the hidden `_row` column."""
        table = self._stream(columns, progress, None, None) if columns is not None else None
        if isinstance(table, pa.Table):
            return table.to_pandas(split_blocks=True, self_destruct=True)
        return self._read_pandas(columns)

    def read_split(
        self,
        columns: Sequence[str],
        by: str,
        keep: set[str] | None,
        progress: ProgressHook | None = None,
    ) -> SplitTable:
        """Rows split by column ``by`` (stripped), only the symbols in ``keep`` (all when None);
        the Arrow stream never holds rows of other symbols."""
        split = SplitTable({})
        streamed = self._stream(columns, progress, by, (keep, split))
        if streamed is not None:
            return split
        return _split_frame(self._read_pandas(columns), by, keep)

    # the Arrow stream ---------------------------------------------------------------------
    def _arrow_types(self, columns: Sequence[str], by: str | None) -> dict[str, pa.DataType]:
        from multiagent.data.schema import TIMESTAMP, canonical_name

        types: dict[str, pa.DataType] = {}
        for name in columns:
            if name == by:
                types[name] = pa.string()
            elif canonical_name(name) == TIMESTAMP:
                # Naive ISO 8601 parses in the stream exactly as pandas parses it; anything
                # else (offsets, other formats) stays text for `parse_timestamps`.
                position = self.header.index(name)
                first = self._first[position].strip() if position < len(self._first) else ""
                types[name] = (
                    pa.timestamp("ns")
                    if _NAIVE_ISO.match(first)
                    else pa.int64()  # numbers, as pandas reads them (refused unless formatted)
                    if _INTEGER.match(first)
                    else pa.string()
                )
            else:
                types[name] = pa.float64()
        return types

    def _stream(
        self,
        columns: Sequence[str],
        progress: ProgressHook | None,
        by: str | None,
        split: tuple[set[str] | None, SplitTable] | None,
    ) -> pa.Table | SplitTable | None:
        """Stream the CSV through pyarrow; None when this file is pandas' to read."""
        compression = next(
            (c for suffix, c in ARROW_SUFFIXES.items() if self.path.name.lower().endswith(suffix)),
            "none",
        )
        if not self.is_csv or self._sep != "," or compression == "none":
            return None
        size = self.path.stat().st_size
        advance = progress(self.shown, size) if progress is not None else None
        try:
            with open(self.path, "rb") as raw:
                source: Any = _Counting(raw, advance) if advance is not None else raw
                stream = pa.PythonFile(source, mode="r")
                if compression is not None:
                    stream = pa.CompressedInputStream(stream, compression)
                reader = pa_csv.open_csv(
                    stream,
                    read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES),
                    parse_options=pa_csv.ParseOptions(delimiter=","),
                    convert_options=pa_csv.ConvertOptions(
                        include_columns=list(columns),
                        column_types=self._arrow_types(columns, by),
                        null_values=list(PANDAS_NA_VALUES),
                        strings_can_be_null=True,
                    ),
                )
                if split is None:
                    return self._collect(reader)
                keep, target = split
                assert by is not None
                self._collect_split(reader, by, keep, target)
                return target
        except (pa.ArrowInvalid, pa.ArrowKeyError, pa.ArrowNotImplementedError):
            return None  # pandas reads it and validation says what is wrong, if anything

    def _collect(self, reader: pa_csv.CSVStreamingReader) -> pa.Table:
        batches, offset = [], 0
        for batch in reader:
            batches.append(_with_rows(batch, offset))
            offset += batch.num_rows
        if not offset:
            raise _empty(self.shown)
        return pa.Table.from_batches(batches)

    def _collect_split(
        self,
        reader: pa_csv.CSVStreamingReader,
        by: str,
        keep: set[str] | None,
        target: SplitTable,
    ) -> None:
        chunks: dict[str, list[pa.RecordBatch]] = {}
        offset = 0
        for count, batch in enumerate(reader, 1):
            offset = _split_batch(batch, offset, by, keep, chunks, target)
            if count % 8 == 0:  # every 8 blocks: the pages the parse buffers freed
                release_unused_memory()
        if not offset:
            raise _empty(self.shown)
        target.parts = {name: pa.Table.from_batches(parts) for name, parts in chunks.items()}


class _Counting:
    """A binary file that reports the bytes read (the progress of a streamed CSV)."""

    def __init__(self, raw: IO[bytes], advance: Callable[[int], None]) -> None:
        self._raw, self._advance = raw, advance
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        self._advance(len(chunk))
        return chunk

    def close(self) -> None:
        self.closed = True


def _with_rows(batch: pa.RecordBatch, offset: int) -> pa.RecordBatch:
    rows = pa.array(np.arange(offset, offset + batch.num_rows, dtype=np.int64))
    return batch.append_column(ROW, rows)


def _split_batch(
    batch: pa.RecordBatch,
    offset: int,
    by: str,
    keep: set[str] | None,
    chunks: dict[str, list[pa.RecordBatch]],
    target: SplitTable,
) -> int:
    """Append this batch's rows to their symbol's chunks; returns the next batch's row offset."""
    names = pc.utf8_trim_whitespace(batch.column(by))
    encoded = pc.dictionary_encode(names)
    labels = [str(v) for v in encoded.dictionary.to_pylist()]
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    blank = [i for i, name in enumerate(labels) if name == ""]
    blank_mask = (codes < 0) | np.isin(codes, blank)
    if blank_mask.any():
        target.blank_rows.extend((np.flatnonzero(blank_mask) + offset).tolist())
    target.seen.update(name for name in labels if name)
    body = _with_rows(batch.drop_columns([by]), offset)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    for code, name in enumerate(labels):
        if name and (keep is None or name in keep) and bounds[code + 1] > bounds[code]:
            # `take` copies: a slice would pin the whole batch, other symbols included.
            piece = body.take(pa.array(order[bounds[code] : bounds[code + 1]]))
            chunks.setdefault(name, []).append(piece)
    return offset + batch.num_rows


def _split_frame(frame: pd.DataFrame, by: str, keep: set[str] | None) -> SplitTable:
    """The pandas twin of the stream's split, for parquet and the CSVs pandas reads."""
    column = frame[by]
    names = column.astype("string").str.strip()
    blank = np.asarray(column.isna().to_numpy() | (names == "").fillna(True).to_numpy(), bool)
    split = SplitTable({}, frame[ROW].to_numpy()[blank].tolist())
    codes, labels = pd.factorize(names[~blank])
    body = frame[~blank].drop(columns=[by])
    split.seen = {str(name) for name in labels}
    for code, name in enumerate(labels):
        if keep is None or name in keep:
            split.parts[str(name)] = body[codes == code]
    return split


def open_table(path: Path) -> TableFile:
    """Open a table and read its header; raises `DataValidationError` like `read_table`."""
    return TableFile(path)
