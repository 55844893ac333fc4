"""Difficulty scores, the liquidity ranking and stage selection read the training views only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from curriculum_helpers import TRAIN, curriculum_config, panel_fixture, views_fixture  # noqa: F401

from multiagent.curriculum import Curriculum, difficulty_scores, liquidity_ranking
from multiagent.curriculum.scoring import percentile_ranks, select_stage
from multiagent.data.episodes import EpisodeView, make_views
from multiagent.data.panel import MarketPanel
from multiagent.data.splits import Window
from multiagent.envs.sampling import DEFAULT_MIN_COVERAGE
from multiagent.errors import ConfigError


def view(volatility: float, spread: float, coverage: float) -> EpisodeView:
    return EpisodeView(("A",), Window(0, 10), volatility, spread, coverage)


def perturbed_after(panel: MarketPanel, stop: int, seed: int = 0) -> MarketPanel:
    """``panel`` with every field after bar ``stop`` scrambled (prices and volumes)."""
    rng = np.random.default_rng(seed)
    fields = {}
    for name, values in panel.fields.items():
        values = values.copy()
        values[:, stop:] *= rng.uniform(0.1, 50.0, values[:, stop:].shape)
        fields[name] = values
    return dataclasses.replace(panel, fields=fields)


def test_percentile_ranks_ties_and_nan() -> None:
    assert percentile_ranks([3.0, 1.0, 2.0]).tolist() == [1.0, 0.0, 0.5]
    assert percentile_ranks([1.0, 1.0, 2.0]).tolist() == [0.25, 0.25, 1.0]
    assert percentile_ranks([np.nan, 1.0, 2.0]).tolist() == [0.5, 0.0, 1.0]
    assert percentile_ranks([np.nan, 7.0]).tolist() == [0.5, 0.5]


def test_difficulty_orders_calm_tight_complete_first() -> None:
    views = [view(0.01, 0.001, 1.0), view(0.02, 0.002, 0.95), view(0.03, 0.003, 0.9)]
    scores = difficulty_scores(views)
    assert scores.tolist() == [0.0, 0.5, 1.0]


def test_difficulty_ignores_a_spread_missing_everywhere() -> None:
    with_nan = [view(0.03, np.nan, 1.0), view(0.01, np.nan, 0.5), view(0.02, np.nan, 1.0)]
    # Only volatility and missing coverage count: (1 + 0.25) / 2, (0 + 1) / 2, (0.5 + 0.25) / 2
    assert difficulty_scores(with_nan) == pytest.approx([0.625, 0.5, 0.375])


def test_liquidity_ranking_by_dollar_volume(panel: MarketPanel, views: list[EpisodeView]) -> None:
    mask = slice(TRAIN.start, TRAIN.stop)
    dollar = np.nanmean(panel.close[:, mask] * panel.fields["volume"][:, mask], axis=1)
    expected = [panel.symbols[i] for i in np.argsort(-dollar)]
    assert liquidity_ranking(panel, views) == expected


def test_liquidity_falls_back_to_observed_bars(panel: MarketPanel) -> None:
    close = panel.close.copy()
    close[2, 10:60] = np.nan  # SYN002 misses 50 training bars, SYN004 misses 10
    close[4, 100:110] = np.nan
    bare = dataclasses.replace(panel, fields={"close": close})
    ranking = liquidity_ranking(bare, make_views(bare, length=100, window=TRAIN))
    assert ranking[-2:] == ["SYN004", "SYN002"]
    assert ranking[:4] == ["SYN000", "SYN001", "SYN003", "SYN005"]  # ties by name


def test_scoring_reads_only_the_training_window(
    panel: MarketPanel, views: list[EpisodeView]
) -> None:
    later = perturbed_after(panel, TRAIN.stop)
    later_views = make_views(later, length=100, window=TRAIN)
    assert later_views == views
    assert liquidity_ranking(later, later_views) == liquidity_ranking(panel, views)
    assert np.array_equal(difficulty_scores(later_views), difficulty_scores(views))
    config = curriculum_config(
        {"name": "liquid", "symbols": {"top_liquid": 4}, "difficulty": [0.0, 0.5], "iterations": 1},
        {"name": "all", "sampling": "worst"},
    )
    before = Curriculum(config, views, panel, 3)
    after = Curriculum(config, later_views, later, 3)
    assert after.task() == before.task()
    # ...while a change inside the window does move the ranking (the check is not vacuous).
    inside = dataclasses.replace(panel, fields=dict(panel.fields))
    volume = panel.fields["volume"].copy()
    last = panel.symbol_index(liquidity_ranking(panel, views)[-1])
    volume[last, TRAIN.start : TRAIN.stop] *= 1000
    inside.fields["volume"] = volume
    assert liquidity_ranking(inside, views)[0] == panel.symbols[last]


def select(stage_config: dict, panel: MarketPanel, views: list[EpisodeView], n_slots: int = 3):
    stage = curriculum_config(stage_config).stages[0]
    return select_stage(
        stage,
        views,
        panel,
        n_slots,
        difficulty=difficulty_scores(views),
        ranking=liquidity_ranking(panel, views),
        source="c.yaml",
        index=0,
    )


def test_symbol_list_keeps_only_its_views(panel: MarketPanel, views: list[EpisodeView]) -> None:
    chosen = ("SYN001", "SYN003", "SYN004")
    selection = select({"name": "a", "symbols": list(chosen)}, panel, views)
    assert selection.symbols == chosen
    kept = {views[i].symbols[0] for i in selection.views}
    assert kept == set(chosen)
    assert len(selection.views) == sum(v.symbols[0] in chosen for v in views)


def test_quantile_ranges_split_views_without_overlap(
    panel: MarketPanel, views: list[EpisodeView]
) -> None:
    parts = [
        set(select({"name": "a", "volatility": list(r)}, panel, views).views.tolist())
        for r in ([0.0, 0.33], [0.33, 0.66], [0.66, 1.0])
    ]
    assert set.union(*parts) == set(range(len(views)))
    assert sum(len(p) for p in parts) == len(views)
    volatility = np.array([v.volatility for v in views])
    calm, wild = sorted(parts[0]), sorted(parts[2])
    assert volatility[calm].max() < volatility[wild].min()


def test_unknown_symbols_name_the_file_and_stage(
    panel: MarketPanel, views: list[EpisodeView]
) -> None:
    with pytest.raises(ConfigError, match=r"c\.yaml.*`stages\.0\.symbols`.*\['NOPE'\]"):
        select({"name": "a", "symbols": ["SYN000", "NOPE"]}, panel, views)


def test_too_few_symbols_for_the_slots(panel: MarketPanel, views: list[EpisodeView]) -> None:
    with pytest.raises(ConfigError, match=r"c\.yaml: stage 0 `a`.*2 symbols, fewer than .* 3"):
        select({"name": "a", "symbols": {"top_liquid": 2}}, panel, views)


def test_unfillable_stage_is_a_config_error(panel: MarketPanel) -> None:
    close = panel.close.copy()
    close[1:, 200:] = np.nan  # only SYN000 trades after bar 200: its late views cannot fill 3 slots
    sparse = dataclasses.replace(panel, fields={**panel.fields, "close": close})
    late = [v for v in make_views(sparse, length=100, window=TRAIN) if v.window.start >= 200]
    assert late
    with pytest.raises(
        ConfigError, match=r"stage 0 `a` \(`stages\.0`\) keeps no episode view"
    ) as info:
        select({"name": "a"}, sparse, late)
    assert info.value.file == "c.yaml" and info.value.field == "stages.0"
    assert f"{DEFAULT_MIN_COVERAGE:.0%}" in str(info.value)
