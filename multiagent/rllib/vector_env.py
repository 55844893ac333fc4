"""Phase 2's symbol agents as one gymnasium `VectorEnv`: B books x N slots, one sub-env a slot.

Why: in phase 2 every symbol agent runs the one shared policy with the master's seat neutral,
so the agents are independent copies of a single-agent problem, batched like CartPole's envs.
RLlib's multi-agent runner pays Python bookkeeping per agent per step (episode objects,
per-agent metrics, connector loops) and bounded sampling at about 3-4k agent steps/s; its
single-agent runner takes a native vector env (``gym_env_vectorize_mode="VECTOR_ENTRY_POINT"``)
and one batched `TradingCore` steps all B books in one call (docs/benchmarks.md).

Same problem, same numbers: each sub-env sees exactly what ``symbol_i`` of `TradingAgentsEnv`
sees (observation, action mask, reward, termination, truncation), episodes are drawn per book
from the same `EpisodeSampler` rules (view by weight, extra slots, shuffled slot order), and
budgets are the master seat's neutral ones; `tests/rllib/test_vector_env.py` holds the two
envs equal step by step. Advantages stay per slot, as with one agent per slot.

Resets follow gymnasium's next-step autoreset, which RLlib's runner expects: the step that
ends a book's episode returns its last observation with the done flags, and the next call
returns the first observation of the book's next episode (its actions ignored, reward 0). The
batched core steps every book on every call, so a book is reset as soon as its episode ends,
and reset again to that same episode after the step that had to be ignored.

The last step of a book's episode carries the episode telemetry summary in slot 0's info (the
one `callbacks.TelemetryCallbacks` logs); curricula work as in `TradingAgentsEnv`
(`PoolCurriculum`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from multiagent.data.episodes import EpisodeView
from multiagent.envs.config import HierarchicalEnvConfig
from multiagent.envs.core import TradingCore
from multiagent.envs.hierarchical_env import book_summary
from multiagent.envs.market import EnvMarket
from multiagent.envs.master import MasterSeat
from multiagent.envs.sampling import (
    CurriculumHooks,
    Episode,
    EpisodeSampler,
    whole_market_views,
)
from multiagent.envs.symbol_env import masked_observation_space
from multiagent.rllib.env import PoolCurriculum


class BookEpisodes(CurriculumHooks):
    """The episodes of B books from one `EpisodeSampler`: what `PoolCurriculum` drives (the
    pool and weights of `CurriculumHooks`, the cost level), plus the view each book's episode
    in flight was drawn from (for the per-view statistics)."""

    def __init__(self, sampler: EpisodeSampler, core: TradingCore, n_books: int) -> None:
        self.sampler = sampler
        self.core = core
        self._drawn_by_book: list[tuple[int, int] | None] = [None] * n_books

    def draw(self, book: int, rng: np.random.Generator) -> Episode:
        """Book ``book``'s next episode, drawn as `HierarchicalTradingEnv.reset` draws one."""
        episode = self.draw_episode(rng, None, shuffle=True)
        self._drawn_by_book[book], self._drawn = self._drawn, None
        return episode

    def record(self, book: int, episode_return: float) -> None:
        self._drawn, self._drawn_by_book[book] = self._drawn_by_book[book], None
        self.record_episode_return(episode_return)

    def set_cost_multiplier(self, multiplier: float) -> None:
        self.core.sim.set_cost_multiplier(multiplier)

    @property
    def cost_multiplier(self) -> float:
        return self.core.sim.cost_multiplier


