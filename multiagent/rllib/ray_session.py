"""Joining or starting Ray for a training job: the one place the project calls ``ray.init``."""

from __future__ import annotations

import os

import ray

from multiagent.reproducibility import warn_if_unpinned


def init_ray(num_cpus: int | None = None) -> None:
    """Join the cluster of ``RAY_ADDRESS`` (set by ``ray job submit``) or start a local one."""
    warn_if_unpinned()
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
    else:
        # A private local instance: no token auth, no usage stats, no dashboard.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False)
