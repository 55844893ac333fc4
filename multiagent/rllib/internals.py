"""The Ray and RLlib internals this project touches, all in one place.

Everything else in the package and its tests goes through RLlib's public API
(`LearnerGroup.foreach_learner`, `Learner.get_optimizers_for_module`,
`EnvRunnerGroup.foreach_env_runner`, ...). What is here has no public equivalent in Ray 2.60;
each function says which private attribute it reads and why. On a Ray upgrade, this module is
the one to check.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch between a local-only node and one that other machines may join."""


@contextmanager
def loopback_node() -> Iterator[None]:
    """While a local Ray starts inside it, its node IP is 127.0.0.1, so every server binds there.

    Ray's gRPC servers (GCS, raylet, object manager, core workers) and its agents listen on all
    interfaces unless the node IP is a loopback address; but on Linux Ray 2.60 turns a loopback
    ``_node_ip_address`` (``ray.init``) or ``--node-ip-address`` (``ray start``) into the
    machine's outward IP (``services.resolve_ip_for_localhost``), unless
    ``ray._private.ray_constants.ENABLE_RAY_CLUSTER`` is false, as it is on macOS and Windows,
    where a single-node Ray keeps to 127.0.0.1. That flag is read from ``LOCAL_ONLY_ENV`` when
    ray is imported: the driver's copy is set here, the environment variable for the processes
    ``ray.init`` starts. Both are restored on exit (a later cluster connection resolves
    addresses as usual).
    """
    import ray._private.ray_constants as ray_constants

    before_env = os.environ.get(LOCAL_ONLY_ENV)
    before_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOCAL_ONLY_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before_flag
        if before_env is None:
            os.environ.pop(LOCAL_ONLY_ENV, None)
        else:
            os.environ[LOCAL_ONLY_ENV] = before_env


def run_learner_connector(learner: Any, episodes: list[Any]) -> dict[str, Any]:
    """The train batch ``learner`` builds from ``episodes``: its learner connector pipeline
    (for PPO: the bootstrap slot, GAE's value targets and advantages) run once, without an
    update, keyed by module id.

    Touches ``Learner._learner_connector``: `Learner.update` runs that pipeline and trains on
    its output in one call, and RLlib 2.60 has no public method that returns the batch it
    builds. (``config.build_learner_connector`` builds a new pipeline, not the one the learner
    runs.) The call mirrors ``Learner._make_batch_if_necessary``.
    """
    connector = learner._learner_connector
    if connector is None:
        raise ValueError(f"{learner} has no learner connector (aggregator actors run it)")
    batch: dict[str, Any] = connector(
        rl_module=learner.module,
        batch={},
        episodes=episodes,
        shared_data={},
        metrics=learner.metrics,
    )
    return batch
