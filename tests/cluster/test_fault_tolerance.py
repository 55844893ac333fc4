"""Fault tolerance for real: a SIGKILLed env runner is replaced while training goes on, a
checkpoint killed mid-write is never taken for a good one, and a SIGKILLed driver's run goes on
with `--resume` from its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.tiny import TINY, tiny_config

from multiagent.errors import ConfigError
from multiagent.rllib.symbols import SymbolTrainer
from multiagent.training.run_state import latest_checkpoint

REPO = Path(__file__).resolve().parents[2]


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_killed_env_runner_is_replaced_and_training_goes_on(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path,
        resources={"num_env_runners": 1, "delay_between_env_runner_restarts_s": 0.5},
        iterations=8,
        checkpoint_every=8,
        eval_every=8,
    )
    trainer = SymbolTrainer(config, tmp_path / "run")
    group = trainer.algo.env_runner_group
    try:
        trainer.iterate(evaluate=False)
        (pid,) = group.foreach_env_runner(lambda runner: os.getpid(), local_env_runner=False)
        os.kill(pid, signal.SIGKILL)  # the process dies, as on a lost node
        # Generous: the loop ends as soon as the runner is back; on 2 busy cores a new runner
        # process took over 90 s to start once (CI clone next to a learn-check run).
        deadline = time.monotonic() + 240
        while group.num_remote_worker_restarts() == 0 and time.monotonic() < deadline:
            trainer.iterate(evaluate=False)
        assert group.num_remote_worker_restarts() >= 1, "the runner was not replaced"
        (new_pid,) = group.foreach_env_runner(lambda runner: os.getpid(), local_env_runner=False)
        assert new_pid != pid
        before = trainer.history[-1]["env_steps"]
        row = trainer.iterate(evaluate=False)
        assert row["env_steps"] > before, "the replaced runner does not sample"
    finally:
        trainer.stop()
    logged = rows(tmp_path / "run" / "symbols" / "metrics.jsonl")
    assert [r["iteration"] for r in logged] == list(range(1, len(logged) + 1))


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_checkpoint_killed_mid_write_is_never_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(tmp_path, iterations=3, checkpoint_every=1, keep_best=3)
    trainer = SymbolTrainer(config, tmp_path / "run")
    checkpoints = tmp_path / "run" / "symbols" / "checkpoints"
    try:
        trainer.iterate(evaluate=True, checkpoint=True)
        first = checkpoints / "iter_00001"
        assert latest_checkpoint(tmp_path / "run" / "symbols") == first

        real_save = trainer.algo.save_to_path

        def dies_half_way(path: str) -> None:
            real_save(path)
            (Path(path) / "half_written").write_text("")
            raise KeyboardInterrupt  # stands for the process dying during the write

        monkeypatch.setattr(trainer.algo, "save_to_path", dies_half_way)
        with pytest.raises(KeyboardInterrupt):
            trainer.iterate(evaluate=True, checkpoint=True)
        assert sorted(p.name for p in checkpoints.iterdir()) == ["iter_00001"]
        assert [r["iteration"] for r in trainer.ranking] == [1]
        assert trainer.latest == first

        # A SIGKILL leaves the temp folder behind: resume ignores it and saves again.
        (checkpoints / ".partial-iter_00002-x" / "algo").mkdir(parents=True)
        assert latest_checkpoint(tmp_path / "run" / "symbols") == first
        monkeypatch.undo()
        trainer.restore(first)
        trainer.iterate(evaluate=True, checkpoint=True)
        assert latest_checkpoint(tmp_path / "run" / "symbols") == checkpoints / "iter_00002"
        state = json.loads((checkpoints / "iter_00002" / "trainer_state.json").read_text())
        assert state["iteration"] == 2
        assert {r["iteration"] for r in state["ranking"]} == {1, 2}
        # A complete checkpoint is never replaced.
        trainer.iteration = 1
        with pytest.raises(ConfigError, match="refusing to overwrite"):
            trainer.save({"sharpe": 0.0})
    finally:
        trainer.stop()


def _wait_for(predicate: Any, timeout: float, what: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            raise AssertionError(f"the run ended (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.mark.slow
def test_sigkilled_driver_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    """The whole `train pipeline` process group is SIGKILLed after the symbol phase's second
    checkpoint; `--resume` skips the pretraining, goes on from that checkpoint and loses at
    most the iterations after it (one checkpoint interval)."""
    payload = {
        **TINY,
        "extends": "none",  # the tiny run as it is, not over the default preset
        "runs_dir": str(tmp_path / "runs"),
        "cache_dir": str(tmp_path / "cache"),
        "symbols": {**TINY["symbols"], "iterations": 6, "checkpoint_every": 2, "eval_every": 2},
    }
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(payload))
    run_dir = tmp_path / "run"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "multiagent.cli", "train", "pipeline"]
    common = ["--to-phase", "symbols", "--tracking-uri", "none"]
    process = subprocess.Popen(
        [*command, "--config", str(config), "--run-dir", str(run_dir), *common],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: Ray's helpers die with it
    )
    symbols = run_dir / "symbols"
    try:
        _wait_for(
            lambda: (symbols / "checkpoints" / "iter_00004" / "trainer_state.json").is_file(),
            240,
            "the second checkpoint",
            process,
        )
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    logged_before = [r["iteration"] for r in rows(symbols / "metrics.jsonl")]
    pipeline = json.loads((run_dir / "pipeline.json").read_text())
    assert pipeline["phases"]["symbols"]["status"] == "running"

    resumed = subprocess.run(
        [*command, "--resume", str(run_dir), *common],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "[pretrain] done earlier, skipped" in resumed.stdout
    resumed_at = [line for line in resumed.stdout.splitlines() if "resumed at iteration" in line]
    assert resumed_at and "resumed at iteration 4" in resumed_at[0], resumed.stdout[-2000:]
    lost = [i for i in logged_before if i > 4]
    assert len(lost) <= 2, "more than one checkpoint interval was lost"
    logged = [r["iteration"] for r in rows(symbols / "metrics.jsonl")]
    assert logged == [1, 2, 3, 4, 5, 6]
    pipeline = json.loads((run_dir / "pipeline.json").read_text())
    assert pipeline["phases"]["symbols"]["status"] == "done"
    assert pipeline["phases"]["symbols"]["iterations"] == 6
    assert (symbols / "checkpoints" / "iter_00006" / "trainer_state.json").is_file()
