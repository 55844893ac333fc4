"""`Curriculum`: the stage state machine of one training phase (pure Python, no Ray).

The trainer's side (the RLlib callback) feeds it two things and applies what it answers:

- ``observe_views(counts, returns)`` after each iteration: episodes finished and the sum of their
  returns per training view, gathered from the env runners (accumulated over the whole run);
- ``update(iteration, metrics)`` after each iteration and after each validation: advance, fall
  back or stay; True when the stage changed;
- ``task()``: what every env applies (`multiagent.rllib.env.TradingAgentsEnv.apply_curriculum`),
  a JSON-able dict: ``{"stage", "index", "views", "weights", "symbols", "cost_multiplier"}``.

Stage clock: a stage entered after iteration ``k`` has trained ``iteration - k`` iterations when
``update(iteration, ...)`` is called. A metric only counts once the stage has trained at least
one iteration: a validation run on the iteration a stage was entered measured the stage before.
One update moves at most one stage. Promotion by metric needs ``min_iterations``; a stage with
``promote.max_iterations`` advances then whatever the metric; ``iterations`` advances after that
many. Fall-back (checked first) returns to the stage before when the metric is below
``fall_back.below``, at most ``fall_back.max_times`` times from that stage.

Sampling weights (over the stage's views): ``uniform`` = None (the env's own weighting);
``balanced`` = 1 / (1 + episodes seen on the view); ``worst`` = 1, plus ``worst_boost`` on the
views never seen and on those whose mean episode return is in the lowest quartile of the seen
ones (so a fresh stage starts uniform and then leans on what the policy handles worst).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from multiagent.curriculum.config import CurriculumConfig, StageConfig
from multiagent.curriculum.scoring import (
    StageSelection,
    difficulty_scores,
    liquidity_ranking,
    select_stage,
)
from multiagent.data.episodes import EpisodeView
from multiagent.data.panel import MarketPanel
from multiagent.envs.sampling import DEFAULT_MIN_COVERAGE
from multiagent.errors import ConfigError

logger = logging.getLogger(__name__)
STATE_VERSION = 1


class Transition(NamedTuple):
    iteration: int
    """Training iteration after which the stage changed."""
    from_stage: str
    to_stage: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "from": self.from_stage,
            "to": self.to_stage,
            "reason": self.reason,
        }


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class Curriculum:
    """Stages of ``config`` over ``views`` (the training pool; task view indices point into it).

    ``panel`` gives the bars the liquidity ranking and the slot check read (inside the views'
    windows only); ``n_slots`` is the env's symbol slots per episode; ``source`` (the curriculum
    file) names errors. Every stage is resolved here, so a stage that keeps no view fails at
    construction, not mid-run.
    """

    def __init__(
        self,
        config: CurriculumConfig,
        views: Sequence[EpisodeView],
        panel: MarketPanel,
        n_slots: int,
        source: str = "curriculum",
        *,
        min_coverage: float = DEFAULT_MIN_COVERAGE,
    ) -> None:
        if not views:
            raise ConfigError(f"{source}: no training views to build a curriculum on", file=source)
        self.config = config
        self.views = list(views)
        self.source = source
        self.difficulty = difficulty_scores(self.views)
        self.ranking = liquidity_ranking(panel, self.views)
        self.selections: list[StageSelection] = [
            select_stage(
                stage,
                self.views,
                panel,
                n_slots,
                difficulty=self.difficulty,
                ranking=self.ranking,
                source=source,
                index=i,
                min_coverage=min_coverage,
            )
            for i, stage in enumerate(config.stages)
        ]
        self.stage_index = 0
        self.stage_started = 0
        """Iteration after which the current stage was entered."""
        self.iteration = 0
        """Latest iteration passed to `update`."""
        self.fall_backs = [0] * len(config.stages)
        """Fall-backs taken from each stage."""
        self.counts = np.zeros(len(self.views), np.int64)
        """Episodes finished per view, over the whole run."""
        self.returns = np.zeros(len(self.views))
        """Sum of those episodes' returns per view."""
        self.history: list[Transition] = []

    # the current stage --------------------------------------------------------------
    @property
    def stage(self) -> StageConfig:
        return self.config.stages[self.stage_index]

    @property
    def stage_name(self) -> str:
        return self.stage.name

    @property
    def n_stages(self) -> int:
        return len(self.config.stages)

    @property
    def cost_multiplier(self) -> float:
        return self.stage.cost_multiplier

    def stage_views(self, index: int | None = None) -> np.ndarray:
        """Pool indices of the views of stage ``index`` (default: the current one)."""
        return self.selections[self.stage_index if index is None else index].views

    def weights(self) -> np.ndarray | None:
        """Sampling weights over the current stage's views (None: the env's own weighting)."""
        stage = self.stage
        views = self.stage_views()
        if stage.sampling == "uniform":
            return None
        counts = self.counts[views]
        if stage.sampling == "balanced":
            return 1.0 / (1.0 + counts)
        seen = counts > 0
        worst = ~seen
        if seen.any():
            means = self.returns[views][seen] / counts[seen]
            worst[seen] = means <= np.quantile(means, 0.25)
        return 1.0 + stage.worst_boost * worst

    def task(self) -> dict[str, Any]:
        """What the envs apply now (JSON-able; see the module docstring)."""
        selection = self.selections[self.stage_index]
        weights = self.weights()
        return {
            "stage": self.stage_name,
            "index": self.stage_index,
            "views": selection.views.tolist(),
            "weights": None if weights is None else weights.tolist(),
            "symbols": None if selection.symbols is None else list(selection.symbols),
            "cost_multiplier": self.cost_multiplier,
        }

    # feedback -----------------------------------------------------------------------
    def observe_views(
        self, counts: Sequence[float] | np.ndarray, returns: Sequence[float] | np.ndarray
    ) -> None:
        """Add per-view episode counts and summed episode returns (one entry per pool view)."""
        counts = np.asarray(counts)
        returns = np.asarray(returns, dtype=float)
        if counts.shape != self.counts.shape or returns.shape != self.returns.shape:
            raise ValueError(
                f"need {len(self.views)} counts and returns, got {counts.shape} / {returns.shape}"
            )
        self.counts += counts.astype(np.int64)
        self.returns += np.where(np.isfinite(returns), returns, 0.0)

    def update(self, iteration: int, metrics: Mapping[str, Any]) -> bool:
        """Advance, fall back or stay after ``iteration``; True when the stage changed.

        ``metrics`` is the trainer's metrics row (or part of it); only ``config.metric`` is
        read, and only when present and finite.
        """
        self.iteration = max(self.iteration, int(iteration))
        index, stage = self.stage_index, self.stage
        trained = max(int(iteration) - self.stage_started, 0)
        metric = self.config.metric
        value = _finite(metrics.get(metric)) if trained >= 1 else None
        back = stage.fall_back
        if (
            back is not None
            and value is not None
            and value < back.below
            and (back.max_times is None or self.fall_backs[index] < back.max_times)
        ):
            self.fall_backs[index] += 1
            return self._move(index - 1, iteration, f"{metric} {value:.4g} < {back.below:g}")
        if index == self.n_stages - 1:
            return False
        if stage.iterations is not None and trained >= stage.iterations:
            return self._move(index + 1, iteration, f"{trained} iterations")
        promote = stage.promote
        if promote is not None:
            ready = value is not None and trained >= promote.min_iterations
            if ready and value is not None and value >= promote.at_least:
                reason = f"{metric} {value:.4g} >= {promote.at_least:g}"
                return self._move(index + 1, iteration, reason)
            if promote.max_iterations is not None and trained >= promote.max_iterations:
                reason = f"max_iterations {promote.max_iterations} reached"
                return self._move(index + 1, iteration, reason)
        return False

    def _move(self, target: int, iteration: int, reason: str) -> bool:
        transition = Transition(
            int(iteration), self.stage_name, self.config.stages[target].name, reason
        )
        self.history.append(transition)
        logger.info(
            "curriculum %s: iteration %d, stage %s -> %s (%s)",
            self.config.name,
            transition.iteration,
            transition.from_stage,
            transition.to_stage,
            reason,
        )
        self.stage_index = target
        self.stage_started = int(iteration)
        return True

    # checkpoints --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-able state; `load_state` on a curriculum built from the same file and data
        resumes in the same stage with the same clock and statistics."""
        return {
            "version": STATE_VERSION,
            "name": self.config.name,
            "stages": [s.name for s in self.config.stages],
            "n_views": len(self.views),
            "stage_index": self.stage_index,
            "stage_started": self.stage_started,
            "iteration": self.iteration,
            "fall_backs": list(self.fall_backs),
            "counts": self.counts.tolist(),
            "returns": self.returns.tolist(),
            "history": [t.as_dict() for t in self.history],
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        stages = [s.name for s in self.config.stages]
        if (
            state.get("version") != STATE_VERSION
            or state.get("stages") != stages
            or state.get("n_views") != len(self.views)
        ):
            raise ConfigError(
                f"{self.source}: the stored curriculum state is for stages "
                f"{state.get('stages')} over {state.get('n_views')} views; this curriculum has "
                f"stages {stages} over {len(self.views)} views (curriculum file or data changed)",
                file=self.source,
            )
        self.stage_index = int(state["stage_index"])
        self.stage_started = int(state["stage_started"])
        self.iteration = int(state["iteration"])
        self.fall_backs = [int(n) for n in state["fall_backs"]]
        self.counts = np.asarray(state["counts"], np.int64)
        self.returns = np.asarray(state["returns"], dtype=float)
        self.history = [
            Transition(int(t["iteration"]), t["from"], t["to"], t["reason"])
            for t in state["history"]
        ]
