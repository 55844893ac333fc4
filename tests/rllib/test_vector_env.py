"""Phase 2's vector env against the multi-agent env it replaces for sampling: step for step
the same observations, masks, rewards and done flags, episode after episode; the gymnasium
next-step autoreset RLlib's single-agent runner expects; per-book curricula and telemetry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.tiny import tiny_config

from multiagent.rllib.env import TradingAgentsEnv, market_for
from multiagent.rllib.vector_env import SymbolSlotsVectorEnv


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    config = tiny_config(tmp_path_factory.mktemp("vector"))
    market, prepared = market_for(config)
    return config, market, prepared.train_views


def test_one_book_is_the_multi_agent_env_step_for_step(setup: tuple) -> None:
    config, market, views = setup
    agents = TradingAgentsEnv(market, views, config.env)
    vector = SymbolSlotsVectorEnv(market, views, config.env, 1)
    n = config.env.n_symbols
    names = [f"symbol_{i}" for i in range(n)]
    rng = np.random.default_rng(0)
    obs_a, _ = agents.reset(seed=11)
    obs_v, _ = vector.reset(seed=11)
    episodes = steps = 0
    while episodes < 4:
        assert np.array_equal(
            np.stack([obs_a[k]["observations"] for k in names]), obs_v["observations"]
        ), steps
        assert np.array_equal(
            np.stack([obs_a[k]["action_mask"] for k in names]), obs_v["action_mask"]
        )
        actions = rng.integers(0, vector.single_action_space.n, n)
        obs_a, rew_a, term_a, trunc_a, info_a = agents.step(dict(zip(names, actions, strict=True)))
        obs_v, rew_v, term_v, trunc_v, info_v = vector.step(actions)
        steps += 1
        assert np.array_equal(np.array([rew_a[k] for k in names], np.float32), rew_v)
        done = term_a["__all__"] or trunc_a["__all__"]
        assert bool(term_v.all()) == term_a["__all__"] and bool(trunc_v.all()) == trunc_a["__all__"]
        assert not (term_v | trunc_v).any() or done
        if not done:
            continue
        episodes += 1
        assert np.array_equal(  # the last observation of the episode comes with its flags
            np.stack([obs_a[k]["observations"] for k in names]), obs_v["observations"]
        )
        summary = info_v["episode"][0]
        assert summary == {**info_a["symbol_0"]["episode"], "n_agents": n}
        assert info_v["_episode"].tolist() == [True] + [False] * (n - 1)
        # Next-step autoreset: the next call's actions are ignored, reward 0, first obs out.
        obs_v, rew_v, term_v, trunc_v, _ = vector.step(rng.integers(0, 2, n))
        assert not rew_v.any() and not term_v.any() and not trunc_v.any()
        obs_a, _ = agents.reset()
    assert steps > 100


def test_books_run_apart_and_report_their_own_episodes(setup: tuple) -> None:
    config, market, views = setup
    n = config.env.n_symbols
    vector = SymbolSlotsVectorEnv(market, views, config.env, 5)
    assert vector.num_envs == 5 * n
    vector.reset(seed=3)
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(300):
        _, rewards, terminated, truncated, infos = vector.step(rng.integers(0, 3, 5 * n))
        assert np.isfinite(rewards).all()
        flags = (terminated | truncated).reshape(5, n)
        assert (flags.all(axis=1) == flags.any(axis=1)).all()  # a book ends all its slots
        if infos:
            assert infos["_episode"].sum() == flags.any(axis=1).sum()
            ended += int(infos["_episode"].sum())
    counts, returns = vector.pop_view_stats()
    assert counts.sum() == ended > 5
    assert np.isfinite(returns).all()
    # A curriculum task narrows the pool for the next episodes, as in TradingAgentsEnv.
    vector.apply_curriculum({"views": [0, 1], "cost_multiplier": 2.0})
    assert vector.core.sim.cost_multiplier == 2.0
    for _ in range(300):
        vector.step(rng.integers(0, 3, 5 * n))
    counts, _ = vector.pop_view_stats()
    assert counts[2:].sum() == 0 and counts[:2].sum() > 0


def test_same_seed_same_rollout(setup: tuple) -> None:
    config, market, views = setup
    runs = []
    for _ in range(2):
        vector = SymbolSlotsVectorEnv(market, views, config.env, 3)
        obs, _ = vector.reset(seed=5)
        rng = np.random.default_rng(2)
        trace = [obs["observations"].copy()]
        for _ in range(120):
            obs, rewards, *_ = vector.step(rng.integers(0, 3, vector.num_envs))
            trace += [obs["observations"].copy(), rewards.copy()]
        runs.append(trace)
    assert all(np.array_equal(a, b) for a, b in zip(*runs, strict=True))


def test_bad_sizes_are_refused(setup: tuple, tmp_path: Path) -> None:
    config, market, views = setup
    with pytest.raises(ValueError, match="at least one book"):
        SymbolSlotsVectorEnv(market, views, config.env, 0)
