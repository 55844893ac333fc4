"""Joining or starting Ray for a training job: the one place the project calls ``ray.init``.

A cluster is opted into explicitly: with ``RAY_ADDRESS`` set (``ray job submit`` sets it, or
export it to drive a running cluster) Ray is joined as that cluster is configured, its
authentication included. Otherwise a private local instance starts that nothing outside this
machine, and no process without its token, can reach (issue 23):

1. every server listens on 127.0.0.1 only: GCS, raylet, object manager, workers, the dashboard
   and runtime-env agents (`internals.loopback_node`; Ray binds its servers to the node IP);
2. token authentication, with a fresh random token per instance in ``RAY_AUTH_TOKEN`` that
   Ray's own processes inherit: nothing is written to ``~/.ray/auth_token`` and no other
   client on the machine can connect. A user's own choice is kept: ``RAY_AUTH_MODE`` set
   (``disabled`` or ``token``), or a token in ``RAY_AUTH_TOKEN`` / ``RAY_AUTH_TOKEN_PATH``;
3. no dashboard and no usage stats.
"""

from __future__ import annotations

import os
import secrets

import ray

from multiagent.logs import adopt
from multiagent.logs import is_configured as quiet
from multiagent.reproducibility import warn_if_unpinned
from multiagent.rllib.internals import loopback_node

LOOPBACK = "127.0.0.1"
RAY_LOGGERS = ("ray", "ray.rllib")
"""Loggers Ray and RLlib give handlers of their own on import (`multiagent.logs.adopt`)."""
AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def init_ray(num_cpus: int | None = None, *, log_to_driver: bool = True) -> None:
    """Join the cluster of ``RAY_ADDRESS`` (set by ``ray job submit``) or start a local one
    bound to loopback with token auth (see the module docstring)."""
    warn_if_unpinned()
    if ray.is_initialized():
        return
    adopt(*RAY_LOGGERS)  # the `multiagent` program's Ray output goes to the run's log
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=log_to_driver, configure_logging=not quiet())
    else:
        start_local_ray(num_cpus, log_to_driver=log_to_driver)


def start_local_ray(num_cpus: int | None = None, *, log_to_driver: bool = True) -> None:
    """A private Ray on this machine: loopback only, token auth, no dashboard, no usage stats.

    ``address="local"`` never attaches to another Ray instance already running here."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    private_token()
    with loopback_node():
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            dashboard_host=LOOPBACK,
            log_to_driver=log_to_driver,
            configure_logging=not quiet(),
            _node_ip_address=LOOPBACK,
        )


def private_token() -> None:
    """A random token for the local instance, unless the user chose how to authenticate.

    With ``RAY_AUTH_MODE`` unset Ray 2.60 turns token auth on for a new local instance (and
    would otherwise write a token to ``~/.ray/auth_token``, shared by every later Ray of the
    user). Setting ``RAY_AUTH_MODE=token`` here instead would not reach this process: Ray
    reads it when imported."""
    if not any(name in os.environ for name in AUTH_ENV):
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
