"""The curriculum on RLlib: `TradingAgentsEnv.apply_curriculum`, then `CurriculumCallbacks` on a
real PPO (stage tasks reach the env runners, results carry the stage, a restarted runner gets
the task back)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.tiny import tiny_config

from multiagent.curriculum.config import CurriculumConfig
from multiagent.rllib.algo import build_ppo_config
from multiagent.rllib.curriculum import (
    RESULT_KEYS,
    curriculum_callbacks,
    runner_envs,
    runner_task,
    with_curriculum,
)
from multiagent.rllib.env import SymbolAgentsEnv, TradingAgentsEnv, market_for

SYMBOLS = ["SYN000", "SYN001", "SYN002"]


def agents_env(tmp_path: Path) -> TradingAgentsEnv:
    config = tiny_config(tmp_path)
    market, prepared = market_for(config)
    return SymbolAgentsEnv(market, prepared.train_views, config.env)


def finish_episodes(env: TradingAgentsEnv, n: int, seed: int = 0) -> list[tuple[set[str], int]]:
    """Run ``n`` episodes holding; the (slot symbols, first bar) of each."""
    drawn = []
    env.reset(seed=seed)
    for _ in range(n):
        sim = env.env.core.sim
        drawn.append(({env.env.market.symbols[r] for r in sim.symbol[0]}, int(sim.start[0])))
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(dict.fromkeys(env.agents, 0))
            done = terminated["__all__"] or truncated["__all__"]
        env.reset()
    return drawn


def test_apply_curriculum_samples_only_the_task_views(tmp_path: Path) -> None:
    env = agents_env(tmp_path)
    views = env.views
    pool = [3, 5]
    env.apply_curriculum({"views": pool, "weights": None, "symbols": None, "cost_multiplier": 0.5})
    assert env.env.sampler.views == [views[3], views[5]]
    assert env.env.cost_multiplier == 0.5
    for slots, start in finish_episodes(env, 4):
        # Slots are shuffled: some slot holds the view's symbol, on the view's window.
        assert any(views[i].window.start == start and views[i].symbols[0] in slots for i in pool)
    counts, returns = env.pop_view_stats()
    assert counts.shape == (len(views),) and counts.sum() == 4
    assert set(np.flatnonzero(counts)) <= set(pool)
    assert np.all(returns[counts == 0] == 0)


def test_apply_curriculum_symbol_set_and_weights(tmp_path: Path) -> None:
    env = agents_env(tmp_path)
    views = env.views
    pool = [i for i, v in enumerate(views) if v.symbols[0] in SYMBOLS]
    task: dict[str, Any] = {"views": pool, "weights": None, "symbols": SYMBOLS}
    env.apply_curriculum(task)
    assert env.env.sampler.symbols == tuple(SYMBOLS)
    for seed in range(20):
        env.reset(seed=seed)
        assert {env.env.market.symbols[r] for r in env.env.core.sim.symbol[0]} == set(SYMBOLS)
    finish_episodes(env, 2)
    pool_id = env.env.sampler.pool_id
    weights = [0.0] * len(pool)
    weights[-1] = 1.0
    env.apply_curriculum({**task, "weights": weights})  # weights only: same pool, stats kept
    assert env.env.sampler.pool_id == pool_id
    assert env.env.sampler.weights[-1] == 1.0
    assert env.pop_view_stats()[0].sum() == 2
    env.apply_curriculum({"views": None, "weights": None, "symbols": None})
    assert env.env.sampler.views == views and env.env.sampler.symbols is None
    assert env.env.cost_multiplier == 1.0


def test_apply_curriculum_rejects_bad_indices(tmp_path: Path) -> None:
    env = agents_env(tmp_path)
    for bad in ([], [-1], [len(env.views)]):
        with pytest.raises(ValueError, match="must index"):
            env.apply_curriculum({"views": bad})


# -- a real PPO ------------------------------------------------------------------------------
def curriculum(*stages: dict[str, Any]) -> CurriculumConfig:
    return CurriculumConfig.model_validate({"name": "test", "stages": list(stages)})


def build_algo(tmp_path: Path, config: CurriculumConfig, runners: int = 1) -> Any:
    # The short restart delay comes from the run config (RLlib's default waits 60 s).
    run = tiny_config(
        tmp_path,
        resources={"num_env_runners": runners, "delay_between_env_runner_restarts_s": 0.5},
    )
    market, prepared = market_for(run)
    env = SymbolAgentsEnv(market, prepared.train_views, run.env)
    ppo = build_ppo_config(run, env.observation_space, env.action_space, market.n_features)
    ppo = with_curriculum(ppo, config, "symbols", source="test.yaml")
    assert ppo.delay_between_env_runner_restarts_s == 0.5
    return ppo.build_algo()


def remote_tasks(algo: Any) -> list[dict[str, Any] | None]:
    per_runner = algo.env_runner_group.foreach_env_runner(runner_task, local_env_runner=False)
    return [task for tasks in per_runner for task in tasks]


def remote_env_state(algo: Any) -> list[tuple[Any, ...]]:
    def state(runner: Any) -> list[tuple[Any, ...]]:
        return [
            (
                len(e.episode_source.sampler.views),
                e.episode_source.sampler.symbols,
                e.episode_source.cost_multiplier,
            )
            for e in runner_envs(runner)
        ]

    per_runner = algo.env_runner_group.foreach_env_runner(state, local_env_runner=False)
    return [s for states in per_runner for s in states]


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_stages_reach_the_remote_env_runner(tmp_path: Path) -> None:
    config = curriculum(
        {"name": "a", "symbols": SYMBOLS, "cost_multiplier": 0.0, "iterations": 1},
        {"name": "b", "sampling": "balanced", "promote": {"at_least": 0.5}},
        {"name": "c"},
    )
    algo = build_algo(tmp_path, config)
    try:
        callback = curriculum_callbacks(algo)
        assert callback is not None and callback.curriculum is not None
        first = callback.curriculum.task()
        tasks = remote_tasks(algo)
        # Phase 2's runner holds one env: the vector env of all its books' slots.
        assert len(tasks) == 1 and all(t == first for t in tasks)
        assert remote_env_state(algo) == [(len(first["views"]), tuple(SYMBOLS), 0.0)]

        result = algo.train()
        # The result names the stage the iteration trained in, and the one that comes next.
        assert result["curriculum_stage"] == 0 and result["curriculum_cost_multiplier"] == 0.0
        assert result["curriculum_next_stage"] == 1
        assert set(RESULT_KEYS) <= set(result)
        assert callback.curriculum.counts.sum() >= 1  # episodes gathered from the runner
        stage_b = callback.curriculum.task()
        assert stage_b["stage"] == "b" and stage_b["weights"] is not None
        assert all(t == stage_b for t in remote_tasks(algo))
        saved = callback.curriculum_state()

        result = algo.train()
        assert result["curriculum_stage"] == 1
        assert all(t == callback.curriculum.task() for t in remote_tasks(algo))  # new weights
        assert not callback.report_validation(algo, {"sharpe": 0.1})
        assert callback.report_validation(algo, {"sharpe": 0.7})  # promoted at once
        assert callback.curriculum.stage_name == "c"
        assert all(t is not None and t["stage"] == "c" for t in remote_tasks(algo))
        assert callback.curriculum.history[-1].reason == "val_sharpe 0.7 >= 0.5"

        callback.load_curriculum_state(saved)  # resume: back in b, re-applied
        assert callback.curriculum.stage_name == "b"
        assert all(t is not None and t["stage"] == "b" for t in remote_tasks(algo))
    finally:
        algo.stop()


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_restarted_env_runner_gets_the_task_back(tmp_path: Path) -> None:
    config = curriculum(
        {"name": "a", "iterations": 1},
        {"name": "b", "symbols": SYMBOLS, "cost_multiplier": 0.5},
    )
    algo = build_algo(tmp_path, config)
    try:
        callback = curriculum_callbacks(algo)
        assert callback is not None and callback.curriculum is not None
        algo.train()
        task = callback.curriculum.task()
        assert task["stage"] == "b" and remote_tasks(algo) == [task]
        recreated: list[list[int]] = []
        original = callback.on_env_runners_recreated

        def spy(**kwargs: Any) -> None:
            recreated.append(list(kwargs["env_runner_indices"]))
            original(**kwargs)

        callback.on_env_runners_recreated = spy  # type: ignore[method-assign]
        group = algo.env_runner_group
        (pid,) = group.foreach_env_runner(lambda runner: os.getpid(), local_env_runner=False)
        os.kill(pid, signal.SIGKILL)  # the runner's process dies: Ray restarts the actor
        deadline = time.monotonic() + 60
        while not recreated and time.monotonic() < deadline:
            algo.train()
        assert recreated, "the env runner was not recreated"
        # The task did not change since it was first applied: only the recreation hook can
        # have given it to the new runner (which started from the original env_config).
        assert callback.curriculum.task() == task
        assert remote_tasks(algo) == [task]
        assert remote_env_state(algo) == [(len(task["views"]), tuple(SYMBOLS), 0.5)]
        result = algo.train()
        assert result["curriculum_stage"] == 1
    finally:
        algo.stop()


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_local_runner_without_remote_runners(tmp_path: Path) -> None:
    config = curriculum({"name": "a", "sampling": "balanced"})
    algo = build_algo(tmp_path, config, runners=0)
    try:
        callback = curriculum_callbacks(algo)
        assert callback is not None and callback.curriculum is not None
        for _ in range(2):
            result = algo.train()
            assert result["curriculum_stage"] == 0
        counts = callback.curriculum.counts
        assert counts.sum() >= 2
        tasks = runner_task(algo.env_runner)
        assert tasks and all(t == callback.curriculum.task() for t in tasks)
        assert np.allclose(tasks[0]["weights"], 1.0 / (1.0 + counts))
    finally:
        algo.stop()


def test_with_curriculum_only_for_listed_phases(tmp_path: Path) -> None:
    from multiagent.rllib.callbacks import TelemetryCallbacks
    from multiagent.rllib.curriculum import CurriculumCallbacks

    run = tiny_config(tmp_path)
    market, prepared = market_for(run)
    env = SymbolAgentsEnv(market, prepared.train_views, run.env)
    ppo = build_ppo_config(run, env.observation_space, env.action_space, market.n_features)
    config = curriculum({"name": "a"})
    assert with_curriculum(ppo, None, "symbols", source="x") is ppo
    assert with_curriculum(ppo, config, "master", source="x") is ppo
    switched = with_curriculum(ppo, config, "symbols", source="x.yaml")
    assert switched.callbacks_class is CurriculumCallbacks
    assert issubclass(CurriculumCallbacks, TelemetryCallbacks)
    assert switched.env_config["curriculum"] == config.model_dump(mode="json")
    assert switched.env_config["curriculum_source"] == "x.yaml"
    assert switched.env_config["run"] == ppo.env_config["run"]


def test_callbacks_without_a_curriculum_are_telemetry_only() -> None:
    from multiagent.errors import ConfigError
    from multiagent.rllib.curriculum import CurriculumCallbacks, build_curriculum

    callback = CurriculumCallbacks()
    assert build_curriculum({"run": {}}) is None
    assert callback.curriculum_state() is None
    assert not callback.report_validation(None, {"sharpe": 1.0})
    callback.load_curriculum_state(None)  # nothing stored, nothing to do
    with pytest.raises(ConfigError, match="holds a curriculum state but this run has none"):
        callback.load_curriculum_state({"stage_index": 1})


def test_training_metrics_use_the_metrics_row_names() -> None:
    from multiagent.rllib.callbacks import TELEMETRY_KEYS
    from multiagent.rllib.curriculum import training_metrics

    result = {"env_runners": {"episode_return_mean": 1.5, "telemetry": {"episode_return": 0.1}}}
    metrics = training_metrics(result)
    assert metrics["reward_mean"] == 1.5 and metrics["episode_return"] == 0.1
    assert set(metrics) == {"reward_mean", *TELEMETRY_KEYS}
    assert np.isnan(training_metrics({})["reward_mean"])
