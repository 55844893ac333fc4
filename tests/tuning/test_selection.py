"""A sweep's overfitting statistics from fake trial folders (no Ray): the returns matrix, who is
left out and why, PBO / V / N / DSR against direct computations, pbo.json / pbo.png, the
summary, the chosen config carrying its search, and the parent run's metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.tiny import tiny_config

from multiagent.config import SelectionRecord, load_config
from multiagent.evaluation.metrics import sharpe
from multiagent.evaluation.overfitting import probability_of_backtest_overfitting
from multiagent.evaluation.sharpe_stats import (
    deflated_sharpe_ratio,
    sharpe_moments,
    trial_sharpe_variance,
)
from multiagent.tuning.config import SweepConfig
from multiagent.tuning.outcome import export_best, log_outcome
from multiagent.tuning.selection import (
    load_trial_returns,
    save_trial_returns,
    selection_statistics,
    write_pbo,
)
from multiagent.tuning.summary import sweep_summary, write_summary

PNG = b"\x89PNG\r\n\x1a\n"
PERIODS = 252.0
FOLD = 40  # bars per validation fold; 2 folds


def trial(trial_id: str, objective: float, status: str = "done") -> dict[str, Any]:
    return {
        "trial_id": trial_id,
        "config": {"symbols.ppo.lr": 1e-4},
        "objective": objective,
        "status": status,
        "checkpoint": None,
        "path": None,
    }


def fake_sweep(tmp_path: Path, seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Six trials: four full (2 folds), one stopped by ASHA after fold 0, one scored with no
    returns kept, one errored; trial ``t2`` drifts up and has the best objective."""
    rng = np.random.default_rng(seed)
    trials = []
    for i in range(4):
        folds = [rng.normal(0.002 if i == 2 else 0.0, 0.01, FOLD) for _ in range(2)]
        save_trial_returns(
            tmp_path / "trials" / f"t{i}", folds, {"trial_id": f"t{i}", "periods": PERIODS}
        )
        trials.append(trial(f"t{i}", 2.0 if i == 2 else 0.1 * i))
    early = [rng.normal(0.0, 0.01, FOLD)]
    save_trial_returns(tmp_path / "trials" / "t4", early, {"periods": PERIODS})
    trials += [trial("t4", -0.5), trial("t5", 0.3), trial("t6", float("nan"), "error")]
    return trials, trials[2]


def kept(directory: Path, trial_id: str) -> np.ndarray:
    found = load_trial_returns(directory / "trials" / trial_id, trial_id)
    assert found is not None
    return found.returns


def test_the_matrix_keeps_every_trial_over_the_folds_all_reached(tmp_path: Path) -> None:
    from multiagent.tuning.selection import TrialReturns, returns_matrix

    full = TrialReturns("a", np.arange(10.0), PERIODS, [4, 6])
    early = TrialReturns("b", np.arange(4.0) + 100, PERIODS, [4])
    other = TrialReturns("c", np.arange(5.0), PERIODS, [5])  # another split: not comparable
    excluded: dict[str, str] = {}
    matrix, columns = returns_matrix({"a": full, "b": early}, excluded)
    assert columns == ["a", "b"] and matrix.shape == (4, 2) and excluded == {}
    np.testing.assert_array_equal(matrix[:, 0], np.arange(4.0))
    matrix, columns = returns_matrix({"a": full, "b": early, "c": other}, excluded)
    assert columns == ["a", "b"] and "c" in excluded


def test_returns_round_trip(tmp_path: Path) -> None:
    folds = [np.arange(3.0), np.arange(5.0)]
    save_trial_returns(tmp_path, folds, {"periods": 12.0, "objective": 1.5})
    loaded = load_trial_returns(tmp_path, "x")
    assert loaded is not None and loaded.folds == [3, 5] and loaded.periods == 12.0
    np.testing.assert_array_equal(loaded.returns, np.concatenate(folds))
    meta = json.loads((tmp_path / "validation_returns.json").read_text())
    assert meta["bars"] == 8 and meta["objective"] == 1.5
    assert not list(tmp_path.glob("*.tmp"))  # written atomically
    assert load_trial_returns(tmp_path / "none", "y") is None


