"""The report's overfitting statistics: intervals cross-checked against arch, the SPA test by
simulation, the section's figures in each agent's metrics and gates, and the report itself."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from arch.bootstrap import SPA, StationaryBootstrap

from multiagent.config.evaluation import Gate, GateSet
from multiagent.errors import ConfigError
from multiagent.evaluation.gates import check_gates
from multiagent.evaluation.metrics import sharpe
from multiagent.evaluation.paired import block_length
from multiagent.evaluation.report import render_markdown
from multiagent.evaluation.sharpe_stats import probabilistic_sharpe_ratio, sharpe_moments
from multiagent.evaluation.significance import (
    metric_intervals,
    report_figures,
    significance_section,
    spa_test,
    statistic_metrics,
)
from multiagent.schema import validate_mapping

PERIODS = 252.0


def noise(seed: int, bars: int = 600, drift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(drift, 0.01, bars)


def test_sharpe_interval_is_archs_percentile_interval() -> None:
    """The same resampling as arch's own `conf_int(method="percentile")` with the same seed
    and block length gives the same Sharpe interval."""
    returns = noise(1, drift=0.0005)
    ours = metric_intervals(returns, PERIODS, seed=3, replications=400, level=0.9)
    block = block_length(returns)
    bootstrap = StationaryBootstrap(block, returns, seed=np.random.default_rng(3))  # type: ignore[arg-type]
    low, high = bootstrap.conf_int(
        partial(sharpe, periods=PERIODS), reps=400, method="percentile", size=0.9
    )[:, 0]
    assert ours["sharpe"]["low"] == pytest.approx(low, rel=1e-9)
    assert ours["sharpe"]["high"] == pytest.approx(high, rel=1e-9)
    assert ours["sharpe"]["low"] < ours["sharpe"]["value"] < ours["sharpe"]["high"]
    assert ours == metric_intervals(returns, PERIODS, seed=3, replications=400, level=0.9)


def test_spa_matches_arch_and_finds_a_planted_edge() -> None:
    benchmark = noise(0)
    models = {"edge": noise(1, drift=0.002), "flat": noise(2)}
    test = spa_test(benchmark, models, seed=5, replications=500, level=0.95)
    assert test["pvalue"] < 0.05
    assert test["superior"] == ["edge"]
    frame = np.column_stack([-models["edge"], -models["flat"]])
    reference = SPA(
        -benchmark,
        frame,
        block_size=test["block_length"],
        reps=500,
        seed=np.random.default_rng(5),
    )
    reference.compute()
    assert test["pvalue"] == pytest.approx(float(reference.pvalues["consistent"]))


def test_spa_rarely_rejects_on_pure_noise() -> None:
    """Five noise systems against a noise baseline: the SPA p-value is below 0.05 in few of 40
    markets (the test holds its size; comparing five systems is what it corrects for)."""
    rejected = 0
    for seed in range(40):
        models = {f"m{i}": noise(100 * seed + i, bars=400) for i in range(5)}
        test = spa_test(
            noise(100 * seed + 99, bars=400), models, seed=seed, replications=200, level=0.95
        )
        rejected += test["pvalue"] <= 0.05
    assert rejected <= 5


def section(trials: int = 1, variance: float = 0.0) -> dict:
    returns = {
        "agent": noise(1, drift=0.001),
        "cash": np.zeros(600),
        "buy_and_hold": noise(2, drift=0.0008),
    }
    return significance_section(
        returns,
        ["agent"],
        ["cash", "buy_and_hold"],
        {"cash": 0.0, "buy_and_hold": sharpe(returns["buy_and_hold"], PERIODS)},
        PERIODS,
        seed=0,
        replications=200,
        trials=trials,
        trial_sharpe_variance=variance,
    )


def test_section_figures_and_the_deflation_for_a_search() -> None:
    plain = section()
    entry = plain["policies"]["agent"]
    assert plain["best_baseline"] == "buy_and_hold"
    sr, skew, kurtosis, bars = sharpe_moments(noise(1, drift=0.001))
    assert entry["psr"] == pytest.approx(probabilistic_sharpe_ratio(sr, 0.0, bars, skew, kurtosis))
    assert entry["dsr"] == pytest.approx(entry["psr"])  # one trial: nothing to deflate
    assert entry["psr_vs_best_baseline"] < entry["psr"]
    assert set(entry["versus"]) == {"cash", "buy_and_hold"}
    assert entry["spa_pvalue"] == plain["spa"]["buy_and_hold"]["pvalue"]
    searched = section(trials=50, variance=1.0)["policies"]["agent"]
    assert searched["dsr"] < entry["dsr"]
    assert searched["expected_max_sharpe"] > 0
    assert set(statistic_metrics(plain, "agent")) == {"psr", "psr_vs_best_baseline", "dsr"}
    assert report_figures(plain, "agent") == {"spa_pvalue": entry["spa_pvalue"]}
    assert report_figures(None, "agent") == {}


def test_gates_use_the_statistics_and_reject_unknown_names() -> None:
    gates = validate_mapping(
        GateSet,
        {
            "go": [
                {"metric": "dsr", "op": ">=", "value": 0.95},
                {"metric": "spa_pvalue", "op": "<=", "value": 0.05},
            ],
            "regression": [],
        },
        file="gates.yaml",
    )
    policies = {
        "agent": {"kind": "agent", "metrics": {"sharpe": 1.0, "dsr": 0.97}},
        "cash": {"kind": "baseline", "metrics": {"sharpe": 0.0}},
    }
    ranking = [{"policy": "agent"}, {"policy": "cash"}]
    result = check_gates(gates, "agent", policies, ranking, {"spa_pvalue": 0.2})
    assert [g["passed"] for g in result["go"]] == [True, False]
    assert not result["passed"]
    with pytest.raises(ConfigError, match=r"go\.0\.metric"):
        validate_mapping(
            GateSet, {"go": [{"metric": "dsrr", "op": ">=", "value": 1}]}, file="gates.yaml"
        )
    assert Gate(metric="psr", op=">=", value=0.9).describe() == "psr >= 0.9"


def test_the_markdown_section_reads_the_figures() -> None:
    from multiagent.evaluation.report_statistics import render_statistics

    lines = "\n".join(render_statistics(section(trials=20, variance=0.5)))
    assert "## Statistics a skeptic asks for" in lines
    assert "the best of 20 trials" in lines
    assert "| agent | buy_and_hold |" in lines
    assert "Hansen's SPA test" in lines
    assert render_statistics(None) == []
    assert callable(render_markdown)


def test_spa_is_not_fooled_by_a_copy_of_the_baseline_or_a_short_window() -> None:
    """A system that never trades has the cash baseline's returns bar for bar: a zero variance
    the studentized test would read as certainty. It is left out, and with nothing left the
    test says why instead of giving a p-value; so does a window too short to resample."""
    flat = np.zeros(300)
    skipped = spa_test(flat, {"idle": np.zeros(300)}, seed=0, replications=100, level=0.95)
    assert np.isnan(skipped["pvalue"]) and "bar by bar" in skipped["skipped"]
    mixed = spa_test(
        flat,
        {"idle": np.zeros(300), "edge": noise(1, 300, 0.002)},
        seed=0,
        replications=200,
        level=0.95,
    )
    assert mixed["left_out"] == ["idle"] and mixed["superior"] == ["edge"]
    short = spa_test(noise(0, 10), {"a": noise(1, 10)}, seed=0, replications=100, level=0.95)
    assert np.isnan(short["pvalue"]) and "10 bars" in short["skipped"]


def test_step_down_finds_every_better_system_where_archs_stepm_fails() -> None:
    """arch's StepM (8.0) re-tests an empty set when the last better models are found over
    several steps, and raises; the step-down here stops when no model is left."""
    import pandas as pd
    from arch.bootstrap import StepM

    rng = np.random.default_rng(9)
    benchmark = rng.normal(0, 0.01, 300)
    models = {"strong": rng.normal(0.004, 0.01, 300), "mild": rng.normal(0.0015, 0.01, 300)}
    frame = pd.DataFrame({name: -series for name, series in models.items()})
    arch_stepm = StepM(
        -benchmark, frame, size=0.05, block_size=1, reps=300, seed=np.random.default_rng(9)
    )
    try:
        arch_stepm.compute()
        expected: list[str] | None = sorted(map(str, arch_stepm.superior_models))
    except ValueError:  # arch 8.0: "zero-size array to reduction operation"
        expected = None
    ours = spa_test(benchmark, models, seed=9, replications=300, level=0.95)
    assert ours["superior"] == ["strong", "mild"] and ours["pvalue"] < 0.05
    if expected is not None:  # a fixed arch must agree
        assert sorted(ours["superior"]) == expected