class SymbolSlotsVectorEnv(PoolCurriculum, gym.vector.VectorEnv):
    """``n_books`` books of ``config.n_symbols`` slots; sub-env ``b * N + i`` is slot ``i`` of
    book ``b``. See the module docstring."""

    metadata: dict[str, Any] = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(
        self,
        market: EnvMarket,
        views: Sequence[EpisodeView] | None,
        config: HierarchicalEnvConfig,
        n_books: int,
        *,
        balanced: bool = True,
    ) -> None:
        n = config.n_symbols
        if n > market.n_symbols:
            raise ValueError(f"{n} symbol slots but the market has {market.n_symbols} symbols")
        if n_books < 1:
            raise ValueError(f"need at least one book, got {n_books}")
        self.config = config
        self.n_books, self.n_slots = n_books, n
        self.num_envs = n_books * n
        core = TradingCore(market, config, n_books, n, budget=config.limits.max_gross_exposure / n)
        self.core = core
        self.seat = MasterSeat(core, config)
        self._neutral = np.tile(self.seat.neutral, (n_books, 1))
        sampler = EpisodeSampler(
            market,
            views if views is not None else whole_market_views(market),
            n,
            max_bars=config.max_episode_bars,
        )
        self.episode_source = BookEpisodes(sampler, core, n_books)
        self._init_pool(sampler.views, balanced)
        self.single_observation_space = masked_observation_space(
            core.observations.dim, core.scheme.n_actions
        )
        self.single_action_space = gym.spaces.Discrete(core.scheme.n_actions)
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, self.num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._rng = np.random.default_rng()
        self._episodes: list[Episode] = []
        self._steps = np.zeros(n_books, np.int64)
        """Steps taken in each book's episode (0: the next step is its first)."""
        self._pending = np.zeros(n_books, bool)
        """Books whose episode ended on the last step: this call returns their reset."""
        self._masks = np.ones((n_books, n, core.scheme.n_actions), bool)

    # gymnasium VectorEnv API ------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if seed is not None:
            first = seed if isinstance(seed, int) else seed[0]
            self._rng = np.random.default_rng(first)
        books = np.arange(self.n_books)
        self._episodes = [self.episode_source.draw(b, self._rng) for b in books]
        self._restart(books)
        self._pending[:] = False
        obs, self._masks = self._observe()
        return self._batch(obs, self._masks), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        core = self.core
        actions = np.asarray(actions, np.int64).reshape(self.n_books, self.n_slots)
        pending = self._pending
        if ((self._steps == 0) & ~pending).any():
            # The master seat's first decision of an episode, as in the hierarchical env: its
            # neutral action (equal budgets, neutral mode) replaces the reset's budgets.
            self.seat.apply(self._neutral)
        result = core.step(actions, self._masks)
        self._steps += 1
        fills = result.fills
        rewards = result.reward.astype(np.float32)
        rewards[pending] = 0.0
        done = fills.done & ~pending
        bankrupt = fills.bankrupt & done
        ended = np.flatnonzero(done)
        infos: dict[str, Any] = {}
        if len(ended):
            infos = self._summaries(ended)
            last_obs, last_masks = self._observe()
            for book in ended:
                self._episodes[book] = self.episode_source.draw(int(book), self._rng)
        restarted = np.flatnonzero(pending | done)
        if len(restarted):
            # Books that ended now start their next episode; books whose reset this call
            # returns start theirs again (the step just taken on it is void).
            self._restart(restarted)
        obs, self._masks = self._observe()
        shown_obs, shown_masks = obs, self._masks
        if len(ended):
            shown_obs, shown_masks = obs.copy(), self._masks.copy()
            shown_obs[ended], shown_masks[ended] = last_obs[ended], last_masks[ended]
        self._pending = done
        terminated = np.repeat(bankrupt, self.n_slots)
        truncated = np.repeat(done & ~bankrupt, self.n_slots)
        return (
            self._batch(shown_obs, shown_masks),
            rewards.reshape(-1),
            terminated,
            truncated,
            infos,
        )

    def close_extras(self, **kwargs: Any) -> None:
        pass

    # internals --------------------------------------------------------------------------
    def _restart(self, books: np.ndarray) -> None:
        self.core.reset([self._episodes[b] for b in books], books)
        self.seat.reset(books)
        self._steps[books] = 0

    def _observe(self) -> tuple[np.ndarray, np.ndarray]:
        """(B, N, D) observations and (B, N, A) masks of the current state (masks first: the
        core's next step executes against them)."""
        masks = self.core.masks()
        return self.core.observe(), masks

    def _batch(self, obs: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "observations": obs.reshape(self.num_envs, -1),
            "action_mask": masks.reshape(self.num_envs, -1).astype(np.int8),
        }

    def _summaries(self, ended: np.ndarray) -> dict[str, Any]:
        """Infos of the books whose episode ended: the telemetry summary in slot 0's."""
        summaries = np.full(self.num_envs, None, object)
        present = np.zeros(self.num_envs, bool)
        for book in ended:
            summary = book_summary(self.core, int(book))
            summary["n_agents"] = self.n_slots
            self.episode_source.record(int(book), summary["return"])
            summaries[book * self.n_slots] = summary
            present[book * self.n_slots] = True
        return {"episode": summaries, "_episode": present}
