"""A job resubmitted with the same run folder never overwrites the run there: it is refused
unless `--resume`, `--from-phase` or `--overwrite` says what to do with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from multiagent.cli import app
from multiagent.errors import ConfigError
from multiagent.runs.folders import claim_run_dir


def test_a_new_or_empty_folder_is_claimed(tmp_path: Path) -> None:
    assert claim_run_dir(tmp_path / "a" / "run").is_dir()
    (tmp_path / "empty").mkdir()
    assert claim_run_dir(tmp_path / "empty") == tmp_path / "empty"


def test_a_folder_holding_a_run_is_refused_and_left_alone(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "symbols").mkdir(parents=True)
    (run / "pipeline.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"already holds a run: continue it with --resume"):
        claim_run_dir(run)
    assert (run / "pipeline.json").read_text() == "{}"


def test_overwrite_replaces_it_and_a_file_is_never_a_run_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "symbols").mkdir(parents=True)
    (run / "pipeline.json").write_text("{}")
    assert claim_run_dir(run, overwrite=True) == run
    assert list(run.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        claim_run_dir(tmp_path / "file", overwrite=True)


def test_train_pipeline_refuses_an_existing_run_before_any_work(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "pipeline.json").write_text('{"phases": {}}')
    result = CliRunner().invoke(
        app, ["train", "pipeline", "--preset", "quick", "--run-dir", str(run)]
    )
    assert result.exit_code == 1
    assert "already holds a run" in result.output and "--overwrite" in result.output
    assert sorted(p.name for p in run.iterdir()) == ["pipeline.json"]


def test_a_run_folder_from_an_older_version_goes_on_and_another_config_is_refused(
    tmp_path: Path,
) -> None:
    """A config.yaml written before keys were added (here `system` and `agent`) is the same
    config: resuming it is allowed and leaves the file as it was; a different one is refused."""
    import yaml

    from multiagent.config import load_preset
    from multiagent.errors import ConfigError
    from multiagent.runs.folders import load_run_config, save_run_config

    config = load_preset("quick")
    old = config.model_dump(mode="json")
    del old["system"], old["agent"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    before = (tmp_path / "config.yaml").read_text()
    assert load_run_config(tmp_path) == config
    save_run_config(config, tmp_path)
    assert (tmp_path / "config.yaml").read_text() == before
    with pytest.raises(ConfigError, match="holds another config"):
        save_run_config(config.model_copy(update={"seed": 1}), tmp_path)
