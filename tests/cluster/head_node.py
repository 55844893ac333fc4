"""A private Ray head node for tests: `ray start --head --block` on 127.0.0.1 with its own free
ports and temp dir, in its own session, so it is stopped by its own PIDs and never touches
another Ray instance on the machine (`ray stop` would kill them all)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path


def free_ports(n: int) -> list[int]:
    """Ports the kernel hands out (the ephemeral range, above Ray's worker ports)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def live_pids(session: int, marker: str | None = None) -> list[int]:
    """Live processes of a session, or whose command line names ``marker`` (Ray's processes
    stay in the session that started them, though workers make process groups of their own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # exited meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, sid = fields[0], int(fields[3])
        if state != "Z" and (sid == session or (marker is not None and marker in cmdline)):
            found.append(int(entry.name))
    return found


@dataclass
class HeadNode:
    process: subprocess.Popen[bytes]
    dashboard: str
    gcs_port: int
    temp_dir: Path
    env: dict[str, str]
    log: Path
    seen_pids: set[int] = field(default_factory=set)

    def ray(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The `ray` CLI of this environment against this head node."""
        command = [str(Path(sys.executable).parent / "ray"), *args]
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def stacks(self, marker: str) -> str:
        """py-spy dumps of this node's processes whose command line holds ``marker`` (for
        the message of a test that timed out)."""
        spy = Path(sys.executable).parent / "py-spy"
        dumps = []
        for pid in self.pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline and spy.exists():
                dump = subprocess.run(
                    [str(spy), "dump", "--pid", str(pid)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                dumps.append(f"--- {pid} {cmdline[:200]}\n{dump.stdout}{dump.stderr}")
        return "\n".join(dumps) or "(none found)"

    def pids(self) -> list[int]:
        found = live_pids(self.process.pid, str(self.temp_dir))
        self.seen_pids.update(found)
        return found

    def stop(self) -> list[int]:
        """SIGTERM, then SIGKILL, to this node's processes only; -> the PIDs still alive."""
        self.pids()
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            deadline = time.monotonic() + wait
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.25)
            if not self.pids():
                break
        self.process.wait(timeout=10)
        return [pid for pid in self.seen_pids if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@contextmanager
def head_node(
    num_cpus: int = 2, timeout: float = 90, env_vars: dict[str, str] | None = None
) -> Iterator[HeadNode]:
    """A running head node; stopped (all its processes gone) on exit. ``env_vars`` are set
    on the node, as a cluster sets them for every job (MULTIAGENT_RUNS_DIR, MLflow)."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rayt", dir="/tmp"))  # short: socket path limit
    gcs, dashboard, agent, agent_grpc, runtime_env, metrics, node_mgr, obj_mgr, client = free_ports(
        9
    )
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        # The job's `python` is this environment's, as on a cluster node set up by cluster/.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **(env_vars or {}),
    }
    env.pop("RAY_ADDRESS", None)
    command = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={gcs}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--runtime-env-agent-port={runtime_env}",
        f"--metrics-export-port={metrics}",
        f"--node-manager-port={node_mgr}",
        f"--object-manager-port={obj_mgr}",
        f"--ray-client-server-port={client}",
        f"--temp-dir={temp_dir}",
        f"--num-cpus={num_cpus}",
        "--include-dashboard=true",
        "--disable-usage-stats",
    ]
    log = temp_dir / "head.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    node = HeadNode(process, f"http://127.0.0.1:{dashboard}", gcs, temp_dir, env, log)
    try:
        _wait_healthy(node, timeout)
        yield node
    finally:
        left = node.stop()
        assert not left, f"head node processes still alive after stop: {left}"


def _wait_healthy(node: HeadNode, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            output = node.log.read_text()
            raise RuntimeError(f"ray start exited {node.process.returncode}: {output}")
        try:
            with urllib.request.urlopen(f"{node.dashboard}/api/version", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"the head node's dashboard did not come up: {node.log.read_text()[-3000:]}")
