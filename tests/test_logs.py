"""What a command prints: the project's own warnings; Ray/RLlib/MLflow records and library
warnings go to the run's log file, and `--verbose` shows them too. Run in a subprocess: the
set-up takes over the process's logging, as the `multiagent` program does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from multiagent.cli import app

SCRIPT = """
import logging, sys, warnings
from pathlib import Path
from multiagent import logs
logs.install()
logs.configure(verbose=sys.argv[1] == "verbose")
rllib = logging.getLogger("ray.rllib.algorithms.algorithm_config")
rllib.warning("You are running PPO on the new API stack!")
from multiagent.tracking.client import open_client
open_client("sqlite:///" + str(Path("store.db").resolve()))
logging.getLogger("multiagent.training").warning("our own warning")
warnings.warn("a library's warning", UserWarning)
print("log file:", logs.log_to(Path("run")))
logging.getLogger("ray.tune.utils.util").warning("Install gputil for GPU system monitoring.")
"""
NOISE = (
    "new API stack",
    "Creating initial MLflow database tables",
    "a library's warning",
    "Install gputil",
)


def _run(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_third_party_noise_goes_to_the_run_log_and_our_warnings_to_the_terminal(
    tmp_path: Path,
) -> None:
    done = _run(tmp_path, "quiet")
    printed = done.stdout + done.stderr
    assert "our own warning" in done.stderr
    assert not [n for n in NOISE if n in printed], printed
    log = (tmp_path / "run" / "logs" / "run.log").read_text()
    # Held until the run folder existed, then written; later records go straight there.
    assert all(n in log for n in NOISE) and "our own warning" in log


def test_verbose_also_prints_the_noise(tmp_path: Path) -> None:
    done = _run(tmp_path, "verbose")
    assert all(n in done.stderr for n in NOISE), done.stderr
    assert "Install gputil" in (tmp_path / "run" / "logs" / "run.log").read_text()


def test_the_cli_in_process_leaves_logging_alone(caplog: pytest.LogCaptureFixture) -> None:
    """Tests and notebooks that call the CLI keep their own logging set-up."""
    import logging

    before = list(logging.getLogger().handlers)
    result = CliRunner().invoke(app, ["--verbose", "data", "bundled"])
    assert result.exit_code == 0, result.output
    assert logging.getLogger().handlers == before
