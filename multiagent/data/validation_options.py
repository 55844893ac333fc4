"""Thresholds and opt-in auto-fixes of bar validation, as one settings section.

A module of its own because the run config and the CLI embed these options: they import the
settings model, not the checks that read it (`multiagent.data.validation`).
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from pydantic import Field, field_validator

from multiagent.schema import Settings


class ValidationOptions(Settings):
    """Thresholds and opt-in auto-fixes of market-data validation."""

    max_gap: timedelta | None = Field(
        default=None,
        description="Largest allowed time between bars; None = 10 days for bars up to a day, "
        "10 bars for longer bars.",
    )
    max_abs_log_return: float | None = Field(
        default=1.0,
        gt=0,
        description="Largest |log(close_t / close_t-1)|; 1.0 flags moves beyond +172% / -63% "
        "(unadjusted splits, bad ticks). None disables.",
    )
    max_stale_bars: int | None = Field(
        default=20,
        ge=1,
        description="Longest run of bars with an unchanged close (stale feed). None disables.",
    )
    allow_irregular: bool = Field(
        default=False, description="Accept bars spaced closer than the file's usual bar size."
    )
    sort: bool = Field(default=False, description="Auto-fix: sort rows by timestamp, reported.")
    drop_duplicates: bool = Field(
        default=False, description="Auto-fix: keep the last row of duplicated timestamps, reported."
    )
    timestamp_format: str | None = Field(
        default=None, description="strftime format of the timestamp column when not ISO 8601."
    )
    repair: bool = Field(
        default=False,
        description="Opt-in repair of exchange artifacts: bars with a zero or negative price, "
        "high < low or open/close outside [low, high] become missing bars; of duplicated "
        "timestamps identical rows keep the first, conflicting ones become a missing bar. "
        "Each repaired row is reported in the panel's notes.",
    )

    @field_validator("max_gap", mode="before")
    @classmethod
    def _parse_gap(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return pd.Timedelta(value).to_pytimedelta()
            except ValueError:
                raise ValueError(
                    f"not a duration: {value!r} (examples: '10D', '4h', '30min')"
                ) from None
        return value

    def gap_limit(self, bar: pd.Timedelta) -> pd.Timedelta:
        if self.max_gap is not None:
            return pd.Timedelta(self.max_gap)
        return (
            max(pd.Timedelta(days=10), 10 * bar)
            if bar > pd.Timedelta(days=1)
            else pd.Timedelta(days=10)
        )
