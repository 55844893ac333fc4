"""`HierarchicalTradingEnv` (PettingZoo ParallelEnv): N symbol agents and one master.

Spec, version 1
---------------
Agents: ``symbol_0 .. symbol_{N-1}`` (one per slot; an episode fills the slots with N symbols
that have bars on the drawn window, in random order, so a slot never means a fixed market) and
``master``. ``possible_agents`` is fixed at construction; all agents live until the episode ends.

Symbol agents act every bar on their own slot:

| | |
|---|---|
| observation | ``Dict(observations=Box(D,), action_mask=Box(0, 1, (A,)))``, the layout of `multiagent.envs.observations` (same as `SymbolTradingEnv`), with the slot's budget and the master's risk mode in it |
| action | ``Discrete(A)`` of the scheme (discrete3, discrete7 or limit5), sized on the slot's risk budget |
| reward | the weighted terms of `multiagent.envs.rewards` on the slot's capital (budget x equity) |

The master acts every ``communication_interval`` bars (steps 0, k, 2k, ...; its action on other
steps is ignored: a no-op step, flagged in its observation):

| | |
|---|---|
| observation | ``Box(2F + 9 + 4N + 6)``: mean and max over slots of each feature at bar t (2F); the portfolio block (9, units as in observations); per-slot weights (N) and budgets (N), fraction of equity; per-slot recent net P&L (N: EWMA per bar, % of equity, same half-life as the volatility); per-slot recent edge (N: EWMA net return / EWMA root mean square over ``edge_halflife``, a scale-free per-bar Sharpe); portfolio volatility (per-bar EWMA, in %), mean pairwise correlation of the slots' returns (EWMA), Herfindahl concentration of weights, the market's stress (log of the symbols' median 20-bar / 250-bar return volatility, causal); ``decision`` (1 on steps where its action is applied) and bars to its next decision / interval |
| action | ``MultiDiscrete([L] * N + [3])``: a budget level per slot (``budget_levels``, multiples of the equal share ``max_gross_exposure / N``) and a risk mode (defensive, neutral, aggressive: budgets x ``risk_mode_scales``) |
| reward | portfolio-level risk-adjusted return (`multiagent.envs.rewards.master_reward`), every step |

Discrete budget levels rather than a continuous simplex: PPO's categorical heads explore them
reliably, masks and entropy telemetry stay meaningful, and a level of 0 switches a symbol off.

Budgets are hard: an order never takes a slot above its budget; with ``enforce_budget_cuts`` a
slot left above a newly cut budget is trimmed to it on the next fill (a forced trade). Shared cash
is enforced across slots by the simulator (buys are scaled to the cash held), and so are the risk
limits (max weight, gross exposure, open positions, trades per day, drawdown breaker).

``state()``: the global state for a centralized critic: every slot's observation (N x D) followed
by the master's observation; ``state_space`` is its Box.

Timing: all actions of a step are decided on bar t and fill on bar t+1 (`multiagent.envs.simulator`);
the master's new budgets apply to the orders of the same step.

Info: per symbol agent ``reward_terms`` (a record of the weighted terms) and ``sanitized``; the
master gets ``reward_terms``, ``decision``, ``budgets``, ``risk_mode``, ``equity`` and, on the last
step, ``episode`` (telemetry summary with portfolio volatility, correlation, concentration, and
under ``master`` the master's own: budget-level and risk-mode shares, budgets and exposure on
calm vs stressed bars, forced-trim turnover; `multiagent.envs.telemetry.MasterTelemetry`).

Curriculum hooks (`multiagent.envs.sampling.CurriculumHooks`): ``set_task(views, weights,
symbols)`` replaces the pool of episode views for the next episodes (``symbols`` restricts every
slot's symbol); ``set_cost_multiplier(m)`` scales every cost part from the next step on, the
episode in flight included; ``pop_view_stats()`` returns the episodes finished and the sum of
their returns (``episode["return"]``) per view of the current pool, and clears them.

Version history: 1 - first release. 2 - the master observes each slot's recent net P&L.
3 - and each slot's recent edge (risk-adjusted, over a longer half-life) and the market's stress.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from multiagent.data.episodes import EpisodeView
from multiagent.envs.config import HierarchicalEnvConfig
from multiagent.envs.core import TradingCore
from multiagent.envs.market import EnvMarket
from multiagent.envs.master import MasterSeat, neutral_master_action
from multiagent.envs.rewards import MASTER_TERMS, TERM_DTYPE, master_reward
from multiagent.envs.sampling import CurriculumHooks, EpisodeSampler, whole_market_views
from multiagent.envs.symbol_env import masked_observation_space

VERSION = 3
MASTER = "master"
MASTER_TERM_DTYPE = np.dtype([(name, np.float64) for name in MASTER_TERMS])


class HierarchicalTradingEnv(CurriculumHooks, ParallelEnv[str, Any, Any]):
    metadata: ClassVar[dict[str, Any]] = {
        "name": "hierarchical_trading_v3",
        "render_modes": ["ansi"],
        "version": VERSION,
    }

    def __init__(
        self,
        market: EnvMarket,
        views: Sequence[EpisodeView] | None = None,
        config: HierarchicalEnvConfig | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.config = config = config or HierarchicalEnvConfig()
        self.market = market
        n = config.n_symbols
        if n > market.n_symbols:
            raise ValueError(f"{n} symbol slots but the market has {market.n_symbols} symbols")
        self.n_slots = n
        self.books = 2 if config.master_reward.baseline == "neutral" else 1
        """Book 0 is the episode; book 1 (``master_reward.baseline: neutral``) its shadow: the
        same symbol actions under the neutral allocation, the master reward's baseline."""
        self.core = TradingCore(
            market, config, self.books, n, budget=config.limits.max_gross_exposure / n
        )
        self.seat = MasterSeat(self.core, config)
        """Schedule, budgets, trims and observation of the master (shared with the backtester)."""
        self.sampler = EpisodeSampler(
            market,
            views if views is not None else whole_market_views(market),
            n,
            max_bars=config.max_episode_bars,
        )
        self.symbol_agents = [f"symbol_{i}" for i in range(n)]
        self.possible_agents = [*self.symbol_agents, MASTER]
        self.agents: list[str] = []
        self.render_mode = render_mode
        scheme = self.core.scheme
        self._symbol_obs_space = masked_observation_space(
            self.core.observations.dim, scheme.n_actions
        )
        self._symbol_action_space: gym.spaces.Space[Any] = gym.spaces.Discrete(scheme.n_actions)
        self.master_dim = self.seat.dim
        self._master_obs_space = gym.spaces.Box(-np.inf, np.inf, (self.master_dim,), np.float32)
        self._master_action_space = gym.spaces.MultiDiscrete(self.seat.nvec.tolist())
        self.state_space = gym.spaces.Box(
            -np.inf, np.inf, (n * self.core.observations.dim + self.master_dim,), np.float32
        )
        self._rng = np.random.default_rng()
        self._step = 0
        self._obs: np.ndarray = np.zeros((1, n, self.core.observations.dim), np.float32)
        self._masks: np.ndarray = np.ones((1, n, scheme.n_actions), bool)
        self._master_obs = np.zeros(self.master_dim, np.float32)

    # PettingZoo API -------------------------------------------------------------------
    def observation_space(self, agent: str) -> gym.spaces.Space[Any]:
        return self._master_obs_space if agent == MASTER else self._symbol_obs_space

    def action_space(self, agent: str) -> gym.spaces.Space[Any]:
        return self._master_action_space if agent == MASTER else self._symbol_action_space

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        episode = self.draw_episode(self._rng, options, shuffle=True)
        self.core.reset([episode] * self.books)
        self.seat.reset()
        self._step = 0
        self.agents = list(self.possible_agents)
        observations = self._observe()
        infos: dict[str, dict[str, Any]] = {agent: {} for agent in self.agents}
        infos[MASTER] = {"start": episode.start, "stop": episode.stop}
        return observations, infos

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[
        dict[str, Any],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset()")
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"step() needs an action for every live agent; missing {missing}")
        core = self.core
        decision = self.decision_due()
        imposed, imposed_mask = None, None
        if decision:
            master_action = self.seat.check(actions[MASTER])
            if self.books == 2:
                master_action = np.concatenate([master_action, self.seat.neutral[None]])
            self.seat.apply(master_action)
            imposed, imposed_mask = self.seat.trims()
        symbol_actions = np.fromiter(
            (actions[agent] for agent in self.symbol_agents), np.int64, self.n_slots
        ).reshape(1, -1)
        if self.books == 2:
            symbol_actions = np.repeat(symbol_actions, 2, axis=0)
        # The risk-scaled reward's unit, known before the step's return (other kinds: none).
        risk_scaled = self.config.master_reward.kind == "risk_scaled"
        volatility = self.seat.reward_volatility() if risk_scaled else None
        result = core.step(symbol_actions, self._masks, imposed, imposed_mask)
        fills = result.fills
        self.seat.record(fills, imposed_mask)
        master, master_terms = master_reward(fills, self.config.master_reward, volatility)
        if self.books == 2:  # relative to the shadow book under the neutral allocation
            master, master_terms = master[:1] - master[1:], master_terms[:1] - master_terms[1:]
        self._step += 1
        done = bool(fills.done[0])
        observations = self._observe()
        rewards = dict(zip(self.symbol_agents, result.reward[0].tolist(), strict=True))
        rewards[MASTER] = float(master[0])
        terms = np.ascontiguousarray(result.terms[0]).view(TERM_DTYPE)[:, 0]
        sanitized = result.sanitized[0].tolist()
        infos: dict[str, dict[str, Any]] = {
            agent: {"reward_terms": terms[i], "sanitized": sanitized[i]}
            for i, agent in enumerate(self.symbol_agents)
        }
        infos[MASTER] = {
            "reward_terms": np.ascontiguousarray(master_terms[0]).view(MASTER_TERM_DTYPE)[0],
            "decision": decision,
            "budgets": core.budget[0].copy(),
            "risk_mode": int(core.risk_mode[0]),
            "equity": float(fills.equity[0]),
        }
        bankrupt = bool(fills.bankrupt[0])
        terminations = dict.fromkeys(self.agents, bankrupt)
        truncations = dict.fromkeys(self.agents, done and not bankrupt)
        if done:
            summary = self.episode_summary()
            infos[MASTER]["episode"] = summary
            self.record_episode_return(summary["return"])
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        return np.concatenate([self._obs[0].reshape(-1), self._master_obs])

    def set_cost_multiplier(self, multiplier: float) -> None:
        """Charge ``multiplier`` x the configured costs from the next `step` on (the episode in
        flight included): a curriculum's cost level, 1 = the configured costs."""
        self.core.sim.set_cost_multiplier(multiplier)

    @property
    def cost_multiplier(self) -> float:
        return self.core.sim.cost_multiplier

    def decision_due(self) -> bool:
        """Whether the master's action on the next `step` is applied."""
        return self.seat.decision_due(self._step)

    # the global state split for a centralized critic ------------------------------------
    @property
    def window_dim(self) -> int:
        """Length of the feature-window block that starts every slot observation."""
        return self.core.observations.feature_dim

    @property
    def critic_state_dim(self) -> int:
        return self.n_slots * (self.core.observations.dim - self.window_dim) + self.master_dim

    def market_windows(self) -> np.ndarray:
        """(N x W*F,) every slot's feature window: the market part of `state()`."""
        return self._obs[0, :, : self.window_dim].reshape(-1)

    def master_inputs(self, state: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The master's inputs for a MAPPO module: its observation (``obs``) and the slots'
        windows (``market``) for the actor, and ``state`` (`critic_state`) for the critic."""
        return {
            "obs": self._master_obs,
            "market": self.market_windows(),
            "state": self.critic_state() if state is None else state,
        }

    def critic_state(self) -> np.ndarray:
        """`state()` without the feature windows: every slot's position, P&L and budget block,
        the portfolio block and the master's observation. With `market_windows` it is all of
        `state()`; kept apart so a critic can embed the windows and nothing is stored twice."""
        blocks = self._obs[0, :, self.window_dim :].reshape(-1)
        return np.concatenate([blocks, self._master_obs])

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        sim = self.core.sim
        weights = " ".join(f"{w:+.2f}" for w in sim.weights()[0])
        return f"bar {int(sim.t[0])} equity {sim.equity[0]:,.2f} weights [{weights}]"

    def close(self) -> None:
        pass

    # internals ------------------------------------------------------------------------
    def episode_summary(self) -> dict[str, Any]:
        summary = book_summary(self.core, 0)
        summary["master"] = self.seat.telemetry.summary(0)
        return summary

    def _observe(self) -> dict[str, Any]:
        core = self.core
        self._masks = core.masks()
        self._obs = core.observe()
        self._master_obs = self._master_observation()
        obs, masks = self._obs[0], self._masks[0].astype(np.int8)
        observations: dict[str, Any] = {
            agent: {"observations": obs[i], "action_mask": masks[i]}
            for i, agent in enumerate(self.symbol_agents)
        }
        observations[MASTER] = self._master_obs
        return observations

    def _master_observation(self) -> np.ndarray:
        return self.seat.observe(self._obs, self._step)[0]


def book_summary(core: TradingCore, book: int) -> dict[str, Any]:
    """The telemetry summary of book ``book``'s episode (read before the book is reset)."""
    summary = core.telemetry.summary(book)
    equity = float(core.sim.equity[book])
    summary.update(
        {
            "final_equity": equity,
            "return": equity / core.config.execution.initial_cash - 1.0,
            "max_drawdown": float(1.0 - equity / core.sim.peak[book]),
            "portfolio_volatility": float(core.risk.volatility()[book]),
            "mean_correlation": float(core.risk.mean_correlation()[book]),
            "herfindahl": float(core.risk.herfindahl(core.sim.weights())[book]),
        }
    )
    return summary


def default_neutral_action(n_slots: int, levels: Sequence[float]) -> np.ndarray:
    """The master action keeping equal budgets (level 1.0 if listed) and the neutral mode."""
    return neutral_master_action(n_slots, list(levels))


def random_joint_action(
    env: HierarchicalTradingEnv,
    observations: dict[str, Any],
    rng: np.random.Generator,
    master_action: np.ndarray | None = None,
) -> dict[str, Any]:
    """A seeded random policy: each symbol agent picks uniformly among its allowed actions; the
    master draws uniformly unless ``master_action`` is given (the baseline of every rollout)."""
    actions: dict[str, Any] = {
        agent: int(rng.choice(np.flatnonzero(observations[agent]["action_mask"])))
        for agent in env.symbol_agents
    }
    actions[MASTER] = (
        master_action if master_action is not None else rng.integers(env.action_space(MASTER).nvec)  # type: ignore[attr-defined]
    )
    return actions
