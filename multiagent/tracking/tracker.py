"""Best-effort MLflow tracking of one run: params, metrics, tags, artifacts, the policy model.

Tracking must never cost a training run. Every call goes through one explicit `MlflowClient`
(``mlflow.set_tracking_uri`` would set ``MLFLOW_TRACKING_URI`` for the whole process, and a
down server would then stall unrelated MLflow calls in retries); an HTTP server is probed with a
short ``/health`` request before each call, because the client itself retries a dead server
with exponential backoff for minutes. The first failure warns once and turns tracking off.

The lifecycle every phase, sweep, trial and evaluation follows::

    uri = resolve_tracking_uri(flag, run_dir)         # stores.py: the one precedence
    tracker = Tracker.attach_or_start(uri, EXPERIMENT, name, record=..., save=..., tags=...)
    child = tracker.nested(EXPERIMENT, f"{name}/phase", record=..., save=...)
    try:
        ...                                           # log_metrics, log_artifact, set_tags
    except BaseException as error:
        tracker.finish(end_status(error))             # FAILED, or KILLED on an interrupt
        raise
    tracker.finish()

(or ``with tracker:``, which ends the run the same way).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from multiagent.tracking.client import PROBE_TIMEOUT, find_experiment, open_client, reachable
from multiagent.tracking.records import finite_metrics, flatten, metric_key
from multiagent.tracking.stores import read_run_record, recorded_run_id, write_run_record

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient
    from rich.console import Console

log = logging.getLogger(__name__)

MAX_TAG_VALUE = 8000  # mlflow.utils.validation.MAX_TAG_VAL_LENGTH (mlflow 3)
PARAMS_PER_BATCH = 100  # MAX_PARAMS_TAGS_PER_BATCH
METRICS_PER_BATCH = 1000  # MAX_METRICS_PER_BATCH

T = TypeVar("T")
Tags = Mapping[str, str] | Callable[[], Mapping[str, str]]
"""A run's tags, or a function that computes them (called only when a run is started)."""
RunRecord = Mapping[str, Any] | Path
"""A run record ``{"uri", "run_id"}`` (see `multiagent.tracking.stores`), or the JSON file
that keeps one."""


def end_status(error: BaseException | None) -> str:
    """The status a run ends with: FINISHED without an error, KILLED when the job was
    interrupted (Ctrl-C, ``sys.exit``), FAILED for any other exception."""
    if error is None:
        return "FINISHED"
    if isinstance(error, KeyboardInterrupt | SystemExit):
        return "KILLED"
    return "FAILED"


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
            client = open_client(uri)
            experiment_id = find_experiment(client, experiment, uri)
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
            client = open_client(uri)
            client.update_run(run_id, status="RUNNING")
        except Exception as error:  # tracking is best effort by design
            tracker._fail(error, f"resuming run {run_id}")
            return tracker
        tracker.client, tracker.run_id, tracker.enabled = client, run_id, True
        return tracker

    @classmethod
    def attach_or_start(
        cls,
        uri: str | None,
        experiment: str,
        run_name: str,
        *,
        record: RunRecord | None = None,
        save: Callable[[dict[str, str]], None] | None = None,
        run_dir: Path | None = None,
        parent_run_id: str | None = None,
        tags: Tags | None = None,
        params: Mapping[str, Any] | None = None,
        artifacts: Sequence[Path] = (),
        console: Console | None = None,
    ) -> Tracker:
        """A job's run: the run ``record`` keeps, continued (`attach`) when it was made in
        the store ``uri`` (`recorded_run_id`; ``run_dir`` lets a SQLite store follow its moved
        run folder); else a new run (`start`) in ``experiment`` named ``run_name``, nested
        under ``parent_run_id`` when given, tagged ``tags``, with ``params`` and
        ``artifacts`` logged.

        A new run's record, ``{"uri": uri, "run_id": ID}``, goes to ``save`` (default: into
        ``record`` when it is a file) as soon as the run exists, so a resumed job continues
        it; nothing is saved when the run could not be started, so an earlier record stays.
        ``uri`` None: off, silently. A store that fails: off, warned once (see `Tracker`)."""
        if uri is None:
            return cls.disabled()
        if isinstance(record, Path):
            if save is None:
                save = functools.partial(write_run_record, record)
            record = read_run_record(record)
        run_id = recorded_run_id(record, uri, run_dir)
        if run_id is not None:
            return cls.attach(uri, run_id, console=console)
        tracker = cls.start(
            uri,
            experiment,
            run_name,
            parent_run_id=parent_run_id,
            tags=tags() if callable(tags) else tags,
            console=console,
        )
        if tracker.run_id is not None and save is not None:
            save({"uri": uri, "run_id": tracker.run_id})
        if params is not None:
            tracker.log_params(params)
        for path in artifacts:
            tracker.log_artifact(path)
        return tracker

    def nested(
        self,
        experiment: str,
        run_name: str,
        *,
        record: RunRecord | None = None,
        save: Callable[[dict[str, str]], None] | None = None,
        tags: Tags | None = None,
        params: Mapping[str, Any] | None = None,
        artifacts: Sequence[Path] = (),
    ) -> Tracker:
        """A child run of this one, in the same store (tagged ``mlflow.parentRunId``),
        continued or started as `attach_or_start` does; off when this tracker has no run."""
        if self.uri is None or self.run_id is None:
            return Tracker.disabled()
        return Tracker.attach_or_start(
            self.uri,
            experiment,
            run_name,
            record=record,
            save=save,
            parent_run_id=self.run_id,
            tags=tags,
            params=params,
            artifacts=artifacts,
            console=self.console,
        )

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish(end_status(error))

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
            self._warn(f"MLflow tracking lost {self.lost} call(s) after: {self.failure}")
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
            "the job goes on and its files stay on disk"
        )
        self._warn(message)

    def _warn(self, message: str) -> None:
        """Once on the terminal: on the console when there is one (the log file keeps it at
        INFO), else as a logged warning."""
        if self.console is None:
            log.warning(message)
            return
        log.info(message)
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


def _batches(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
