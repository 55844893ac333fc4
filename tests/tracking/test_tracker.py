"""Tracker on a SQLite store: params, metrics, tags, nesting, artifacts, the policy model,
resume, and the best-effort contract (one warning, counted losses, never an exception)."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from mlflow_server import free_port as closed_port  # bound, then released: nothing listens
from rich.console import Console
from support.policies import OBS_DIM, export_policy

from multiagent.rllib.policy import GreedyPolicy
from multiagent.tracking import Tracker, default_tracking_uri, flatten, records, run_tags
from multiagent.tracking.model import policy_meta

REPO = Path(__file__).resolve().parents[2]


def params_of(uri: str, run_id: str) -> dict[str, str]:
    return dict(MlflowClient(tracking_uri=uri).get_run(run_id).data.params)


def failure_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The failure's records: a warning, or INFO when a console showed it (printed once)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.INFO and "is off for this run" in r.getMessage()
    ]


# -- pure helpers ----------------------------------------------------------------------


def test_default_tracking_uri_is_an_absolute_sqlite_file(tmp_path: Path) -> None:
    uri = default_tracking_uri(Path("relative/runs"))
    assert uri == f"sqlite:///{(tmp_path / 'relative/runs/mlflow.db')}"  # cwd is tmp_path
    assert uri.startswith("sqlite:////")


def test_flatten_nests_with_dots_lists_as_json_and_truncates() -> None:
    flat = flatten(
        {
            "ppo": {"lr": 0.0003, "clip_param": 0.2, "model": {"hidden": [64, 64]}},
            "seed": 3,
            "symbols": ("A", "B"),
            "note": None,
            "empty": {},
            "long": "x" * 7000,
            "flag": True,
        }
    )
    assert flat == {
        "ppo.lr": "0.0003",
        "ppo.clip_param": "0.2",
        "ppo.model.hidden": "[64,64]",
        "seed": "3",
        "symbols": '["A","B"]',
        "note": "None",
        "empty": "{}",
        "long": "x" * 6000,
        "flag": "True",
    }
    assert flatten({"a": {"b": 1}}, "sweep") == flatten({"a": {"b": 1}}, "sweep.")
    assert flatten({"a": {"b": 1}}, "sweep") == {"sweep.a.b": "1"}


def test_metric_keys_are_made_acceptable_to_mlflow() -> None:
    assert records.metric_key("env_runners/episode_return_mean") == (
        "env_runners/episode_return_mean"
    )
    assert records.metric_key("loss(total)") == "loss_total_"
    assert records.metric_key("a//b") == "a__b"
    assert records.metric_key("/abs") == "_abs"
    assert len(records.metric_key("k" * 400)) == 250


def test_finite_metrics_keep_only_real_finite_numbers() -> None:
    found = records.finite_metrics(
        {
            "a": 1,
            "b": 2.5,
            "c": np.float32(0.5),
            "d": np.int64(4),
            "nan": math.nan,
            "inf": -math.inf,
            "none": None,
            "flag": True,
            "np_flag": np.bool_(True),
            "text": "1.0",
            "nested": {"x": 1.0, "y": math.nan},
        }
    )
    assert found == {"a": 1.0, "b": 2.5, "c": 0.5, "d": 4.0, "nested.x": 1.0}


def test_run_tags_record_revision_versions_seed_and_fingerprint() -> None:
    tags = run_tags({"preset": "quick"}, seed=7, data_fingerprint="abc123")
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert tags["git_revision"] == head
    assert tags["mlflow.source.git.commit"] == head
    assert tags["git_dirty"] in ("true", "false")
    assert tags["seed"] == "7"
    assert tags["data_fingerprint"] == "abc123"
    assert tags["config"] == "quick"
    assert tags["version.python"] == ".".join(map(str, sys.version_info[:3]))
    for name in ("multiagent", "ray", "torch", "mlflow", "optuna", "numpy", "pandas"):
        assert tags[f"version.{name}"] == metadata.version(name)


def test_run_tags_without_a_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "_git", lambda *args: None)
    tags = run_tags({}, seed=0, data_fingerprint=None)
    assert tags["git_revision"] == "unknown"
    assert tags["git_dirty"] == "unknown"
    assert tags["data_fingerprint"] == "unknown"
    assert "mlflow.source.git.commit" not in tags


def test_policy_meta_without_sidecar_reads_the_state_size(tmp_path: Path) -> None:
    for recurrent, size in (("none", 0), ("gru", 7), ("lstm", 14)):
        path = export_policy(tmp_path / recurrent / "policy.pt", recurrent)
        expected = json.loads(path.with_suffix(".json").read_text())["state_size"]
        path.with_suffix(".json").unlink()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 flags torch.jit
            meta = policy_meta(path, torch.jit.load(str(path)))
        assert meta["state_size"] == expected == size
        assert meta["recurrent"] == recurrent


# -- on a SQLite store -------------------------------------------------------------------


def test_params_are_flattened_and_complete(store: str) -> None:
    config = {f"group{g}": {f"key{k}": g * 100 + k for k in range(50)} for g in range(5)}
    config["lists"] = {"hidden": [64, 32]}
    with Tracker.start(store, "exp", "params") as run:
        run.log_params(config)
        run.log_params({"extra": "x"})
    params = params_of(store, str(run.run_id))
    assert len(params) == 252  # 250 + 1 list + 1 extra, across three batches of <= 100
    assert params["group3.key17"] == "317"
    assert params["lists.hidden"] == "[64,32]"
    assert params["extra"] == "x"
    assert run.lost == 0


def test_metrics_skip_non_finite_and_keep_history_by_step(store: str) -> None:
    with Tracker.start(store, "exp", "metrics") as run:
        for step in range(3):
            run.log_metrics(
                {
                    "val_sharpe": 0.5 * step,
                    "reward_mean": float(step) if step != 1 else math.nan,
                    "entropy": math.inf,
                    "done": True,
                    "label": "x",
                    "missing": None,
                    "learners": {"symbol": {"policy_loss": -float(step)}},
                },
                step=step * 10,
            )
        run.log_metrics({f"m{i}": float(i) for i in range(1500)}, step=0)  # two batches
    client = MlflowClient(tracking_uri=store)
    data = client.get_run(str(run.run_id)).data
    assert {"entropy", "done", "label", "missing"}.isdisjoint(data.metrics)
    history = client.get_metric_history(str(run.run_id), "val_sharpe")
    assert [(m.step, m.value) for m in history] == [(0, 0.0), (10, 0.5), (20, 1.0)]
    reward = client.get_metric_history(str(run.run_id), "reward_mean")
    assert [(m.step, m.value) for m in reward] == [(0, 0.0), (20, 2.0)]
    nested = client.get_metric_history(str(run.run_id), "learners.symbol.policy_loss")
    assert [m.value for m in nested] == [0.0, -1.0, -2.0]
    assert data.metrics["m1499"] == 1499.0
    assert sum(k.startswith("m") and k[1:].isdigit() for k in data.metrics) == 1500


def test_tags_and_status(store: str) -> None:
    tags = run_tags({}, seed=11, data_fingerprint="fp")
    run = Tracker.start(store, "exp", "tagged", tags=tags)
    run.set_tags({"phase": "symbols", "odd key!": "v"})
    assert run.finish() == 0
    info = MlflowClient(tracking_uri=store).get_run(str(run.run_id))
    assert info.info.status == "FINISHED"
    assert info.info.run_name == "tagged"
    assert info.data.tags["seed"] == "11"
    assert info.data.tags["data_fingerprint"] == "fp"
    assert info.data.tags["git_revision"] == tags["git_revision"]
    assert info.data.tags["version.mlflow"] == metadata.version("mlflow")
    assert info.data.tags["phase"] == "symbols"
    assert info.data.tags["odd key_"] == "v"


def test_nested_run_carries_its_parent(store: str) -> None:
    parent = Tracker.start(store, "sweep", "sweep")
    child = Tracker.start(store, "sweep", "trial_0", parent_run_id=parent.run_id)
    child.finish()
    parent.finish()
    client = MlflowClient(tracking_uri=store)
    assert client.get_run(str(child.run_id)).data.tags["mlflow.parentRunId"] == parent.run_id
    assert "mlflow.parentRunId" not in client.get_run(str(parent.run_id)).data.tags
    experiment = client.get_experiment_by_name("sweep")
    assert experiment is not None
    assert {r.info.run_id for r in client.search_runs([experiment.experiment_id])} == {
        parent.run_id,
        child.run_id,
    }


def test_failed_block_ends_the_run_failed(store: str) -> None:
    with pytest.raises(RuntimeError), Tracker.start(store, "exp", "boom") as run:
        raise RuntimeError("training crashed")
    assert MlflowClient(tracking_uri=store).get_run(str(run.run_id)).info.status == "FAILED"


def test_artifacts_files_directories_and_config(store: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("seed: 3\nppo:\n  lr: 0.001\n")
    folder = tmp_path / "report"
    (folder / "plots").mkdir(parents=True)
    (folder / "report.json").write_text("{}")
    (folder / "plots" / "equity.png").write_bytes(b"png")
    with Tracker.start(store, "exp", "artifacts") as run:
        run.log_config({"seed": 3, "ppo": {"lr": 0.001}}, config)
        run.log_artifact(folder)
        run.log_artifact(folder / "report.json", "copies")
        run.log_artifact(tmp_path / "missing.txt")  # a no-op, not a failure
    client = MlflowClient(tracking_uri=store)
    run_id = str(run.run_id)
    assert run.lost == 0
    assert {a.path for a in client.list_artifacts(run_id)} == {"config.yaml", "report", "copies"}
    assert {a.path for a in client.list_artifacts(run_id, "report")} == {
        "report/report.json",
        "report/plots",
    }
    assert [a.path for a in client.list_artifacts(run_id, "report/plots")] == [
        "report/plots/equity.png"
    ]
    assert params_of(store, run_id) == {"seed": "3", "ppo.lr": "0.001"}
    # artifacts sit next to the SQLite file, not in ./mlruns of whatever the cwd is
    assert not Path("mlruns").exists()
    assert list((tmp_path / "store" / "mlartifacts").rglob("equity.png"))


def test_experiment_created_by_another_process_in_between(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two trials create the experiment at once: the loser looks it up again."""
    client = MlflowClient(tracking_uri=store)
    existing = client.create_experiment("race")
    real = MlflowClient.get_experiment_by_name
    calls: list[str] = []

    def late(self: MlflowClient, name: str) -> Any:
        calls.append(name)
        return None if len(calls) == 1 else real(self, name)

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", late)
    run = Tracker.start(store, "race", "trial")
    assert run.enabled
    assert len(calls) == 2
    assert client.get_run(str(run.run_id)).info.experiment_id == existing
    run.finish()


