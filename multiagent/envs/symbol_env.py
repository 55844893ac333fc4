"""`SymbolTradingEnv` (Gymnasium): one agent trades one symbol per episode.

Spec, version 1
---------------
Episodes: a view is drawn from the pool (weights settable by a curriculum via `set_task` /
`set_sampling_weights`); the agent first observes the view's first bar and the episode is
truncated when no next bar is left (terminated only when equity is exhausted). ``options`` of
`reset` may pin an episode: ``{"view": index}`` (plus ``"seed"`` for a random sub-window).

Observation: ``Dict(observations=Box(D,), action_mask=Box(0, 1, (A,)))`` (RLlib's action-masking
convention); ``observations`` is the layout of `multiagent.envs.observations` (features window,
slot block, portfolio block; units there). Market identity is never observed.

Actions: ``Discrete(A)`` of the configured scheme (`multiagent.envs.schemes`: discrete3,
discrete7 or limit5), sized on ``budget`` (fraction of equity, default 1).

Execution: decided on bar t, filled on bar t+1 at ``execution.fill_price`` with the named costs of
`multiagent.envs.costs`; risk limits of `multiagent.envs.simulator`.

Reward: the weighted terms of `multiagent.envs.rewards` (default: net P&L in % of capital).

Info every step: ``equity``, ``position`` (shares), ``weight``, ``executed_action``, ``sanitized``
(a masked action was sent), ``fill_price``, ``costs`` (currency), ``reward_terms`` (a structured
record, ``info["reward_terms"]["cost"]``). On the last step also ``episode``: the telemetry summary.

Version history: 1 - first release.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from multiagent.data.episodes import EpisodeView
from multiagent.envs.config import SymbolEnvConfig
from multiagent.envs.core import TradingCore
from multiagent.envs.market import EnvMarket
from multiagent.envs.orders import Fills
from multiagent.envs.rewards import TERM_DTYPE
from multiagent.envs.sampling import CurriculumHooks, EpisodeSampler, whole_market_views

VERSION = 1


def masked_observation_space(dim: int, n_actions: int) -> gym.spaces.Dict:
    return gym.spaces.Dict(
        {
            "observations": gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32),
            "action_mask": gym.spaces.Box(0, 1, (n_actions,), np.int8),
        }
    )


class SymbolTradingEnv(CurriculumHooks, gym.Env[dict[str, np.ndarray], np.int64]):
    # gymnasium declares metadata as an instance attribute, hence no ClassVar
    metadata = {"render_modes": ["ansi"], "version": VERSION}  # noqa: RUF012
    last_fills: Fills | None = None
    """The last step's fills (what an evaluator books trades from)."""

    def __init__(
        self,
        market: EnvMarket,
        views: Sequence[EpisodeView] | None = None,
        config: SymbolEnvConfig | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.config = config or SymbolEnvConfig()
        self.market = market
        self.core = TradingCore(market, self.config, 1, 1, budget=self.config.budget)
        self.sampler = EpisodeSampler(
            market,
            views if views is not None else whole_market_views(market),
            1,
            max_bars=self.config.max_episode_bars,
        )
        self.scheme = self.core.scheme
        self.observation_space = masked_observation_space(
            self.core.observations.dim, self.scheme.n_actions
        )
        self.action_space = gym.spaces.Discrete(self.scheme.n_actions)
        self.render_mode = render_mode
        self._masks = np.ones((1, 1, self.scheme.n_actions), bool)
        self._last_info: dict[str, Any] = {}

    # curriculum hooks
    def _observation(self) -> dict[str, np.ndarray]:
        self._masks = self.core.masks()
        return {
            "observations": self.core.observe()[0, 0],
            "action_mask": self._masks[0, 0].astype(np.int8),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        episode = self.draw_episode(self.np_random, options)
        self.core.reset([episode])
        info = {"symbol_row": int(episode.symbols[0]), "start": episode.start, "stop": episode.stop}
        return self._observation(), info

    def step(
        self, action: np.int64 | int
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(np.int64(action)):
            raise ValueError(f"action {action!r} is outside {self.action_space}")
        result = self.core.step(np.array([[int(action)]]), self._masks)
        fills = self.last_fills = result.fills
        sim = self.core.sim
        terms = np.ascontiguousarray(result.terms[0])
        info: dict[str, Any] = {
            "equity": float(fills.equity[0]),
            "position": float(sim.qty[0, 0]),
            "weight": float(sim.qty[0, 0] * sim.mark[0, 0] / fills.equity[0]),
            "executed_action": int(result.executed[0, 0]),
            "sanitized": bool(result.sanitized[0, 0]),
            "fill_price": float(fills.price[0, 0]),
            "costs": float(fills.costs.total[0, 0]),
            "reward_terms": terms.view(TERM_DTYPE)[0, 0],
        }
        terminated = bool(fills.bankrupt[0])
        truncated = bool(fills.done[0]) and not terminated
        if terminated or truncated:
            info["episode"] = self.core.telemetry.summary(0)
        self._last_info = info
        return self._observation(), float(result.reward[0, 0]), terminated, truncated, info

    def render(self) -> str | None:  # type: ignore[override]
        if self.render_mode != "ansi":
            return None
        sim = self.core.sim
        return (
            f"bar {int(sim.t[0])} equity {sim.equity[0]:,.2f} position {sim.qty[0, 0]:.4f} "
            f"@ {sim.mark[0, 0]:.4f} cash {sim.cash[0]:,.2f}"
        )
