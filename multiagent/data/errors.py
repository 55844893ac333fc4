"""Data problems carry their context: file, symbol, rows, timestamp, column and a fix.

Validation collects every problem it finds and raises one `DataValidationError` holding all of
them, so a user fixes a file in one pass instead of one traceback at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multiagent.errors import MultiagentError


@dataclass(frozen=True)
class DataProblem:
    """One problem in one place of the input data."""

    check: str
    """Machine-readable name of the failed check, e.g. ``"nan"`` or ``"high_below_low"``."""
    message: str
    """What is wrong, in words."""
    hint: str = ""
    """What to do about it."""
    file: str | None = None
    symbol: str | None = None
    column: str | None = None
    rows: tuple[int, int] | None = None
    """First and last offending data row, 1-based, header not counted (CSV line = row + 1)."""
    timestamp: str | None = None
    """Timestamp of the first offending row, when known."""

    def location(self) -> str:
        parts: list[str] = []
        if self.file:
            parts.append(self.file)
        if self.symbol:
            parts.append(f"symbol {self.symbol}")
        if self.rows:
            first, last = self.rows
            parts.append(f"row {first}" if first == last else f"rows {first}-{last}")
        if self.timestamp:
            parts.append(f"at {self.timestamp}")
        if self.column:
            parts.append(f"column `{self.column}`")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        return f"{text}; {self.hint}" if self.hint else text


class DataValidationError(MultiagentError, ValueError):
    """Market data failed validation; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[DataProblem]) -> None:
        if not problems:
            raise ValueError("DataValidationError needs at least one problem")
        self.problems: tuple[DataProblem, ...] = tuple(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n > 1 else ''} in market data:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class DataFixWarning(UserWarning):
    """An automatic fix (sorting, dropping duplicates) was applied because the caller asked."""


def row_span(positions: Sequence[int] | np.ndarray) -> tuple[int, int]:
    """Convert 0-based positions to the 1-based (first, last) data-row span of a problem."""
    return int(positions[0]) + 1, int(positions[-1]) + 1
