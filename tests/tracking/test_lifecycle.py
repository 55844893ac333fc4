"""The one tracking lifecycle: where a job logs (`resolve_tracking_uri`), which run is its own
(run records), attach-or-start, nesting, the end status, best effort when the store is down;
and the callers that keep their records in their own files (pipeline, symbols, sweep)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from mlflow_server import free_port as closed_port  # bound, then released: nothing listens
from rich.console import Console

from multiagent.tracking import (
    OFF,
    Tracker,
    default_tracking_uri,
    end_status,
    read_run_record,
    recorded_run_id,
    relocated_uri,
    resolve_tracking_uri,
)


def off_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The failure's record: a warning, or INFO when a console showed it (printed once)."""
    return [r.getMessage() for r in caplog.records if "is off for this run" in r.getMessage()]


def down() -> str:
    return f"http://127.0.0.1:{closed_port()}"


# -- where a job logs ----------------------------------------------------------------------


def test_precedence_explicit_env_recorded_run_folder_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    default = default_tracking_uri(run_dir)
    assert default == f"sqlite:///{run_dir.resolve() / 'mlflow.db'}"
    # nothing set: the run folder's SQLite store, else none
    assert resolve_tracking_uri(None, run_dir) == default
    assert resolve_tracking_uri(None) is None
    assert resolve_tracking_uri("") is None  # an empty flag is no flag
    # a recorded store comes before the run folder's default
    assert resolve_tracking_uri(None, run_dir, recorded="http://rec") == "http://rec"
    assert resolve_tracking_uri(None, recorded="http://rec") == "http://rec"
    # the environment comes before both
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env")
    assert resolve_tracking_uri(None, run_dir, recorded="http://rec") == "http://env"
    assert resolve_tracking_uri("", run_dir) == "http://env"
    # an explicit flag before everything
    assert resolve_tracking_uri("http://flag", run_dir, recorded="http://rec") == "http://flag"


@pytest.mark.parametrize("where", ["explicit", "env"])
@pytest.mark.parametrize("spelling", [OFF, "NONE", " None "])
def test_none_switches_tracking_off_whatever_comes_later(
    where: str, spelling: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = spelling if where == "explicit" else None
    if where == "env":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", spelling)
    assert resolve_tracking_uri(explicit, tmp_path, recorded="http://rec") is None


def test_explicit_none_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env")
    assert resolve_tracking_uri("none") is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "none")
    assert resolve_tracking_uri("http://flag") == "http://flag"


# -- which run is the job's own --------------------------------------------------------------


def test_recorded_run_id_only_in_its_own_store(tmp_path: Path) -> None:
    uri = default_tracking_uri(tmp_path)
    assert recorded_run_id({"uri": uri, "run_id": "abc"}, uri) == "abc"
    assert recorded_run_id({"uri": "http://elsewhere", "run_id": "abc"}, uri) is None
    assert recorded_run_id({"uri": uri, "run_id": None}, uri) is None
    assert recorded_run_id({"uri": uri}, uri) is None
    assert recorded_run_id(None, uri) is None
    assert recorded_run_id({"uri": uri, "run_id": "abc"}, None) is None  # tracking off
    # a record that predates keeping the store (trial records) is taken as the store's
    assert recorded_run_id({"run_id": "abc"}, uri) == "abc"


def test_a_moved_run_folder_takes_its_sqlite_store_along(tmp_path: Path) -> None:
    old, new = tmp_path / "old" / "run", tmp_path / "new" / "run"
    new.mkdir(parents=True)
    (new / "mlflow.db").write_bytes(b"")
    recorded = default_tracking_uri(old)  # the folder was here when the run was recorded
    here = default_tracking_uri(new)
    assert relocated_uri(recorded, new) == here
    assert relocated_uri(recorded, None) == recorded
    assert relocated_uri("http://server", new) == "http://server"
    assert recorded_run_id({"uri": recorded, "run_id": "abc"}, here, new) == "abc"
    assert recorded_run_id({"uri": recorded, "run_id": "abc"}, here) is None  # no folder given
    # a store still where it was recorded is that store, even with a namesake in run_dir
    old.mkdir(parents=True)
    (old / "mlflow.db").write_bytes(b"")
    assert relocated_uri(recorded, new) == recorded


