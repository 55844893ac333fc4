"""The `resources` section on a (simulated) multi-node cluster: env runners that need the
`rollout` resource sample on the worker node, never on the head, and `auto` resolves against
the cluster's totals.

`multinode_probe.py` runs in its own process and session: `ray.cluster_utils.Cluster` cannot
share a Ray this process may already have started (docs/ray_notes.md), and a private session and
`RAY_TMPDIR` let the test find, and end, every process the probe started (a Ray worker makes
its own process group, but stays in the session). One probe run (about 20 s; the cluster
alone about 8 s) feeds every test here.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from head_node import live_pids

pytestmark = pytest.mark.slow

PROBE = Path(__file__).with_name("multinode_probe.py")
TIMEOUT_S = 240
"""A loaded 2-core machine can take several times the ~20 s of an idle one."""
GRACE_S = 15.0
"""How long Ray's processes may take to exit after the probe's own clean shutdown."""
BATCH = 400


def end_all(session: int, marker: str) -> list[int]:
    """SIGKILL what is left of the probe's processes, by pid; the pids that were left."""
    left = live_pids(session, marker)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):  # exited meanwhile
            os.kill(pid, signal.SIGKILL)
    return left


def wait_gone(session: int, marker: str, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := live_pids(session, marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("multinode")
    # Short: Ray's Unix socket paths live under it (at most 107 bytes).
    ray_tmp = Path(tempfile.mkdtemp(prefix="rmn-", dir="/tmp"))
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_TMPDIR": str(ray_tmp),
        "MULTIAGENT_CACHE_DIR": str(work / "cache"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("RAY_ADDRESS", None)
    out, log = work / "result.json", work / "probe.log"
    command = [sys.executable, str(PROBE), "--out", str(out), "--work", str(work)]
    command += ["--envs", "1", "--batch", str(BATCH)]
    began = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        session = process.pid
        try:
            returncode: int | None = process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            returncode = None
        except BaseException:  # e.g. KeyboardInterrupt: leave nothing running
            end_all(session, str(ray_tmp))
            process.wait()
            raise
    seconds = time.perf_counter() - began
    if returncode is None:
        end_all(session, str(ray_tmp))
        process.wait()
        orphans: list[int] = []
    else:
        orphans = wait_gone(session, str(ray_tmp), GRACE_S)
        end_all(session, str(ray_tmp))
    wait_gone(session, str(ray_tmp), 5.0)
    shutil.rmtree(ray_tmp, ignore_errors=True)

    if returncode is None:
        pytest.fail(f"probe ran over {TIMEOUT_S} s and was killed; log:\n{tail(log)}")
    record: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    if returncode != 0 or not record.get("ok"):
        pytest.fail(
            f"probe exited {returncode}: {record.get('error')}\n"
            f"{record.get('traceback', '')}\nlog:\n{tail(log)}"
        )
    record["wall_seconds"] = seconds
    record["orphans"] = orphans
    yield record


def test_env_runners_sample_on_the_worker_node(probe: dict[str, Any]) -> None:
    head, worker = probe["head_node_id"], probe["worker_node_id"]
    assert head != worker
    assert probe["driver_node_id"] == head
    assert probe["cluster_resources"]["rollout"] == 2
    # What the run's resources became, in the resolver and in the built algorithm.
    resolved = probe["resolved"]
    assert resolved["num_env_runners"] == 2
    assert resolved["custom_resources_per_env_runner"] == {"rollout": 1}
    assert resolved["num_gpus_per_learner"] == 0
    assert probe["algo_config"]["num_env_runners"] == 2
    assert probe["algo_config"]["custom_resources_per_env_runner"] == {"rollout": 1}
    # Both runners on the worker, before and after the iteration; the driver samples nothing.
    assert probe["num_remote_env_runners"] == 2
    assert probe["runner_node_ids"] == [worker, worker]
    assert probe["runner_node_ids_after"] == [worker, worker]
    assert probe["healthy_remote_env_runners"] == 2
    assert all(probe["runners_have_env"])
    assert probe["local_runner_has_env"] is False


def test_the_iteration_sampled_and_learned(probe: dict[str, Any]) -> None:
    row = probe["row"]
    assert row["iteration"] == 1
    assert row["env_steps"] >= BATCH
    assert row["agent_steps"] >= row["env_steps"]  # every env step is one step per symbol
    assert row["episodes"] > 0
    for key in ("reward_mean", "policy_loss", "vf_loss", "policy_entropy", "kl"):
        assert math.isfinite(row[key]), f"{key} = {row[key]}"
    assert row["policy_entropy"] > 0


def test_auto_runners_resolve_against_the_cluster_totals(probe: dict[str, Any]) -> None:
    # Head 1 CPU + worker 2 CPUs, no GPU: below MIN_CPUS_FOR_AUTO_RUNNERS, `auto` samples in
    # the driver, and the learner takes no GPU.
    from multiagent.rllib.resources import MIN_CPUS_FOR_AUTO_RUNNERS

    assert probe["cluster_totals"] == [3.0, 0.0]
    assert probe["cluster_totals"][0] < MIN_CPUS_FOR_AUTO_RUNNERS
    auto = probe["auto_resolved"]
    assert auto["num_env_runners"] == 0
    assert auto["num_gpus_per_learner"] == 0
    assert auto["cluster_cpus"] == 3.0


def test_the_probe_leaves_no_process_behind(probe: dict[str, Any]) -> None:
    assert probe["orphans"] == [], f"still running {GRACE_S} s after the probe exited"
