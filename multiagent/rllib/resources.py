"""The run's `resources` section -> RLlib's env-runner, learner and fault-tolerance settings.

``auto`` values are resolved against the Ray cluster the algorithm is built on, so one config
runs on a laptop (sampling in the driver, CPU learner) and on a cluster (one runner per free
CPU, a GPU learner where there is a GPU) unchanged. What was resolved is logged and returned,
so a run records the resources it actually had.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

from ray.rllib.algorithms.ppo import PPOConfig

from multiagent.training.config import ResourceConfig

logger = logging.getLogger(__name__)

MIN_CPUS_FOR_AUTO_RUNNERS = 4
"""Below this many CPUs, remote runners cost more (an actor and its copy of the market each)
than they sample: ``auto`` samples in the driver (measured in docs/benchmarks.md)."""


@dataclass(frozen=True)
class ResolvedResources:
    num_env_runners: int
    num_envs_per_env_runner: int
    num_cpus_per_env_runner: float
    custom_resources_per_env_runner: dict[str, float]
    num_learners: int
    num_cpus_per_learner: float
    num_gpus_per_learner: float
    cluster_cpus: float
    cluster_gpus: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cluster_totals() -> tuple[float, float]:
    """(CPUs, GPUs) of the Ray cluster this process is connected to (this machine's CPUs when
    Ray is not started)."""
    import ray

    if not ray.is_initialized():
        return float(os.cpu_count() or 1), 0.0
    total = ray.cluster_resources()
    return float(total.get("CPU", 0.0)), float(total.get("GPU", 0.0))


def auto_env_runners(resources: ResourceConfig, cluster_cpus: float) -> int:
    if cluster_cpus < MIN_CPUS_FOR_AUTO_RUNNERS:
        return 0
    # One CPU stays with the driver (which learns itself when num_learners is 0).
    free = cluster_cpus - 1 - resources.num_learners * resources.num_cpus_per_learner
    runners = int(free // resources.num_cpus_per_env_runner)
    return max(0, min(runners, resources.max_auto_env_runners))


def resolve(
    resources: ResourceConfig, cluster_cpus: float, cluster_gpus: float
) -> ResolvedResources:
    """Fill in the ``auto`` values for a cluster with these totals."""
    gpus = resources.num_gpus_per_learner
    if gpus == "auto":
        gpus = 1.0 if cluster_gpus >= 1 else 0.0
    runners = resources.num_env_runners
    if runners == "auto":
        runners = auto_env_runners(resources, cluster_cpus)
    return ResolvedResources(
        num_env_runners=runners,
        num_envs_per_env_runner=resources.num_envs_per_env_runner,
        num_cpus_per_env_runner=resources.num_cpus_per_env_runner,
        custom_resources_per_env_runner=dict(resources.custom_resources_per_env_runner),
        num_learners=resources.num_learners,
        num_cpus_per_learner=resources.num_cpus_per_learner,
        num_gpus_per_learner=float(gpus),
        cluster_cpus=cluster_cpus,
        cluster_gpus=cluster_gpus,
    )


def apply_resources(
    algo_config: PPOConfig, resources: ResourceConfig
) -> tuple[PPOConfig, ResolvedResources]:
    """``algo_config`` with the env runners, learners and restart policy of ``resources``."""
    resolved = resolve(resources, *cluster_totals())
    configured = (
        algo_config.env_runners(
            num_env_runners=resolved.num_env_runners,
            num_envs_per_env_runner=resolved.num_envs_per_env_runner,
            num_cpus_per_env_runner=resolved.num_cpus_per_env_runner,
            custom_resources_per_env_runner=resolved.custom_resources_per_env_runner,
            sample_timeout_s=resources.sample_timeout_s,
            rollout_fragment_length="auto",
        )
        .learners(
            num_learners=resolved.num_learners,
            num_cpus_per_learner=resolved.num_cpus_per_learner,
            num_gpus_per_learner=resolved.num_gpus_per_learner,
        )
        .fault_tolerance(
            restart_failed_env_runners=resources.restart_failed_env_runners,
            delay_between_env_runner_restarts_s=resources.delay_between_env_runner_restarts_s,
            max_num_env_runner_restarts=resources.max_num_env_runner_restarts,
        )
    )
    logger.info("resources: %s", resolved.as_dict())
    return configured, resolved