def test_statistics_over_fake_trials(tmp_path: Path) -> None:
    trials, best = fake_sweep(tmp_path)
    stats = selection_statistics(trials, best, tmp_path, source="sweep tiny (2026-01-01)")
    # N counts every scored trial (the ASHA-stopped one and the one without returns too).
    assert stats.trials == 6
    # The ASHA-stopped trial counts too: every column over the folds all trials reached (fold 0).
    assert stats.pbo_trials == ["t0", "t1", "t2", "t3", "t4"]
    assert set(stats.excluded) == {"t5"}
    assert stats.excluded["t5"] == "no validation returns kept"
    matrix = np.column_stack([kept(tmp_path, i)[:FOLD] for i in stats.pbo_trials])
    direct = probability_of_backtest_overfitting(matrix, 16, periods=PERIODS)
    assert stats.pbo is not None and stats.pbo.pbo == direct.pbo
    np.testing.assert_array_equal(stats.pbo.logits, direct.logits)
    # V: the variance of every kept trial's annualized validation Sharpe (t4's fold 0 too).
    sharpes = [sharpe(kept(tmp_path, i), PERIODS) for i in ("t0", "t1", "t2", "t3", "t4")]
    assert stats.sharpe_variance == pytest.approx(np.var(sharpes, ddof=1))
    bar_sharpe, skew, kurtosis, bars = sharpe_moments(kept(tmp_path, "t2"))
    expected = deflated_sharpe_ratio(
        bar_sharpe, bars, 6, trial_sharpe_variance(sharpes, PERIODS), skew, kurtosis
    )
    assert stats.dsr == pytest.approx(expected) and 0.0 < stats.dsr < 1.0
    assert stats.dsr_inputs["bars"] == 2 * FOLD and stats.dsr_inputs["trials"] == 6
    record = stats.record
    assert record == SelectionRecord(
        trials=6, sharpe_variance=stats.sharpe_variance, source="sweep tiny (2026-01-01)"
    )

    written = write_pbo(stats, tmp_path)
    assert [p.name for p in written] == ["pbo.json", "pbo.png"]
    saved = json.loads((tmp_path / "pbo.json").read_text())
    assert saved["pbo"] == stats.pbo.pbo and saved["combinations"] == 12870
    assert saved["columns"] == ["t0", "t1", "t2", "t3", "t4"] and saved["blocks"] == 16
    assert (tmp_path / "pbo.png").read_bytes().startswith(PNG)

    final = {"part": "test", "metrics": {"sharpe": 0.4, "total_return": 0.01}}
    summary = sweep_summary(
        name="tiny",
        search="optuna",
        target="symbols",
        metric="sharpe",
        best=best,
        final=final,
        stats=stats,
        total_trials=len(trials),
    )
    assert summary["pbo"] == stats.pbo.pbo and summary["dsr"] == stats.dsr
    assert summary["trials"] == {"total": 7, "scored": 6, "in_pbo": 5}
    assert summary["selection"]["trials"] == 6
    assert summary["decay"]["validation_objective"] == 2.0 and summary["decay"]["test"] == 0.4
    assert summary["decay"]["change"] == pytest.approx(-1.6)
    write_summary(tmp_path, summary)
    assert json.loads((tmp_path / "summary.json").read_text())["pbo"] == stats.pbo.pbo
    text = (tmp_path / "summary.md").read_text()
    assert f"{stats.pbo.pbo:.3f}" in text and "DSR of the choice" in text
    assert "| sharpe | 2.000 | 0.400 |" in text and "trial t5:" in text


def test_pbo_skipped_with_a_reason(tmp_path: Path) -> None:
    _, best = fake_sweep(tmp_path)
    one = selection_statistics([best], best, tmp_path, source="s")
    assert one.pbo is None and "at least 2" in (one.pbo_skipped or "")
    assert one.trials == 1 and one.sharpe_variance == 0.0
    assert one.dsr is not None  # one trial: the PSR against 0
    assert [p.name for p in write_pbo(one, tmp_path)] == ["pbo.json"]
    assert json.loads((tmp_path / "pbo.json").read_text())["skipped"] == one.pbo_skipped
    short = tmp_path / "short"
    for i in range(3):
        save_trial_returns(
            short / "trials" / f"s{i}", [np.full(20, 0.001 * i) + 0.001], {"periods": PERIODS}
        )
    few = selection_statistics([trial(f"s{i}", 0.0) for i in range(3)], None, short, source="s")
    assert few.pbo is None and "20 validation bars" in (few.pbo_skipped or "")
    assert few.dsr is None and few.trials == 3
    none = selection_statistics([trial("x", 1.0)], trial("x", 1.0), tmp_path / "empty", "s")
    assert (
        none.pbo is None
        and none.dsr is None
        and none.excluded == {"x": "no validation returns kept"}
    )
    assert none.record.trials == 1


def test_the_exported_config_carries_its_search(tmp_path: Path) -> None:
    trials, best = fake_sweep(tmp_path)
    stats = selection_statistics(trials, best, tmp_path, source="sweep tiny (2026-01-01)")
    sweep = SweepConfig.model_validate(
        {
            "name": "tiny",
            "base": {"preset": "quick"},
            "space": {"symbols.ppo.lr": {"loguniform": [1e-4, 1e-3]}},
        }
    )
    chosen = tiny_config(tmp_path).model_copy(update={"selection": stats.record})
    path = export_best(chosen, sweep, best, tmp_path, tmp_path / "best")
    loaded = load_config(path)
    assert loaded.selection.trials == 6
    assert loaded.selection.sharpe_variance == pytest.approx(stats.sharpe_variance)
    assert loaded.selection.source == "sweep tiny (2026-01-01)"
    assert load_config(tmp_path / "best.yaml").selection == loaded.selection


class FakeParent:
    def __init__(self) -> None:
        self.metrics: dict[str, Any] = {}
        self.artifacts: list[str] = []

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        self.metrics.update(metrics)

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_artifact(self, path: Path) -> None:
        if path.exists():
            self.artifacts.append(path.name)

    def finish(self) -> None:
        pass


def test_the_sweeps_run_gets_pbo_and_dsr(tmp_path: Path) -> None:
    trials, best = fake_sweep(tmp_path)
    stats = selection_statistics(trials, best, tmp_path, source="s")
    write_pbo(stats, tmp_path)
    parent = FakeParent()
    log_outcome(parent, tmp_path, best, None, trials, stats)  # type: ignore[arg-type]
    assert stats.pbo is not None
    assert parent.metrics["pbo"] == stats.pbo.pbo and parent.metrics["dsr"] == stats.dsr
    assert parent.metrics["trials"] == 7 and parent.metrics["best_objective"] == 2.0
    assert {"pbo.json", "pbo.png"} <= set(parent.artifacts)
