"""Start Ray the way a local run does (`multiagent.rllib.ray_session.init_ray`, no
``RAY_ADDRESS``), run a few remote tasks, and print one JSON object: every listening socket of
the processes this script started (its own and its descendants: gcs_server, raylet, agents,
workers), the node IP, whether the driver and its workers run with token auth, and whether a
token file was written to HOME.

Run by `test_local_ray.py` in its own process: the test session's own Ray must not be touched.
The caller chooses the environment (``RAY_AUTH_MODE`` unset for the default token auth,
``RAY_TMPDIR``, ``HOME``).

    python tests/cluster/local_ray_probe.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.pop("RAY_ADDRESS", None)  # a local run, whatever the caller's shell holds


def listening(pids: set[int]) -> list[dict[str, Any]]:
    # psutil comes with Ray (ray/thirdparty_files), on sys.path once ray is imported.
    import psutil

    found = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            found.append(
                {
                    "pid": conn.pid,
                    "name": psutil.Process(conn.pid).name(),
                    "ip": conn.laddr.ip,
                    "port": conn.laddr.port,
                }
            )
    return found


def main() -> None:
    import ray  # first: it puts the psutil it ships on sys.path
    from ray._raylet import AuthenticationMode, get_authentication_mode

    from multiagent.rllib.ray_session import init_ray

    init_ray(num_cpus=1, log_to_driver=False)
    import psutil

    @ray.remote
    def square(x: int) -> tuple[int, bool]:
        return x * x, get_authentication_mode() == AuthenticationMode.TOKEN

    results = ray.get([square.remote(i) for i in range(4)])
    me = psutil.Process()
    pids = {me.pid} | {child.pid for child in me.children(recursive=True)}
    report = {
        "results": [value for value, _ in results],
        "workers_token_auth": all(token for _, token in results),
        "driver_token_auth": get_authentication_mode() == AuthenticationMode.TOKEN,
        "node_ip": ray.util.get_node_ip_address(),
        "gcs_address": ray.get_runtime_context().gcs_address,
        "processes": sorted({psutil.Process(pid).name() for pid in pids if psutil.pid_exists(pid)}),
        "listening": listening(pids),
        "home_token": (Path.home() / ".ray" / "auth_token").exists(),
    }
    ray.shutdown()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