def test_attach_resumes_and_appends(store: str, caplog: pytest.LogCaptureFixture) -> None:
    first = Tracker.start(store, "exp", "resumable")
    first.log_params({"lr": 0.1, "iterations": 10})
    for step in range(2):
        first.log_metrics({"reward_mean": float(step)}, step)
    first.finish("KILLED")
    client = MlflowClient(tracking_uri=store)
    assert client.get_run(str(first.run_id)).info.status == "KILLED"

    resumed = Tracker.attach(store, first.run_id)
    assert resumed.enabled and resumed.run_id == first.run_id
    assert client.get_run(str(first.run_id)).info.status == "RUNNING"
    with caplog.at_level(logging.WARNING):
        resumed.log_params({"lr": 0.1, "iterations": 20, "resumed_from": 2})
    assert any(
        "immutable" in r.getMessage() and "iterations" in r.getMessage() for r in caplog.records
    )
    resumed.log_metrics({"reward_mean": 2.0}, 2)
    assert resumed.finish() == 0
    run = client.get_run(str(first.run_id))
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1", "iterations": "10", "resumed_from": "2"}
    history = client.get_metric_history(str(first.run_id), "reward_mean")
    assert [(m.step, m.value) for m in history] == [(0, 0.0), (1, 1.0), (2, 2.0)]


