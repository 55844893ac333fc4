"""Multi-symbol Gymnasium envs: `PortfolioEnv` (rotation) and `RegimePortfolioEnv`.

Spec, version 1
---------------
**PortfolioEnv.** An episode draws a pool of ``pool_size`` symbols (default 2 x
``max_open_positions``) over one window. The agent decides for one symbol at a time, in
round-robin order over the pool (clamped to the market's symbols); when every symbol of the pool has had its decision for bar t the
orders fill together on bar t+1 (`multiagent.envs.simulator`) and the rotation starts again on the
next bar. Each position gets ``1 / max_open_positions`` of equity as its budget and is tracked on
its own (size, entry, hold steps, P&L); at most ``max_open_positions`` are open at once.

| | |
|---|---|
| observation | ``Dict(observations=Box(D,), action_mask=Box(0, 1, (A,)))`` for the symbol in focus: the layout of `multiagent.envs.observations`; ``open_positions`` counts the buys already decided in this rotation |
| action | ``Discrete(A)`` (discrete3, discrete7 or limit5) for the symbol in focus; buys are masked when no room for another position is left |
| reward | 0 until the rotation completes; then the portfolio's shaped return: the sum over symbols of their reward terms x budget (the default terms make it net P&L in % of equity) |

**RegimePortfolioEnv.** CASH + N assets (``pool_size`` symbols, default 2 x max_open_positions),
one decision per bar: ``Discrete(R)`` picks a target-weight regime (`multiagent.envs.schemes.
RegimeScheme`), rebalanced at the next fill. Observation ``Box(N x D)``: every asset's block in
pool order. Reward: net portfolio return in excess of the equal-weight (rebalanced) benchmark of
the same assets, in %, with terms ``gross_return``, ``cost`` and ``benchmark`` in ``info``.

Both report ``info["episode"]`` (telemetry) on the last step and take curriculum hooks
``set_task`` / ``set_sampling_weights``.

Version history: 1 - first release.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from multiagent.data.episodes import EpisodeView
from multiagent.envs.config import PortfolioEnvConfig, SchemeConfig
from multiagent.envs.core import TradingCore
from multiagent.envs.market import EnvMarket
from multiagent.envs.observations import ObservationBuilder
from multiagent.envs.orders import Fills
from multiagent.envs.rewards import REGIME_TERMS, TERM_DTYPE, regime_reward
from multiagent.envs.sampling import CurriculumHooks, EpisodeSampler, whole_market_views
from multiagent.envs.schemes import RegimeScheme
from multiagent.envs.simulator import Simulator
from multiagent.envs.symbol_env import masked_observation_space
from multiagent.envs.telemetry import EpisodeTelemetry

VERSION = 1
REGIME_TERM_DTYPE = np.dtype([(name, np.float64) for name in REGIME_TERMS])


def pool_size(config: PortfolioEnvConfig, market: EnvMarket) -> int:
    """Symbols per episode: ``pool_size``, or by default 2 x ``max_open_positions`` clamped to
    the market's symbols (as the original bot did); an explicit pool larger than the market is
    an error."""
    if config.pool_size is None:
        return min(config.resolved_pool_size, market.n_symbols)
    if config.pool_size > market.n_symbols:
        raise ValueError(
            f"pool_size {config.pool_size} but the market has {market.n_symbols} symbols"
        )
    return config.pool_size


class _PoolEnv(CurriculumHooks, gym.Env[Any, np.int64]):
    # gymnasium declares metadata as an instance attribute, hence no ClassVar
    metadata = {"render_modes": ["ansi"], "version": VERSION}  # noqa: RUF012
    last_fills: Fills | None = None
    """The last completed bar's fills (what an evaluator books trades from)."""

    def _make_sampler(
        self, market: EnvMarket, views: Sequence[EpisodeView] | None, config: PortfolioEnvConfig
    ) -> EpisodeSampler:
        pool = pool_size(config, market)
        return EpisodeSampler(
            market,
            views if views is not None else whole_market_views(market),
            pool,
            max_bars=config.max_episode_bars,
        )


