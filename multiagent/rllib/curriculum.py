"""The curriculum on RLlib's new API stack: `CurriculumCallbacks` drives a `Curriculum` from the
driver and applies its task to every env of every env runner.

How a trainer uses it::

    config = with_curriculum(build_ppo_config(...), curriculum, "symbols", source=path)
    algo = config.build_algo()              # on_algorithm_init applies the first stage
    callback = curriculum_callbacks(algo)   # None when the phase has no curriculum
    ...
    result = algo.train()                   # on_train_result: stats, update, re-apply;
                                            # result["curriculum_stage"], [...cost_multiplier]
    callback.report_validation(algo, evaluation.metrics)   # after each validation
    state = callback.curriculum_state()     # into the trainer's checkpoint json
    callback.load_curriculum_state(state)   # after restoring the algorithm

The curriculum travels in ``env_config``: ``"curriculum"`` (the `CurriculumConfig` JSON dump)
and ``"curriculum_source"`` (the file, for messages); the env runners ignore both. The driver's
callback instance builds the `Curriculum` lazily from ``env_config["run"]`` (the `RunConfig`
dump) and the views of ``env_config["part"]`` (train).

Ray 2.60 details (see docs/ray_notes.md): tasks go out through
``env_runner_group.foreach_env_runner`` (the local runner too: it holds the envs when there are
no remote runners, and none otherwise); each runner's envs are ``env_runner.env.envs[i].unwrapped``
(a gymnasium vector env of `TradingAgentsEnv`). A runner that RLlib restarts comes back with the
original ``env_config``, so ``on_env_runners_recreated`` re-applies the current task; a runner
also keeps the last task it was given and re-applies it to envs it re-creates itself
(``on_environment_created``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from multiagent.config import RunConfig
from multiagent.curriculum.config import CurriculumConfig, Phase
from multiagent.curriculum.schedule import Curriculum
from multiagent.errors import ConfigError
from multiagent.rllib.callbacks import TELEMETRY, TELEMETRY_KEYS, TelemetryCallbacks
from multiagent.rllib.env import PoolCurriculum, market_for

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    from ray.rllib.env.env_runner import EnvRunner
    from ray.rllib.env.env_runner_group import EnvRunnerGroup
    from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

logger = logging.getLogger(__name__)

CURRICULUM_KEY = "curriculum"
"""``env_config`` key of the `CurriculumConfig` JSON dump."""
SOURCE_KEY = "curriculum_source"
"""``env_config`` key of the curriculum file's path (messages only)."""
RESULT_KEYS = (
    "curriculum_stage",
    "curriculum_cost_multiplier",
    "curriculum_views",
    "curriculum_next_stage",
)
"""Top-level keys `CurriculumCallbacks.on_train_result` puts into every result."""
_RUNNER_TASK = "_multiagent_curriculum_task"


# runner side: plain functions shipped to the env runners -------------------------------
def runner_envs(env_runner: EnvRunner) -> list[PoolCurriculum]:
    """The envs of an env runner that take curriculum tasks (none where it has no env): its
    `TradingAgentsEnv` instances, or phase 2's one `SymbolSlotsVectorEnv`."""
    vector = getattr(env_runner, "env", None)
    if vector is None:
        return []
    subs = getattr(vector, "envs", None)
    candidates = list(subs) if subs is not None else [vector]
    envs = [getattr(env, "unwrapped", env) for env in candidates]
    return [env for env in envs if isinstance(env, PoolCurriculum)]


def apply_task(env_runner: EnvRunner, task: dict[str, Any]) -> int:
    """Apply ``task`` to every env of ``env_runner`` and keep it for envs it re-creates;
    returns the number of envs."""
    setattr(env_runner, _RUNNER_TASK, task)
    envs = runner_envs(env_runner)
    for env in envs:
        env.apply_curriculum(task)
    return len(envs)


