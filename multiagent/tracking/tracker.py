"""Best-effort MLflow tracking of one run: params, metrics, tags, artifacts, the policy model.

Tracking must never cost a training run. Every call goes through one explicit `MlflowClient`
(``mlflow.set_tracking_uri`` would set ``MLFLOW_TRACKING_URI`` for the whole process, and a
down server would then stall unrelated MLflow calls in retries); an HTTP server is probed with a
short ``/health`` request before each call, because the client itself retries a dead server
with exponential backoff for minutes. The first failure warns once and turns tracking off.
"""

from __future__ import annotations

import contextlib
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from multiagent.tracking.records import finite_metrics, flatten, metric_key

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient
    from rich.console import Console

log = logging.getLogger(__name__)

MAX_TAG_VALUE = 8000  # mlflow.utils.validation.MAX_TAG_VAL_LENGTH (mlflow 3)
PARAMS_PER_BATCH = 100  # MAX_PARAMS_TAGS_PER_BATCH
METRICS_PER_BATCH = 1000  # MAX_METRICS_PER_BATCH
PROBE_TIMEOUT = 3.0

T = TypeVar("T")


def default_tracking_uri(directory: Path) -> str:
    """A SQLite store in ``directory``: works without a server (``file://`` stores are refused
    by MLflow 3 unless ``MLFLOW_ALLOW_FILE_STORE`` is set)."""
    return f"sqlite:///{Path(directory).resolve() / 'mlflow.db'}"


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


