"""The hierarchy's RLModules built from a run config, and seeded random episodes of the RLlib
env: what the MAPPO tests and the master export tests both start from."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from multiagent.config import RunConfig
from multiagent.envs.hierarchical_env import MASTER
from multiagent.rllib.algo import hierarchy_model_configs
from multiagent.rllib.env import TradingAgentsEnv
from multiagent.rllib.modules import MasterRLModule, SymbolRLModule


def allowed(rng: np.random.Generator, mask: np.ndarray) -> int:
    return int(rng.choice(np.flatnonzero(mask)))


def random_actions(
    env: TradingAgentsEnv, observations: dict[str, Any], rng: np.random.Generator
) -> dict[str, Any]:
    """A random valid action for every agent given an observation (RLlib's protocol)."""
    return {
        agent: rng.integers(env.action_spaces[MASTER].nvec)
        if agent == MASTER
        else allowed(rng, obs["action_mask"])
        for agent, obs in observations.items()
    }


def random_episode(
    env: TradingAgentsEnv, seed: int
) -> list[tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool]]]:
    """One episode with seeded random valid actions, RLlib's protocol: an action only for the
    agents that were given an observation. -> (obs, rewards, terminateds, truncateds) per
    step, the reset first (with empty dicts)."""
    rng = np.random.default_rng(seed)
    observations, _ = env.reset(seed=seed)
    steps: list[Any] = [(observations, {}, {}, {})]
    while True:
        observations, rewards, terminateds, truncateds, _ = env.step(
            random_actions(env, observations, rng)
        )
        steps.append((observations, rewards, terminateds, truncateds))
        if terminateds["__all__"] or truncateds["__all__"]:
            return steps


def build_master(config: RunConfig, env: TradingAgentsEnv, phase: str = "joint") -> MasterRLModule:
    torch.manual_seed(0)
    _, master_config = hierarchy_model_configs(config, phase, env.env.market.n_features)
    return RLModuleSpec(
        module_class=MasterRLModule,
        observation_space=env.observation_spaces[MASTER],
        action_space=env.action_spaces[MASTER],
        model_config=master_config.to_rllib(),
    ).build()


def build_symbol(config: RunConfig, env: TradingAgentsEnv) -> SymbolRLModule:
    torch.manual_seed(0)
    symbol_config, _ = hierarchy_model_configs(config, "joint", env.env.market.n_features)
    return RLModuleSpec(
        module_class=SymbolRLModule,
        observation_space=env.observation_spaces["symbol_0"],
        action_space=env.action_spaces["symbol_0"],
        model_config=symbol_config.to_rllib(),
    ).build()
