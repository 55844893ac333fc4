"""What the `ray job submit` entrypoints (`scripts/*_job.py`) share.

A job's working directory is a copy Ray unpacks into its own temp folder and deletes with the
job, so anything written relative to it is lost. Each job therefore writes under
``MULTIAGENT_RUNS_DIR`` (default ``~/multiagent/runs`` on the node running the driver, the head
node for `ray job submit`; point it at shared storage on a cluster) unless the arguments name an
output folder themselves. Otherwise a job is the same command as the CLI's, with the same
arguments, so what runs locally runs on a cluster.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from multiagent.errors import ConfigError

RUNS_DIR_ENV = "MULTIAGENT_RUNS_DIR"


def runs_root() -> Path:
    return Path(os.environ.get(RUNS_DIR_ENV) or Path.home() / "multiagent" / "runs").expanduser()


def _given(args: Sequence[str], *options: str) -> bool:
    return any(arg == option or arg.startswith(option + "=") for arg in args for option in options)


def _value(args: Sequence[str], option: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def train_arguments(args: Sequence[str]) -> list[str]:
    """`train pipeline` arguments writing the run under the runs root unless they say where."""
    args = list(args)
    if not _given(args, "--run-dir", "--resume", "--runs-dir"):
        args += ["--runs-dir", str(runs_root())]
    return ["train", "pipeline", *args]


def tune_arguments(args: Sequence[str]) -> list[str]:
    """`tune` arguments with the sweep folder and the exported config under the runs root."""
    from multiagent.tuning.config import load_sweep

    args = list(args)
    config = _value(args, "--config")
    if config is None:
        raise ConfigError("tune job: --config SWEEP.yaml is required")
    if not _given(args, "--out"):
        sweep, _ = load_sweep(Path(config))
        args += ["--out", str(runs_root() / "sweeps" / sweep.name)]
    if not _given(args, "--best-dir"):
        args += ["--best-dir", str(runs_root() / "best")]
    return ["tune", *args]


def evaluate_arguments(args: Sequence[str]) -> list[str]:
    """`evaluate` arguments; the report lands beside the evaluated run unless --out says."""
    return ["evaluate", *args]


def describe_cluster() -> str:
    """One line for the job log: which cluster the job joined and what it has."""
    address = os.environ.get("RAY_ADDRESS", "(none: a local Ray instance will be started)")
    return f"multiagent job: RAY_ADDRESS={address} runs root={runs_root()} python={sys.executable}"


def run_job(command: str, args: Sequence[str]) -> int:
    """Run the CLI ``command`` as a job; -> its exit code."""
    from multiagent.cli import main
    from multiagent.cli.common import errors

    builders = {"train": train_arguments, "tune": tune_arguments, "evaluate": evaluate_arguments}
    print(describe_cluster(), flush=True)
    try:
        argv = builders[command](args)
    except ConfigError as error:
        errors.print(f"error: {error}", highlight=False, markup=False)
        return 1
    print("multiagent " + " ".join(argv), flush=True)
    try:
        main(argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0
