"""The hierarchical env as an RLlib `MultiAgentEnv`, and the env creator the runners call.

`SymbolAgentsEnv` exposes the symbol agents only; the master's seat is filled by a fixed action
(equal budgets, neutral risk mode) until the master is trained (phase 3). Infos carry nothing per
step (RLlib stores every info); the last step's infos carry the episode telemetry summary, which
`callbacks.TelemetryCallbacks` turns into metrics.

Env runners rebuild the market from the run config (``env_config["run"]``): loading goes through
the feature cache, and one process builds each distinct market once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.tune.registry import register_env

from multiagent.config import RunConfig
from multiagent.data.episodes import EpisodeView
from multiagent.envs import build_market
from multiagent.envs.config import HierarchicalEnvConfig
from multiagent.envs.hierarchical_env import MASTER, HierarchicalTradingEnv, default_neutral_action
from multiagent.envs.market import EnvMarket
from multiagent.training.prepare import PreparedData, prepare

ENV_NAME = "multiagent_symbol_agents"
SYMBOL_MODULE = "symbol"


def balanced_weights(views: Sequence[EpisodeView]) -> np.ndarray:
    """Sampling weights giving every lead symbol the same total probability (1 / its views)."""
    counts: dict[tuple[str, ...], int] = {}
    for view in views:
        counts[view.symbols] = counts.get(view.symbols, 0) + 1
    return np.array([1.0 / counts[view.symbols] for view in views])


class SymbolAgentsEnv(MultiAgentEnv):
    def __init__(
        self,
        market: EnvMarket,
        views: Sequence[EpisodeView],
        config: HierarchicalEnvConfig,
        *,
        balanced: bool = True,
    ) -> None:
        super().__init__()
        self.env = HierarchicalTradingEnv(market, views, config)
        if balanced:
            self.env.set_sampling_weights(balanced_weights(views).tolist())
        self.possible_agents = list(self.env.symbol_agents)
        self.agents: list[str] = []
        space = self.env.observation_space(self.possible_agents[0])
        action = self.env.action_space(self.possible_agents[0])
        self.observation_spaces = dict.fromkeys(self.possible_agents, space)
        self.action_spaces = dict.fromkeys(self.possible_agents, action)
        self.observation_space = space
        self.action_space = action
        self._master = default_neutral_action(self.env.n_slots, config.budget_levels)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        observations, _ = self.env.reset(seed=seed, options=options)
        del observations[MASTER]
        self.agents = list(self.possible_agents)
        return observations, {}

    def step(
        self, action_dict: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, Any]]:
        actions = dict(action_dict)
        actions[MASTER] = self._master
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        for out in (observations, rewards, terminations, truncations):
            out.pop(MASTER, None)
        done = not self.env.agents
        terminations["__all__"] = done and any(terminations.values())
        truncations["__all__"] = done and not terminations["__all__"]
        out_infos: dict[str, Any] = {}
        if done:
            summary = infos[MASTER]["episode"]
            out_infos = {agent: {"episode": summary} for agent in self.possible_agents}
            self.agents = []
        return observations, rewards, terminations, truncations, out_infos


_MARKETS: dict[str, tuple[EnvMarket, PreparedData]] = {}


MARKET_KEYS = ("data", "features", "split", "episodes", "cache_dir")


def market_for(config: RunConfig) -> tuple[EnvMarket, PreparedData]:
    """The env market of a run config, built once per process (training settings aside)."""
    dump = config.model_dump(mode="json")
    payload = json.dumps(
        {**{k: dump[k] for k in MARKET_KEYS}, "costs": dump["env"]["costs"]}, sort_keys=True
    )
    key = hashlib.sha256(payload.encode()).hexdigest()
    if key not in _MARKETS:
        prepared = prepare(config)
        _MARKETS[key] = (
            build_market(prepared.panel, prepared.features, config.env.costs),
            prepared,
        )
    return _MARKETS[key]


def make_symbol_agents_env(env_config: dict[str, Any]) -> SymbolAgentsEnv:
    config = RunConfig.model_validate(env_config["run"])
    market, prepared = market_for(config)
    views = prepared.views(env_config.get("part", "train"))
    return SymbolAgentsEnv(
        market, views, config.env, balanced=bool(env_config.get("balanced", True))
    )


def register() -> None:
    register_env(ENV_NAME, make_symbol_agents_env)
