"""Tracker against real stores under real concurrency: a local `mlflow server` (artifacts
proxied over HTTP), a server that dies mid-run, and trial processes opening one new SQLite
store at once."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from mlflow_server import healthy, start, stop
from support.policies import OBS_DIM

from multiagent.rllib.policy import GreedyPolicy
from multiagent.tracking import Tracker, default_tracking_uri, run_tags
from multiagent.tracking.compare import compare_runs

pytestmark = pytest.mark.slow


def test_server_fixture_answers(mlflow_server: str) -> None:
    assert mlflow_server.startswith("http://127.0.0.1:")
    assert healthy(mlflow_server)


def test_full_run_over_http(
    mlflow_server: str, policy_pt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    experiment = f"http-{uuid.uuid4().hex[:8]}"
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.json").write_text('{"sharpe": 1.2}')
    tags = run_tags({}, seed=5, data_fingerprint="fp-http")
    parent = Tracker.start(mlflow_server, experiment, "sweep", tags=tags)
    with Tracker.start(
        mlflow_server, experiment, "trial", parent_run_id=parent.run_id, tags=tags
    ) as run:
        run.log_config({"ppo": {"lr": 0.001, "hidden": [32, 32]}, "seed": 5})
        for step in range(3):
            run.log_metrics({"val_sharpe": 0.1 * step, "bad": float("nan")}, step)
        run.log_artifact(tmp_path / "report")
        run.log_policy_model(policy_pt)
    parent.finish()
    assert run.lost == parent.lost == 0

    client = MlflowClient(tracking_uri=mlflow_server)
    got = client.get_run(str(run.run_id))
    assert got.info.status == "FINISHED"
    assert got.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server
    assert got.data.params == {"ppo.lr": "0.001", "ppo.hidden": "[32,32]", "seed": "5"}
    assert got.data.tags["mlflow.parentRunId"] == parent.run_id
    assert got.data.tags["data_fingerprint"] == "fp-http"
    assert "bad" not in got.data.metrics
    history = client.get_metric_history(str(run.run_id), "val_sharpe")
    assert [m.step for m in history] == [0, 1, 2]
    assert {a.path for a in client.list_artifacts(str(run.run_id))} == {"report", "policy"}

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    model = mlflow.pyfunc.load_model(f"runs:/{run.run_id}/policy")
    obs = np.random.default_rng(9).standard_normal((7, OBS_DIM)).astype(np.float32)
    direct = GreedyPolicy.load(policy_pt)
    direct.state = torch.zeros(7, direct.state_size)
    np.testing.assert_array_equal(model.predict(obs), direct.act(obs, np.ones((7, 3), np.int8)))

    comparison = compare_runs(mlflow_server, experiment=experiment)
    assert [r.run_id for r in comparison.runs] == [run.run_id, parent.run_id]  # newest first
    assert comparison.metrics["val_sharpe"][0] == pytest.approx(0.2)


def test_attach_over_http(mlflow_server: str) -> None:
    first = Tracker.start(mlflow_server, f"resume-{uuid.uuid4().hex[:8]}", "run")
    first.log_metrics({"reward_mean": 1.0}, 0)
    first.finish("FAILED")
    again = Tracker.attach(mlflow_server, first.run_id)
    again.log_metrics({"reward_mean": 2.0}, 1)
    assert again.finish() == 0
    client = MlflowClient(tracking_uri=mlflow_server)
    assert client.get_run(str(first.run_id)).info.status == "FINISHED"
    history = client.get_metric_history(str(first.run_id), "reward_mean")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 2.0)]


def test_server_dying_mid_run_costs_seconds_not_minutes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """MLflow's client retries a dead server with backoff for minutes; the health probe
    before each call notices in milliseconds."""
    server = start(tmp_path / "doomed")
    try:
        run = Tracker.start(server.uri, "doomed", "run")
        run.log_metrics({"x": 1.0}, 0)
        assert run.enabled
    finally:
        stop(server)
    began = time.monotonic()
    with caplog.at_level(logging.WARNING):
        run.log_metrics({"x": 2.0}, 1)
        run.log_params({"a": 1})
        run.set_tags({"b": "c"})
        assert run.finish() == 3
    assert time.monotonic() - began < 10
    off = [r for r in caplog.records if "is off for this run" in r.getMessage()]
    assert len(off) == 1
    assert "log metrics failed (ConnectionError" in off[0].getMessage()


WORKER = """
import json, sys
from multiagent.tracking import Tracker
run = Tracker.start(sys.argv[1], "sweep", "trial-" + sys.argv[2])
for step in range(5):
    run.log_metrics({"reward_mean": float(step)}, step)
run.log_params({"trial": sys.argv[2]})
print(json.dumps({"run_id": run.run_id, "lost": run.finish(), "failure": run.failure}))
"""


def test_trial_processes_open_a_new_sqlite_store_at_once(tmp_path: Path) -> None:
    """Without the lock around opening the store, most of them failed on schema migration
    ("table experiments already exists", "duplicate column name: step")."""
    uri = default_tracking_uri(tmp_path / "sweep")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, uri, str(i)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for i in range(3)
    ]
    results = [json.loads(w.communicate(timeout=300)[0].strip().splitlines()[-1]) for w in workers]
    assert [r["failure"] for r in results] == [None, None, None]
    assert [r["lost"] for r in results] == [0, 0, 0]
    client = MlflowClient(tracking_uri=uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "sweep"]
    runs = client.search_runs([experiment.experiment_id])
    assert {r.info.run_id for r in runs} == {r["run_id"] for r in results}
    assert all(r.data.metrics["reward_mean"] == 4.0 for r in runs)
