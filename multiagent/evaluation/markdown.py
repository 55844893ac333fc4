"""How report figures read in Markdown: one formatter and one table writer for every section."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def fmt(value: Any, kind: str = "num") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if kind == "pct":
        return f"{value:+.1%}"
    if kind == "frac":
        return f"{value:.1%}"
    if kind == "frac2":
        return f"{value:.2%}"
    if isinstance(value, int):
        return str(value)
    return f"{value:.2f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def cells(row: Sequence[str]) -> str:  # a "|" inside a cell would split it
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"

    lines = [cells(header), "|" + "---|" * len(header)]
    lines += [cells(row) for row in rows]
    return [*lines, ""]
