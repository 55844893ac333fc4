"""Chronological splits, walk-forward folds and held-out symbols or episodes.

All time splits are half-open bar index ranges ``[start, stop)`` on the panel's axis, and every
boundary depends only on the timestamps, never on prices, so no split can leak information.
A purge gap drops bars between train and test (labels that look ahead by k bars need a gap of k);
an embargo drops bars after a test window before the next train window of a rolling scheme.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from multiagent.schema import Settings


@dataclass(frozen=True)
class Window:
    """Bars ``[start, stop)`` of the panel's time axis."""

    start: int
    stop: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.stop:
            raise ValueError(f"bad window [{self.start}, {self.stop})")

    def __len__(self) -> int:
        return self.stop - self.start

    def slice(self) -> slice:
        return slice(self.start, self.stop)


@dataclass(frozen=True)
class ChronologicalSplit:
    train: Window
    validation: Window
    test: Window


@dataclass(frozen=True)
class Fold:
    index: int
    train: Window
    test: Window


class SplitConfig(Settings):
    """Chronological train/validation/test fractions with a purge gap between parts."""

    train: float = Field(0.7, gt=0, lt=1, description="Fraction of bars for training.")
    validation: float = Field(0.15, ge=0, lt=1, description="Fraction for validation.")
    purge: int = Field(0, ge=0, description="Bars dropped between consecutive parts.")

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        if self.train + self.validation >= 1:
            raise ValueError(
                f"train + validation = {self.train + self.validation:g} leaves no test bars"
            )
        return self


def chronological_split(n_bars: int, config: SplitConfig | None = None) -> ChronologicalSplit:
    config = config or SplitConfig()
    train_stop = int(n_bars * config.train)
    val_start = min(train_stop + config.purge, n_bars)
    val_stop = min(val_start + int(n_bars * config.validation), n_bars)
    test_start = min(val_stop + config.purge, n_bars)
    split = ChronologicalSplit(
        Window(0, train_stop), Window(val_start, val_stop), Window(test_start, n_bars)
    )
    if min(len(split.train), len(split.test)) == 0:
        raise ValueError(f"{n_bars} bars are too few for split {config.model_dump()}")
    return split


class WalkForwardConfig(Settings):
    """Walk-forward folds: a fixed test window marching forward after a train window."""

    scheme: Literal["rolling", "expanding"] = Field(
        "expanding", description="rolling: fixed-length train window; expanding: from bar 0."
    )
    train_bars: int = Field(ge=1, description="Train length (the first one, if expanding).")
    test_bars: int = Field(ge=1, description="Test window length.")
    step: int | None = Field(None, ge=1, description="Bars between folds; default test_bars.")
    purge: int = Field(0, ge=0, description="Bars dropped between train and test.")
    embargo: int = Field(
        0, ge=0, description="Bars after a fold's test start that later train windows skip."
    )
    max_folds: int | None = Field(None, ge=1)


def walk_forward_folds(n_bars: int, config: WalkForwardConfig) -> list[Fold]:
    """Folds whose test windows never overlap their train window or its purge gap."""
    step = config.step or config.test_bars
    folds: list[Fold] = []
    test_start = config.train_bars + config.purge
    while test_start + config.test_bars <= n_bars:
        train_stop = test_start - config.purge
        train_start = 0 if config.scheme == "expanding" else train_stop - config.train_bars
        train = Window(train_start, train_stop)
        if config.embargo and folds and config.scheme == "rolling":
            # Skip train bars within `embargo` of any earlier test window's start.
            latest = folds[-1].test.start + config.embargo
            train = Window(max(train.start, min(latest, train.stop)), train.stop)
        folds.append(Fold(len(folds), train, Window(test_start, test_start + config.test_bars)))
        if config.max_folds and len(folds) >= config.max_folds:
            break
        test_start += step
    if not folds:
        raise ValueError(
            f"{n_bars} bars are too few for one fold of {config.train_bars} train + "
            f"{config.purge} purge + {config.test_bars} test bars"
        )
    return folds


def held_out(
    names: Sequence[str], fraction: float = 0.2, seed: int = 0
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split symbols (or session episodes) into (train, held out): held-out never train.

    The draw depends on the seed and the set of names, not their order.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    ordered = sorted(names)
    if len(ordered) < 2:
        raise ValueError("need at least two names to hold some out")
    n_out = min(max(1, round(len(ordered) * fraction)), len(ordered) - 1)
    rng = np.random.default_rng(seed)
    out = set(rng.choice(len(ordered), size=n_out, replace=False).tolist())
    keep = tuple(n for i, n in enumerate(ordered) if i not in out)
    return keep, tuple(n for i, n in enumerate(ordered) if i in out)
