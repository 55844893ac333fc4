"""Episode sampling from episode views: the hook curricula turn.

`EpisodeSampler` holds a pool of views and a sampling weight per view. A curriculum changes the
pool or the weights between episodes (`set_task`); every draw goes through the env's own seeded
generator, so a seed fixes the sequence of episodes.

Multi-symbol episodes take the time window of a drawn view and fill the remaining slots with other
symbols that have a bar on at least ``min_coverage`` of that window's bars, drawn without
replacement; a window without enough such symbols is never drawn. A task's ``symbols`` restricts
those extra slots (and the views' own symbols) to a symbol set: a curriculum stage's universe.

Per-view episode statistics (episodes finished and the sum of their returns, per view of the
current pool) are kept for curricula that weight views by what happened on them; `pop_stats`
returns and clears them, and a new pool starts them at zero (an episode drawn from the old pool
and finished after the change is not counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from multiagent.data.episodes import EpisodeView
from multiagent.data.splits import Window
from multiagent.envs.market import EnvMarket
from multiagent.errors import ConfigError

DEFAULT_MIN_COVERAGE = 0.9
"""Fraction of a window's bars an extra-slot symbol must have a bar on."""


def extra_slot_candidates(
    close: np.ndarray,
    own: Sequence[int],
    window: Window,
    min_coverage: float,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Rows of ``close`` (S, T) that may fill the extra slots of an episode on ``window``: a bar
    on at least ``min_coverage`` of its bars, not one of the view's ``own`` rows, and among
    ``allowed`` rows when given (sorted)."""
    seen = np.isfinite(close[:, window.start : window.stop]).mean(axis=1)
    others = np.flatnonzero(seen >= min_coverage)
    if allowed is not None:
        others = np.intersect1d(others, allowed)
    return np.setdiff1d(others, np.asarray(own, np.int64))


class Episode(NamedTuple):
    symbols: np.ndarray
    """(N,) panel rows, one per slot."""
    start: int
    stop: int


class EpisodeSampler:
    def __init__(
        self,
        market: EnvMarket,
        views: Sequence[EpisodeView],
        n_slots: int = 1,
        *,
        max_bars: int | None = None,
        min_coverage: float = DEFAULT_MIN_COVERAGE,
        weights: Sequence[float] | None = None,
    ) -> None:
        self.market = market
        self.n_slots = n_slots
        self.max_bars = max_bars
        self.min_coverage = min_coverage
        self._rows = {name: i for i, name in enumerate(market.symbols)}
        self.pool_id = 0
        """Incremented by every `set_task`: statistics of a replaced pool are not recorded."""
        self.set_task(views, weights)

    def set_task(
        self,
        views: Sequence[EpisodeView],
        weights: Sequence[float] | None = None,
        symbols: Sequence[str] | None = None,
    ) -> None:
        """Replace the view pool (and its sampling weights; default uniform).

        ``symbols`` (default: every symbol of the market) is the symbol set of the task: every
        view's own symbols must be in it and the extra slots are filled from it only. The
        per-view statistics restart at zero.
        """
        if not views:
            raise ConfigError("no episode views to sample from (is the training window empty?)")
        unknown = {s for v in views for s in v.symbols if s not in self._rows}
        if unknown:
            raise ConfigError(f"episode views name symbols not in the market: {sorted(unknown)}")
        allowed: np.ndarray | None = None
        if symbols is not None:
            missing = sorted(set(symbols) - set(self._rows))
            if missing:
                raise ConfigError(f"task symbols not in the market: {missing}")
            outside = sorted({s for v in views for s in v.symbols} - set(symbols))
            if outside:
                raise ConfigError(f"episode views lead with symbols outside the task: {outside}")
            allowed = np.array(sorted(self._rows[s] for s in symbols), np.int64)
        candidates = [
            extra_slot_candidates(
                self.market.close,
                [self._rows[s] for s in view.symbols],
                view.window,
                self.min_coverage,
                allowed,
            )
            for view in views
        ]
        usable = np.array(
            [
                len(v.symbols) + len(c) >= self.n_slots
                for v, c in zip(views, candidates, strict=True)
            ]
        )
        usable &= np.array([len(v.window) >= 2 for v in views])
        if not usable.any():
            raise ConfigError(
                f"no episode view has {self.n_slots} symbols with bars on "
                f"{self.min_coverage:.0%} of its window; use fewer symbol slots or more data"
            )
        probabilities = self._probabilities(weights, usable)
        self.views = list(views)
        self.symbols = None if symbols is None else tuple(symbols)
        self.weights = probabilities
        self._usable = usable
        self._candidates = candidates
        self.pool_id += 1
        self.view_counts = np.zeros(len(views), np.int64)
        """Episodes finished per view of the pool since the last `pop_stats`."""
        self.view_returns = np.zeros(len(views))
        """Sum of those episodes' returns (fraction of initial cash) per view."""

    @staticmethod
    def _probabilities(weights: Sequence[float] | None, usable: np.ndarray) -> np.ndarray:
        n = len(usable)
        probs = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        if probs.shape != (n,) or np.any(probs < 0) or not np.isfinite(probs).all():
            raise ConfigError(f"need {n} finite non-negative sampling weights")
        probs = probs * usable
        if probs.sum() <= 0:
            raise ConfigError("every usable episode view has sampling weight 0")
        return probs / probs.sum()

    def set_weights(self, weights: Sequence[float]) -> None:
        """New sampling weights for the same pool (its symbol set and statistics are kept)."""
        self.weights = self._probabilities(weights, self._usable)

    def draw(self, rng: np.random.Generator) -> int:
        """Index of a view drawn by the sampling weights."""
        return int(rng.choice(len(self.views), p=self.weights))

    def sample(self, rng: np.random.Generator) -> Episode:
        return self.episode(self.draw(rng), rng)

    def record(self, index: int, pool_id: int, episode_return: float) -> None:
        """Count a finished episode of view ``index`` of pool ``pool_id`` (ignored when that
        pool has been replaced since the episode was drawn)."""
        if pool_id == self.pool_id:
            self.view_counts[index] += 1
            self.view_returns[index] += episode_return

    def pop_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(episodes finished, sum of their returns) per view of the pool; then cleared."""
        counts, returns = self.view_counts, self.view_returns
        self.view_counts = np.zeros_like(counts)
        self.view_returns = np.zeros_like(returns)
        return counts, returns

    def episode(self, index: int, rng: np.random.Generator | None = None) -> Episode:
        """The episode of view ``index``; extra slots and the sub-window need ``rng``."""
        view = self.views[index]
        own = [self._rows[s] for s in view.symbols][: self.n_slots]
        need = self.n_slots - len(own)
        rows = np.asarray(own, np.int64)
        if need > 0:
            if rng is None:
                raise ValueError("filling extra symbol slots needs a random generator")
            extra = rng.choice(self._candidates[index], size=need, replace=False)
            rows = np.concatenate([rows, extra])
        start, stop = view.window.start, view.window.stop
        if self.max_bars is not None and stop - start > self.max_bars:
            offset = 0 if rng is None else int(rng.integers(0, stop - start - self.max_bars + 1))
            start += offset
            stop = start + self.max_bars
        return Episode(rows, start, stop)


class CurriculumHooks:
    """`set_task` / `set_sampling_weights` / per-view statistics for any env holding an
    `EpisodeSampler`. An env that calls `record_episode_return` when an episode ends feeds the
    statistics `pop_view_stats` returns."""

    sampler: EpisodeSampler
    _drawn: tuple[int, int] | None = None
    """(pool id, view index) of the episode in flight."""

    def set_task(
        self,
        views: Sequence[EpisodeView],
        weights: Sequence[float] | None = None,
        symbols: Sequence[str] | None = None,
    ) -> None:
        """Replace the pool of episode views (their sampling weights, and the symbol set the
        extra slots are filled from) for next episodes; see `EpisodeSampler.set_task`."""
        self.sampler.set_task(views, weights, symbols)

    def set_sampling_weights(self, weights: Sequence[float]) -> None:
        self.sampler.set_weights(weights)

    def record_episode_return(self, episode_return: float) -> None:
        """Count the episode in flight (once) in its view's statistics."""
        if self._drawn is not None:
            self.sampler.record(self._drawn[1], self._drawn[0], episode_return)
            self._drawn = None

    def pop_view_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(episodes finished, sum of their returns) per view of the current pool, since the
        last call or the last `set_task`; cleared."""
        return self.sampler.pop_stats()

    def draw_episode(
        self, rng: np.random.Generator, options: dict[str, Any] | None, *, shuffle: bool = False
    ) -> Episode:
        """The next episode: ``options["view"]`` pins a view; ``shuffle`` randomizes slot order."""
        options = options or {}
        index = int(options["view"]) if "view" in options else self.sampler.draw(rng)
        episode = self.sampler.episode(index, rng)
        self._drawn = (self.sampler.pool_id, index)
        if shuffle:
            rng.shuffle(episode.symbols)
        return episode


def whole_market_views(
    market: EnvMarket, start: int = 0, stop: int | None = None
) -> list[EpisodeView]:
    """One view per symbol over its bars inside ``[start, stop)`` (first to last real bar)."""
    stop = market.n_bars if stop is None else stop
    views = []
    for row, name in enumerate(market.symbols):
        seen = np.flatnonzero(np.isfinite(market.close[row, start:stop])) + start
        if len(seen) >= 2:
            window = Window(int(seen[0]), int(seen[-1]) + 1)
            views.append(EpisodeView((name,), window, float("nan"), float("nan"), 1.0))
    return views