def pop_stats(env_runner: EnvRunner) -> tuple[np.ndarray, np.ndarray] | None:
    """Summed per-view (episodes, returns) of ``env_runner``'s envs since the last call."""
    envs = runner_envs(env_runner)
    if not envs:
        return None
    counts, returns = envs[0].pop_view_stats()
    for env in envs[1:]:
        more_counts, more_returns = env.pop_view_stats()
        counts, returns = counts + more_counts, returns + more_returns
    return counts, returns


def runner_task(env_runner: EnvRunner) -> list[dict[str, Any] | None]:
    """The task each env of ``env_runner`` holds (for tests and debugging)."""
    return [env.task for env in runner_envs(env_runner)]


def training_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The metrics-row keys an RLlib result already has (the trainer adds ``val_*`` later):
    ``reward_mean`` and the telemetry keys, NaN where no episode ended."""
    runners = result.get("env_runners", {}) or {}
    telemetry = runners.get(TELEMETRY, {}) or {}
    metrics = {"reward_mean": runners.get("episode_return_mean", float("nan"))}
    metrics.update({key: telemetry.get(key, float("nan")) for key in TELEMETRY_KEYS})
    return {k: float(v) for k, v in metrics.items()}


# driver side ----------------------------------------------------------------------------
class CurriculumCallbacks(TelemetryCallbacks):
    """Telemetry plus the curriculum (inactive, telemetry only, without ``env_config
    ["curriculum"]``). Only the driver's instance (the algorithm's) holds a `Curriculum`."""

    def __init__(self) -> None:
        super().__init__()
        self.curriculum: Curriculum | None = None
        self.algorithm: Algorithm | None = None
        self._applied: dict[str, Any] | None = None

    # RLlib hooks --------------------------------------------------------------------
    def on_algorithm_init(
        self, *, algorithm: Algorithm, metrics_logger: MetricsLogger | None = None, **kwargs: Any
    ) -> None:
        self.algorithm = algorithm
        self.curriculum = build_curriculum(algorithm.config.env_config)
        if self.curriculum is not None:
            self.apply(algorithm, force=True)

    def on_train_result(
        self,
        *,
        algorithm: Algorithm,
        metrics_logger: MetricsLogger | None = None,
        result: dict[str, Any],
        **kwargs: Any,
    ) -> None:
        curriculum = self.curriculum
        if curriculum is None:
            return
        self.gather_stats(algorithm)
        # The result describes the iteration just trained: its stage, before the update
        # decides the next one (``curriculum_next_stage``).
        result["curriculum_stage"] = curriculum.stage_index
        result["curriculum_cost_multiplier"] = curriculum.cost_multiplier
        result["curriculum_views"] = len(curriculum.stage_views())
        iteration = int(result.get("training_iteration", algorithm.iteration))
        curriculum.update(iteration, training_metrics(result))
        self.apply(algorithm)
        result["curriculum_next_stage"] = curriculum.stage_index

    def on_env_runners_recreated(
        self,
        *,
        algorithm: Algorithm,
        env_runner_group: EnvRunnerGroup,
        env_runner_indices: list[int],
        is_evaluation: bool = False,
        **kwargs: Any,
    ) -> None:
        if self.curriculum is None or is_evaluation:
            return
        task = self.curriculum.task()
        env_runner_group.foreach_env_runner(
            lambda runner: apply_task(runner, task),
            local_env_runner=False,
            remote_worker_ids=list(env_runner_indices),
        )
        logger.info("curriculum task re-applied to recreated env runners %s", env_runner_indices)

    def on_environment_created(self, *, env_runner: EnvRunner, **kwargs: Any) -> None:
        # Runner side: an env the runner re-creates itself gets the runner's last task.
        task = getattr(env_runner, _RUNNER_TASK, None)
        if task is not None:
            for env in runner_envs(env_runner):
                env.apply_curriculum(task)

    # what the trainer calls ---------------------------------------------------------
    def report_validation(self, algorithm: Algorithm, metrics: Mapping[str, Any]) -> bool:
        """Feed a validation's metrics (after ``algorithm.train()`` of the same iteration);
        keys without the ``val_`` prefix get it (pass `SymbolEvaluation.metrics` or the
        metrics row's ``val_*`` keys). A change of stage is applied at once; True then."""
        if self.curriculum is None:
            return False
        named = {k if k.startswith("val_") else f"val_{k}": v for k, v in metrics.items()}
        changed = self.curriculum.update(int(algorithm.iteration), named)
        self.apply(algorithm)
        return changed

    def curriculum_state(self) -> dict[str, Any] | None:
        """JSON-able state for the trainer's checkpoint (None without a curriculum)."""
        return None if self.curriculum is None else self.curriculum.state()

    def load_curriculum_state(
        self, state: Mapping[str, Any] | None, algorithm: Algorithm | None = None
    ) -> None:
        """Resume in the stored stage (after restoring the algorithm) and re-apply its task."""
        if state is None:
            return
        if self.curriculum is None:
            raise ConfigError(
                "the checkpoint holds a curriculum state but this run has none (no curriculum "
                "in its env_config)"
            )
        self.curriculum.load_state(state)
        self.apply(algorithm or self.algorithm, force=True)

    # internals ----------------------------------------------------------------------
    def apply(self, algorithm: Algorithm, *, force: bool = False) -> bool:
        """Send the current task to every env runner when it changed (or ``force``)."""
        assert self.curriculum is not None
        task = self.curriculum.task()
        if not force and task == self._applied:
            return False
        algorithm.env_runner_group.foreach_env_runner(lambda runner: apply_task(runner, task))
        self._applied = task
        return True

    def gather_stats(self, algorithm: Algorithm) -> None:
        """Pull the per-view episode statistics of every env runner into the curriculum."""
        assert self.curriculum is not None
        for stats in algorithm.env_runner_group.foreach_env_runner(pop_stats):
            if stats is not None:
                self.curriculum.observe_views(*stats)


def episode_slots(run: RunConfig, n_symbols: int) -> int:
    """Symbols an episode of the run's env trades at once: the hierarchy's slots, a session,
    or the portfolio / regimes pool (clamped to the market as the env clamps it)."""
    if run.system == "hierarchy":
        return run.env.n_symbols
    if run.system == "sessions":
        return 1
    pool = run.agent.env.pool_size
    return pool if pool is not None else min(run.agent.env.resolved_pool_size, n_symbols)


def build_curriculum(env_config: Mapping[str, Any]) -> Curriculum | None:
    """The `Curriculum` of an algorithm's ``env_config`` (None without ``"curriculum"``)."""
    dump = env_config.get(CURRICULUM_KEY)
    if dump is None:
        return None
    config = CurriculumConfig.model_validate(dump)
    run = RunConfig.model_validate(env_config["run"])
    _, prepared = market_for(run)
    return Curriculum(
        config,
        prepared.views(env_config.get("part", "train")),
        prepared.panel,
        episode_slots(run, prepared.panel.n_symbols),
        source=str(env_config.get(SOURCE_KEY, config.name)),
    )


def curriculum_env_config(config: CurriculumConfig, *, source: str) -> dict[str, Any]:
    """The ``env_config`` entries that switch a phase's curriculum on."""
    return {CURRICULUM_KEY: config.model_dump(mode="json"), SOURCE_KEY: source}


def with_curriculum(
    ppo_config: AlgorithmConfig, curriculum: CurriculumConfig | None, phase: Phase, *, source: str
) -> Any:
    """``ppo_config`` (an `AlgorithmConfig`) with the curriculum for ``phase``: its env_config
    entries and `CurriculumCallbacks`; unchanged without a curriculum or when the curriculum
    does not list ``phase``."""
    if curriculum is None or phase not in curriculum.phases:
        return ppo_config
    env_config = {**ppo_config.env_config, **curriculum_env_config(curriculum, source=source)}
    return ppo_config.environment(env_config=env_config).callbacks(CurriculumCallbacks)


def curriculum_callbacks(algorithm: Algorithm) -> CurriculumCallbacks | None:
    """The algorithm's driver-side `CurriculumCallbacks` holding a curriculum, if any."""
    callbacks = algorithm.callbacks
    for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
        if isinstance(callback, CurriculumCallbacks) and callback.curriculum is not None:
            return callback
    return None
