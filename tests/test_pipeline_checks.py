"""`multiagent train pipeline` checks everything it can before Ray starts (issue 23).

A data/env mismatch, a missing data file or a bad ``pipeline.json`` fails with one line naming
the file or key, before Ray or the pretraining start (both are patched here to fail the test
if reached), and leaves no run folder behind; ``--resume`` without a ``pipeline.json`` is
refused with the way out. No test here starts Ray.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.tiny import TINY
from typer.testing import CliRunner

from multiagent.cli import app
from multiagent.config import RunConfig
from multiagent.errors import ConfigError
from multiagent.runs.folders import check_run_dir_free, save_run_config
from multiagent.runs.prepare import prepare
from multiagent.training.preflight import check_envs, check_run, check_slots
from multiagent.training.run_state import PIPELINE_FILE, discard_unstarted, read_state

runner = CliRunner()


class Reached(Exception):
    """Raised by the patched Ray start and pretraining: the check came too late."""


def payload(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """The tiny run (`support.tiny.TINY`, pretraining on) with sections merged one level deep."""
    data: dict[str, Any] = {
        **TINY,
        "runs_dir": str(tmp_path / "runs"),
        "cache_dir": str(tmp_path / "cache"),
    }
    data["symbols"] = {**TINY["symbols"], "policy": {"hidden": [16], "encoder": "finetune"}}
    for key, value in sections.items():
        base = data.get(key)
        data[key] = {**base, **value} if isinstance(base, dict) else value
    return data


def config_file(tmp_path: Path, **sections: Any) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"extends": "none", **payload(tmp_path, **sections)}))
    return path


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Ray's start and the pretraining fail the test when reached; -> what was reached."""
    import multiagent.rllib.ray_session as ray_session
    import multiagent.training.pretrain_phase as pretrain_phase

    reached: list[str] = []

    def refuse(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            reached.append(name)
            raise Reached(name)

        return call

    monkeypatch.setattr(ray_session, "init_ray", refuse("init_ray"))
    monkeypatch.setattr(pretrain_phase, "run_pretrain", refuse("run_pretrain"))
    return reached


def train(*args: str) -> Any:
    return runner.invoke(app, ["train", "pipeline", *args])


def one_error(output: str) -> str:
    """The one ``error:`` line of a failed command (the console may wrap it), no traceback."""
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    return " ".join(output[output.index("error:") :].split())


# new runs ------------------------------------------------------------------------------


def test_more_slots_than_symbols_fails_before_ray_and_leaves_no_folder(
    tmp_path: Path, no_ray: list[str]
) -> None:
    path = config_file(tmp_path, env={"n_symbols": 50})
    result = train("--config", str(path))
    assert result.exit_code == 1
    message = one_error(result.output)
    assert "`env.n_symbols` is 50 but the data (synthetic" in message
    assert "has 4 symbols: set `env.n_symbols` to 4 or fewer" in message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert no_ray == []


def test_a_missing_data_file_fails_before_ray_and_leaves_no_folder(
    tmp_path: Path, no_ray: list[str]
) -> None:
    missing = tmp_path / "gone.csv"
    path = config_file(tmp_path, data={"synthetic": None, "paths": [str(missing)]})
    run_dir = tmp_path / "run"
    result = train("--config", str(path), "--run-dir", str(run_dir))
    assert result.exit_code == 1
    assert f"{missing}: file does not exist" in result.output
    assert "Traceback" not in result.output
    assert not run_dir.exists()
    assert no_ray == []


def test_too_little_data_to_pretrain_fails_before_ray(tmp_path: Path, no_ray: list[str]) -> None:
    path = config_file(tmp_path, pretrain={"batch_size": 100_000})
    result = train("--config", str(path), "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 1
    assert "pretraining needs at least 100000 training windows" in one_error(result.output)
    assert not (tmp_path / "run").exists()
    assert no_ray == []


def test_overwrite_keeps_the_old_run_when_the_new_config_fails(
    tmp_path: Path, no_ray: list[str]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / PIPELINE_FILE).write_text('{"phases": {}}')
    path = config_file(tmp_path, env={"n_symbols": 50})
    result = train("--config", str(path), "--run-dir", str(run_dir), "--overwrite")
    assert result.exit_code == 1
    assert "`env.n_symbols` is 50" in one_error(result.output)
    assert sorted(p.name for p in run_dir.iterdir()) == [PIPELINE_FILE]
    assert no_ray == []


def test_a_start_that_fails_after_the_checks_removes_the_folder_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiagent.rllib.ray_session as ray_session

    def no_cluster() -> None:
        raise ConfigError("RAY_ADDRESS names no cluster")

    monkeypatch.setattr(ray_session, "init_ray", no_cluster)
    path = config_file(tmp_path)
    result = train("--config", str(path))
    assert result.exit_code == 1
    assert "RAY_ADDRESS names no cluster" in one_error(result.output)
    assert list((tmp_path / "runs").iterdir()) == []  # made for the run, then removed
    # A folder the user made is theirs: it stays (with what the start wrote).
    mine = tmp_path / "mine"
    mine.mkdir()
    result = train("--config", str(path), "--run-dir", str(mine))
    assert result.exit_code == 1
    assert mine.is_dir()


def test_the_main_job_checks_first_and_a_failed_start_leaves_no_folder(
    tmp_path: Path, no_ray: list[str]
) -> None:
    """`multiagent run`: the same checks before its run folder exists, and the folder it made
    is removed when the start fails after them."""
    bad = runner.invoke(app, ["run", "--config", str(config_file(tmp_path, env={"n_symbols": 50}))])
    assert bad.exit_code == 1 and "`env.n_symbols` is 50" in one_error(bad.output)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    failed = runner.invoke(
        app, ["run", "--config", str(config_file(tmp_path)), "--tracking-uri", "none"]
    )
    assert failed.exit_code != 0 and no_ray, failed.output  # it got as far as starting Ray
    assert list((tmp_path / "runs").iterdir()) == []


# continued runs ------------------------------------------------------------------------


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "old"
    save_run_config(RunConfig.model_validate(payload(tmp_path)), run_dir)
    return run_dir


def test_resume_without_pipeline_json_is_refused_with_the_way_out(
    old_run: Path, no_ray: list[str]
) -> None:
    before = {p.name: p.read_bytes() for p in old_run.iterdir()}
    result = train("--resume", str(old_run))
    assert result.exit_code == 1
    message = one_error(result.output)
    assert f"{old_run} has no pipeline.json, so --resume does not know where it stood" in message
    assert f"start a new run, or redo phases with --run-dir {old_run} --from-phase" in message
    assert {p.name: p.read_bytes() for p in old_run.iterdir()} == before
    assert no_ray == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"phases": {', "pipeline.json: cannot read it as JSON"),
        ("[]", "pipeline.json: not a pipeline record"),
        ('{"phases": {"pretrain": "done"}}', "pipeline.json: not a pipeline record"),
    ],
)
@pytest.mark.parametrize("how", ["--resume", "--from-phase"])
def test_a_corrupt_pipeline_json_is_named_before_ray(
    old_run: Path, no_ray: list[str], text: str, expected: str, how: str
) -> None:
    (old_run / PIPELINE_FILE).write_text(text)
    args = ["--resume", str(old_run)] if how == "--resume" else []
    if how == "--from-phase":
        args = ["--run-dir", str(old_run), "--from-phase", "symbols"]
    result = train(*args)
    assert result.exit_code == 1
    message = one_error(result.output)
    assert f"{old_run / PIPELINE_FILE}" in message and expected.split(": ", 1)[1] in message
    assert "delete it and start over with" in message
    assert (old_run / PIPELINE_FILE).read_text() == text
    assert no_ray == []


# the checks, one by one ------------------------------------------------------------------


def test_read_state_accepts_the_record_it_writes(tmp_path: Path) -> None:
    path = tmp_path / PIPELINE_FILE
    path.write_text(json.dumps({"phases": {"pretrain": {"status": "done"}}, "mlflow": {}}))
    assert read_state(path)["phases"] == {"pretrain": {"status": "done"}}
    path.write_text('{"phases": null}')
    with pytest.raises(ConfigError, match=r"not a pipeline record .*--from-phase pretrain"):
        read_state(path)


def test_discard_unstarted_keeps_a_run_with_a_phase(tmp_path: Path) -> None:
    started = tmp_path / "started"
    started.mkdir()
    (started / PIPELINE_FILE).write_text('{"phases": {"pretrain": {"status": "running"}}}')
    assert not discard_unstarted(started) and started.is_dir()
    unstarted = tmp_path / "unstarted"
    unstarted.mkdir()
    (unstarted / "config.yaml").write_text("seed: 1\n")
    (unstarted / PIPELINE_FILE).write_text('{"phases": {}, "mlflow": {}}')
    assert discard_unstarted(unstarted) and not unstarted.exists()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / PIPELINE_FILE).write_text("{")
    assert not discard_unstarted(corrupt) and corrupt.is_dir()


