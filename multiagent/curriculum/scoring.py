"""What orders episode views for a curriculum, and which views a stage keeps.

Everything here reads the training views and the bars inside their windows only (the train
split): a curriculum must not learn its order from the periods it is validated and tested on.

- `difficulty_scores`: per view, the mean of its percentile ranks of volatility, quoted spread and
  missing coverage among the pool (0 = easiest, 1 = hardest).
- `liquidity_ranking`: symbols by mean dollar volume over the training bars.
- `select_stage`: the views a stage keeps (its symbol universe, its quantile ranges, and only
  views the env can fill all its symbol slots on) and its symbol set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from multiagent.curriculum.config import StageConfig, TopLiquid
from multiagent.data.episodes import EpisodeView
from multiagent.data.panel import MarketPanel
from multiagent.envs.sampling import DEFAULT_MIN_COVERAGE, extra_slot_candidates
from multiagent.errors import ConfigError

logger = logging.getLogger(__name__)


def percentile_ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rank of each value among the finite ones scaled to [0, 1] (0 = smallest; ties share
    their mean rank). NaN, and every value when fewer than two are finite, rank 0.5: unknown is
    neither easy nor hard."""
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, 0.5)
    finite = np.isfinite(values)
    n = int(finite.sum())
    if n > 1:
        out[finite] = (rankdata(values[finite], method="average") - 1.0) / (n - 1.0)
    return out


def difficulty_scores(views: Sequence[EpisodeView]) -> np.ndarray:
    """(V,) difficulty of each view in [0, 1]: the mean of its percentile ranks of volatility,
    spread and ``1 - coverage`` among ``views``.

    Why these three: a volatile view has larger and noisier rewards (harder credit assignment);
    a wide spread makes every trade costlier; missing bars leave slots untradable and marks stale.
    Why percentile ranks: the three are in different units and heavy-tailed (one crash window
    would squash every other volatility toward 0 on a min-max scale); ranks put them on one
    scale and a quantile range of the score keeps a fixed share of the views. A metric unknown
    for every view (no spread field in the data) is left out rather than counted as average;
    a view with one metric unknown ranks 0.5 on it.
    """
    if not views:
        return np.zeros(0)
    columns = [
        np.array([v.volatility for v in views], dtype=float),
        np.array([v.spread for v in views], dtype=float),
        1.0 - np.array([v.coverage for v in views], dtype=float),
    ]
    ranks = [percentile_ranks(c) for c in columns if np.isfinite(c).any()]
    if not ranks:
        return np.full(len(views), 0.5)
    return np.mean(ranks, axis=0)


def train_bars(n_bars: int, views: Sequence[EpisodeView]) -> np.ndarray:
    """(T,) bool: the bars inside at least one of ``views``' windows."""
    mask = np.zeros(n_bars, bool)
    for view in views:
        mask[view.window.start : view.window.stop] = True
    return mask


def liquidity_ranking(panel: MarketPanel, views: Sequence[EpisodeView]) -> list[str]:
    """Symbols with a bar inside ``views``' windows, most liquid first.

    Liquidity is the mean dollar volume (close x volume) over the symbol's bars inside the
    windows; only those bars are read (pass the training views: later data must not choose the
    universe). Without volume (a close-only panel) the number of observed bars ranks instead;
    with volume for some symbols only, the others rank after them. Ties go by name.
    """
    mask = train_bars(panel.n_bars, views)
    close = panel.close[:, mask]
    bars = np.isfinite(close).sum(axis=1)
    dollar_mean = np.zeros(panel.n_symbols)
    if panel.has("volume"):
        dollar = close * panel.fields["volume"][:, mask]
        finite = np.isfinite(dollar)
        total = np.where(finite, dollar, 0.0).sum(axis=1)
        dollar_mean = total / np.maximum(finite.sum(axis=1), 1)
    if not np.any(dollar_mean > 0):
        logger.info("no volume in the training bars: ranking liquidity by observed bars")
    order = sorted(
        (i for i in range(panel.n_symbols) if bars[i] > 0),
        key=lambda i: (-dollar_mean[i], -bars[i], panel.symbols[i]),
    )
    return [panel.symbols[i] for i in order]


@dataclass(frozen=True)
class StageSelection:
    views: np.ndarray
    """Indices of the kept views into the pool, increasing."""
    symbols: tuple[str, ...] | None
    """The stage's symbol universe (every slot draws from it); None = every symbol."""


