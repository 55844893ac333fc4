"""Real Tune sweeps on 2 CPUs: PBT (2 trials) and Optuna + ASHA (4 trials, SQLite storage),
logged to a real local MLflow server; the chosen config exported and evaluated once on test.

The runs are small (tiny synthetic market, scratch encoder, 200-step batches); what they check
is the plumbing a user relies on: trials nested under the sweep's MLflow run with params,
per-iteration metrics and tags; PBT's exploits logged; the Optuna study on disk, loadable with
Optuna's own API; resume; and the test split untouched by every trial.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from support.tiny import TINY  # the RLlib tests' tiny run config (tests/ is on sys.path)

from multiagent.config import load_config
from multiagent.errors import ConfigError
from multiagent.tuning.config import load_sweep

pytestmark = pytest.mark.slow


def tiny_base(tmp_path: Path) -> Path:
    payload: dict[str, Any] = json.loads(json.dumps(TINY))
    payload["extends"] = "none"  # the tiny run as it is, not over the default preset
    payload["runs_dir"] = str(tmp_path / "runs")
    payload["cache_dir"] = str(tmp_path / "cache")
    payload["symbols"].update(iterations=4, checkpoint_every=2, eval_every=1)
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(payload))
    return path


def write_sweep(tmp_path: Path, **fields: Any) -> Path:
    base = tiny_base(tmp_path)
    sweep: dict[str, Any] = {
        "name": "tiny",
        "base": {"config": base.name},
        "target": "symbols",
        "iterations": 4,
        "space": {
            "symbols.ppo.lr": {"loguniform": [1e-4, 1e-3]},
            "symbols.ppo.entropy_coeff": {"uniform": [0.0, 0.02]},
        },
        **fields,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_pbt_sweep(tmp_path: Path, ray_session: None, mlflow_server: str) -> None:
    from mlflow.tracking import MlflowClient

    from multiagent.tuning.sweep import experiment_name, run_sweep

    path = write_sweep(
        tmp_path,
        search="pbt",
        num_samples=2,
        iterations=5,  # perturbations at 2 and 4, never on the last iteration (see the note)
        pbt={"perturbation_interval": 2, "quantile_fraction": 0.5, "synch": True},
    )
    result = run_sweep(path, tracking_uri=mlflow_server, best_dir=tmp_path / "best")
    assert len(result.trials) == 2
    # Both end with 4 PPO iterations behind their weights. (A trial that PBT clones from a
    # donor that already finished reports fewer Tune iterations: it inherits the training.)
    # Every trial ends without error and the best reaches the full length. (Known issue: with
    # synch PBT on 2 CPUs an exploited trial sometimes ends early, e.g. at 3 of 5 iterations;
    # not diagnosed yet: see docs/tuning.md.)
    summary = [(t["status"], t["iterations"], t["trained_iterations"]) for t in result.trials]
    assert all(t["status"] == "done" and t["trained_iterations"] >= 3 for t in result.trials)
    assert max(t["trained_iterations"] for t in result.trials) == 5, summary
    # PBT exploited after iteration 2 (synch): one trial cloned the other, logged. (Tune
    # records each trial's last reported iteration, which may lag the exploit by one.)
    rows = [json.loads(line) for line in (result.directory / "pbt" / "perturbations.jsonl").open()]
    assert rows, "no exploit was logged"
    assert rows[0]["iteration"] in (1, 2) and rows[0]["trial"] != rows[0]["cloned_from"]
    assert set(rows[0]["new_config"]) == {"symbols.ppo.lr", "symbols.ppo.entropy_coeff"}
    assert (result.directory / "pbt" / "pbt_global.txt").is_file()
    # The chosen config: a run config that loads as is, unsealed, with the best trial's values.
    assert result.best_config is not None and result.best_config.parent == tmp_path / "best"
    chosen = load_config(result.best_config)
    assert chosen.seal_test is False
    assert chosen.symbols.ppo.lr == pytest.approx(result.best["config"]["symbols.ppo.lr"])
    final = json.loads((result.directory / "final_test.json").read_text())
    assert final["part"] == "test" and final["metrics"]["episodes"] > 0
    # MLflow: the sweep's run, with the two trials nested under it.
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name(experiment_name(result_sweep(path)))
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert "test_sharpe" in parent.data.metrics and "best_objective" in parent.data.metrics
    # PBO over the 2 trials' validation returns (same bars), logged on the sweep's run; the
    # export carries the search.
    assert "pbo" in parent.data.metrics
    pbo = json.loads((result.directory / "pbo.json").read_text())
    assert pbo["trials"] == 2 and pbo["combinations"] == 12870
    assert parent.data.metrics["pbo"] == pytest.approx(pbo["pbo"])
    assert chosen.selection.trials == 2 and chosen.selection.source.startswith("sweep tiny")
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {
        "trials.json",
        "best.yaml",
        "final_test.json",
        "pbt",
        "pbo.json",
        "pbo.png",
    } <= artifacts
    assert {"summary.json", "summary.md"} <= artifacts
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        assert child.data.params["seal_test"] == "True"
        assert "symbols.ppo.lr" in child.data.params
        for tag in ("git_revision", "data_fingerprint", "seed"):
            assert tag in child.data.tags, tag
        history = client.get_metric_history(child.info.run_id, "objective")
        steps = [m.step for m in history]
        assert steps[:3] == [1, 2, 3] and steps == sorted(set(steps))
        assert client.get_metric_history(child.info.run_id, "hp/symbols.ppo.lr")
        assert client.get_metric_history(child.info.run_id, "policy_entropy")


def result_sweep(path: Path) -> Any:
    return load_sweep(path)[0]


def test_optuna_sweep_with_asha_and_resume(tmp_path: Path, ray_session: None) -> None:
    import optuna

    from multiagent.tuning.sweep import run_sweep

    path = write_sweep(
        tmp_path,
        search="optuna",
        num_samples=4,
        iterations=3,
        optuna={"seed": 1, "asha": {"grace_period": 1, "reduction_factor": 2}},
    )
    result = run_sweep(path, best_dir=tmp_path / "best")
    assert len(result.trials) == 4
    storage = f"sqlite:///{(result.directory / 'optuna.db').resolve()}"
    study = optuna.load_study(study_name="tiny", storage=storage)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 4
    assert {"symbols.ppo.lr", "symbols.ppo.entropy_coeff"} == set(finished[0].params)
    # Every trial ran at least ASHA's grace period, none past its length.
    assert all(1 <= t["iterations"] <= 3 for t in result.trials)
    # The default tracking store: SQLite in the sweep folder, 1 parent + 4 trials.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{(result.directory / 'mlflow.db').resolve()}")
    experiment = client.get_experiment_by_name("sweep-tiny")
    assert experiment is not None
    assert len(client.search_runs([experiment.experiment_id])) == 5
    # The same folder again without --resume is refused; with it, the finished sweep is kept.
    with pytest.raises(ConfigError, match="--resume"):
        run_sweep(path, best_dir=tmp_path / "best")
    again = run_sweep(path, resume=True, best_dir=tmp_path / "best")
    assert len(again.trials) == 4
    assert len(list((tmp_path / "best").glob("tiny-*.yaml"))) == 2  # never overwritten


def test_killed_driver_resumes(tmp_path: Path, ray_session: None) -> None:
    """The sweep's driver killed (SIGKILL, its whole process group: its own local Ray goes
    with it) after trials checkpointed; ``--resume`` finishes every trial from its checkpoint
    and the Optuna study ends with all of them."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    import optuna

    from multiagent.tuning.sweep import run_sweep

    path = write_sweep(
        tmp_path, search="optuna", num_samples=2, iterations=20, optuna={"seed": 2, "asha": None}
    )
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    driver = subprocess.Popen(
        [sys.executable, "-m", "multiagent.cli", "tune", "--config", str(path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    experiment = tmp_path / "runs" / "sweeps" / "tiny" / "tune"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            reported = [len(p.read_text().splitlines()) for p in experiment.glob("*/result.json")]
            if len(reported) == 2 and min(reported) >= 3:  # both trials 3 iterations in
                break
            assert driver.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.5)
        else:
            pytest.fail("no trial checkpointed within 240 s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    result = run_sweep(path, resume=True, best_dir=tmp_path / "best")
    assert [t["status"] for t in result.trials] == ["done", "done"]
    assert all(t["iterations"] == 20 for t in result.trials)
    study = optuna.load_study(
        study_name="tiny", storage=f"sqlite:///{(result.directory / 'optuna.db').resolve()}"
    )
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 2
    assert (result.directory / "final_test.json").is_file()


def test_master_pbt_over_risk_multipliers(tmp_path: Path, ray_session: None) -> None:
    """PBT on the master phase (MAPPO): the sweep trains pretrain + symbols once, sealed, into
    SWEEP/base; trials mutate the master's lr, entropy and the risk-mode multipliers (an env
    setting), clipped to their ranges."""
    from multiagent.tuning.sweep import run_sweep

    payload = yaml.safe_load(tiny_base(tmp_path).read_text())
    payload["symbols"]["iterations"] = 1
    tiny_ppo = {"train_batch_size": 200, "minibatch_size": 50, "num_epochs": 2}
    payload["master"] = {
        "iterations": 5,
        "eval_every": 1,
        "ppo": tiny_ppo,
        "policy": {"hidden": [16]},
    }
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(payload))
    space = {
        "master.ppo.lr": {"loguniform": [1e-4, 1e-3]},
        "master.ppo.entropy_coeff": {"uniform": [0.0, 0.01]},
        "env.risk_mode_scales.0": {"uniform": [0.25, 0.9]},
        "env.risk_mode_scales.2": {"uniform": [1.1, 2.0]},
    }
    sweep = {
        "name": "master",
        "base": {"config": "base.yaml"},
        "target": "master",
        "search": "pbt",
        "num_samples": 2,
        "pbt": {"perturbation_interval": 2, "synch": True},
        "space": space,
    }
    path = tmp_path / "master.yaml"
    path.write_text(yaml.safe_dump(sweep))
    result = run_sweep(path, best_dir=tmp_path / "best")
    pipeline = json.loads((result.directory / "base" / "pipeline.json").read_text())
    assert {p: s["status"] for p, s in pipeline["phases"].items()} == {
        "pretrain": "done",
        "symbols": "done",
    }
    base_config = yaml.safe_load((result.directory / "base" / "config.yaml").read_text())
    assert base_config["seal_test"] is True
    assert all(t["status"] == "done" and t["trained_iterations"] >= 3 for t in result.trials)
    assert max(t["trained_iterations"] for t in result.trials) == 5
    rows = [json.loads(line) for line in (result.directory / "pbt" / "perturbations.jsonl").open()]
    assert rows
    for row in rows:
        new = row["new_config"]
        assert 0.25 <= new["env.risk_mode_scales.0"] <= 0.9
        assert 1.1 <= new["env.risk_mode_scales.2"] <= 2.0
    final = json.loads((result.directory / "final_test.json").read_text())
    assert final["system"] == "hierarchical" and final["metrics"]["episodes"] > 0


def test_trials_reserve_and_use_their_env_runners(tmp_path: Path, ray_session: None) -> None:
    """A base config with a remote env runner: each trial's placement group holds a bundle
    for the trial and one for its runner (2 CPUs: exactly this machine), and the trial samples
    through that runner."""
    from multiagent.tuning.sweep import run_sweep

    path = write_sweep(tmp_path, search="random", num_samples=1, iterations=2)
    base = tmp_path / "base.yaml"
    payload = yaml.safe_load(base.read_text())
    payload["resources"] = {**payload["resources"], "num_env_runners": 1}
    base.write_text(yaml.safe_dump(payload))

    result = run_sweep(path, tracking_uri="none", best_dir=tmp_path / "best")
    (trial,) = result.trials
    assert trial["status"] == "done" and trial["trained_iterations"] == 2
    (trial_dir,) = (result.directory / "trials").iterdir()
    (resources_file,) = trial_dir.rglob("resources.json")
    resources = json.loads(resources_file.read_text())
    assert resources["num_env_runners"] == 1
    rows = [
        json.loads(line)
        for log in trial_dir.rglob("metrics.jsonl")
        for line in log.read_text().splitlines()
    ]
    assert rows and all(row["env_runners_healthy"] == 1 for row in rows)
    # The validation returns behind the objective are kept: their Sharpe is the objective.
    from multiagent.evaluation.metrics import sharpe

    returns = np.load(trial_dir / "validation_returns.npy")
    meta = json.loads((trial_dir / "validation_returns.json").read_text())
    assert returns.size > 0 and meta["folds"] == [returns.size]
    assert trial["objective"] == pytest.approx(sharpe(returns, meta["periods"]))
    # One trial: no PBO (with the reason), the search (N = 1) in the summary and the export.
    summary = json.loads((result.directory / "summary.json").read_text())
    assert summary["pbo"] is None and "at least 2" in summary["pbo_skipped"]
    assert summary["selection"]["trials"] == 1 and "dsr" in summary
    assert summary["decay"]["validation_objective"] == trial["objective"]
    assert result.best_config is not None
    assert load_config(result.best_config).selection.trials == 1
    assert (result.directory / "pbo.json").is_file() and (result.directory / "summary.md").is_file()


def test_an_optuna_sweep_tunes_a_single_agent_preset(tmp_path: Path, ray_session: None) -> None:
    """`target: agent` trains the portfolio system's agent in every trial; the chosen config
    is exported and scored once on its env's test episodes."""
    from support.agent_systems import agent_payload

    from multiagent.tuning.sweep import run_sweep

    payload = agent_payload("portfolio", tmp_path, iterations=2)
    payload["cache_dir"] = str(tmp_path / "cache")
    payload["extends"] = "none"
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(payload))
    sweep = {
        "name": "agent",
        "base": {"config": "base.yaml"},
        "target": "agent",
        "search": "optuna",
        "num_samples": 2,
        "iterations": 2,
        "space": {"agent.ppo.lr": {"loguniform": [1e-4, 1e-3]}},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    outcome = run_sweep(tmp_path / "sweep.yaml", best_dir=tmp_path / "best")
    assert len(outcome.trials) == 2
    final = outcome.final_test
    assert final is not None and final["system"] == "portfolio" and final["part"] == "test"
    assert "sharpe" in final["metrics"] and "in_position" in final["metrics"]
    assert outcome.best_config is not None
    chosen = load_config(outcome.best_config)
    assert chosen.system == "portfolio" and chosen.selection.trials == 2
    # A hierarchy target on a single-agent base is refused, naming the right one.
    sweep["target"] = "symbols"
    sweep["space"] = {"symbols.ppo.lr": {"loguniform": [1e-4, 1e-3]}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    with pytest.raises(ConfigError, match="its trials train target agent"):
        load_sweep(tmp_path / "sweep.yaml")
