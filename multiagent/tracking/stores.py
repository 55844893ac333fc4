"""Which MLflow store a job logs to, and which run in it is the job's own.

`resolve_tracking_uri` is the one precedence every command follows (training, the pipeline,
sweeps, evaluation, ``multiagent compare``). A job that can be resumed keeps a run record,
``{"uri": STORE, "run_id": ID}``, in its own folder (``pipeline.json``'s ``mlflow`` entry,
``RUN/symbols/mlflow_run.json``, ``sweep.json``, a trial's ``mlflow_run.json``);
`recorded_run_id` says whether a record's run can be continued in the store resolved now, and
`Tracker.attach_or_start` continues it or starts a new run and hands the new record back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from multiagent.runs.folders import write_json

ENV_VAR = "MLFLOW_TRACKING_URI"
OFF = "none"
"""The tracking URI that switches tracking off (``--tracking-uri none``)."""
STORE_FILE = "mlflow.db"


def default_tracking_uri(directory: Path) -> str:
    """A SQLite store in ``directory``: works without a server (``file://`` stores are refused
    by MLflow 3 unless ``MLFLOW_ALLOW_FILE_STORE`` is set)."""
    return f"sqlite:///{Path(directory).resolve() / STORE_FILE}"


def resolve_tracking_uri(
    explicit: str | None,
    run_dir: Path | None = None,
    *,
    recorded: str | None = None,
) -> str | None:
    """The store a job logs to; None means no tracking. The first of:

    1. ``explicit``: a ``--tracking-uri`` flag, or a caller's own argument;
    2. ``$MLFLOW_TRACKING_URI``;
    3. ``recorded``: the store the run being followed already logs to (an evaluation of a
       run folder goes to its pipeline's store);
    4. a SQLite store in ``run_dir`` (``RUN/mlflow.db``, `default_tracking_uri`), when given;
    5. None: nothing names a store (an evaluation of a bare export, ``multiagent compare``).

    An empty string counts as not given; ``none`` (any case) at 1 or 2 switches tracking off
    (None), whatever comes later in the list."""
    for given in (explicit, os.environ.get(ENV_VAR)):
        if given:
            return None if given.strip().lower() == OFF else given
    if recorded:
        return recorded
    if run_dir is not None:
        return default_tracking_uri(run_dir)
    return None


def relocated_uri(uri: str, run_dir: Path | None) -> str:
    """``uri`` as recorded in ``run_dir``, following the folder when it was moved: a SQLite
    store that is gone from its recorded place but sits in ``run_dir`` under the same name is
    the one in ``run_dir`` (the default store lives in the run folder and moves with it)."""
    if run_dir is None or not uri.startswith("sqlite:///"):
        return uri
    stored = Path(uri.removeprefix("sqlite:///"))
    here = Path(run_dir) / stored.name
    if not stored.is_file() and here.is_file():
        return f"sqlite:///{here.resolve()}"
    return uri


def recorded_run_id(
    record: Mapping[str, Any] | None, uri: str | None, run_dir: Path | None = None
) -> str | None:
    """The run id ``record`` keeps for the store ``uri``, or None: no record, no run id in
    it, or a record of another store (the tracking URI changed between a job and its resume:
    the job starts a new run there rather than fail to find its old one).

    A record without ``uri`` (trial records written before the store was recorded) is taken
    as ``uri``'s; a SQLite store recorded in ``run_dir`` follows the folder (`relocated_uri`)."""
    if uri is None or not isinstance(record, Mapping) or not record.get("run_id"):
        return None
    kept = record.get("uri")
    if kept is not None and relocated_uri(str(kept), run_dir) != uri:
        return None
    return str(record["run_id"])


def read_run_record(path: Path) -> dict[str, Any] | None:
    """A run record kept as a JSON file (None when missing or unreadable: a new run)."""
    try:
        found = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def write_run_record(path: Path, record: Mapping[str, Any]) -> None:
    """A run record as a JSON file (atomic; the folder is made when missing)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json(Path(path), dict(record))