class PortfolioEnv(_PoolEnv):
    def __init__(
        self,
        market: EnvMarket,
        views: Sequence[EpisodeView] | None = None,
        config: PortfolioEnvConfig | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.config = config = config or PortfolioEnvConfig()
        if config.scheme.kind == "regimes":
            raise ValueError("scheme regimes is RegimePortfolioEnv; PortfolioEnv rotates symbols")
        limits = config.limits.model_copy(update={"max_open_positions": config.max_open_positions})
        config = config.model_copy(update={"limits": limits})
        self.sampler = self._make_sampler(market, views, config)
        self.pool = pool_size(config, market)
        self.core = TradingCore(
            market, config, 1, self.pool, budget=1.0 / config.max_open_positions
        )
        self.scheme = self.core.scheme
        self.observation_space = masked_observation_space(
            self.core.observations.dim, self.scheme.n_actions
        )
        self.action_space = gym.spaces.Discrete(self.scheme.n_actions)
        self.render_mode = render_mode
        self._focus = 0
        self._pending = np.zeros((1, self.pool), np.int64)
        self._sanitized = np.zeros(self.pool, bool)
        buys = {"discrete3": (1,), "discrete7": (1, 2, 3, 6), "limit5": (1, 2)}[config.scheme.kind]
        self._buy_actions = np.isin(np.arange(self.scheme.n_actions), buys)
        self._masks = np.ones((1, self.pool, self.scheme.n_actions), bool)
        self._obs = np.zeros((1, self.pool, self.core.observations.dim), np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        episode = self.draw_episode(self.np_random, options, shuffle=True)
        self.core.reset([episode])
        self._focus = 0
        self._pending[:] = 0
        self._sanitized[:] = False
        self._refresh()
        return self._observation(), {"start": episode.start, "stop": episode.stop}

    def _refresh(self) -> None:
        self._masks = self.core.masks()
        self._obs = self.core.observe()

    def _pending_opens(self) -> int:
        pending = self._pending[0]
        return int((self._is_buy(pending) & (self.core.sim.qty[0] == 0)).sum())

    def _is_buy(self, actions: np.ndarray) -> np.ndarray:
        return self._buy_actions.take(actions)

    def _observation(self) -> dict[str, np.ndarray]:
        obs = self._obs[0, self._focus].copy()
        mask = self._masks[0, self._focus].copy()
        sim = self.core.sim
        open_now = int((sim.qty[0] != 0).sum()) + self._pending_opens()
        obs[-1] = open_now / self.config.max_open_positions
        if sim.qty[0, self._focus] == 0 and open_now >= self.config.max_open_positions:
            mask &= ~self._is_buy(np.arange(self.scheme.n_actions))
        self._focus_mask = mask
        return {"observations": obs, "action_mask": mask.astype(np.int8)}

    def step(
        self, action: np.int64 | int
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(np.int64(action)):
            raise ValueError(f"action {action!r} is outside {self.action_space}")
        action = int(action)
        sanitized = not self._focus_mask[action]
        self._pending[0, self._focus] = 0 if sanitized else action
        self._sanitized[self._focus] = sanitized
        info: dict[str, Any] = {"focus": self._focus, "sanitized": sanitized}
        self._focus += 1
        if self._focus < self.pool:
            return self._observation(), 0.0, False, False, info
        result = self.core.step(self._pending, self._masks)
        self.last_fills = result.fills
        self.core.telemetry.sanitized[0] += self._sanitized
        self._sanitized[:] = False
        fills = result.fills
        budget = self.core.budget[0]
        terms = (result.terms[0] * budget[:, None]).sum(axis=0)
        reward = float(terms.sum())
        self._focus = 0
        self._pending[:] = 0
        self._refresh()
        info.update(
            {
                "equity": float(fills.equity[0]),
                "reward_terms": np.ascontiguousarray(terms).view(TERM_DTYPE)[0],
                "open_positions": int((self.core.sim.qty[0] != 0).sum()),
            }
        )
        terminated = bool(fills.bankrupt[0])
        truncated = bool(fills.done[0]) and not terminated
        if terminated or truncated:
            info["episode"] = self.core.telemetry.summary(0)
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | None:  # type: ignore[override]
        if self.render_mode != "ansi":
            return None
        sim = self.core.sim
        return f"bar {int(sim.t[0])} focus {self._focus} equity {sim.equity[0]:,.2f}"


class RegimePortfolioEnv(_PoolEnv):
    def __init__(
        self,
        market: EnvMarket,
        views: Sequence[EpisodeView] | None = None,
        config: PortfolioEnvConfig | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.config = config = config or PortfolioEnvConfig(scheme=SchemeConfig(kind="regimes"))
        if config.scheme.kind != "regimes":
            raise ValueError("RegimePortfolioEnv needs scheme.kind: regimes")
        self.sampler = self._make_sampler(market, views, config)
        self.pool = pool_size(config, market)
        self.scheme = RegimeScheme(config.scheme, self.pool)
        self.sim = Simulator(
            market,
            1,
            self.pool,
            costs=config.costs,
            execution=config.execution,
            limits=config.limits,
        )
        self.observations = ObservationBuilder(market, config.observation)
        self.telemetry = EpisodeTelemetry(1, self.pool, self.scheme.names)
        self.observation_space = gym.spaces.Box(
            -np.inf, np.inf, (self.pool * self.observations.dim,), np.float32
        )
        self.action_space = gym.spaces.Discrete(self.scheme.n_actions)
        self.render_mode = render_mode
        self._budget = np.full((1, self.pool), 1.0)

    def _observation(self) -> np.ndarray:
        return self.observations.build(self.sim, self._budget).reshape(-1)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        episode = self.draw_episode(self.np_random, options, shuffle=True)
        self.sim.reset(
            episode.symbols[None, :], np.array([episode.start]), np.array([episode.stop])
        )
        self.telemetry.reset()
        return self._observation(), {"start": episode.start, "stop": episode.stop}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(np.int64(action)):
            raise ValueError(f"action {action!r} is outside {self.action_space}")
        fills = self.last_fills = self.sim.step(self.scheme.orders(np.array([int(action)])))
        self.telemetry.record(fills)
        self.telemetry.actions[0, int(action)] += 1
        reward, terms = regime_reward(fills, self.config.reward.scale)
        info: dict[str, Any] = {
            "equity": float(fills.equity[0]),
            "weights": self.sim.weights()[0].copy(),
            "target_weights": self.scheme.table[int(action)],
            "reward_terms": np.ascontiguousarray(terms[0]).view(REGIME_TERM_DTYPE)[0],
        }
        terminated = bool(fills.bankrupt[0])
        truncated = bool(fills.done[0]) and not terminated
        if terminated or truncated:
            info["episode"] = self.telemetry.summary(0)
        return self._observation(), float(reward[0]), terminated, truncated, info

    def render(self) -> str | None:  # type: ignore[override]
        if self.render_mode != "ansi":
            return None
        weights = " ".join(f"{w:.2f}" for w in self.sim.weights()[0])
        return f"bar {int(self.sim.t[0])} equity {self.sim.equity[0]:,.2f} weights [{weights}]"
