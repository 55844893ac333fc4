"""Deterministic rollouts of a symbol policy, and optionally a master, through the hierarchical env.

Every symbol slot acts on its own observation with the same policy; without a master policy
the master keeps equal budgets, so this measures the symbol policy alone. View i runs with seed
``seed + i`` (which fixes the symbols drawn for the extra slots), so the same policy, data and
seed give the same figures. Sharpe pools the per-bar portfolio returns of all views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from multiagent.data.episodes import EpisodeView
from multiagent.envs.config import HierarchicalEnvConfig
from multiagent.envs.hierarchical_env import MASTER, HierarchicalTradingEnv, default_neutral_action
from multiagent.envs.market import EnvMarket
from multiagent.evaluation.metrics import max_drawdown, sharpe, total_return


class SymbolPolicy(Protocol):
    """Acts for all symbol slots of one env at once."""

    def reset(self, env: HierarchicalTradingEnv) -> None:
        """Called at the start of each episode (recurrent policies clear their state)."""

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """(N, D) float32 observations and (N, A) int8 masks -> (N,) int actions."""
        ...


class MasterPolicy(Protocol):
    """Sets the budgets and risk mode from the master's inputs (`master_inputs` of the env)."""

    def act(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """-> the ``MultiDiscrete([L] * N + [3])`` action."""
        ...


@dataclass
class SymbolEvaluation:
    returns: list[np.ndarray]
    """Per view: the portfolio's per-bar simple returns."""
    summaries: list[dict[str, Any]]
    periods_per_year: float
    metrics: dict[str, float] = field(default_factory=dict)


def evaluate_symbol_policy(
    policy: SymbolPolicy,
    market: EnvMarket,
    views: Sequence[EpisodeView],
    config: HierarchicalEnvConfig,
    *,
    seed: int = 0,
    periods_per_year: float = 252.0,
    max_views: int | None = None,
    master: MasterPolicy | None = None,
) -> SymbolEvaluation:
    """Greedy rollouts on every view; ``master`` sets the budgets on its decision bars (None:
    equal budgets, neutral mode, i.e. independent symbol agents)."""
    env = HierarchicalTradingEnv(market, views, config)
    neutral = default_neutral_action(env.n_slots, config.budget_levels)
    master_action = neutral
    n_views = len(env.sampler.views) if max_views is None else min(max_views, len(views))
    all_returns: list[np.ndarray] = []
    summaries: list[dict[str, Any]] = []
    agents = env.symbol_agents
    for i in range(n_views):
        if env.sampler.weights[i] == 0:  # a view the sampler cannot fill (too few symbols)
            continue
        observations, _ = env.reset(seed=seed + i, options={"view": i})
        policy.reset(env)
        equity = [config.execution.initial_cash]
        infos: dict[str, Any] = {}
        while env.agents:
            obs = np.stack([observations[a]["observations"] for a in agents])
            masks = np.stack([observations[a]["action_mask"] for a in agents])
            chosen = policy.act(obs, masks)
            actions: dict[str, Any] = {a: int(x) for a, x in zip(agents, chosen, strict=True)}
            if master is not None and env.decision_due():
                master_action = master.act(env.master_inputs())
            actions[MASTER] = master_action
            observations, _, _, _, infos = env.step(actions)
            equity.append(infos[MASTER]["equity"])
        curve = np.asarray(equity)
        all_returns.append(curve[1:] / curve[:-1] - 1.0)
        summaries.append(infos[MASTER]["episode"])
    pooled = np.concatenate(all_returns) if all_returns else np.zeros(0)
    metrics = {
        "sharpe": sharpe(pooled, periods_per_year),
        "mean_episode_return": float(np.mean([total_return(r) for r in all_returns]))
        if all_returns
        else 0.0,
        "max_drawdown": max((max_drawdown(r) for r in all_returns), default=0.0),
        "mean_max_drawdown": float(np.mean([max_drawdown(r) for r in all_returns]))
        if all_returns
        else 0.0,
        "trades_per_episode": float(np.mean([s["trades"] for s in summaries]))
        if summaries
        else 0.0,
        "turnover": float(np.mean([s["turnover"] for s in summaries])) if summaries else 0.0,
        "exposure": float(np.mean([s["mean_exposure"] for s in summaries])) if summaries else 0.0,
        "episodes": float(len(all_returns)),
        "bars": float(pooled.size),
    }
    return SymbolEvaluation(all_returns, summaries, periods_per_year, metrics)


class OracleSymbolPolicy:
    """The sign oracle of a synthetic market, acting through the env's own action scheme.

    Privileged (reads the hidden signal of the slot's symbol at the current bar): the upper
    bound a symbol policy is measured against under the same costs, limits and scheme. BUY when
    the signal says up, SELL when it says down (a short where the scheme shorts, flat otherwise),
    HOLD when that action is masked (already there).
    """

    def __init__(self, signal: np.ndarray) -> None:
        self.signal = signal
        self.env: HierarchicalTradingEnv | None = None

    def reset(self, env: HierarchicalTradingEnv) -> None:
        names = env.core.scheme.names
        if names[:3] != ("HOLD", "BUY", "SELL"):
            raise ValueError("the oracle policy needs the discrete3 scheme (HOLD, BUY, SELL)")
        self.env = env

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        assert self.env is not None
        sim = self.env.core.sim
        direction = np.sign(self.signal[sim.symbol[0], int(sim.t[0])])
        want = np.where(direction > 0, 1, 2)
        return np.where(masks[np.arange(len(want)), want] > 0, want, 0)