def test_policy_model_round_trip(
    store: str, policy_pt: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import mlflow

    with Tracker.start(store, "exp", "model") as run:
        run.log_policy_model(policy_pt)
    assert run.lost == 0
    client = MlflowClient(tracking_uri=store)
    files = {a.path for a in client.list_artifacts(str(run.run_id), "policy")}
    assert {"policy/MLmodel", "policy/python_model.pkl", "policy/requirements.txt"} <= files
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    model = mlflow.pyfunc.load_model(f"runs:/{run.run_id}/policy")
    requirements = Path(
        mlflow.artifacts.download_artifacts(f"runs:/{run.run_id}/policy/requirements.txt")
    ).read_text()
    assert f"torch=={metadata.version('torch')}" in requirements
    # issue 23: the writing multiagent is recorded, not required (no index has it; the
    # subprocess below loads the model with multiagent unimportable)
    assert "multiagent" not in requirements
    assert model.metadata.metadata == {"multiagent_version": metadata.version("multiagent")}
    assert model.metadata.get_input_schema().inputs[0].shape == (-1, OBS_DIM)

    obs = np.random.default_rng(5).standard_normal((11, OBS_DIM)).astype(np.float32)
    direct = GreedyPolicy.load(policy_pt)
    direct.state = torch.zeros(11, direct.state_size)
    expected = direct.act(obs, np.ones((11, 3), np.int8))
    actions = model.predict(obs)
    assert actions.dtype == np.int64
    np.testing.assert_array_equal(actions, expected)
    assert len(set(expected.tolist())) > 1  # a policy that always says HOLD proves little
    with pytest.raises(mlflow.exceptions.MlflowException, match="float32"):
        model.predict(obs.astype(np.float64))  # the signature guards the dtype
    np.testing.assert_array_equal(model.predict(obs[:1]), expected[:1])  # one row

    # pickled by value: loads where multiagent cannot be imported
    local = mlflow.artifacts.download_artifacts(
        f"runs:/{run.run_id}/policy", dst_path=str(tmp_path / "dl")
    )
    np.save(tmp_path / "obs.npy", obs)
    script = (
        "import sys; sys.modules['multiagent'] = None\n"
        "import mlflow, numpy as np\n"
        f"m = mlflow.pyfunc.load_model({local!r})\n"
        f"print(m.predict(np.load({str(tmp_path / 'obs.npy')!r})).tolist())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected.tolist()


# -- best effort ---------------------------------------------------------------------------


def test_no_uri_means_silently_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        run = Tracker.start(None, "exp", "off")
        run.log_params({"a": 1})
        run.log_metrics({"b": 1.0}, 0)
        assert run.finish() == 0
    assert run.run_id is None and not run.enabled
    assert caplog.records == []
    assert Tracker.attach(None, "abc").enabled is False


def test_unreachable_server_warns_once_counts_losses_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    console = Console(record=True, width=200)
    began = time.monotonic()
    with caplog.at_level(logging.INFO):
        run = Tracker.start(uri, "exp", "down", console=console)
        run.log_params({"a": {"b": 1}})
        run.log_config({"c": 2}, tmp_path)
        run.log_metrics({"x": 1.0}, 0)
        run.set_tags({"t": "v"})
        (tmp_path / "f.txt").write_text("x")
        run.log_artifact(tmp_path / "f.txt")
        run.log_policy_model(Path(__file__))  # any existing file: never read while off
        lost = run.finish()
    assert time.monotonic() - began < 5
    assert run.run_id is None and not run.enabled
    assert lost == run.lost == 7
    assert len(failure_warnings(caplog)) == 1
    assert "starting run 'down' failed (ConnectionError" in failure_warnings(caplog)[0]
    assert any("lost 7 call(s)" in r.getMessage() for r in caplog.records)
    shown = console.export_text()
    assert shown.count("is off for this run") == 1
    assert "lost 7 call(s)" in shown
    # Shown on the console, so not also as a logged warning (it printed twice before).
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_a_failing_store_call_turns_tracking_off(
    store: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        run = Tracker.attach(store, "0123456789abcdef0123456789abcdef")
        run.log_metrics({"x": 1.0}, 0)
        run.log_metrics({"x": 2.0}, 1)
        assert run.finish() == 2
    assert len(failure_warnings(caplog)) == 1
    assert "resuming run 0123456789abcdef0123456789abcdef failed" in failure_warnings(caplog)[0]


def test_failure_mid_run_counts_the_failed_call(
    store: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Tracker.start(store, "exp", "flaky")
    run.log_metrics({"x": 1.0}, 0)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(MlflowClient, "log_batch", broken)
    with caplog.at_level(logging.WARNING):
        run.log_metrics({"x": 2.0}, 1)
        run.log_params({"a": 1})
        run.set_tags({"b": "c"})
    assert not run.enabled
    assert run.lost == 3
    assert len(failure_warnings(caplog)) == 1
    assert "log metrics failed (OSError: disk full)" in failure_warnings(caplog)[0]
    monkeypatch.undo()
    assert run.finish() == 3
    assert run.finish() == 3  # a second finish only reports
    history = MlflowClient(tracking_uri=store).get_metric_history(str(run.run_id), "x")
    assert [m.value for m in history] == [1.0]