class Tracker:
    """One MLflow run, best effort: the first failure warns once (logging.warning + rich
    console if given) and turns tracking off; calls after that are counted in `lost` and never
    raise. `finish()` logs (warning) how many calls were lost and returns that count.

    A tracker started without a URI is off from the start, silently: nothing was asked for,
    so nothing is lost."""

    def __init__(
        self,
        client: MlflowClient | None,
        run_id: str | None,
        *,
        uri: str | None = None,
        console: Console | None = None,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.uri = uri
        self.console = console
        self.enabled = client is not None and run_id is not None
        self.lost = 0
        self.failure: str | None = None
        self.finished = False
        self._params: dict[str, str] | None = None  # already on the run (resume), lazily

    @classmethod
    def disabled(cls) -> Tracker:
        return cls(None, None)

    @classmethod
    def start(
        cls,
        uri: str | None,
        experiment: str,
        run_name: str,
        *,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        console: Console | None = None,
    ) -> Tracker:
        """A new run in ``experiment`` (created when missing), nested under ``parent_run_id``
        (a sweep's run) when given; a disabled tracker when ``uri`` is None or the store
        fails (warned once)."""
        if uri is None:
            return cls.disabled()
        tracker = cls(None, None, uri=uri, console=console)
        try:
            client = _client(uri)
            experiment_id = _experiment_id(client, experiment, uri)
            all_tags = dict(tags or {})
            if parent_run_id is not None:
                all_tags["mlflow.parentRunId"] = parent_run_id
            run = client.create_run(
                experiment_id,
                run_name=run_name,
                tags={metric_key(k): str(v)[:MAX_TAG_VALUE] for k, v in all_tags.items()},
            )
        except Exception as error:  # tracking is best effort by design
            tracker._fail(error, f"starting run {run_name!r}")
            return tracker
        tracker.client, tracker.run_id, tracker.enabled = client, run.info.run_id, True
        tracker._params = {}
        return tracker

    @classmethod
    def attach(cls, uri: str | None, run_id: str | None, console: Console | None = None) -> Tracker:
        """Continue the existing run ``run_id`` (a resumed training run): its status goes back
        to RUNNING and metrics append to its history."""
        if uri is None or run_id is None:
            return cls.disabled()
        tracker = cls(None, None, uri=uri, console=console)
        try:
            client = _client(uri)
            client.update_run(run_id, status="RUNNING")
        except Exception as error:  # tracking is best effort by design
            tracker._fail(error, f"resuming run {run_id}")
            return tracker
        tracker.client, tracker.run_id, tracker.enabled = client, run_id, True
        return tracker

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish("FINISHED" if error is None else "FAILED")

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Flattened params in batches. MLflow params are immutable: on a resumed run, keys
        already logged with the same value are skipped and changed ones are warned about and
        kept as first logged (rather than failing the whole batch)."""
        self._call(self._log_params, params)

    def log_config(self, config_dump: Mapping[str, Any], path: Path | None = None) -> None:
        """The run config as flat params, plus the config file itself when given."""
        self.log_params(config_dump)
        if path is not None:
            self.log_artifact(path)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        """The finite numbers of ``metrics`` at ``step``, in batches."""
        self._call(self._log_metrics, metrics, step)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._call(self._set_tags, tags)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """A file (under ``artifact_path``) or a directory (under ``artifact_path``, default its
        own name); a path that does not exist is skipped, not a failure."""
        if not Path(path).exists():
            log.debug("artifact %s does not exist; not logged", path)
            return
        self._call(self._log_artifact, Path(path), artifact_path)

    def log_policy_model(self, policy_pt: Path, name: str = "policy") -> None:
        """An exported TorchScript policy as an MLflow pyfunc model at ``runs:/<run>/<name>``
        (see `multiagent.tracking.model`)."""
        if not Path(policy_pt).is_file():
            log.debug("policy %s does not exist; not logged", policy_pt)
            return
        self._call(self._log_policy_model, Path(policy_pt), name)

    def finish(self, status: str = "FINISHED") -> int:
        """End the run with ``status`` (FINISHED, FAILED, KILLED); returns the calls lost.
        A second call only returns the count."""
        if self.finished:
            return self.lost
        if self.enabled:
            self._call(self._terminate, status)
        self.enabled, self.finished = False, True
        if self.lost:
            message = f"MLflow tracking lost {self.lost} call(s) after: {self.failure}"
            log.warning(message)
            if self.console is not None:
                self.console.print(f"[yellow]warning:[/] {message}", highlight=False)
        return self.lost

    # -- the calls, run only while enabled ------------------------------------------------

    def _call(self, action: Callable[..., None], *args: Any) -> None:
        if not self.enabled:
            if self.failure is not None:
                self.lost += 1
            return
        try:
            if self.uri is not None and not reachable(self.uri):
                raise ConnectionError(f"no answer from {self.uri}/health within {PROBE_TIMEOUT} s")
            action(*args)
        except Exception as error:  # tracking is best effort by design
            self.lost += 1
            self._fail(error, action.__name__.strip("_").replace("_", " "))

    def _fail(self, error: Exception, doing: str) -> None:
        self.enabled = False
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        self.failure = f"{doing} failed ({type(error).__name__}: {first[:300]})"
        message = (
            f"MLflow tracking to {self.uri} is off for this run: {self.failure}; "
            "training goes on and its files stay on disk"
        )
        log.warning(message)
        if self.console is not None:
            self.console.print(f"[yellow]warning:[/] {message}", highlight=False)

    @property
    def _live(self) -> tuple[MlflowClient, str]:
        assert self.client is not None and self.run_id is not None
        return self.client, self.run_id

    def _log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        client, run_id = self._live
        if self._params is None:
            self._params = dict(client.get_run(run_id).data.params)
        flat = {metric_key(k): v for k, v in flatten(params).items()}
        changed = sorted(k for k, v in flat.items() if self._params.get(k, v) != v)
        if changed:
            log.warning(
                "MLflow params are immutable; run %s keeps the first value of %s",
                run_id,
                ", ".join(changed[:10]) + (" ..." if len(changed) > 10 else ""),
            )
        new = [Param(k, v) for k, v in flat.items() if k not in self._params]
        for batch in _batches(new, PARAMS_PER_BATCH):
            client.log_batch(run_id, params=batch)
            self._params.update((p.key, p.value) for p in batch)

    def _log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        from mlflow.entities import Metric

        client, run_id = self._live
        now = int(time.time() * 1000)
        found = [Metric(k, v, now, int(step)) for k, v in finite_metrics(metrics).items()]
        for batch in _batches(found, METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=batch)

    def _set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        client, run_id = self._live
        found = [RunTag(metric_key(k), str(v)[:MAX_TAG_VALUE]) for k, v in tags.items()]
        for batch in _batches(found, PARAMS_PER_BATCH):
            client.log_batch(run_id, tags=batch)

    def _log_artifact(self, path: Path, artifact_path: str | None) -> None:
        client, run_id = self._live
        if path.is_dir():
            client.log_artifacts(run_id, str(path), artifact_path or path.name)
        else:
            client.log_artifact(run_id, str(path), artifact_path)

    def _log_policy_model(self, policy_pt: Path, name: str) -> None:
        import tempfile

        from multiagent.tracking.model import save_policy_model

        client, run_id = self._live
        with tempfile.TemporaryDirectory(prefix="policy-model-") as tmp:
            folder = save_policy_model(policy_pt, Path(tmp) / name)
            client.log_artifacts(run_id, str(folder), name)

    def _terminate(self, status: str) -> None:
        client, run_id = self._live
        client.set_terminated(run_id, status)


def _client(uri: str) -> MlflowClient:
    if not reachable(uri):
        raise ConnectionError(f"no answer from {uri}/health within {PROBE_TIMEOUT} s")
    from mlflow.tracking import MlflowClient

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


def _experiment_id(client: MlflowClient, name: str, uri: str) -> str:
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


def _batches(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
