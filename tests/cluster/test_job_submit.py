"""`ray job submit` for real: a private head node on 127.0.0.1 runs the training entrypoint
from an uploaded working dir; the job is polled, its logs read, and its run folder, checkpoint
and MLflow run checked. Then an evaluation job reports on that run and a tuning job runs a
sweep, both writing where the node's MULTIAGENT_RUNS_DIR says; a job with a bad config fails
with one clear error, not a traceback."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import yaml
from head_node import HeadNode, head_node
from mlflow.tracking import MlflowClient
from support.tiny import TINY

REPO = Path(__file__).resolve().parents[2]
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")

pytestmark = pytest.mark.slow


def submit(head: HeadNode, submission_id: str, *entrypoint: str) -> None:
    done = head.ray(
        "job",
        "submit",
        f"--address={head.dashboard}",
        f"--working-dir={REPO}",
        f"--runtime-env={REPO / 'scripts' / 'runtime_env.yaml'}",
        f"--submission-id={submission_id}",
        "--no-wait",
        "--",
        *entrypoint,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def wait_for_job(head: HeadNode, submission_id: str, timeout: float = 300) -> list[str]:
    """Poll the job's status (the job API the CLI uses) until it ends; -> statuses seen."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(head.dashboard)
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = str(client.get_job_status(submission_id).value)
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in TERMINAL:
            return seen
        time.sleep(1)
    logs = head.ray("job", "logs", f"--address={head.dashboard}", submission_id).stdout
    raise AssertionError(
        f"job {submission_id} did not end; statuses {seen}; logs:\n{logs[-3000:]}\n"
        f"stacks of the job's processes:\n{head.stacks('scripts/')}"
    )


def job_logs(head: HeadNode, submission_id: str) -> str:
    reply = head.ray("job", "logs", f"--address={head.dashboard}", submission_id)
    assert reply.returncode == 0, reply.stderr
    return reply.stdout


def other_address() -> str | None:
    """A non-loopback address of this machine, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_training_evaluation_and_tuning_jobs_on_a_local_head_node(tmp_path: Path) -> None:
    payload = {
        **TINY,
        "extends": "none",  # the tiny run as it is, not over the default preset
        "runs_dir": str(tmp_path / "runs"),
        "cache_dir": str(tmp_path / "cache"),
        "symbols": {**TINY["symbols"], "iterations": 2, "checkpoint_every": 1},
    }
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(payload))
    run_dir = tmp_path / "run"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**payload, "resources": {"num_env_runners": -1}}))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "name": "job-sweep",
                "base": {"config": config.name},
                "search": "random",
                "num_samples": 1,
                "iterations": 2,
                "space": {"symbols.ppo.lr": {"loguniform": [1e-4, 1e-3]}},
            }
        )
    )
    runs_root = tmp_path / "cluster_runs"

    with head_node(env_vars={"MULTIAGENT_RUNS_DIR": str(runs_root)}) as head:
        # The dashboard (which takes job submissions) listens on loopback only.
        address = other_address()
        if address is not None:
            with socket.socket() as s, pytest.raises(OSError):
                s.settimeout(2)
                s.connect((address, int(head.dashboard.rsplit(":", 1)[1])))

        submit(
            head,
            "train-tiny",
            "python",
            "scripts/train_job.py",
            f"--config={config}",
            f"--run-dir={run_dir}",
            "--to-phase=symbols",
        )
        statuses = wait_for_job(head, "train-tiny")
        logs = job_logs(head, "train-tiny")
        assert statuses[-1] == "SUCCEEDED", logs[-4000:]
        assert "RUNNING" in statuses or "PENDING" in statuses

        # Evaluation and a sweep at once (the sweep's trial takes 1 of the 2 CPUs).
        submit(
            head,
            "evaluate",
            "python",
            "scripts/evaluate_job.py",
            f"--checkpoint={run_dir}",
            "--part=validation",
            "--no-walk-forward",
            "--no-stress",
            "--no-fail-on-gates",
        )
        submit(
            head,
            "tune",
            "python",
            "scripts/tune_job.py",
            f"--config={sweep}",
            "--tracking-uri=none",
        )
        submit(head, "train-bad", "python", "scripts/train_job.py", f"--config={bad}")
        outcomes = {job: wait_for_job(head, job)[-1] for job in ("evaluate", "tune", "train-bad")}
        side_logs = {job: job_logs(head, job) for job in outcomes}

    for job in ("evaluate", "tune"):
        assert outcomes[job] == "SUCCEEDED", side_logs[job][-4000:]
    report = json.loads((run_dir / "report" / "report.json").read_text())
    assert report and "validation" in json.dumps(report)
    sweep_dir = runs_root / "sweeps" / "job-sweep"
    state = json.loads((sweep_dir / "sweep.json").read_text())
    assert state["status"] == "done"
    assert list((runs_root / "best").glob("job-sweep-*.yaml")), "best config not exported"
    bad_statuses, bad_logs = [outcomes["train-bad"]], side_logs["train-bad"]

    # The driver joined this head node (RAY_ADDRESS set by the job), not a cluster of its own.
    assert "multiagent job: RAY_ADDRESS=" in logs and f":{head.gcs_port}" in logs, logs[:2000]
    assert "multiagent train pipeline" in logs
    assert "Pipeline" in logs and "symbols" in logs

    state = json.loads((run_dir / "pipeline.json").read_text())
    assert [state["phases"][p]["status"] for p in ("pretrain", "symbols")] == ["done", "done"]
    checkpoint = run_dir / "symbols" / "checkpoints" / "iter_00002"
    assert (checkpoint / "trainer_state.json").is_file() and (checkpoint / "algo").is_dir()
    assert not list((run_dir / "symbols" / "checkpoints").glob(".partial-*"))
    assert (run_dir / "symbols" / "policy.pt").is_file()

    client = MlflowClient(f"sqlite:///{run_dir / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FINISHED"
    nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    # The tiny config trains its encoder from scratch: pretraining is skipped, no run of its own.
    # The evaluation job's run nests under the same pipeline run (same store).
    assert sorted(r.data.tags.get("phase") for r in nested) == ["evaluate", "symbols"]
    (symbols,) = [r for r in nested if r.data.tags.get("phase") == "symbols"]
    assert symbols.info.status == "FINISHED"
    history = client.get_metric_history(symbols.info.run_id, "reward_mean")
    assert sorted(m.step for m in history) == [1, 2]
    assert symbols.data.metrics["env_runner_restarts"] == 0
    artifacts = {a.path for a in client.list_artifacts(symbols.info.run_id)}
    assert {"metrics.jsonl", "resources.json"} <= artifacts, artifacts
    resources = json.loads((run_dir / "symbols" / "resources.json").read_text())
    assert resources["num_env_runners"] == 0 and resources["cluster"]["CPU"] == 2

    assert bad_statuses[-1] == "FAILED"
    assert "num_env_runners" in bad_logs and str(bad) in bad_logs
    assert "Traceback" not in bad_logs, bad_logs[-3000:]