def test_run_record_files(tmp_path: Path) -> None:
    assert read_run_record(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert read_run_record(tmp_path / "bad.json") is None
    (tmp_path / "list.json").write_text("[1]")
    assert read_run_record(tmp_path / "list.json") is None


# -- attach or start -------------------------------------------------------------------------


def test_start_when_there_is_no_record_saves_and_logs(store: str, tmp_path: Path) -> None:
    saved: list[dict[str, str]] = []
    (tmp_path / "config.yaml").write_text("seed: 1\n")
    tracker = Tracker.attach_or_start(
        store,
        "exp",
        "run",
        save=saved.append,
        tags=lambda: {"seed": "1"},
        params={"ppo": {"lr": 0.1}},
        artifacts=[tmp_path / "config.yaml", tmp_path / "missing.yaml"],
    )
    assert tracker.enabled and tracker.finish() == 0
    assert saved == [{"uri": store, "run_id": tracker.run_id}]
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(str(tracker.run_id))
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert run.data.params == {"ppo.lr": "0.1"}
    assert run.data.tags["seed"] == "1"
    assert {a.path for a in client.list_artifacts(str(tracker.run_id))} == {"config.yaml"}


def test_attach_to_the_recorded_run_computes_and_logs_nothing_new(store: str) -> None:
    first = Tracker.attach_or_start(store, "exp", "run", params={"lr": 0.1})
    first.log_metrics({"x": 1.0}, 0)
    first.finish("KILLED")

    def no_tags() -> dict[str, str]:
        raise AssertionError("tags are computed for a new run only")

    saved: list[dict[str, str]] = []
    again = Tracker.attach_or_start(
        store,
        "exp",
        "run",
        record={"uri": store, "run_id": first.run_id},
        save=saved.append,
        tags=no_tags,
        params={"lr": 0.2},
    )
    assert again.enabled and again.run_id == first.run_id and saved == []
    client = MlflowClient(tracking_uri=store)
    assert client.get_run(str(first.run_id)).info.status == "RUNNING"
    again.log_metrics({"x": 2.0}, 1)
    assert again.finish() == 0
    run = client.get_run(str(first.run_id))
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1"}
    history = client.get_metric_history(str(first.run_id), "x")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 2.0)]
    experiment = client.get_experiment_by_name("exp")
    assert experiment is not None
    assert len(client.search_runs([experiment.experiment_id])) == 1


def test_a_record_of_another_store_starts_a_new_run(store: str) -> None:
    saved: list[dict[str, str]] = []
    tracker = Tracker.attach_or_start(
        store,
        "exp",
        "run",
        record={"uri": "sqlite:////elsewhere/mlflow.db", "run_id": "0" * 32},
        save=saved.append,
    )
    assert tracker.enabled and tracker.run_id != "0" * 32
    assert saved == [{"uri": store, "run_id": tracker.run_id}]
    tracker.finish()


def test_a_record_file_is_read_and_written(store: str, tmp_path: Path) -> None:
    record = tmp_path / "job" / "phase" / "mlflow_run.json"  # folders made when missing
    first = Tracker.attach_or_start(store, "exp", "job/phase", record=record)
    first.finish()
    assert json.loads(record.read_text()) == {"uri": store, "run_id": first.run_id}
    again = Tracker.attach_or_start(store, "exp", "job/phase", record=record)
    assert again.run_id == first.run_id
    again.finish()
    # a legacy record without the store is continued in the store resolved now
    record.write_text(json.dumps({"run_id": first.run_id}))
    legacy = Tracker.attach_or_start(store, "exp", "job/phase", record=record)
    assert legacy.run_id == first.run_id and legacy.finish() == 0
    assert json.loads(record.read_text()) == {"run_id": first.run_id}  # attaching saves nothing


