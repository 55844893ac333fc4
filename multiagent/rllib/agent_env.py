"""The single-agent systems' env for RLlib: the system's Gymnasium env (`evaluation.episodes.
agent_env`) with one observation format and the curriculum hooks.

Every observation becomes ``Dict(observations, action_mask)`` (the regimes env's plain vector
gets a mask of ones), so one RLModule class reads all three systems. The env takes curriculum
tasks like the hierarchy's (`env.PoolCurriculum`: a pool of views, their weights, a cost level)
and counts each finished episode's return for its view. Infos carry only the last step's
``episode`` telemetry (RLlib keeps every info it is given).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from multiagent.config import RunConfig
from multiagent.data.episodes import EpisodeView
from multiagent.envs.market import EnvMarket
from multiagent.evaluation.episodes import agent_env, masked
from multiagent.rllib.env import PoolCurriculum, market_for

AGENT_ENV_NAME = "multiagent_agent"


class _EpisodeSource:
    """`PoolCurriculum`'s view of a single-agent env's sampler and simulator."""

    def __init__(self, env: Any) -> None:
        self.env = env

    def set_task(
        self,
        views: Sequence[EpisodeView],
        weights: Sequence[float] | None = None,
        symbols: Sequence[str] | None = None,
    ) -> None:
        self.env.set_task(views, weights, symbols)

    def set_sampling_weights(self, weights: Sequence[float]) -> None:
        self.env.set_sampling_weights(weights)

    def set_cost_multiplier(self, multiplier: float) -> None:
        sim = self.env.core.sim if hasattr(self.env, "core") else self.env.sim
        sim.set_cost_multiplier(multiplier)

    def pop_view_stats(self) -> tuple[np.ndarray, np.ndarray]:
        counts, returns = self.env.pop_view_stats()
        return np.asarray(counts), np.asarray(returns)


class AgentEnv(PoolCurriculum, gym.Env[dict[str, np.ndarray], np.int64]):
    """A portfolio, regimes or sessions env as RLlib trains it."""

    def __init__(
        self,
        config: RunConfig,
        market: EnvMarket,
        views: Sequence[EpisodeView],
        *,
        balanced: bool = False,
    ) -> None:
        self.env = agent_env(config, market, views)
        space_of_actions: gym.spaces.Discrete = self.env.action_space
        self.action_space = space_of_actions
        self.n_actions = int(space_of_actions.n)
        space = self.env.observation_space
        inner = space["observations"] if isinstance(space, gym.spaces.Dict) else space
        self.observation_space = gym.spaces.Dict(
            {
                "observations": inner,
                "action_mask": gym.spaces.Box(0, 1, (self.n_actions,), np.int8),
            }
        )
        self.episode_source = _EpisodeSource(self.env)
        self._init_pool(views, balanced)
        self._capital = float(self.env.config.execution.initial_cash)
        self._equity = self._peak = self._capital
        self._drawdown = 0.0

    @property
    def scheme(self) -> Any:
        """The system env's action scheme (its action names)."""
        return self.env.scheme

    def _masked(self, observation: Any) -> dict[str, np.ndarray]:
        vector, mask = masked(observation, self.n_actions)
        return {"observations": np.asarray(vector, np.float32), "action_mask": mask}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        observation, _ = self.env.reset(seed=seed, options=options)
        self._equity = self._peak = self._capital
        self._drawdown = 0.0
        return self._masked(observation), {}

    def step(
        self, action: np.int64 | int
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        if "equity" in info:
            self._equity = float(info["equity"])
            self._peak = max(self._peak, self._equity)
            self._drawdown = max(self._drawdown, 1.0 - self._equity / self._peak)
        out: dict[str, Any] = {}
        if terminated or truncated:
            # Per view, the episode's portfolio return (as the hierarchy's env records it).
            episode_return = self._equity / self._capital - 1.0
            self.env.record_episode_return(episode_return)
            if "episode" in info:
                # The telemetry callback's fields (`callbacks.episode_telemetry`).
                out["episode"] = {
                    **info["episode"],
                    "n_agents": 1,
                    "return": episode_return,
                    "max_drawdown": self._drawdown,
                }
        return self._masked(observation), float(reward), terminated, truncated, out


def make_agent_env(env_config: dict[str, Any]) -> AgentEnv:
    config = RunConfig.model_validate(env_config["run"])
    market, prepared = market_for(config)
    return AgentEnv(
        config,
        market,
        prepared.views(env_config.get("part", "train")),
        balanced=bool(env_config.get("balanced", False)),
    )
