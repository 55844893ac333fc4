"""The hierarchical env as an RLlib `MultiAgentEnv`, and the env creator the runners call.

`TradingAgentsEnv` exposes the symbol agents and, from phase 3, the master (see its docstring);
`SymbolAgentsEnv` is the phase-2 view with the master's seat fixed. Infos carry nothing per
step (RLlib stores every info); the last step's infos carry the episode telemetry summary, which
`callbacks.TelemetryCallbacks` turns into metrics.

Env runners rebuild the market from the run config (``env_config["run"]``): loading goes through
the feature cache, and one process builds each distinct market once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.tune.registry import register_env

from multiagent.config import RunConfig
from multiagent.data.episodes import EpisodeView
from multiagent.envs import build_market
from multiagent.envs.config import HierarchicalEnvConfig
from multiagent.envs.hierarchical_env import MASTER, HierarchicalTradingEnv, default_neutral_action
from multiagent.envs.market import EnvMarket
from multiagent.runs.prepare import PreparedData, prepare

ENV_NAME = "multiagent_trading_agents"
VECTOR_ENV_NAME = "multiagent_symbol_slots"
"""The symbol module's id when phase 2 samples through the vector env: RLlib's single-agent
stack names its one module so (``DEFAULT_MODULE_ID``); checkpoint readers accept either."""


def balanced_weights(views: Sequence[EpisodeView]) -> np.ndarray:
    """Sampling weights giving every lead symbol the same total probability (1 / its views)."""
    counts: dict[tuple[str, ...], int] = {}
    for view in views:
        counts[view.symbols] = counts.get(view.symbols, 0) + 1
    return np.array([1.0 / counts[view.symbols] for view in views])


class PoolCurriculum:
    """Curriculum tasks over a fixed pool of episode views, for an env whose episodes come from
    ``episode_source`` (an object with ``set_task``, ``set_sampling_weights``,
    ``set_cost_multiplier`` and ``pop_view_stats``, like `HierarchicalTradingEnv`)."""

    episode_source: Any
    views: list[EpisodeView]
    balanced: bool
    task: dict[str, Any] | None
    _pool: np.ndarray
    _view_counts: np.ndarray
    _view_returns: np.ndarray

    def _init_pool(self, views: Sequence[EpisodeView], balanced: bool) -> None:
        if balanced:
            self.episode_source.set_sampling_weights(balanced_weights(views).tolist())
        self.views = list(views)
        """The full pool: a curriculum task's view indices point into it."""
        self.balanced = balanced
        self.task = None
        """The curriculum task applied last (None: the whole pool, no curriculum)."""
        self._pool = np.arange(len(self.views))
        self._view_counts = np.zeros(len(self.views), np.int64)
        self._view_returns = np.zeros(len(self.views))

    def apply_curriculum(self, task: Mapping[str, Any]) -> None:
        """Apply a curriculum task (`multiagent.curriculum.Curriculum.task`) to next episodes.

        ``views``: indices into the full pool ``self.views`` (None: all of it); ``weights``: one
        per listed view, or None for the env's own weighting of the subset (each lead symbol
        equally likely when ``balanced``, else uniform); ``symbols``: the symbol set every slot
        is drawn from (None: all); ``cost_multiplier``: the cost level, applied from the next
        step on (1 = the configured costs). A task that changes only the weights keeps the
        sampler's pool (no re-scan of the market).
        """
        indices = task.get("views")
        pool = np.arange(len(self.views)) if indices is None else np.asarray(indices, np.int64)
        if pool.ndim != 1 or not len(pool) or pool.min() < 0 or pool.max() >= len(self.views):
            raise ValueError(f"task views must index the {len(self.views)} views of the pool")
        views = [self.views[i] for i in pool]
        weights = task.get("weights")
        if weights is None and self.balanced:
            weights = balanced_weights(views).tolist()
        symbols = task.get("symbols")
        symbols = None if symbols is None else tuple(symbols)
        previous = self.task or {}
        same_pool = (
            self.task is not None
            and np.array_equal(pool, self._pool)
            and symbols == (None if previous.get("symbols") is None else tuple(previous["symbols"]))
        )
        if same_pool:
            self.episode_source.set_sampling_weights(
                np.ones(len(pool)).tolist() if weights is None else list(weights)
            )
        else:
            self._flush_view_stats()
            self.episode_source.set_task(views, weights, symbols=symbols)
            self._pool = pool
        self.episode_source.set_cost_multiplier(float(task.get("cost_multiplier", 1.0)))
        self.task = dict(task)

    def pop_view_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(episodes finished, sum of their returns) per view of the full pool since the last
        call; cleared. An episode in flight when the pool changed is not counted."""
        self._flush_view_stats()
        counts, returns = self._view_counts, self._view_returns
        self._view_counts = np.zeros_like(counts)
        self._view_returns = np.zeros_like(returns)
        return counts, returns

    def _flush_view_stats(self) -> None:
        counts, returns = self.episode_source.pop_view_stats()
        np.add.at(self._view_counts, self._pool, counts)
        np.add.at(self._view_returns, self._pool, returns)


class TradingAgentsEnv(PoolCurriculum, MultiAgentEnv):
    """The hierarchical env for RLlib: symbol agents every bar, the master on decision bars.

    ``master=False`` leaves the master's seat to a fixed action (equal budgets, neutral mode):
    phase 2 trains the symbol policy alone. ``master=True`` exposes the master only on the bars
    where its action is applied (every ``communication_interval``), so each of its transitions
    is one decision; its reward is the sum of the portfolio rewards of the bars in between.

    Master observation ``Dict(obs, market, state)``: ``obs`` is its own observation, ``market``
    every slot's feature window (the actor pools their shared-encoder embeddings), ``state`` the
    rest of the global state (every slot's position block, the portfolio block, ``obs``). Its
    actor reads ``obs`` and ``market``; its centralized critic reads all three, which together
    are the env's ``state()``. With ``symbol_state`` the symbol agents' observations carry the
    same ``state`` for a centralized symbol critic (the joint phase's switch).

    Curricula: `apply_curriculum` applies a task of `multiagent.curriculum.Curriculum` (a subset
    of ``views``, the full pool given here, kept so tasks can grow and shrink it; sampling
    weights; a symbol set; a cost level); `pop_view_stats` returns the episodes finished and
    the sum of their returns per view of the full pool. Without a task the env samples
    ``views`` as it always did.
    """

    def __init__(
        self,
        market: EnvMarket,
        views: Sequence[EpisodeView],
        config: HierarchicalEnvConfig,
        *,
        balanced: bool = True,
        master: bool = False,
        symbol_state: bool = False,
    ) -> None:
        super().__init__()
        self.env = self.episode_source = env = HierarchicalTradingEnv(market, views, config)
        self._init_pool(views, balanced)
        self.with_master = master
        self.symbol_state = symbol_state
        state_space = gym.spaces.Box(-np.inf, np.inf, (env.critic_state_dim,), np.float32)
        symbol_space: gym.spaces.Space[Any] = env.observation_space(env.symbol_agents[0])
        if symbol_state:
            assert isinstance(symbol_space, gym.spaces.Dict)
            symbol_space = gym.spaces.Dict({**symbol_space.spaces, "state": state_space})
        symbol_action = env.action_space(env.symbol_agents[0])
        self.observation_spaces = dict.fromkeys(env.symbol_agents, symbol_space)
        self.action_spaces = dict.fromkeys(env.symbol_agents, symbol_action)
        self.possible_agents = list(env.symbol_agents)
        if master:
            self.possible_agents.append(MASTER)
            self.observation_spaces[MASTER] = gym.spaces.Dict(
                {
                    "obs": env.observation_space(MASTER),
                    "market": gym.spaces.Box(
                        -np.inf, np.inf, (env.n_slots * env.window_dim,), np.float32
                    ),
                    "state": state_space,
                }
            )
            self.action_spaces[MASTER] = env.action_space(MASTER)
        self.agents: list[str] = []
        self.observation_space = symbol_space
        self.action_space = symbol_action
        self._neutral = default_neutral_action(env.n_slots, config.budget_levels)
        self._master_action: Any = self._neutral
        self._master_reward = 0.0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        observations, _ = self.env.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        self._master_action = self._neutral
        self._master_reward = 0.0
        return self._observations(observations, master=self.with_master), {}

    def step(
        self, action_dict: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, Any]]:
        actions = dict(action_dict)
        if self.with_master and MASTER in actions:
            self._master_action = actions[MASTER]
        # On bars between decisions the env ignores the master's action; the last one is passed.
        actions[MASTER] = self._master_action
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        done = not self.env.agents
        self._master_reward += rewards.pop(MASTER)
        decides = self.with_master and (done or self.env.decision_due())
        out_obs = self._observations(observations, master=decides)
        if decides:
            rewards[MASTER] = self._master_reward
            self._master_reward = 0.0
        if not self.with_master:
            terminations.pop(MASTER, None)
            truncations.pop(MASTER, None)
        terminations["__all__"] = done and any(terminations.values())
        if done and not terminations["__all__"]:
            # Out of data is a truncation: only ``__all__`` says so. RLlib reads any per-agent
            # flag on the last step as a termination, and GAE would then bootstrap with 0.
            terminations, truncations = {"__all__": False}, {"__all__": True}
        else:
            truncations["__all__"] = False
        out_infos: dict[str, Any] = {}
        if done:
            summary = infos[MASTER]["episode"]
            if not self.with_master:  # the neutral seat's telemetry says nothing
                summary = {k: v for k, v in summary.items() if k != "master"}
            out_infos = {agent: {"episode": summary} for agent in self.env.symbol_agents}
            self.agents = []
        return out_obs, rewards, terminations, truncations, out_infos

    def _observations(self, observations: dict[str, Any], *, master: bool) -> dict[str, Any]:
        del observations[MASTER]
        if self.symbol_state or master:
            state = self.env.critic_state()
        if self.symbol_state:
            for agent in self.env.symbol_agents:
                observations[agent] = {**observations[agent], "state": state}
        if master:
            observations[MASTER] = self.env.master_inputs(state)
        return observations


class SymbolAgentsEnv(TradingAgentsEnv):
    """The symbol agents alone (phase 2): the master's seat keeps equal budgets."""

    def __init__(
        self,
        market: EnvMarket,
        views: Sequence[EpisodeView],
        config: HierarchicalEnvConfig,
        *,
        balanced: bool = True,
    ) -> None:
        super().__init__(market, views, config, balanced=balanced)


_MARKETS: dict[str, tuple[EnvMarket, PreparedData]] = {}


MARKET_KEYS = ("data", "features", "split", "episodes", "cache_dir", "seal_test")


def market_for(config: RunConfig) -> tuple[EnvMarket, PreparedData]:
    """The env market of a run config, built once per process (training settings aside)."""
    dump = config.model_dump(mode="json")
    hierarchy = config.system == "hierarchy"
    costs = config.env.costs if hierarchy else config.agent.env.costs
    keyed = {k: dump[k] for k in MARKET_KEYS}
    if config.system == "sessions":  # its views are a seeded split of the sessions
        keyed.update(
            seed=config.seed, holdout=[config.agent.holdout, config.agent.validation_holdout]
        )
    payload = json.dumps(
        {**keyed, "system": config.system, "costs": costs.model_dump(mode="json")}, sort_keys=True
    )
    key = hashlib.sha256(payload.encode()).hexdigest()
    if key not in _MARKETS:
        prepared = prepare(config)
        _MARKETS[key] = (
            build_market(prepared.panel, prepared.features, costs),
            prepared,
        )
    return _MARKETS[key]


def make_agents_env(env_config: dict[str, Any]) -> TradingAgentsEnv:
    config = RunConfig.model_validate(env_config["run"])
    market, prepared = market_for(config)
    views = prepared.views(env_config.get("part", "train"))
    return TradingAgentsEnv(
        market,
        views,
        config.env,
        balanced=bool(env_config.get("balanced", True)),
        master=bool(env_config.get("master", False)),
        symbol_state=bool(env_config.get("symbol_state", False)),
    )


def make_slots_env(env_config: dict[str, Any]) -> Any:
    """Phase 2's vector env: ``num_envs`` (RLlib's envs per runner) slots, in books of
    ``env.n_symbols``."""
    from multiagent.rllib.vector_env import SymbolSlotsVectorEnv

    config = RunConfig.model_validate(env_config["run"])
    market, prepared = market_for(config)
    n = config.env.n_symbols
    envs = int(env_config.get("num_envs", n))
    if envs % n:
        raise ValueError(f"{envs} vector slots are not whole books of {n} symbol slots")
    return SymbolSlotsVectorEnv(
        market,
        prepared.views(env_config.get("part", "train")),
        config.env,
        envs // n,
        balanced=bool(env_config.get("balanced", True)),
    )


def register() -> None:
    from multiagent.rllib.agent_env import AGENT_ENV_NAME, make_agent_env

    register_env(ENV_NAME, make_agents_env)
    register_env(VECTOR_ENV_NAME, make_slots_env)
    register_env(AGENT_ENV_NAME, make_agent_env)