def test_resumed_in_a_moved_run_folder(store: str, tmp_path: Path) -> None:
    """A run folder moved with its default store: the job continues its recorded run."""
    old = Path(store.removeprefix("sqlite:///")).parent
    first = Tracker.attach_or_start(store, "exp", "run", record=old / "mlflow_run.json")
    first.finish()
    new = tmp_path / "moved"
    shutil.move(str(old), str(new))
    uri = resolve_tracking_uri(None, new)
    again = Tracker.attach_or_start(uri, "exp", "run", record=new / "mlflow_run.json", run_dir=new)
    assert again.enabled and again.run_id == first.run_id
    again.finish()


def test_no_uri_is_silently_off(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    def no_tags() -> dict[str, str]:
        raise AssertionError("no tags without a store")

    record = tmp_path / "mlflow_run.json"
    with caplog.at_level(logging.WARNING):
        tracker = Tracker.attach_or_start(
            None, "exp", "run", record=record, tags=no_tags, params={"a": 1}
        )
        tracker.log_metrics({"x": 1.0}, 0)
        assert tracker.finish() == 0
        assert tracker.nested("exp", "child").enabled is False
    assert not tracker.enabled and tracker.run_id is None
    assert caplog.records == [] and not record.exists()


# -- nesting ---------------------------------------------------------------------------------


def test_nested_runs_carry_their_parent_and_continue_on_resume(store: str) -> None:
    console = Console(record=True)
    parent = Tracker.attach_or_start(store, "exp", "pipeline", console=console)
    phases: dict[str, str] = {}
    child = parent.nested(
        "exp",
        "pipeline/symbols",
        save=lambda record: phases.update(symbols=record["run_id"]),
        tags={"phase": "symbols"},
        params={"lr": 0.1},
    )
    assert child.console is console and child.uri == store
    assert phases == {"symbols": child.run_id}
    child.log_metrics({"reward": 1.0}, 1)
    child.finish("KILLED")

    again = parent.nested(
        "exp", "pipeline/symbols", record={"uri": store, "run_id": phases["symbols"]}
    )
    assert again.run_id == child.run_id
    again.log_metrics({"reward": 2.0}, 2)
    again.finish()
    grandchild = again.nested("exp", "pipeline/symbols/eval")
    grandchild.finish()
    parent.finish()

    client = MlflowClient(tracking_uri=store)
    run = client.get_run(str(child.run_id))
    assert run.data.tags["mlflow.parentRunId"] == parent.run_id
    assert run.data.tags["phase"] == "symbols" and run.data.params == {"lr": "0.1"}
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(str(child.run_id), "reward")
    assert [m.step for m in history] == [1, 2]
    assert client.get_run(str(grandchild.run_id)).data.tags["mlflow.parentRunId"] == child.run_id
    assert "mlflow.parentRunId" not in client.get_run(str(parent.run_id)).data.tags


def test_a_parent_without_a_run_has_no_children(caplog: pytest.LogCaptureFixture) -> None:
    parent = Tracker.attach_or_start(down(), "exp", "pipeline")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        child = parent.nested("exp", "pipeline/symbols", params={"a": 1})
        child.log_metrics({"x": 1.0}, 0)
        assert child.finish() == 0
    assert not child.enabled and child.run_id is None
    assert caplog.records == []  # the parent warned already; its children add nothing
    parent.finish()


# -- the end ---------------------------------------------------------------------------------


def test_end_status() -> None:
    assert end_status(None) == "FINISHED"
    assert end_status(RuntimeError("crash")) == "FAILED"
    assert end_status(KeyboardInterrupt()) == "KILLED"
    assert end_status(SystemExit(1)) == "KILLED"


def test_an_interrupted_block_ends_the_run_killed(store: str) -> None:
    with pytest.raises(KeyboardInterrupt), Tracker.attach_or_start(store, "exp", "r") as run:
        raise KeyboardInterrupt
    assert MlflowClient(tracking_uri=store).get_run(str(run.run_id)).info.status == "KILLED"


# -- best effort when the store is down --------------------------------------------------------


def test_unreachable_server_starts_nothing_saves_nothing_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = down()
    record = tmp_path / "mlflow_run.json"
    console = Console(record=True, width=200)
    began = time.monotonic()
    with caplog.at_level(logging.INFO):
        parent = Tracker.attach_or_start(
            uri, "exp", "run", record=record, params={"a": 1}, console=console
        )
        child = parent.nested("exp", "run/child")
        parent.log_metrics({"x": 1.0}, 0)
        lost = parent.finish()
    assert time.monotonic() - began < 5
    assert not parent.enabled and parent.run_id is None and not child.enabled
    assert not record.exists()
    assert lost == 2  # the params and the metrics
    (warning,) = off_warnings(caplog)
    assert f"MLflow tracking to {uri} is off" in warning
    assert "starting run 'run' failed (ConnectionError" in warning
    assert "the job goes on" in warning
    assert console.export_text().count("is off for this run") == 1


def test_unreachable_server_on_resume_keeps_the_record(
    store: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A record is never dropped because its store was down: the next resume continues it."""
    uri = down()
    record = {"uri": uri, "run_id": "0123456789abcdef0123456789abcdef"}
    saved: list[dict[str, str]] = []
    with caplog.at_level(logging.INFO):
        tracker = Tracker.attach_or_start(uri, "exp", "run", record=record, save=saved.append)
        tracker.log_metrics({"x": 1.0}, 0)
        assert tracker.finish() == 1
    assert saved == [] and tracker.run_id is None
    (warning,) = off_warnings(caplog)
    assert "resuming run 0123456789abcdef0123456789abcdef failed (ConnectionError" in warning


# -- the callers' records ------------------------------------------------------------------


def prepared() -> Any:
    return SimpleNamespace(panel=SimpleNamespace(fingerprint=lambda: "fp-test"))


def test_pipeline_records_its_run_and_phase_runs_in_pipeline_json(
    store: str, empty_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from multiagent.config import load_preset
    from multiagent.runs.folders import save_run_config
    from multiagent.training.pipeline import EXPERIMENT, Pipeline

    config = load_preset("quick")
    run_dir = tmp_path / "run"
    save_run_config(config, run_dir)
    shutil.copyfile(empty_store, run_dir / "mlflow.db")  # migrated already: faster
    pipeline = Pipeline(config, run_dir, prepared=prepared())
    pipeline.tracker = parent = pipeline._start_tracking()
    uri = default_tracking_uri(run_dir)  # the default: a SQLite store in the run folder
    assert parent.uri == uri and parent.run_id is not None
    state = json.loads((run_dir / "pipeline.json").read_text())
    assert state["mlflow"] == {"uri": uri, "run_id": parent.run_id}
    child = pipeline._phase_tracker("symbols", continuing=False)
    child.finish("KILLED")
    state = json.loads((run_dir / "pipeline.json").read_text())
    assert state["mlflow"]["phases"] == {"symbols": child.run_id}
    parent.finish("KILLED")

    client = MlflowClient(tracking_uri=uri)
    parent_run, child_run = client.get_run(str(parent.run_id)), client.get_run(str(child.run_id))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None and parent_run.info.experiment_id == experiment.experiment_id
    assert parent_run.info.run_name == "run" and child_run.info.run_name == "run/symbols"
    assert parent_run.data.tags["data_fingerprint"] == "fp-test"
    assert parent_run.data.params["seed"] == str(config.seed)
    assert "config.yaml" in {a.path for a in client.list_artifacts(str(parent.run_id))}
    assert child_run.data.tags["mlflow.parentRunId"] == parent.run_id
    assert child_run.data.tags["phase"] == "symbols"

    # resumed: the same runs, continued (the phase only when it is continued)
    again = Pipeline(config, run_dir, prepared=prepared())
    again.tracker = again._start_tracking()
    assert again.tracker.run_id == parent.run_id
    assert again._phase_tracker("symbols", continuing=True).run_id == child.run_id
    rerun = again._phase_tracker("symbols", continuing=False)
    assert rerun.run_id not in (None, child.run_id)
    state = json.loads((run_dir / "pipeline.json").read_text())
    assert state["mlflow"]["phases"] == {"symbols": rerun.run_id}

    # another store: a new pipeline run there, whose record drops the old phase runs
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    elsewhere = Pipeline(config, run_dir, prepared=prepared())
    elsewhere.tracker = elsewhere._start_tracking()
    assert elsewhere.tracker.uri == store
    state = json.loads((run_dir / "pipeline.json").read_text())
    assert state["mlflow"] == {"uri": store, "run_id": elsewhere.tracker.run_id}


def test_pipeline_tracking_none_leaves_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from multiagent.config import load_preset
    from multiagent.runs.folders import save_run_config
    from multiagent.training.pipeline import Pipeline

    config = load_preset("quick")
    run_dir = tmp_path / "run"
    save_run_config(config, run_dir)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # the flag wins
    pipeline = Pipeline(config, run_dir, prepared=prepared(), tracking_uri="none")
    pipeline.tracker = pipeline._start_tracking()
    assert not pipeline.tracker.enabled and pipeline.tracker.uri is None
    assert not pipeline._phase_tracker("symbols", continuing=False).enabled
    assert not (run_dir / "pipeline.json").exists() and not (run_dir / "mlflow.db").exists()


def test_symbols_run_record(store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from multiagent.config import load_preset
    from multiagent.rllib.symbols import symbol_run_tracker

    config = load_preset("quick")
    run_dir = tmp_path / "run"
    trainer: Any = SimpleNamespace(dir=run_dir / "symbols", prepared=prepared())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    first = symbol_run_tracker(config, run_dir, trainer, None)
    first.finish("KILLED")
    record = json.loads((run_dir / "symbols" / "mlflow_run.json").read_text())
    assert record == {"uri": store, "run_id": first.run_id}
    run = MlflowClient(tracking_uri=store).get_run(str(first.run_id))
    assert run.info.run_name == "run/symbols"
    assert run.data.tags["data_fingerprint"] == "fp-test"
    assert symbol_run_tracker(config, run_dir, trainer, None).run_id == first.run_id
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "none")
    assert not symbol_run_tracker(config, run_dir, trainer, None).enabled


def test_sweep_keeps_its_parent_run_when_the_store_is_down_on_resume(
    store: str, tmp_path: Path
) -> None:
    from multiagent.config import load_preset
    from multiagent.tuning.config import SweepConfig
    from multiagent.tuning.sweep import _parent_tracker, experiment_name

    sweep = SweepConfig.model_validate(
        {
            "name": "tiny",
            "base": {"preset": "quick"},
            "space": {"symbols.ppo.lr": {"loguniform": [1e-4, 1e-3]}},
        }
    )
    base = load_preset("quick")
    state: dict[str, Any] = {"name": "tiny"}
    parent = _parent_tracker(sweep, base, store, tmp_path, state, "fp-test", None)
    parent.finish("KILLED")
    assert state["tracking_uri"] == store and state["parent_run_id"] == parent.run_id
    run = MlflowClient(tracking_uri=store).get_run(str(parent.run_id))
    assert run.info.run_name == "tiny" and run.data.tags["search"] == sweep.search
    assert run.data.params["sweep.name"] == "tiny"
    experiment = MlflowClient(tracking_uri=store).get_experiment_by_name(experiment_name(sweep))
    assert experiment is not None and run.info.experiment_id == experiment.experiment_id

    again = _parent_tracker(sweep, base, store, tmp_path, state, "fp-test", None)
    assert again.run_id == parent.run_id
    again.finish()
    # the store given on resume is down: tracking is off, the record stays for next time
    dead = _parent_tracker(sweep, base, down(), tmp_path, state, "fp-test", None)
    assert dead.run_id is None
    assert state["tracking_uri"] == store and state["parent_run_id"] == parent.run_id
