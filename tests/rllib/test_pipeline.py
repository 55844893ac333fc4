"""`multiagent train pipeline`: phase bookkeeping, resume after a kill, reruns, the comparison.

The fast tests check the bookkeeping without Ray. The slow ones run one tiny run through all
four phases on 2 CPUs: the CLI up to the symbol phase, then the master phase killed after its
first checkpoint, ``--resume`` (continues it and runs the joint phase and the comparison), and a
``--from-phase master`` rerun.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hierarchy_configs import hierarchy_config
from rich.console import Console

from multiagent.config import RunConfig
from multiagent.errors import ConfigError
from multiagent.runs.folders import save_run_config, write_json
from multiagent.training.pipeline import Pipeline, run_pipeline
from multiagent.training.run_state import PIPELINE_FILE, latest_checkpoint, phase_range

TINY_PPO = {"train_batch_size": 200, "minibatch_size": 50, "num_epochs": 2}
PHASE = {"checkpoint_every": 1, "eval_every": 1, "ppo": TINY_PPO}


def pipeline_config(tmp_path: Path) -> RunConfig:
    return hierarchy_config(
        tmp_path,
        symbols={"iterations": 1, "policy": {"hidden": [16], "encoder": "finetune"}},
        master={**PHASE, "iterations": 2, "keep_best": 2, "policy": {"hidden": [16]}},
        joint={**PHASE, "iterations": 1, "centralized_critic": True},
    )


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def state(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / PIPELINE_FILE).read_text()))


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# bookkeeping (no Ray) --------------------------------------------------------------------


def test_phase_range_and_its_errors() -> None:
    assert phase_range(None, None) == ["pretrain", "symbols", "master", "joint"]
    assert phase_range("master", None) == ["master", "joint"]
    assert phase_range(None, "symbols") == ["pretrain", "symbols"]
    assert phase_range("master", "master") == ["master"]
    with pytest.raises(
        ConfigError, match=r"no phase 'mastr'; this run's phases are pretrain, symbols"
    ):
        phase_range("mastr", None)
    agent_phases = ("pretrain", "agent")
    assert phase_range(None, None, agent_phases) == ["pretrain", "agent"]
    with pytest.raises(
        ConfigError, match=r"no phase 'master'; this run's phases are pretrain, agent"
    ):
        phase_range("master", None, agent_phases)
    with pytest.raises(ConfigError, match="no phase 'all'"):
        phase_range(None, "all")
    with pytest.raises(ConfigError, match="--from-phase joint comes after --to-phase symbols"):
        phase_range("joint", "symbols")


def test_latest_checkpoint_is_the_highest_iteration_with_a_state_file(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path / "master") is None
    for name in ("iter_00002", "iter_00010", "iter_00009", "iter_00011"):
        folder = tmp_path / "master/checkpoints" / name
        folder.mkdir(parents=True)
        if name != "iter_00011":  # a checkpoint killed before its state file was written
            (folder / "trainer_state.json").write_text("{}")
    assert latest_checkpoint(tmp_path / "master") == tmp_path / "master/checkpoints/iter_00010"


def test_a_phase_needs_its_predecessor_finished(tmp_path: Path) -> None:
    config = pipeline_config(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_json(run_dir / PIPELINE_FILE, {"phases": {"symbols": {"status": "running"}}})
    with pytest.raises(ConfigError, match=r"no finished symbols phase \(see .*pipeline\.json\)"):
        Pipeline(config, run_dir).run(["master", "joint"])
    with pytest.raises(ConfigError, match=r"no finished pretrain phase .*pipeline\.json"):
        Pipeline(config, run_dir).run(["symbols"])
    # A scratch encoder needs no pretraining before the symbol phase; joint needs master.
    scratch = hierarchy_config(tmp_path, symbols={"policy": {"encoder": "scratch"}})
    Pipeline(scratch, tmp_path / "scratch")._check_inputs("symbols")
    with pytest.raises(ConfigError, match="no finished master phase"):
        Pipeline(config, run_dir).run(["joint"])
    assert not (run_dir / "archive").exists()  # the check comes before anything is moved


def test_continuing_needs_the_run_folder_and_its_own_config(tmp_path: Path) -> None:
    config = pipeline_config(tmp_path)
    with pytest.raises(ConfigError, match="not a run folder"):
        run_pipeline(None, tmp_path / "nothing", resume=True)
    with pytest.raises(ConfigError, match="not a run folder"):
        run_pipeline(None, tmp_path / "nothing", from_phase="master")
    run_dir = tmp_path / "run"
    save_run_config(config, run_dir)
    other = hierarchy_config(tmp_path, seed=4)
    with pytest.raises(ConfigError, match="made with another config"):
        run_pipeline(other, run_dir, resume=True)
    with pytest.raises(ConfigError, match="no phase 'warmup'"):
        run_pipeline(None, run_dir, from_phase="warmup")
    with pytest.raises(ConfigError, match="a run config is needed"):
        run_pipeline(None, tmp_path / "new")


def test_resume_restarts_a_phase_without_checkpoint_keeping_its_partial_output(
    tmp_path: Path,
) -> None:
    """Pretraining keeps no checkpoint: a killed one starts over, the partial folder archived."""
    config = pipeline_config(tmp_path)
    run_dir = tmp_path / "run"
    partial = run_dir / "encoder"
    partial.mkdir(parents=True)
    (partial / "half_written.pt").write_text("partial")
    write_json(run_dir / PIPELINE_FILE, {"phases": {"pretrain": {"status": "running"}}})
    result = Pipeline(config, run_dir).run(["pretrain"], resume=True)
    assert (run_dir / "archive/pretrain-1/half_written.pt").read_text() == "partial"
    assert (run_dir / "encoder/encoder.pt").is_file()
    record = state(run_dir)["phases"]["pretrain"]
    assert record["status"] == "done" and record == result.phases["pretrain"]
    assert record["output"] == "encoder/encoder.pt"  # relative: a run folder can move
    assert math.isfinite(record["validation"]["loss"])
    # Resuming a finished pipeline does nothing.
    again = Pipeline(config, run_dir).run(["pretrain"], resume=True)
    assert again.phases["pretrain"] == record
    assert not (run_dir / "archive/pretrain-2").exists()


def test_progress_lines_name_their_phase(tmp_path: Path) -> None:
    config = pipeline_config(tmp_path)
    run_dir = tmp_path / "run"
    write_json(run_dir / PIPELINE_FILE, {"phases": {"pretrain": {"status": "done"}}})
    out = io.StringIO()
    Pipeline(config, run_dir, console=Console(file=out, width=200)).run(["pretrain"], resume=True)
    assert out.getvalue() == "[pretrain] done earlier, skipped\n"


# one tiny run through the phases (Ray) ---------------------------------------------------


class Killed(Exception):
    pass


def evaluate_split(path: Path, part: str) -> Any:
    """`multiagent evaluate --checkpoint PATH --part PART` without walk-forward or stress."""
    from multiagent.evaluation.run import evaluate_systems
    from multiagent.evaluation.sources import resolve, run_config_for

    source = resolve(path)
    config = run_config_for(source, None)
    settings = config.evaluation.model_copy(
        update={
            "part": part,
            "walk_forward": config.evaluation.walk_forward.model_copy(update={"enabled": False}),
            "stress": config.evaluation.stress.model_copy(update={"enabled": False}),
        }
    )
    return evaluate_systems(source, config, settings=settings)


@pytest.fixture(scope="module")
def symbols_run(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`multiagent train pipeline --config X --run-dir RUN --to-phase symbols`."""
    from typer.testing import CliRunner

    from multiagent.cli import app

    tmp = tmp_path_factory.mktemp("pipeline")
    config = pipeline_config(tmp)
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    run_dir = tmp / "run"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "pipeline",
            "--config",
            str(path),
            "--run-dir",
            str(run_dir),
            "--to-phase",
            "symbols",
        ],
    )
    yield config, run_dir, result


