"""Who may print to the terminal: the project's own progress, tables and warnings. Ray, RLlib,
MLflow, alembic and library warnings go to the run's log file (``RUN/logs/run.log``) unless the
user asks to see them (`multiagent --verbose`).

Why: a training command used to print RLlib's "You are running PPO on the new API stack!", an
RLModule deprecation warning, "Install gputil...", MLflow's database set-up lines and artifact
progress bars on every phase, burying the few lines a person reads. Nothing is dropped: records
logged before the run folder exists are held in memory and written once it does.

Ray and MLflow configure their own loggers when imported (handlers of their own, no
propagation), so `adopt` is called right after each is imported to bring their records back here.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

THIRD_PARTY = ("ray", "mlflow", "alembic", "gymnasium", "urllib3", "filelock", "torch", "optuna")
"""Loggers (and their children) whose records are third-party noise by default."""
LOG_FILE = Path("logs") / "run.log"
"""Where a run's records go, relative to its folder."""
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_state: dict[str, object] = {"installed": False, "configured": False, "file": None}
_held = logging.handlers.MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1)


def is_third_party(record: logging.LogRecord) -> bool:
    """A record from a library, or a Python warning raised outside this package."""
    if record.name == "py.warnings":
        return f"{os.sep}multiagent{os.sep}" not in record.getMessage()
    return any(record.name == name or record.name.startswith(f"{name}.") for name in THIRD_PARTY)


def install() -> None:
    """Called by the `multiagent` program itself: only then does `configure` take over the
    process's logging (the CLI invoked in-process, by tests or a notebook, leaves it alone)."""
    _state["installed"] = True


def configure(verbose: bool = False) -> None:
    """Set up the command's logging: the project's warnings on stderr, third-party records held
    for the run's log file (and on stderr too when ``verbose``)."""
    if not _state["installed"]:
        return
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    terminal.setLevel(logging.INFO if verbose else logging.WARNING)
    if not verbose:
        terminal.addFilter(lambda record: not is_third_party(record))
    root = logging.getLogger()
    root.handlers = [terminal, _held]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    _state["configured"] = True
    if not verbose:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    adopt(*THIRD_PARTY)


def is_configured() -> bool:
    """Whether the `multiagent` program took over logging (then Ray must not set up its own)."""
    return bool(_state["configured"])


def adopt(*names: str) -> None:
    """Route loggers that a library configured with handlers of its own through ours."""
    if not _state["configured"]:
        return
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


def log_to(run_dir: Path) -> Path | None:
    """Write the held records, and every later one, to ``run_dir/logs/run.log`` (appending:
    a resumed run keeps its earlier log). None when logging was not configured (a library
    caller keeps its own set-up)."""
    if not _state["configured"]:
        return None
    path = run_dir / LOG_FILE
    current = _state["file"]
    if isinstance(current, logging.FileHandler) and Path(current.baseFilename) == path.resolve():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    if isinstance(current, logging.FileHandler):
        root.removeHandler(current)
        current.close()
    _held.setTarget(handler)
    _held.flush()
    _held.setTarget(None)
    root.removeHandler(_held)  # from now on records go straight to the file
    root.addHandler(handler)
    _state["file"] = handler
    return path
