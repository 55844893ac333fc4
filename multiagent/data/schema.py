"""Canonical column names and the aliases accepted for them.

Every loader maps a user's columns onto this one vocabulary before validation, so checks and
features never see `Adj Close`, `Date` or `ticker`.
"""

from __future__ import annotations

import re

import pandas as pd

from multiagent.data.errors import DataProblem

TIMESTAMP = "timestamp"
SYMBOL = "symbol"
PRICE_FIELDS = ("open", "high", "low", "close")
FIELDS = (*PRICE_FIELDS, "volume", "spread")
"""Per-bar numeric fields. ``spread`` is the quoted ask - bid in price units."""
ROW = "_row"
"""Hidden column: 0-based position of the row in its file, for error messages."""

_ALIASES: dict[str, tuple[str, ...]] = {
    TIMESTAMP: ("timestamp", "date", "datetime", "time", "ts", "date_time", "index"),
    SYMBOL: ("symbol", "ticker", "asset", "instrument", "code", "session"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "price", "last"),
    "adj_close": ("adj close", "adj_close", "adjclose", "adjusted_close", "adjusted close"),
    "volume": ("volume", "vol", "v"),
    "spread": ("spread",),
}


def _normalize(name: object) -> str:
    return re.sub(r"\s+", " ", str(name).strip().lower())


def canonical_name(column: object) -> str | None:
    """The canonical name a user column maps to, or None when it is not a known alias."""
    key = _normalize(column)
    for canonical, aliases in _ALIASES.items():
        if key in aliases:
            return canonical
    return None


def canonicalize_columns(
    frame: pd.DataFrame, *, file: str, symbol: str | None = None
) -> tuple[pd.DataFrame, list[DataProblem], list[str]]:
    """Rename known aliases to canonical names and fold `adj close` into the OHLC prices.

    Returns the renamed frame, problems (two columns mapping to one name) and notes (what was
    adjusted). Unknown columns are kept untouched: the wide and exogenous loaders use them.
    """
    problems: list[DataProblem] = []
    notes: list[str] = []
    mapping: dict[str, str] = {}
    seen: dict[str, str] = {}
    for column in frame.columns:
        if column == ROW:
            continue
        canonical = canonical_name(column)
        if canonical is None:
            continue
        if canonical in seen:
            problems.append(
                DataProblem(
                    "ambiguous_column",
                    f"columns `{seen[canonical]}` and `{column}` both mean `{canonical}`",
                    "keep one of them",
                    file=file,
                    symbol=symbol,
                    column=str(column),
                )
            )
            continue
        seen[canonical] = str(column)
        mapping[column] = canonical
    out = frame.rename(columns=mapping)
    if "adj_close" in out.columns:
        if "close" in out.columns:
            # Scale O/H/L by the adjustment factor so bars stay consistent with the adjusted close
            # (the usual treatment of split/dividend-adjusted daily data).
            factor = pd.to_numeric(out["adj_close"], errors="coerce") / pd.to_numeric(
                out["close"], errors="coerce"
            )
            for field in ("open", "high", "low"):
                if field in out.columns:
                    out[field] = pd.to_numeric(out[field], errors="coerce") * factor
            notes.append(f"{file}: used `{seen['adj_close']}` as close; open/high/low scaled to it")
            out = out.drop(columns=["close"])
        out = out.rename(columns={"adj_close": "close"})
    return out, problems, notes