def test_check_run_dir_free_changes_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(ConfigError, match="already holds a run"):
        check_run_dir_free(run)
    check_run_dir_free(run, overwrite=True)
    assert (run / "config.yaml").is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_run_dir_free(tmp_path / "file", overwrite=True)
    check_run_dir_free(tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_pool_larger_than_the_data_is_named(tmp_path: Path) -> None:
    data = payload(tmp_path, system="portfolio")
    del data["symbols"], data["env"]  # the hierarchy's sections
    data["agent"] = {"env": {"pool_size": 9, "observation": {"window": 4}}}
    config = RunConfig.model_validate(data)
    with pytest.raises(ConfigError, match=r"`agent.env.pool_size` is 9 but the data .* has 4"):
        check_slots(config, prepare(config))


def test_a_training_split_without_episodes_is_named(tmp_path: Path) -> None:
    config = RunConfig.model_validate(payload(tmp_path))
    prepared = prepare(config)
    empty = type(prepared)(prepared.panel, prepared.features, prepared.split, [])
    with pytest.raises(ConfigError, match=r"the training split .* has no episode"):
        check_envs(config, empty)


def test_an_env_that_cannot_start_names_its_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiagent.training.preflight as preflight

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("window longer than the episode")

    config = RunConfig.model_validate(payload(tmp_path))
    prepared = prepare(config)
    monkeypatch.setattr(preflight, "_reset_env", broken)
    with pytest.raises(
        ConfigError,
        match=r"the hierarchy env \(`env`\) cannot start on the train split: window longer",
    ):
        check_envs(config, prepared)


def test_a_good_config_passes_every_check(tmp_path: Path) -> None:
    config = RunConfig.model_validate(payload(tmp_path))
    prepared = check_run(config, list(config.phases))
    assert prepared.train_views and prepared.validation_views


def test_the_run_records_its_data_with_the_repairs_row_by_row(tmp_path: Path) -> None:
    """`--repair`'s bars made missing are in the run's records (RUN/data.json, logged to MLflow
    with the config), not only on the console."""
    from multiagent.data.errors import DataFixWarning
    from multiagent.data.synthetic import SyntheticMarketConfig, generate_market
    from multiagent.training.pipeline import Pipeline
    from multiagent.training.run_state import DATA_FILE

    frame = generate_market(SyntheticMarketConfig(n_symbols=3, n_bars=700, seed=3)).to_frame()
    frame = frame.drop(columns=["signal"]).reset_index(drop=True)
    frame.loc[10, "close"] = 0.0  # an exchange's zero-price placeholder
    frame.to_csv(tmp_path / "prices.csv", index=False)
    data = {"paths": [str(tmp_path / "prices.csv")], "validation": {"repair": True}}
    config = RunConfig.model_validate({**payload(tmp_path), "data": data})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.warns(DataFixWarning, match="repaired 1 rows into missing bars"):
        Pipeline(config, run_dir)._write_data_record()
    record = json.loads((run_dir / DATA_FILE).read_text())
    assert record["symbols"] == ["SYN000", "SYN001", "SYN002"]
    assert any("row 11" in note and "made a missing bar" in note for note in record["notes"])


def test_a_run_checked_once_is_not_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI checks a new run, then the pipeline it starts checks it: the envs are built
    once for the same config, phases and data; another config is checked anew."""
    import multiagent.training.preflight as preflight

    built: list[str] = []
    real = preflight.check_envs
    monkeypatch.setattr(preflight, "check_envs", lambda c, p: (built.append("envs"), real(c, p)))
    config = RunConfig.model_validate(payload(tmp_path))
    prepared = check_run(config, ["pretrain", "symbols"])
    check_run(config, ["pretrain", "symbols"], prepared)
    assert built == ["envs"]
    check_run(config.model_copy(update={"seed": 4}), ["pretrain", "symbols"], prepared)
    assert built == ["envs", "envs"]
