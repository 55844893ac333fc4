"""Episode sampling from episode views: the hook curricula turn.

`EpisodeSampler` holds a pool of views and a sampling weight per view. A curriculum changes the
pool or the weights between episodes (`set_task`); every draw goes through the env's own seeded
generator, so a seed fixes the sequence of episodes.

Multi-symbol episodes take the time window of a drawn view and fill the remaining slots with other
symbols that have a bar on at least ``min_coverage`` of that window's bars, drawn without
replacement; a window without enough such symbols is never drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from multiagent.data.episodes import EpisodeView
from multiagent.data.splits import Window
from multiagent.envs.market import EnvMarket
from multiagent.errors import ConfigError


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
        min_coverage: float = 0.9,
        weights: Sequence[float] | None = None,
    ) -> None:
        self.market = market
        self.n_slots = n_slots
        self.max_bars = max_bars
        self.min_coverage = min_coverage
        self._rows = {name: i for i, name in enumerate(market.symbols)}
        self.set_task(views, weights)

    def set_task(
        self, views: Sequence[EpisodeView], weights: Sequence[float] | None = None
    ) -> None:
        """Replace the view pool (and its sampling weights; default uniform)."""
        if not views:
            raise ConfigError("no episode views to sample from (is the training window empty?)")
        unknown = {s for v in views for s in v.symbols if s not in self._rows}
        if unknown:
            raise ConfigError(f"episode views name symbols not in the market: {sorted(unknown)}")
        candidates: list[np.ndarray] = []
        for view in views:
            window = slice(view.window.start, view.window.stop)
            seen = np.isfinite(self.market.close[:, window]).mean(axis=1)
            own = [self._rows[s] for s in view.symbols]
            others = np.flatnonzero(seen >= self.min_coverage)
            candidates.append(np.setdiff1d(others, own))
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
        probs = np.ones(len(views)) if weights is None else np.asarray(weights, dtype=float)
        if probs.shape != (len(views),) or np.any(probs < 0) or not np.isfinite(probs).all():
            raise ConfigError(f"need {len(views)} finite non-negative sampling weights")
        probs = probs * usable
        if probs.sum() <= 0:
            raise ConfigError("every usable episode view has sampling weight 0")
        self.views = list(views)
        self.weights = probs / probs.sum()
        self._candidates = candidates

    def set_weights(self, weights: Sequence[float]) -> None:
        self.set_task(self.views, weights)

    def sample(self, rng: np.random.Generator) -> Episode:
        index = int(rng.choice(len(self.views), p=self.weights))
        return self.episode(index, rng)

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
    """`set_task` / `set_sampling_weights` for any env holding an `EpisodeSampler`."""

    sampler: EpisodeSampler

    def set_task(
        self, views: Sequence[EpisodeView], weights: Sequence[float] | None = None
    ) -> None:
        """Replace the pool of episode views (and their sampling weights) for next episodes."""
        self.sampler.set_task(views, weights)

    def set_sampling_weights(self, weights: Sequence[float]) -> None:
        self.sampler.set_weights(weights)

    def draw_episode(
        self, rng: np.random.Generator, options: dict[str, Any] | None, *, shuffle: bool = False
    ) -> Episode:
        """The next episode: ``options["view"]`` pins a view; ``shuffle`` randomizes slot order."""
        options = options or {}
        if "view" in options:
            episode = self.sampler.episode(int(options["view"]), rng)
        else:
            episode = self.sampler.sample(rng)
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
