"""A local run's Ray is reachable from this machine only, and only with its token (issue 23).

Read from the socket table: every socket that the Ray processes of a local start listen on
(GCS, raylet, object manager, workers, the dashboard and runtime-env agents) is bound to a
loopback address. The start runs in a subprocess (`local_ray_probe.py`): the test session has
its own Ray, and one process holds one.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

PROBE = Path(__file__).with_name("local_ray_probe.py")
TIMEOUT_S = 180


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4 loopback mapped into IPv6 (``::ffff:127.0.0.1``, what a
    dual-stack gRPC server bound to 127.0.0.1 shows)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def test_loopback_addresses() -> None:
    for address in ("127.0.0.1", "127.0.1.1", "::1", "::ffff:127.0.0.1"):
        assert is_loopback(address), address
    for address in ("0.0.0.0", "::", "192.0.2.2", "::ffff:192.0.2.2"):
        assert not is_loopback(address), address


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("home")
    env = {
        **os.environ,
        "HOME": str(home),  # a token file written to HOME would show here
        # Short: Ray's Unix socket paths live under it (at most 107 bytes).
        "RAY_TMPDIR": tempfile.mkdtemp(prefix="rlo-", dir="/tmp"),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)  # a local run with the defaults a user gets
    done = subprocess.run(
        [sys.executable, str(PROBE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.slow
def test_a_local_run_listens_on_loopback_only(probe: dict[str, Any]) -> None:
    assert probe["results"] == [0, 1, 4, 9]
    assert {"gcs_server", "raylet"} <= set(probe["processes"]), probe["processes"]
    names = {entry["name"] for entry in probe["listening"]}
    assert {"gcs_server", "raylet"} <= names, probe["listening"]
    exposed = [entry for entry in probe["listening"] if not is_loopback(entry["ip"])]
    assert not exposed, f"listening beyond loopback: {exposed}"
    assert is_loopback(probe["node_ip"])
    assert is_loopback(probe["gcs_address"].rsplit(":", 1)[0])


@pytest.mark.slow
def test_a_local_run_has_token_auth_without_a_token_file(probe: dict[str, Any]) -> None:
    assert probe["driver_token_auth"] and probe["workers_token_auth"]
    assert not probe["home_token"]  # a private token, in the environment of Ray's processes
