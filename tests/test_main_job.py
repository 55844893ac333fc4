"""The main job as a Python function (`multiagent run` is a thin wrapper around it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from multiagent.config import load_preset
from multiagent.training import run_main_job


class Recorder:
    """A `MainJobView` that writes down which steps it was shown, in order."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    def working(self, description: str):  # type: ignore[no-untyped-def]
        from contextlib import nullcontext

        self.steps.append(f"working: {description}")
        return nullcontext()

    def prepared(self, prepared, config) -> None:  # type: ignore[no-untyped-def]
        self.steps.append("prepared")

    def baseline(self, rollout, config) -> None:  # type: ignore[no-untyped-def]
        self.steps.append("baseline")

    def run_folder(self, run_dir: Path) -> None:
        self.steps.append("run_folder")

    def trained(self, result) -> None:  # type: ignore[no-untyped-def]
        self.steps.append("trained")

    def reported(self, files) -> None:  # type: ignore[no-untyped-def]
        self.steps.append("reported")


def test_main_job_without_training_prepares_and_rolls_the_baseline_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_preset("quick").model_copy(update={"cache_dir": str(tmp_path / "cache")})
    view = Recorder()
    job = run_main_job(config, "quick", train=False, view=view)
    assert view.steps == [
        "working: loading data and building features...",
        "prepared",
        "working: rolling the baseline through the hierarchical env...",
        "baseline",
    ]
    assert job.run_dir is None and job.training is None and job.report is None
    assert job.prepared.train_views and job.baseline.steps > 0
    assert not (tmp_path / "runs").exists()  # no run folder without training
    # Same seed, same baseline: the job is deterministic.
    again = run_main_job(config, "quick", train=False)
    assert again.baseline.episodes == job.baseline.episodes
