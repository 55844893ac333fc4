"""The run's `resources` section -> RLlib's env-runner, learner and fault-tolerance settings.

``auto`` values are resolved against the Ray cluster the algorithm is built on, so one config
runs on a laptop (sampling in the driver, CPU learner) and on a cluster (one runner per free
CPU, a GPU learner where there is a GPU) unchanged. Each phase writes what was resolved to
``RUN/PHASE/resources.json`` (and MLflow), so a run records the resources it actually had.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ray.rllib.algorithms.ppo import PPOConfig

from multiagent.config.phases import ResourceConfig

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm import Algorithm

logger = logging.getLogger(__name__)

MIN_CPUS_FOR_AUTO_RUNNERS = 4
"""Below this many CPUs, remote runners compete with the driver's learner for the same cores:
on 2 CPUs, 2 runners sampled 1.87x faster but trained only 1.09x faster, and each cost 4 s
more to build and about 0.4 GiB (docs/benchmarks.md): ``auto`` samples in the driver."""


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


def cluster_totals() -> dict[str, float]:
    """Total resources of the Ray cluster this process is connected to (this machine's CPUs
    when Ray is not started)."""
    import ray

    if not ray.is_initialized():
        return {"CPU": float(os.cpu_count() or 1)}
    return {key: float(value) for key, value in ray.cluster_resources().items()}


def auto_env_runners(resources: ResourceConfig, totals: dict[str, float]) -> int:
    """As many runners as the cluster can place: its CPUs less one for the driver (which
    learns itself when num_learners is 0) and the remote learners', and no more than its custom
    resources admit (runners pinned to a node type only fit on those nodes)."""
    cpus = totals.get("CPU", 0.0)
    if cpus < MIN_CPUS_FOR_AUTO_RUNNERS:
        return 0
    free = cpus - 1 - resources.num_learners * resources.num_cpus_per_learner
    fits = [free / resources.num_cpus_per_env_runner]
    fits += [
        totals.get(name, 0.0) / amount
        for name, amount in resources.custom_resources_per_env_runner.items()
        if amount > 0
    ]
    runners = int(min(fits) + 1e-9)
    return max(0, min(runners, resources.max_auto_env_runners))


def resolve(resources: ResourceConfig, totals: dict[str, float]) -> ResolvedResources:
    """Fill in the ``auto`` values for a cluster with these total resources."""
    gpus = resources.num_gpus_per_learner
    if gpus == "auto":
        gpus = 1.0 if totals.get("GPU", 0.0) >= 1 else 0.0
    runners = resources.num_env_runners
    if runners == "auto":
        runners = auto_env_runners(resources, totals)
    return ResolvedResources(
        num_env_runners=runners,
        num_envs_per_env_runner=resources.num_envs_per_env_runner,
        num_cpus_per_env_runner=resources.num_cpus_per_env_runner,
        custom_resources_per_env_runner=dict(resources.custom_resources_per_env_runner),
        num_learners=resources.num_learners,
        num_cpus_per_learner=resources.num_cpus_per_learner,
        num_gpus_per_learner=float(gpus),
        cluster_cpus=totals.get("CPU", 0.0),
        cluster_gpus=totals.get("GPU", 0.0),
    )


RESOURCES_FILE = "resources.json"


def resources_record(algo: Algorithm) -> dict[str, Any]:
    """What a built algorithm actually runs with, and on which cluster (``resources.json``)."""
    config = algo.config
    return {
        "num_env_runners": config.num_env_runners,
        "num_envs_per_env_runner": config.num_envs_per_env_runner,
        "num_cpus_per_env_runner": config.num_cpus_per_env_runner,
        "custom_resources_per_env_runner": dict(config.custom_resources_per_env_runner),
        "num_learners": config.num_learners,
        "num_cpus_per_learner": config.num_cpus_per_learner,
        "num_gpus_per_learner": config.num_gpus_per_learner,
        "restart_failed_env_runners": config.restart_failed_env_runners,
        "delay_between_env_runner_restarts_s": config.delay_between_env_runner_restarts_s,
        "cluster": {
            key: value for key, value in cluster_totals().items() if not key.startswith("node:")
        },
    }


def runner_health(algo: Algorithm) -> dict[str, float]:
    """Healthy remote env runners and restarts so far (metrics rows log them every
    iteration: a lost runner shows as a dip, its replacement as a restart)."""
    group = algo.env_runner_group
    if group is None:
        return {}
    return {
        "env_runners_healthy": float(group.num_healthy_remote_env_runners()),
        "env_runner_restarts": float(group.num_remote_worker_restarts()),
    }


def apply_resources(
    algo_config: PPOConfig, resources: ResourceConfig
) -> tuple[PPOConfig, ResolvedResources]:
    """``algo_config`` with the env runners, learners and restart policy of ``resources``."""
    resolved = resolve(resources, cluster_totals())
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