@pytest.mark.slow
def test_cli_runs_the_first_phases_and_rejects_unknown_phases(symbols_run: Any) -> None:
    from typer.testing import CliRunner

    from multiagent.cli import app

    config, run_dir, result = symbols_run
    assert result.exit_code == 0, result.output
    assert "Pipeline" in result.output
    phases = state(run_dir)["phases"]
    assert set(phases) == {"pretrain", "symbols"}
    assert all(record["status"] == "done" for record in phases.values())
    assert (run_dir / "encoder/encoder.pt").is_file()
    assert phases["symbols"]["iterations"] == config.symbols.iterations
    assert not Path(phases["symbols"]["best_checkpoint"]).is_absolute()
    assert (run_dir / phases["symbols"]["best_checkpoint"]).is_dir()
    assert (run_dir / "symbols/policy.pt").is_file()
    assert not (run_dir / "master").exists()
    data = json.loads((run_dir / "data.json").read_text())  # the market it trained on
    assert data["symbols"] and len(data["fingerprint"]) == 64 and "notes" in data

    for option in ("--from-phase", "--to-phase"):
        bad = CliRunner().invoke(
            app, ["train", "pipeline", "--run-dir", str(run_dir), option, "symbol"]
        )
        assert bad.exit_code == 1
        errors = [line for line in bad.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1  # one error (the console may wrap it)
        assert (
            "error: no phase 'symbol'; the phases are pretrain, symbols, master, joint "
            "(hierarchy) or pretrain, agent (portfolio, regimes, sessions)"
        ) in " ".join(bad.output.split())
        assert "Traceback" not in bad.output
    missing = CliRunner().invoke(app, ["train", "pipeline", "--from-phase", "master"])
    assert missing.exit_code == 1
    assert "--from-phase continues an existing run" in missing.output


@pytest.mark.slow
def test_killed_master_phase_resumes_then_joint_compares_and_reruns_archive(
    symbols_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray.rllib.core.rl_module.rl_module import RLModule

    from multiagent.rllib.checkpoints import module_path
    from multiagent.rllib.hierarchy import HierarchyTrainer

    _config, run_dir, cli = symbols_run
    assert cli.exit_code == 0, cli.output
    symbols_best = state(run_dir)["phases"]["symbols"]["best_checkpoint"]
    symbols_files = listing(run_dir / "symbols")

    # The joint phase cannot start before the master phase finished.
    with pytest.raises(ConfigError, match=r"no finished master phase .*pipeline\.json"):
        run_pipeline(None, run_dir, from_phase="joint")

    # 1. The master phase dies during its second iteration, after its first checkpoint.
    def die(self: HierarchyTrainer, row: dict[str, Any]) -> None:
        if self.iteration == 2:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(HierarchyTrainer, "after_iteration", die)
        with pytest.raises(Killed):
            run_pipeline(None, run_dir, from_phase="master")
    phases = state(run_dir)["phases"]
    assert phases["master"]["status"] == "running"
    assert "joint" not in phases
    master = run_dir / "master"
    assert sorted(p.name for p in (master / "checkpoints").iterdir()) == ["iter_00001"]
    assert [r["iteration"] for r in rows(master / "metrics.jsonl")] == [1]
    init = json.loads((master / "init.json").read_text())
    assert init["from"] == symbols_best
    assert init["modules"] == ["symbol"] and init["initialized_fresh"] == {"symbol": []}
    # A row logged past the last checkpoint (the run died before checkpointing it).
    with (master / "metrics.jsonl").open("a") as handle:
        handle.write(json.dumps({"iteration": 2, "lost": True}) + "\n")

    # 2. --resume: earlier phases skipped, master goes on from iteration 1, then joint.
    out = io.StringIO()
    result = run_pipeline(None, run_dir, resume=True, console=Console(file=out, width=200))
    text = out.getvalue()
    assert "[pretrain] done earlier, skipped" in text
    assert "[symbols] done earlier, skipped" in text
    assert "[master] resuming" in text and "[master] resumed at iteration 1" in text
    assert "[joint] starting" in text
    phases = state(run_dir)["phases"]
    assert set(phases) == {"pretrain", "symbols", "master", "joint"}
    assert all(record["status"] == "done" for record in phases.values())
    assert phases == result.phases
    assert phases["master"]["iterations"] == 2 and phases["joint"]["iterations"] == 1
    assert phases["master"]["started_from"] == symbols_best
    logged = rows(master / "metrics.jsonl")
    assert [r["iteration"] for r in logged] == [1, 2]
    assert not any("lost" in r for r in logged)
    assert sorted(p.name for p in (master / "checkpoints").iterdir()) == [
        "iter_00001",
        "iter_00002",
    ]
    state_2 = json.loads((master / "checkpoints/iter_00002/trainer_state.json").read_text())
    assert state_2["iteration"] == 2
    assert listing(run_dir / "symbols") == symbols_files  # finished phases untouched
    assert not (run_dir / "archive").exists()

    # The joint phase started from the master phase's best checkpoint; the centralized symbol
    # critic reads a longer input, so its first layer starts fresh.
    joint_init = json.loads((run_dir / "joint/init.json").read_text())
    assert joint_init["from"] == phases["master"]["best_checkpoint"]
    assert joint_init["initialized_fresh"] == {"master": [], "symbol": ["vf.0.weight"]}

    # Across phases: the master phase left the whole symbol module as phase 2 made it (the
    # value heads too: master.symbol_value_heads_adapt is off by default).
    before = RLModule.from_checkpoint(
        str(module_path(run_dir / symbols_best, "symbol"))
    ).state_dict()
    master_best = run_dir / phases["master"]["best_checkpoint"]
    after = RLModule.from_checkpoint(str(module_path(master_best, "symbol"))).state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key

    # The comparison of the three systems on the test split.
    comparison = json.loads((run_dir / "hierarchy/comparison.json").read_text())
    # The data is synthetic, so the oracle allocator (over the independent agents) is the
    # yardstick next to the trained systems.
    trained = {"independent", "hierarchical", "joint"}
    assert set(comparison["systems"]) == trained | {"oracle_allocator"}
    assert comparison["systems"]["oracle_allocator"]["source"] is None
    assert comparison["part"] == "test" and comparison["bars"] > 0
    for system, metrics in comparison["systems"].items():
        assert math.isfinite(metrics["sharpe"]), system
        assert metrics["sharpe"] == result.comparison["systems"][system]["sharpe"]
    assert comparison["systems"]["joint"]["source"]["master"] == "joint/master.pt"
    assert set(comparison["paired"]["systems"]) == {"hierarchical", "joint", "oracle_allocator"}
    markdown = (run_dir / "hierarchy/comparison.md").read_text()
    assert all(f"| {system} |" in markdown for system in comparison["systems"])
    assert "Δ Sharpe" in markdown
    assert state(run_dir)["comparison"]["systems"].keys() == comparison["systems"].keys()

    # One engine: the validation figures recorded for each phase's best checkpoint are what
    # evaluating that checkpoint on the validation split gives, master included.
    for phase, system in (
        ("symbols", "independent"),
        ("master", "hierarchical"),
        ("joint", "joint"),
    ):
        recorded = phases[phase]["validation"]
        ranking = json.loads((run_dir / phase / "ranking.json").read_text())
        best = next(r for r in ranking if not r.get("deleted"))
        assert best["checkpoint"] == phases[phase]["best_checkpoint"]
        assert best["validation"] == recorded and best["val_sharpe"] == recorded["sharpe"]
        evaluated = evaluate_split(run_dir / best["checkpoint"], "validation")
        assert evaluated.report["agents"] == [system]
        metrics = evaluated.report["policies"][system]["metrics"]
        for key, value in recorded.items():
            assert metrics[key] == pytest.approx(value, rel=1e-12, abs=1e-12), (phase, key)
    # ... and the report of the run folder gives the comparison's figures for every system.
    report = evaluate_split(run_dir, "test").report
    assert report["agents"] == ["independent", "hierarchical", "joint", "oracle_allocator"]
    assert report["lead"] == "hierarchical"
    for system, metrics in comparison["systems"].items():
        for key, value in metrics.items():
            if key != "source":
                assert report["policies"][system]["metrics"][key] == value, (system, key)
    assert report["comparison"] == comparison["paired"]
    # The evaluation's MLflow run is nested under the pipeline's run, with the run's tags.
    from mlflow.tracking import MlflowClient

    from multiagent.evaluation.run import evaluate_source
    from multiagent.evaluation.sources import resolve, run_config_for

    tracked = state(run_dir)["mlflow"]
    source = resolve(run_dir)
    run_config = run_config_for(source, None)
    quick = run_config.evaluation.model_copy(
        update={
            "walk_forward": run_config.evaluation.walk_forward.model_copy(
                update={"enabled": False}
            ),
            "stress": run_config.evaluation.stress.model_copy(update={"enabled": False}),
        }
    )
    files = evaluate_source(source, run_config, run_dir / "report", settings=quick, plots=False)
    client = MlflowClient(tracking_uri=tracked["uri"])
    parent = client.get_run(tracked["run_id"])
    (nested,) = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{tracked['run_id']}' "
        "and tags.phase = 'evaluate'",
    )
    for tag in ("data_fingerprint", "seed", "git_revision"):
        assert nested.data.tags[tag] == parent.data.tags[tag], tag
    assert nested.data.metrics["hierarchical.sharpe"] == pytest.approx(
        files.evaluation.report["policies"]["hierarchical"]["metrics"]["sharpe"]
    )
    assert "hierarchical.vs_independent.sharpe" in nested.data.metrics
    artifacts = {a.path for a in client.list_artifacts(nested.info.run_id, "report")}
    assert {"report/report.json", "report/report.md"} <= artifacts

    # The exported systems (policy.pt + master.pt) act as their RLlib checkpoints do.
    exported = evaluate_split(run_dir / "master/policy.pt", "validation").report
    assert exported["agents"] == ["hierarchical"]
    assert (
        exported["policies"]["hierarchical"]["metrics"]["sharpe"]
        == phases["master"]["validation"]["sharpe"]
    )

    # 3. --from-phase master: the old master folder is archived whole, the phase reruns.
    old_master = listing(master)
    run_pipeline(None, run_dir, from_phase="master", to_phase="master")
    assert listing(run_dir / "archive/master-1") == old_master
    assert [r["iteration"] for r in rows(master / "metrics.jsonl")] == [1, 2]
    phases = state(run_dir)["phases"]
    assert phases["master"]["status"] == "done"
    assert phases["master"]["started_from"] == symbols_best
    assert listing(run_dir / "symbols") == symbols_files
