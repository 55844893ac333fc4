"""End-to-end symbol training on 2 CPUs: checkpoints, resume, guard, telemetry, optimizer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from support.learners import local_learner
from support.tiny import tiny_config

from multiagent.errors import ConfigError
from multiagent.rllib.env import SymbolAgentsEnv, market_for
from multiagent.rllib.policy import GreedyPolicy
from multiagent.rllib.symbols import SymbolTrainer
from multiagent.rllib.trainer import STATE_FILE
from multiagent.training.pretrain_phase import run_pretrain

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]


def learner_of(trainer: SymbolTrainer) -> Any:
    return local_learner(trainer.algo)


def weights(trainer: SymbolTrainer) -> dict[str, torch.Tensor]:
    module = learner_of(trainer).module[trainer.symbol_id]
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_rllib_accepts_the_symbol_agents_env(tmp_path: Path) -> None:
    from ray.rllib.utils.pre_checks.env import check_multiagent_environments

    config = tiny_config(tmp_path)
    market, prepared = market_for(config)
    check_multiagent_environments(SymbolAgentsEnv(market, prepared.train_views, config.env))


def test_tiny_training_run_writes_checkpoints_metrics_and_export(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, iterations=3, keep_best=1)
    run_dir = tmp_path / "run"
    trainer = SymbolTrainer(config, run_dir)
    try:
        result = trainer.train(3)
        optimizers = learner_of(trainer).registered_optimizers()
        params = [p for group in optimizers[0].param_groups for p in group["params"]]
    finally:
        trainer.stop()
    # One optimizer, every trainable parameter exactly once, one group per module part.
    assert len(optimizers) == 1
    assert len({id(p) for p in params}) == len(params)
    assert len(optimizers[0].param_groups) == 3  # encoder, pi, vf (tiny: no core)
    rows = [
        json.loads(line) for line in (run_dir / "symbols/metrics.jsonl").read_text().splitlines()
    ]
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    for key in (
        "policy_entropy",
        "executed_action_entropy",
        "voluntary_trade_rate",
        "masked_action_rate",
        "val_sharpe",
        "entropy_coeff",
    ):
        assert all(key in r for r in rows), key
    ended = [r for r in rows if np.isfinite(r["masked_action_rate"])]
    assert ended, "no episode ended: telemetry never logged"
    assert all(r["masked_action_rate"] == 0.0 for r in ended)  # the module honours the mask
    assert all(0 <= r["voluntary_trade_rate"] <= 1 for r in ended)
    # keep_best=1: the best checkpoint and the latest survive, the rest is deleted.
    live = [r for r in result.ranking if not r.get("deleted")]
    kept = {Path(p.name) for p in (run_dir / "symbols/checkpoints").iterdir()}
    assert {Path(Path(r["checkpoint"]).name) for r in live} <= kept
    assert len(kept) <= 2
    assert result.latest_checkpoint is not None and result.latest_checkpoint.exists()
    assert result.policy_path is not None and result.policy_path.exists()
    assert (run_dir / "config.yaml").exists()
    policy = GreedyPolicy.load(result.policy_path)
    actions = policy.act(
        np.zeros((3, trainer.example_obs.shape[1]), np.float32),
        np.ones((3, trainer.n_actions), np.int8),
    )
    assert actions.shape == (3,)


def test_resume_restores_weights_optimizer_and_loop_state(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, entropy_guard={"warmup_iterations": 0, "min_entropy": 1.0})
    run_dir = tmp_path / "run"
    first = SymbolTrainer(config, run_dir)
    try:
        first.train(2)
        saved = weights(first)
        saved_boost = first.boost
        (optimizer,) = learner_of(first).registered_optimizers()
        saved_steps = [int(s["step"]) for s in optimizer.state_dict()["state"].values()]
        checkpoint = first.latest
    finally:
        first.stop()
    assert checkpoint is not None
    assert saved_boost > 1.0  # min_entropy 1.0 = always below: the guard raised the coefficient
    state = json.loads((checkpoint / STATE_FILE).read_text())
    assert state["iteration"] == 2

    second = SymbolTrainer(config, run_dir, resuming=True)
    try:
        second.restore(checkpoint)
        restored = weights(second)
        assert restored.keys() == saved.keys()
        for key in saved:
            assert torch.equal(saved[key], restored[key]), key
        (optimizer,) = learner_of(second).registered_optimizers()
        assert [int(s["step"]) for s in optimizer.state_dict()["state"].values()] == saved_steps
        assert second.iteration == 2
        assert second.boost == saved_boost
        assert learner_of(second).get_entropy_boost(second.symbol_id) == saved_boost
        result = second.train(3)
    finally:
        second.stop()
    assert [row["iteration"] for row in result.history] == [3]
    # The learner's coefficient is the configured 0.01 times the boost in force.
    assert result.history[0]["entropy_coeff"] > 0.01


def test_frozen_pretrained_encoder_stays_fixed_and_loaded(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, policy={"encoder": "frozen"})
    _market, prepared = market_for(config)
    output = run_pretrain(config, prepared, tmp_path / "encoder")
    pretrained = output.result.encoder.state_dict()
    trainer = SymbolTrainer(config, tmp_path / "run", encoder_path=output.path)
    try:
        before = weights(trainer)
        for key, value in pretrained.items():
            assert torch.equal(before[f"encoder.{key}"], value), key
        trainer.train(1)
        after = weights(trainer)
        env_runner_encoder = trainer.algo.get_module(trainer.symbol_id).encoder.state_dict()
    finally:
        trainer.stop()
    for key in before:
        if key.startswith("encoder."):
            assert torch.equal(before[key], after[key]), key
            assert torch.equal(env_runner_encoder[key.removeprefix("encoder.")], after[key])
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("pi."))


def test_pretrained_mode_needs_an_encoder_and_matching_features(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, policy={"encoder": "finetune"})
    with pytest.raises(ConfigError, match="pretrained encoder"):
        SymbolTrainer(config, tmp_path / "run")


def test_cli_pretrain_train_and_resume(tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from multiagent.cli import app

    config = tiny_config(tmp_path, policy={"encoder": "finetune"}, iterations=1)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    run_dir = tmp_path / "cli_run"
    runner = CliRunner()
    result = runner.invoke(app, ["pretrain", "--config", str(path), "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert (run_dir / "encoder/encoder.pt").is_file()
    result = runner.invoke(
        app, ["train", "symbols", "--config", str(path), "--run-dir", str(run_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "best checkpoint on validation (backtest, greedy, master neutral)" in result.output
    checkpoint = run_dir / "symbols/checkpoints/iter_00001"
    assert checkpoint.is_dir()
    result = runner.invoke(
        app, ["train", "symbols", "--resume", str(checkpoint), "--iterations", "2"]
    )
    assert result.exit_code == 0, result.output
    assert (run_dir / "symbols/checkpoints/iter_00002").is_dir()
    rows = (run_dir / "symbols/metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["iteration"] for r in rows] == [1, 2]
    # A checkpoint folder that is not one fails with one clear line, not a traceback.
    result = runner.invoke(app, ["train", "symbols", "--resume", str(tmp_path / "a/b/c/d")])
    assert result.exit_code == 1
    assert "not a run folder" in result.output or "not a symbols checkpoint" in result.output


def test_main_job_runs_the_pipeline_on_the_bundled_quick_preset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README command 1 on the quick preset, end to end: the four phases, the hierarchy
    comparison and the report (runs/ lands in a temp folder)."""
    from typer.testing import CliRunner

    from multiagent.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "--preset", "quick"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs/quick"
    pipeline = json.loads((run / "pipeline.json").read_text())
    assert [
        pipeline["phases"][p]["status"] for p in ("pretrain", "symbols", "master", "joint")
    ] == ["done"] * 4
    assert pipeline["phases"]["pretrain"]["output"] == "encoder/encoder.pt"  # run-relative
    assert (
        pipeline["phases"]["master"]["started_from"]
        == pipeline["phases"]["symbols"]["best_checkpoint"]
    )
    comparison = json.loads((run / "hierarchy/comparison.json").read_text())
    assert set(comparison["systems"]) == {"independent", "hierarchical", "joint"}
    assert "Hierarchy on the test split" in result.output
    assert (run / "symbols/policy.pt").is_file()
    again = CliRunner().invoke(app, ["run", "--preset", "quick", "--no-train"])
    assert again.exit_code == 0
    assert not (tmp_path / "runs/quick-2").exists()  # no run folder without training
    report = tmp_path / "runs/quick/report"
    plots = ("equity.png", "drawdown.png", "independent_actions.png", "hierarchical_budgets.png")
    for name in ("report.json", "report.md", *plots):
        assert (report / name).stat().st_size > 0, name
    # reported, not enforced, by the main job; led by the hierarchy
    assert "gates of hierarchical (lead" in result.output
    assert "hierarchical - independent: Sharpe" in result.output

    # The RLlib checkpoint the policy was exported from scores exactly like the export, and
    # `report` on the run folder reproduces the main job's report.json byte for byte.
    from_export = json.loads((report / "report.json").read_text())
    assert from_export["agents"] == ["independent", "hierarchical", "joint"]
    assert from_export["lead"] == "hierarchical"
    markdown = (report / "report.md").read_text()
    assert "## Verdict: the hierarchical system" in markdown
    assert "Paired differences to `independent`" in markdown
    for system, metrics in comparison["systems"].items():
        assert from_export["policies"][system]["metrics"]["sharpe"] == metrics["sharpe"], system
    for phase, system in (("symbols", "independent"), ("master", "hierarchical")):
        ranking = json.loads((run / phase / "ranking.json").read_text())
        best = next(r for r in ranking if not r.get("deleted"))["checkpoint"]
        out = tmp_path / f"from_rllib_{phase}"
        evaluated = CliRunner().invoke(
            app,
            ["evaluate", "--checkpoint", str(run / best), "--out", str(out), "--no-fail-on-gates"],
        )
        assert evaluated.exit_code == 0, evaluated.output
        from_rllib = json.loads((out / "report.json").read_text())
        assert from_rllib["agents"] == [system]
        assert from_rllib["source"]["systems"][system]["kind"] == "rllib"
        assert from_rllib["policies"][system] == from_export["policies"][system]
        # `multiagent evaluate --part validation` on the best checkpoint gives the validation
        # figures training recorded for it (the master included from phase 3 on).
        out = tmp_path / f"validation_{phase}"
        on_validation = CliRunner().invoke(
            app,
            [
                "evaluate",
                "--checkpoint",
                str(run / best),
                "--part",
                "validation",
                "--no-walk-forward",
                "--no-stress",
                "--out",
                str(out),
                "--no-fail-on-gates",
            ],
        )
        assert on_validation.exit_code == 0, on_validation.output
        figures = json.loads((out / "report.json").read_text())["policies"][system]["metrics"]
        for key, value in pipeline["phases"][phase]["validation"].items():
            assert figures[key] == pytest.approx(value, rel=1e-12, abs=1e-12), (phase, key)
    rerun = CliRunner().invoke(app, ["report", "runs/quick", "--no-fail-on-gates"])
    assert rerun.exit_code == 0, rerun.output
    assert (report / "report.json").read_bytes() == (
        tmp_path / "runs/quick/report-2/report.json"
    ).read_bytes()
    # Run records are relative to the run folder: a moved run still evaluates and resolves.
    moved = tmp_path / "elsewhere/quick"
    moved.parent.mkdir()
    shutil.move(str(run), str(moved))
    again = CliRunner().invoke(
        app,
        ["evaluate", "--checkpoint", str(moved), "--system", "joint", "--no-fail-on-gates"],
    )
    assert again.exit_code == 0, again.output
    joint = json.loads((moved / "report-3/report.json").read_text())
    assert joint["policies"]["joint"] == from_export["policies"]["joint"]
    pipeline = json.loads((moved / "pipeline.json").read_text())
    assert (moved / pipeline["phases"]["joint"]["best_checkpoint"]).is_dir()
