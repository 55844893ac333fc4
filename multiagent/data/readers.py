"""Read one table file (CSV, compressed CSV, parquet) into a DataFrame, or say why not."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

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
    empty file.
    """
    shown = str(path)
    if not path.exists():
        raise DataValidationError(
            [DataProblem("not_found", "file does not exist", "check the path", file=shown)]
        )
    name = path.name.lower()
    try:
        if name.endswith(PARQUET_SUFFIXES):
            frame = pd.read_parquet(path)
            if not isinstance(frame.index, pd.RangeIndex):
                frame = frame.reset_index()
        elif name.endswith(CSV_SUFFIXES):
            frame = pd.read_csv(path, skipinitialspace=True)
            if frame.shape[1] == 1 and any(sep in str(frame.columns[0]) for sep in ";\t|"):
                # One column whose name holds a separator: not comma-delimited; sniff it.
                frame = pd.read_csv(path, sep=None, engine="python", skipinitialspace=True)
        else:
            raise DataValidationError(
                [
                    DataProblem(
                        "unsupported_format",
                        f"unsupported file type `{path.suffix}`",
                        f"use one of {', '.join(SUPPORTED_SUFFIXES)}",
                        file=shown,
                    )
                ]
            )
    except DataValidationError:
        raise
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except Exception as exc:  # any parser failure means the same thing to the user
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataValidationError(
            [
                DataProblem(
                    "unreadable",
                    f"cannot be read ({reason})",
                    "check that the file is a valid CSV or parquet table and not truncated",
                    file=shown,
                )
            ]
        ) from None
    if frame.empty:
        raise DataValidationError(
            [DataProblem("empty", "file has no data rows", "remove it or fill it", file=shown)]
        )
    frame = frame.copy()
    frame[ROW] = range(len(frame))
    return frame
