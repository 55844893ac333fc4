"""Opening an MLflow store safely: a short probe before a server is trusted, one process at a
time creating a SQLite store's schema, an experiment created once even when trials race, and
artifacts kept next to a SQLite store."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

PROBE_TIMEOUT = 3.0


def reachable(uri: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """A tracking server answers HTTP at all (any status); non-HTTP stores are local."""
    if not uri.startswith(("http://", "https://")):
        return True
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return True  # it answered
    except (OSError, ValueError):
        return False
    return True


def open_client(uri: str) -> MlflowClient:
    if not reachable(uri):
        raise ConnectionError(f"no answer from {uri}/health within {PROBE_TIMEOUT} s")
    from mlflow.tracking import MlflowClient

    from multiagent.logs import adopt

    adopt("mlflow", "alembic")  # MLflow set up its own loggers on import: bring them back
    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri)
    # Opening a store creates or migrates its schema, and processes doing that at once (Tune
    # trials on a new store) fail with "table experiments already exists" and the like: one
    # at a time, under a file lock; later ones find the schema ready.
    database = Path(uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with _locked(database.with_name(database.name + ".lock")):
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    return client


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (POSIX; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def find_experiment(client: MlflowClient, name: str, uri: str) -> str:
    """The experiment's id, created when missing. Two processes (Tune trials) may create it at
    once: the loser's "already exists" error is answered by looking it up again."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name, artifact_location=_artifact_location(uri)))
    except MlflowException:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def _artifact_location(uri: str) -> str | None:
    """Artifacts next to a SQLite store; MLflow's default would be ``./mlruns`` in whatever
    folder the process happens to run from. Servers choose their own."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
    return None
