"""A seeded baseline rollout of the hierarchical env: the main job's smoke check of the envs.

Symbol agents draw uniformly among their allowed actions; the master keeps equal budgets and the
neutral risk mode. It proves the data -> features -> env path end to end before any training, and
its telemetry is the floor a trained system has to beat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from multiagent.config import RunConfig
from multiagent.envs import MASTER, HierarchicalTradingEnv, build_market
from multiagent.envs.hierarchical_env import default_neutral_action, random_joint_action
from multiagent.runs.prepare import PreparedData


@dataclass(frozen=True)
class RolloutReport:
    episodes: list[dict[str, Any]]
    """`HierarchicalTradingEnv.episode_summary()` of each episode."""
    steps: int
    seconds: float

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("nan")


def random_rollout(prepared: PreparedData, config: RunConfig, episodes: int = 3) -> RolloutReport:
    if config.system != "hierarchy":
        return random_agent_rollout(prepared, config, episodes)
    market = build_market(prepared.panel, prepared.features, config.env.costs)
    env = HierarchicalTradingEnv(market, prepared.train_views, config.env)
    rng = np.random.default_rng(config.seed)
    master = default_neutral_action(env.n_slots, config.env.budget_levels)
    summaries: list[dict[str, Any]] = []
    steps = 0
    began = time.perf_counter()
    for episode in range(episodes):
        observations, _ = env.reset(seed=config.seed + episode)
        while env.agents:
            actions = random_joint_action(env, observations, rng, master)
            observations, _, _, _, infos = env.step(actions)
            steps += 1
        summaries.append(infos[MASTER]["episode"])
    return RolloutReport(summaries, steps, time.perf_counter() - began)


def random_agent_rollout(prepared: PreparedData, config: RunConfig, episodes: int) -> RolloutReport:
    """The same smoke check for a single-agent system: a seeded random agent in its own env."""
    from multiagent.evaluation.episodes import RandomAgent, run_policies
    from multiagent.evaluation.metrics import max_drawdown

    market = build_market(prepared.panel, prepared.features, config.agent.env.costs)
    agent = RandomAgent(config.seed)
    began = time.perf_counter()
    records = run_policies(config, market, prepared.train_views, [agent], episodes=episodes)
    seconds = time.perf_counter() - began
    summaries = [
        {
            **record.summary,
            "return": float(record.equity[-1] / record.equity[0] - 1.0),
            "max_drawdown": max_drawdown(record.returns),
        }
        for record in records[agent.name]
    ]
    return RolloutReport(summaries, sum(int(s["steps"]) for s in summaries), seconds)
