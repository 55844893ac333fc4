"""A real local MLflow tracking server for tests, and the `mlflow_server` fixture.

Use it from any test folder's ``conftest.py`` with ``from mlflow_server import mlflow_server``
(``tests/`` is on ``sys.path`` through the root conftest). The server is started once per test
session however many conftests import the fixture, and stopped by its own process group when
the last user is torn down: never by name, so other MLflow servers on the machine live on.

MLflow 3.17 (2 cores): healthy after about 5 s with the job runner off
(``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``; with it, 8 s and seven more processes, about
0.8 GiB); artifacts are proxied (``--artifacts-destination``, ``--serve-artifacts`` is the
default), so clients upload over HTTP as they would to a remote server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTUP_TIMEOUT = 90.0


@dataclass
class Server:
    uri: str
    process: subprocess.Popen[bytes]
    root: Path

    @property
    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def free_port() -> int:
    """A port free right now (the OS picks it; a small race with other processes remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthy(uri: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=timeout) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def start(root: Path, timeout: float = STARTUP_TIMEOUT) -> Server:
    """``mlflow server`` on 127.0.0.1 with a SQLite store and proxied artifacts under ``root``,
    in its own process group; returns once ``/health`` answers 200."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
        "--artifacts-destination", str(root / "artifacts"),
    ]  # fmt: skip
    with (root / "server.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(f"http://127.0.0.1:{port}", process, root)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(server.uri):
            return server
        if process.poll() is not None:
            break
        time.sleep(0.25)
    stop(server)
    raise RuntimeError(
        f"mlflow server did not become healthy within {timeout:.0f} s "
        f"(exit code {process.returncode}); log tail:\n{server.log[-3000:]}"
    )


def stop(server: Server, grace: float = 10.0) -> None:
    """SIGTERM to the server's process group (uvicorn workers included), SIGKILL after
    ``grace`` seconds."""
    if server.process.poll() is None:
        try:
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=grace)
        except ProcessLookupError:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.process.pid, signal.SIGKILL)  # children that outlived the leader


_shared: Server | None = None
_users = 0


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The http URI of a real MLflow server shared by the whole test session."""
    global _shared, _users
    if _shared is None or _shared.process.poll() is not None:
        _shared = start(tmp_path_factory.mktemp("mlflow_server"))
    _users += 1
    try:
        yield _shared.uri
    finally:
        _users -= 1
        if _users == 0 and _shared is not None:
            stop(_shared)
            _shared = None
