"""The env side of curricula: cost level, a task's symbol set, per-view episode statistics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from curriculum_helpers import market_fixture, panel_fixture, views_fixture  # noqa: F401

from multiagent.data.episodes import EpisodeView
from multiagent.envs import MASTER, EnvMarket, HierarchicalEnvConfig, HierarchicalTradingEnv
from multiagent.envs.costs import CostParts
from multiagent.envs.hierarchical_env import default_neutral_action
from multiagent.envs.orders import Orders
from multiagent.envs.sampling import EpisodeSampler
from multiagent.envs.simulator import Simulator
from multiagent.errors import ConfigError

HOLD, BUY_SMALL, SELL_ALL = 0, 1, 5
CONFIG = HierarchicalEnvConfig(n_symbols=3)


def make(market: EnvMarket, views: list[EpisodeView], seed: int = 1) -> HierarchicalTradingEnv:
    env = HierarchicalTradingEnv(market, views, CONFIG)
    env.reset(seed=seed, options={"view": 0})
    return env


def act(env: HierarchicalTradingEnv, action: int) -> tuple[dict[str, Any], bool]:
    joint: dict[str, Any] = dict.fromkeys(env.symbol_agents, action)
    joint[MASTER] = default_neutral_action(env.n_slots, CONFIG.budget_levels)
    _, _, _, _, infos = env.step(joint)
    return infos, not env.agents


def costs_of(env: HierarchicalTradingEnv, actions: list[int]) -> np.ndarray:
    """(steps, 4) cost parts charged per step (summed over slots)."""
    rows = []
    for action in actions:
        before = env.core.sim.cost_paid.sum()
        act(env, action)
        rows.append(env.core.sim.cost_paid.sum() - before)
    return np.array(rows)


SCRIPT = [BUY_SMALL, HOLD, BUY_SMALL, HOLD, SELL_ALL, BUY_SMALL, HOLD, SELL_ALL]


@pytest.mark.parametrize("level", [0.0, 0.5, 2.0])
def test_cost_multiplier_scales_every_charge(
    market: EnvMarket, views: list[EpisodeView], level: float
) -> None:
    reference = costs_of(make(market, views), SCRIPT)
    assert reference.sum() > 0 and (reference > 0).sum() >= 4
    env = make(market, views)
    env.set_cost_multiplier(level)
    assert env.cost_multiplier == level
    charged = costs_of(env, SCRIPT)
    if level == 0.0:
        assert np.all(charged == 0.0)
    else:
        # Same trades on the first fill; later equity differs by the cost difference only.
        assert charged[0] == pytest.approx(level * reference[0], rel=1e-12)
        assert charged == pytest.approx(level * reference, rel=1e-2)


@pytest.mark.parametrize("level", [0.0, 2.0])
def test_cost_multiplier_scales_each_named_part(market: EnvMarket, level: float) -> None:
    def parts(multiplier: float | None) -> CostParts:
        sim = Simulator(market, 1, 3)
        if multiplier is not None:
            sim.set_cost_multiplier(multiplier)
        sim.reset(np.array([[0, 1, 2]]), np.array([50]), np.array([90]))
        orders = Orders(np.ones((1, 3), bool), np.zeros((1, 3)), np.full((1, 3), 0.2))
        return sim.step(orders).costs

    reference, scaled = parts(None), parts(level)
    for name in CostParts._fields:
        assert np.all(getattr(reference, name) > 0), name
        assert getattr(scaled, name) == pytest.approx(level * getattr(reference, name), rel=1e-12)


def test_cost_multiplier_applies_from_the_next_step(
    market: EnvMarket, views: list[EpisodeView]
) -> None:
    env = make(market, views)
    first = costs_of(env, [BUY_SMALL])
    assert first[0] > 0
    env.set_cost_multiplier(0.0)  # mid-episode
    assert np.all(costs_of(env, [BUY_SMALL, SELL_ALL]) == 0.0)
    env.set_cost_multiplier(1.0)
    assert costs_of(env, [BUY_SMALL])[0] > 0
    env.reset(seed=1)
    assert env.cost_multiplier == 1.0  # a reset keeps the level


def test_cost_multiplier_rejects_bad_levels(market: EnvMarket, views: list[EpisodeView]) -> None:
    env = make(market, views)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="cost scale"):
            env.set_cost_multiplier(bad)


def test_task_symbols_restrict_every_slot(market: EnvMarket, views: list[EpisodeView]) -> None:
    allowed = ("SYN001", "SYN002", "SYN004", "SYN005")
    env = make(market, views)
    seen_before: set[str] = set()
    for seed in range(30):
        env.reset(seed=seed)
        seen_before |= {market.symbols[r] for r in env.core.sim.symbol[0]}
    assert not seen_before <= set(allowed)  # without a symbol set every symbol shows up
    env.set_task([v for v in views if v.symbols[0] in allowed], symbols=allowed)
    seen: set[str] = set()
    for seed in range(60):
        env.reset(seed=seed)
        slots = {market.symbols[r] for r in env.core.sim.symbol[0]}
        assert len(slots) == 3 and slots <= set(allowed)
        seen |= slots
    assert seen == set(allowed)


def test_task_symbols_must_cover_the_views(market: EnvMarket, views: list[EpisodeView]) -> None:
    sampler = EpisodeSampler(market, views, 3)
    with pytest.raises(ConfigError, match=r"outside the task: \['SYN000'\]"):
        sampler.set_task(views[:2], symbols=["SYN001", "SYN002", "SYN003"])
    with pytest.raises(ConfigError, match=r"not in the market: \['NOPE'\]"):
        sampler.set_task(views, symbols=["NOPE"])
    first = [v for v in views if v.symbols[0] == "SYN000"]
    with pytest.raises(ConfigError, match="no episode view has 3 symbols"):
        sampler.set_task(first, symbols=["SYN000", "SYN001"])
    assert sampler.views == views  # a refused task changes nothing


def test_set_weights_keeps_the_symbol_set(market: EnvMarket, views: list[EpisodeView]) -> None:
    allowed = ("SYN000", "SYN001", "SYN002")
    subset = [v for v in views if v.symbols[0] in allowed]
    sampler = EpisodeSampler(market, subset, 3)
    sampler.set_task(subset, symbols=allowed)
    sampler.set_weights([1.0] + [0.0] * (len(subset) - 1))
    rng = np.random.default_rng(0)
    for _ in range(10):
        episode = sampler.sample(rng)
        assert {market.symbols[r] for r in episode.symbols} == set(allowed)
        assert episode.start == subset[0].window.start


def run_episodes(env: HierarchicalTradingEnv, n: int, seed: int = 0) -> list[float]:
    """Finish ``n`` episodes holding; the episode returns."""
    returns = []
    env.reset(seed=seed)
    while len(returns) < n:
        infos, done = act(env, BUY_SMALL)
        if done:
            returns.append(infos[MASTER]["episode"]["return"])
            env.reset()
    return returns


def test_view_stats_count_episodes_and_sum_returns(
    market: EnvMarket, views: list[EpisodeView]
) -> None:
    env = HierarchicalTradingEnv(market, views, CONFIG.model_copy(update={"max_episode_bars": 20}))
    returns = run_episodes(env, 12)
    counts, sums = env.pop_view_stats()
    assert counts.sum() == 12 and counts.shape == (len(views),)
    assert sums.sum() == pytest.approx(sum(returns))
    assert np.all(sums[counts == 0] == 0)
    again, _ = env.pop_view_stats()
    assert again.sum() == 0  # popped means cleared


def test_view_stats_follow_the_drawn_view(market: EnvMarket, views: list[EpisodeView]) -> None:
    env = HierarchicalTradingEnv(market, views, CONFIG.model_copy(update={"max_episode_bars": 10}))
    env.set_sampling_weights([0.0, 1.0] + [0.0] * (len(views) - 2))
    run_episodes(env, 3)
    counts, _ = env.pop_view_stats()
    assert counts.tolist() == [0, 3] + [0] * (len(views) - 2)


def test_episode_in_flight_across_a_new_pool_is_not_counted(
    market: EnvMarket, views: list[EpisodeView]
) -> None:
    env = HierarchicalTradingEnv(market, views, CONFIG.model_copy(update={"max_episode_bars": 10}))
    env.reset(seed=0)
    act(env, HOLD)
    env.set_task(views[:3])
    done = False
    while not done:
        _, done = act(env, HOLD)
    counts, _ = env.pop_view_stats()
    assert counts.tolist() == [0, 0, 0]
    run_episodes(env, 2)
    assert env.pop_view_stats()[0].sum() == 2
