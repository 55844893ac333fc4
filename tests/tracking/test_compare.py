"""`multiagent compare`: differing params only, key metrics, the PNG and JSON, errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from mlflow_server import free_port
from rich.console import Console
from typer.testing import CliRunner

from multiagent.cli import app
from multiagent.errors import ConfigError
from multiagent.tracking import Tracker
from multiagent.tracking.compare import (
    MAX_RUNS,
    compare_runs,
    comparison_figure,
    comparison_table,
    plot_comparison,
    write_comparison,
)

PNG = b"\x89PNG\r\n\x1a\n"


def render(table: object) -> str:
    console = Console(record=True, width=240)
    console.print(table)
    return console.export_text()


@pytest.fixture
def two_runs(store: str) -> tuple[str, str]:
    """Two runs of experiment "exp" that differ in lr and seed, share 20 other params."""
    shared = {"env": {f"k{i}": i for i in range(20)}}
    ids = []
    for lr, seed, sharpe in ((0.001, 1, [0.1, 0.4, 0.9]), (0.01, 2, [0.2, 0.1, -0.3])):
        with Tracker.start(store, "exp", f"lr{lr}") as run:
            run.log_params({**shared, "ppo": {"lr": lr}, "seed": seed})
            for step, value in enumerate(sharpe):
                run.log_metrics(
                    {"val_sharpe": value, "reward_mean": 10 * value, "extra": step}, step * 5
                )
            run.log_metrics({"val_max_drawdown": 0.1 * seed}, 10)
        ids.append(str(run.run_id))
        time.sleep(0.01)  # distinct start times: "newest first" is well defined
    return ids[0], ids[1]


def test_two_runs_side_by_side(store: str, two_runs: tuple[str, str], tmp_path: Path) -> None:
    first, second = two_runs
    comparison = compare_runs(store, [first, second], metrics=["extra"])
    assert comparison.differing == {"ppo.lr": ["0.001", "0.01"], "seed": ["1", "2"]}
    assert comparison.identical == 20
    assert comparison.metrics == {
        "val_sharpe": [0.9, -0.3],
        "val_max_drawdown": [0.1, 0.2],
        "reward_mean": [9.0, -3.0],
        "extra": [2.0, 2.0],
    }
    assert comparison.histories["val_sharpe"] == [
        [(0, 0.1), (5, 0.4), (10, 0.9)],
        [(0, 0.2), (5, 0.1), (10, -0.3)],
    ]
    assert [r.name for r in comparison.runs] == ["lr0.001", "lr0.01"]

    text = render(comparison_table(comparison))
    assert "ppo.lr" in text and "0.001" in text and "0.01" in text
    assert "20 identical params" in text
    assert "env.k3" not in text  # identical params are only counted
    assert "val_sharpe" in text and "-0.3" in text
    assert "policy_entropy" not in text  # a default metric no run logged

    json_path, png_path = write_comparison(comparison, tmp_path / "cmp")
    assert json_path.parent == png_path.parent == tmp_path / "cmp"
    assert png_path.read_bytes().startswith(PNG)
    saved = json.loads(json_path.read_text())
    assert saved["schema"] == "multiagent.compare/1"
    assert [r["run_id"] for r in saved["runs"]] == [first, second]
    assert saved["params"] == {
        "differing": {"ppo.lr": ["0.001", "0.01"], "seed": ["1", "2"]},
        "identical": 20,
    }
    assert saved["metrics"]["val_sharpe"] == [0.9, -0.3]
    assert saved["histories"]["val_sharpe"][1] == [[0, 0.2], [5, 0.1], [10, -0.3]]


def test_by_experiment_newest_first(store: str, two_runs: tuple[str, str]) -> None:
    first, second = two_runs
    comparison = compare_runs(store, experiment="exp")
    assert [r.run_id for r in comparison.runs] == [second, first]
    assert {r.experiment for r in comparison.runs} == {"exp"}
    assert comparison.differing["seed"] == ["2", "1"]


def test_experiment_capped_at_twenty(store: str) -> None:
    for i in range(MAX_RUNS + 2):
        with Tracker.start(store, "many", f"r{i}") as run:
            run.log_metrics({"val_sharpe": float(i)}, 0)
    comparison = compare_runs(store, experiment="many", histories=False)
    assert len(comparison.runs) == MAX_RUNS
    assert comparison.runs[0].name == f"r{MAX_RUNS + 1}"
    assert comparison.notes == ["experiment 'many' has more runs; compared the newest 20"]
    assert comparison.histories == {}


def test_ids_and_experiment_together_without_duplicates(
    store: str, two_runs: tuple[str, str]
) -> None:
    first, second = two_runs
    comparison = compare_runs(store, [first], experiment="exp")
    assert [r.run_id for r in comparison.runs] == [first, second]


def test_single_point_metrics_plot_as_bars(store: str, tmp_path: Path) -> None:
    for seed in (1, 2):
        with Tracker.start(store, "bars", f"s{seed}") as run:
            run.log_metrics({"val_sharpe": float(seed)}, 0)
    comparison = compare_runs(store, experiment="bars")
    assert comparison.histories["val_sharpe"] == [[(0, 2.0)], [(0, 1.0)]]
    path = plot_comparison(comparison, tmp_path / "bars.png")
    assert path.read_bytes().startswith(PNG)


def test_history_panels_tick_whole_steps(store: str, two_runs: tuple[str, str]) -> None:
    """Steps are iterations: no tick at 2.5 (issue 23)."""
    from matplotlib.ticker import MaxNLocator

    figure = comparison_figure(compare_runs(store, list(two_runs)))
    curves = [axis for axis in figure.axes if axis.get_xlabel() == "step"]
    assert curves
    for axis in curves:
        locator = axis.xaxis.get_major_locator()
        assert isinstance(locator, MaxNLocator)
        # over 3 steps an untold locator ticks every 0.25
        assert all(float(t).is_integer() for t in locator.tick_values(0, 2))


def test_overfitting_statistics_only_when_logged(
    store: str, two_runs: tuple[str, str], tmp_path: Path
) -> None:
    """A sweep's run (pbo, dsr) beside a report's (dsr, psr, spa_pvalue): their own section,
    a dash where a run lacks one; runs without any show no such rows."""
    first, _ = two_runs
    with Tracker.start(store, "exp", "sweep") as run:
        run.log_metrics({"pbo": 0.25, "dsr": 0.91, "trials": 8}, 0)
    sweep = str(run.run_id)
    with Tracker.start(store, "exp", "report") as run:
        run.log_metrics({"dsr": 0.5, "psr": 0.97, "spa_pvalue": 0.04}, 0)
    report = str(run.run_id)
    comparison = compare_runs(store, [first, sweep, report], metrics=["pbo"])
    assert comparison.statistics == {
        "dsr": [None, 0.91, 0.5],
        "psr": [None, None, 0.97],
        "pbo": [None, 0.25, None],
        "spa_pvalue": [None, None, 0.04],
    }
    assert "pbo" not in comparison.metrics and comparison.notes == []
    text = render(comparison_table(comparison))
    assert "PBO (probability of backtest overfitting)" in text and "0.250" in text
    assert "DSR (deflated Sharpe ratio)" in text and "0.910" in text
    assert "SPA p-value" in text and "0.040" in text
    json_path, _ = write_comparison(comparison, tmp_path / "cmp")
    assert json.loads(json_path.read_text())["statistics"]["pbo"] == [None, 0.25, None]
    plain = compare_runs(store, list(two_runs), histories=False)
    assert plain.statistics == {}
    assert "PBO" not in render(comparison_table(plain))


def test_output_folder_is_never_overwritten(
    store: str, two_runs: tuple[str, str], tmp_path: Path
) -> None:
    comparison = compare_runs(store, list(two_runs))
    first, _ = write_comparison(comparison, tmp_path / "out")
    second, _ = write_comparison(comparison, tmp_path / "out")
    assert first.parent.name == "out" and second.parent.name == "out-2"
    default, _ = write_comparison(comparison)  # ./compare-<time> (cwd is tmp_path)
    assert default.parent.parent == tmp_path and default.parent.name.startswith("compare-")


def test_errors_are_one_clear_line(store: str, two_runs: tuple[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run 0123abcd not found in sqlite:///"):
        compare_runs(store, [two_runs[0], "0123abcd"])
    with pytest.raises(ConfigError, match=r"no experiment named 'nope' .*\(experiments: .*exp"):
        compare_runs(store, experiment="nope")
    with pytest.raises(ConfigError, match="give run ids or --experiment"):
        compare_runs(store)
    with pytest.raises(ConfigError, match="compare at most 20"):
        compare_runs(store, [f"id{i}" for i in range(21)])
    missing = tmp_path / "elsewhere" / "mlflow.db"
    with pytest.raises(ConfigError, match="no MLflow database at"):
        compare_runs(f"sqlite:///{missing}", ["abc"])
    assert not missing.exists()  # not created empty by a look-up
    began = time.monotonic()
    with pytest.raises(ConfigError, match="does not answer"):
        compare_runs(f"http://127.0.0.1:{free_port()}", ["abc"])
    assert time.monotonic() - began < 5
    with pytest.raises(ConfigError, match="no tracking store"):
        compare_runs(None, ["abc"])


def test_empty_experiment(store: str) -> None:
    MlflowClient(tracking_uri=store).create_experiment("empty")
    with pytest.raises(ConfigError, match=r"experiment 'empty' in .* has no runs"):
        compare_runs(store, experiment="empty")


def test_cli_compare(store: str, two_runs: tuple[str, str], tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        ["compare", *two_runs, "--tracking-uri", store, "--metrics", "extra", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "ppo.lr" in result.output and "20 identical params" in result.output
    assert "extra" in result.output
    assert (out / "compare.png").read_bytes().startswith(PNG)
    assert json.loads((out / "compare.json").read_text())["metrics"]["extra"] == [2.0, 2.0]


def test_cli_compare_by_experiment_from_the_environment(
    store: str, two_runs: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    out = tmp_path / "made"
    out.mkdir()
    result = CliRunner().invoke(app, ["compare", "--experiment", "exp", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "compare.json").is_file()  # an empty existing folder is used as is


def test_cli_compare_unknown_run(store: str, two_runs: tuple[str, str]) -> None:
    result = CliRunner().invoke(app, ["compare", "feedbeef", "--tracking-uri", store])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"error: run feedbeef not found in {store}"]
    assert "Traceback" not in result.output