def _quantile_mask(values: np.ndarray, bounds: tuple[float, float] | None) -> np.ndarray:
    """Values whose percentile rank q satisfies lo <= q < hi (q <= 1 when hi = 1), so adjacent
    ranges ([0, 0.33], [0.33, 0.66], [0.66, 1]) split the views without overlap."""
    if bounds is None:
        return np.ones(len(values), bool)
    lo, hi = bounds
    q = percentile_ranks(values)
    return (q >= lo) & ((q < hi) | (hi >= 1.0))


def stage_symbols(
    stage: StageConfig,
    panel: MarketPanel,
    ranking: Sequence[str],
    *,
    source: str,
    index: int,
) -> tuple[str, ...] | None:
    """The symbol universe of ``stage`` (None = all)."""
    selection = stage.symbols
    if selection == "all":
        return None
    if isinstance(selection, TopLiquid):
        n = selection.top_liquid
        if n > len(ranking):
            logger.warning(
                "%s: stage %d `%s` asks for the top %d liquid symbols; the data has %d",
                source,
                index,
                stage.name,
                n,
                len(ranking),
            )
        return tuple(ranking[:n])
    unknown = sorted(set(selection) - set(panel.symbols))
    if unknown:
        raise ConfigError(
            f"{source}: `stages.{index}.symbols` (stage `{stage.name}`) names symbols not in "
            f"the data: {unknown}; the data has {', '.join(panel.symbols)}",
            file=source,
            field=f"stages.{index}.symbols",
        )
    return tuple(selection)


def select_stage(
    stage: StageConfig,
    views: Sequence[EpisodeView],
    panel: MarketPanel,
    n_slots: int,
    *,
    difficulty: np.ndarray,
    ranking: Sequence[str],
    source: str,
    index: int,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> StageSelection:
    """The views ``stage`` keeps out of ``views`` (the training pool).

    In order: views whose symbols are all in the stage's universe; among those, the ones in the
    stage's quantile ranges of volatility and of ``difficulty`` (ranks among the views left by
    the universe, so "the calmest half of the 10 most liquid symbols' views"); among those, the
    ones on which the env can fill ``n_slots`` slots from the universe (symbols with bars on
    ``min_coverage`` of the window, as `multiagent.envs.sampling.EpisodeSampler` fills them).
    A stage that keeps nothing is a `ConfigError` naming the file and the stage.
    """
    symbols = stage_symbols(stage, panel, ranking, source=source, index=index)
    universe = set(panel.symbols if symbols is None else symbols)
    where = f"{source}: stage {index} `{stage.name}` (`stages.{index}`)"
    if len(universe) < n_slots:
        raise ConfigError(
            f"{where} has {len(universe)} symbols, fewer than the env's {n_slots} symbol slots "
            "(env.n_symbols); widen its `symbols`",
            file=source,
            field=f"stages.{index}.symbols",
        )
    rows = {name: i for i, name in enumerate(panel.symbols)}
    allowed = np.array(sorted(rows[s] for s in universe), np.int64)
    in_universe = np.flatnonzero([set(v.symbols) <= universe for v in views])
    volatility = np.array([views[int(i)].volatility for i in in_universe], dtype=float)
    ranged = in_universe[
        _quantile_mask(volatility, stage.volatility)
        & _quantile_mask(difficulty[in_universe], stage.difficulty)
    ]
    fillable = [
        i
        for i in ranged.tolist()
        if len(views[i].window) >= 2
        and len(views[i].symbols)
        + len(
            extra_slot_candidates(
                panel.close,
                [rows[s] for s in views[i].symbols],
                views[i].window,
                min_coverage,
                allowed,
            )
        )
        >= n_slots
    ]
    if not fillable:
        raise ConfigError(
            f"{where} keeps no episode view: of {len(views)} training views {len(in_universe)} "
            f"lead with its symbols, {len(ranged)} are in its volatility/difficulty ranges and "
            f"{len(fillable)} have {n_slots} of its symbols with bars on {min_coverage:.0%} of "
            "the window; widen its `symbols` or quantile ranges",
            file=source,
            field=f"stages.{index}",
        )
    return StageSelection(np.asarray(fillable, np.int64), symbols)
