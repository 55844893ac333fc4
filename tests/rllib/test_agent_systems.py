"""The single-agent systems (portfolio, regimes, sessions) end to end on RLlib: the main job
(pretrain -> agent phase -> report with gates, MLflow), resume, the export's agreement with
the RLModule, and the env's conformance with Gymnasium and RLlib."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from support.agent_systems import SYSTEMS, agent_config

from multiagent.config import RunConfig, load_preset
from multiagent.envs import build_market
from multiagent.rllib.agent_env import AgentEnv
from multiagent.runs.prepare import prepare
from multiagent.training import run_main_job
from multiagent.training.pipeline import run_pipeline
from multiagent.training.run_state import PIPELINE_FILE


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_agent_env_passes_gymnasiums_checks(system: str, tmp_path: Path) -> None:
    # RLlib 2.60 checks multi-agent envs only (`check_multiagent_environments`); a
    # single-agent env is held to Gymnasium's checker, and sampled by RLlib in the slow tests.
    from gymnasium.utils.env_checker import check_env

    config = agent_config(system, tmp_path)
    prepared = prepare(config, use_cache=False)
    market = build_market(prepared.panel, prepared.features, config.agent.env.costs)
    env = AgentEnv(config, market, prepared.train_views)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"observations", "action_mask"}
    assert isinstance(env.action_space, gym.spaces.Discrete)


@pytest.mark.slow
@pytest.mark.parametrize("system", SYSTEMS)
def test_main_job_trains_evaluates_and_reports_the_system(
    system: str, ray_session: None, tmp_path: Path
) -> None:
    config = agent_config(system, tmp_path, policy={"hidden": [16], "encoder": "finetune"})
    job = run_main_job(config, system, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert job.run_dir is not None and job.training is not None and job.report is not None
    pipeline = json.loads((job.run_dir / PIPELINE_FILE).read_text())
    assert set(pipeline["phases"]) == {"pretrain", "agent"}
    agent = pipeline["phases"]["agent"]
    assert agent["status"] == "done" and agent["iterations"] == 2
    assert (job.run_dir / agent["policy"]).is_file()
    report = json.loads(job.report.json.read_text())
    assert report["system"] == system and report["lead"] == system
    metrics = report["policies"][system]["metrics"]
    for key in ("sharpe", "max_drawdown", "win_rate", "in_position", "trades_per_episode"):
        assert key in metrics
    assert report["episodes"] >= 1 and report["gates"]["regression"]
    baselines = {n for n, p in report["policies"].items() if p["kind"] == "baseline"}
    assert {"cash", "random"} <= baselines
    if system == "regimes":
        assert {"ALL_SYN000", "ALL_SYN001", "equal_weight"} <= baselines
    if system == "sessions":
        assert report["per_market"][system]
    assert (job.report.directory / "equity.png").is_file()
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], max_results=50
    )
    names = {r.info.run_name for r in runs}
    assert {f"{system}/agent", f"{system}/evaluate-test"} <= names
    # `multiagent evaluate` on the run folder: its own env's episodes, a new report folder.
    from typer.testing import CliRunner

    from multiagent.cli import app

    result = CliRunner().invoke(
        app,
        [
            "evaluate", "--checkpoint", str(job.run_dir), "--part", "validation",
            "--episodes", "2", "--no-fail-on-gates", "--tracking-uri", "none",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    again = json.loads((job.run_dir / "report-2" / "report.json").read_text())
    assert again["window"]["part"] == "validation" and again["system"] == system


class Killed(Exception):
    pass


@pytest.mark.slow
def test_a_killed_agent_phase_resumes_from_its_checkpoint(
    ray_session: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from multiagent.rllib.agent import AgentTrainer

    lstm = {"recurrent": "lstm", "recurrent_size": 8, "max_seq_len": 4, "hidden": [16]}
    config = agent_config("portfolio", tmp_path, iterations=3, policy=lstm)
    run_dir = tmp_path / "run"

    def die(self: AgentTrainer, row: dict[str, Any]) -> None:
        if self.iteration == 2:  # after the first checkpoint, before the second
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(AgentTrainer, "after_iteration", die)
        with pytest.raises(Killed):
            run_pipeline(config, run_dir, tracking_uri="none")
    assert json.loads((run_dir / PIPELINE_FILE).read_text())["phases"]["agent"]["status"] == (
        "running"
    )
    result = run_pipeline(None, run_dir, resume=True, tracking_uri="none")
    agent = result.phases["agent"]
    assert agent["status"] == "done" and agent["iterations"] == 3
    rows = [json.loads(line) for line in (run_dir / "agent" / "metrics.jsonl").open()]
    assert [r["iteration"] for r in rows] == [1, 2, 3]  # continued from iteration 1


@pytest.mark.slow
def test_the_regimes_export_acts_as_the_rlmodule(ray_session: None, tmp_path: Path) -> None:
    from multiagent.evaluation.episodes import NetAgent
    from multiagent.rllib.agent import AgentTrainer
    from multiagent.rllib.policy import InferencePolicy

    config = agent_config(
        "regimes",
        tmp_path,
        iterations=1,
        policy={
            "recurrent": "gru",
            "recurrent_size": 8,
            "max_seq_len": 4,
            "hidden": [16],
            "encoder": "scratch",
        },
    )
    trainer = AgentTrainer(config, tmp_path / "run")
    try:
        result = trainer.train(1)
        module = trainer.algo.get_module(trainer.symbol_id)
        assert module.assets == 2  # both assets' windows through the one encoder
        live = InferencePolicy(module).eval()
    finally:
        trainer.stop()
    assert result.policy_path is not None
    exported = NetAgent.load(str(result.policy_path))
    env = trainer.make_env("validation")
    obs, _ = env.reset(seed=1)
    state = torch.zeros(1, live.state_size)
    exported.reset(env)
    for _ in range(20):
        with torch.no_grad():
            logits, state = live(
                torch.from_numpy(obs["observations"][None]),
                torch.ones(1, env.n_actions),
                state,
            )
        action = int(logits.argmax())
        assert exported.act(obs["observations"], obs["action_mask"], env) == action
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    assert np.isfinite(obs["observations"]).all()


def small(name: str, tmp_path: Path) -> RunConfig:
    """The shipped preset ``name`` at a size CI affords: its data, env, policy and gates,
    fewer bars, 1 pretraining epoch, 1 PPO iteration, 2 test episodes."""
    data = load_preset(name).model_dump(mode="json")
    data["runs_dir"] = str(tmp_path / "runs")
    data["cache_dir"] = str(tmp_path / "cache")
    if name == "portfolio":
        data["data"].update(symbols=["AAPL", "JPM", "KO", "XOM"], start="2018-01-01")
    elif name == "regimes":
        data["data"]["start"] = "2016-01-01"
    else:
        data["data"]["sessions"].update(n_sessions=15, max_bars=150)
    data["pretrain"].update(epochs=1, windows_per_epoch=256, batch_size=64)
    data["agent"].update(iterations=1, checkpoint_every=1, eval_every=1)
    data["agent"]["ppo"].update(train_batch_size=200, minibatch_size=100, num_epochs=1)
    data["agent"]["evaluation"]["episodes"] = 2
    if name == "sessions":
        data["curriculum"]["stages"] = [{"name": "all", "sampling": "balanced"}]
    data["resources"] = {"num_envs_per_env_runner": 2}
    return RunConfig.model_validate(data)


@pytest.mark.slow
@pytest.mark.parametrize("name", SYSTEMS)
def test_each_shipped_preset_runs_end_to_end_on_a_small_size(
    name: str, ray_session: None, tmp_path: Path
) -> None:
    config = small(name, tmp_path)
    job = run_main_job(config, name, tracking_uri="none")
    assert job.report is not None and job.report.passed in (True, False)
    report = json.loads(job.report.json.read_text())
    assert report["system"] == name
    gates = [g["gate"] for g in report["gates"]["regression"]]
    if name == "regimes":  # the regime trader's own pass criteria
        assert report["gates"]["go"] == []
        assert gates == [
            "sharpe >= 0",
            "sharpe >= best_buy_and_hold - 0.5",
            "turnover <= 0.5",
            "rank_fraction <= 0.5",
        ]
        assert {"ALL_SPX", "ALL_NDX"} <= set(report["policies"])
    if name == "sessions":
        assert report["per_market"]["sessions"]
