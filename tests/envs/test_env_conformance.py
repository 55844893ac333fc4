"""Peer conformance: gymnasium `check_env`, PettingZoo `parallel_api_test` and seed test, over
every preset; determinism (same seed, same rollout); B=1 and B>1 cores agree."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test, parallel_seed_test

from multiagent.envs import (
    PRESETS,
    EnvMarket,
    HierarchicalEnvConfig,
    HierarchicalTradingEnv,
    SchemeConfig,
    SymbolEnvConfig,
    TradingCore,
    make_env,
)
from multiagent.envs.hierarchical_env import random_joint_action
from multiagent.envs.sampling import EpisodeSampler, whole_market_views


def random_masked_action(rng: np.random.Generator, mask: np.ndarray) -> int:
    return int(rng.choice(np.flatnonzero(mask)))


GYM_PRESETS = [name for name, config in PRESETS.items() if name != "hierarchical"]


def _market_for(name: str, market: EnvMarket, session_market: EnvMarket) -> EnvMarket:
    return session_market if name == "symbol_limit" else market


def _rollout(env: Any, seed: int, steps: int = 120) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    trace = []
    for _ in range(steps):
        if isinstance(obs, dict):
            action = random_masked_action(rng, obs["action_mask"])
        else:
            action = int(rng.integers(env.action_space.n))
        obs, reward, terminated, truncated, info = env.step(action)
        flat = obs["observations"] if isinstance(obs, dict) else obs
        trace.append((flat.copy(), reward, info.get("equity")))
        if terminated or truncated:
            obs, _ = env.reset()
    return trace


@pytest.mark.parametrize("name", GYM_PRESETS)
def test_gymnasium_check_env(name: str, market: EnvMarket, session_market: EnvMarket) -> None:
    env = make_env(name, _market_for(name, market, session_market))
    with warnings.catch_warnings():
        # Unbounded feature boxes are deliberate (normalized features, clipped by config).
        warnings.filterwarnings("ignore", message=".*Box observation space m.*infinity.*")
        check_env(env, skip_render_check=True)
    assert env.observation_space is env.observation_space


@pytest.mark.parametrize("name", GYM_PRESETS)
def test_same_seed_same_rollout(name: str, market: EnvMarket, session_market: EnvMarket) -> None:
    data = _market_for(name, market, session_market)
    first = _rollout(make_env(name, data), seed=11)
    second = _rollout(make_env(name, data), seed=11)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]
    other = _rollout(make_env(name, data), seed=12)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


HIERARCHICAL_VARIANTS = {
    "preset": PRESETS["hierarchical"],
    "discrete3": HierarchicalEnvConfig(n_symbols=3, scheme=SchemeConfig(kind="discrete3")),
    "interval1": HierarchicalEnvConfig(n_symbols=2, communication_interval=1),
}


@pytest.mark.parametrize("variant", list(HIERARCHICAL_VARIANTS))
def test_parallel_api_and_seed(variant: str, market: EnvMarket) -> None:
    config = HIERARCHICAL_VARIANTS[variant]
    env = HierarchicalTradingEnv(market, config=config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a live agent without an observation would warn
        parallel_api_test(env, num_cycles=300)
    parallel_seed_test(lambda: HierarchicalTradingEnv(market, config=config), num_cycles=200)
    assert env.observation_space("symbol_0") is env.observation_space("symbol_1")
    assert env.state_space.contains(env.state())


def test_hierarchical_limit_orders(market: EnvMarket) -> None:
    config = HierarchicalEnvConfig(n_symbols=2, scheme=SchemeConfig(kind="limit5"))
    env = HierarchicalTradingEnv(market, config=config)
    parallel_api_test(env, num_cycles=200)


def test_hierarchical_rollouts_are_deterministic(market: EnvMarket) -> None:
    def run(seed: int) -> list[tuple[Any, ...]]:
        env = HierarchicalTradingEnv(market, config=PRESETS["hierarchical"])  # type: ignore[arg-type]
        rng = np.random.default_rng(seed)
        obs, _ = env.reset(seed=seed)
        out = []
        while env.agents:
            obs, rewards, _, _, _ = env.step(random_joint_action(env, obs, rng))
            out.append((env.state().copy(), tuple(rewards.values())))
        return out

    first, second = run(5), run(5)
    assert len(first) == len(second) > 10
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1]


def test_batched_core_matches_single_cores(market: EnvMarket) -> None:
    """Shape polymorphism: B portfolios stepped together == each stepped alone."""
    config = SymbolEnvConfig()
    sampler = EpisodeSampler(market, whole_market_views(market), 3, max_bars=80)
    rng = np.random.default_rng(0)
    episodes = [sampler.sample(rng) for _ in range(4)]
    batched = TradingCore(market, config, 4, 3, budget=1 / 3)
    batched.reset(episodes)
    singles = [TradingCore(market, config, 1, 3, budget=1 / 3) for _ in range(4)]
    for core, episode in zip(singles, episodes, strict=True):
        core.reset([episode])
    actions = rng.integers(0, 7, (60, 4, 3))
    for step in range(60):
        masks = batched.masks()
        obs = batched.observe()
        result = batched.step(actions[step], masks)
        for b, core in enumerate(singles):
            np.testing.assert_array_equal(core.masks()[0], masks[b])
            np.testing.assert_array_equal(core.observe()[0], obs[b])
            single = core.step(actions[step][b : b + 1])
            np.testing.assert_allclose(single.reward[0], result.reward[b], rtol=1e-12)
            np.testing.assert_allclose(core.sim.cash[0], batched.sim.cash[b], rtol=1e-12)
            np.testing.assert_allclose(core.sim.qty[0], batched.sim.qty[b], rtol=1e-12)


def test_market_identity_is_not_observed(market: EnvMarket) -> None:
    """Same prices under another symbol name and row give the same observations."""
    env = make_env("symbol_7", market)
    reordered = EnvMarket(
        **{
            **{k: getattr(market, k) for k in market.__dataclass_fields__},
            "symbols": tuple(f"X{i}" for i in range(market.n_symbols)),
        }
    )
    twin = make_env("symbol_7", reordered)
    a, _ = env.reset(seed=3)
    b, _ = twin.reset(seed=3)
    np.testing.assert_array_equal(a["observations"], b["observations"])


def test_observation_layout_is_named(market: EnvMarket) -> None:
    env = make_env("symbol_7", market)
    names = env.core.observations.feature_names()
    assert len(names) == env.observation_space["observations"].shape[0]
    assert names[-1] == "open_positions"
    assert len(set(names)) == len(names)
