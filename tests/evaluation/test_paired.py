"""Paired block-bootstrap differences: exact cases, determinism, coverage and input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from multiagent.evaluation.metrics import max_drawdown, sharpe, total_return
from multiagent.evaluation.paired import METHOD, block_length, paired_difference

METRICS = ["sharpe", "total_return", "max_drawdown"]


def ar1(rng: np.random.Generator, n: int, phi: float, scale: float) -> np.ndarray:
    """A stationary AR(1) path (started from its stationary distribution)."""
    shocks = rng.standard_normal(n) * scale
    path = np.empty(n)
    path[0] = shocks[0] / np.sqrt(1.0 - phi**2)
    for t in range(1, n):
        path[t] = phi * path[t - 1] + shocks[t]
    return path


def market_pair(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Two systems with the same distribution: a common AR(1) market plus own AR(1) noise."""
    rng = np.random.default_rng(seed)
    market = ar1(rng, n, 0.5, 0.01)
    a = 0.0004 + market + ar1(rng, n, 0.6, 0.004)
    b = 0.0004 + market + ar1(rng, n, 0.6, 0.004)
    return a, b


def test_identical_series_give_zero_difference_and_a_point_interval() -> None:
    a = np.random.default_rng(1).normal(0.0005, 0.01, 300)
    result = paired_difference(a, a.copy(), 252.0, replications=200)
    assert result["block_length"] == 1.0  # the difference is constant: nothing to estimate
    for name in METRICS:
        entry = result["metrics"][name]
        assert entry["difference"] == 0.0
        assert (entry["low"], entry["high"]) == (0.0, 0.0)
        assert entry["p_value"] == 1.0


def test_output_structure_is_json_ready() -> None:
    a, b = market_pair(2, 120)
    result = paired_difference(a, b, 252.0, seed=7, replications=50, level=0.9)
    assert json.loads(json.dumps(result)) == result
    assert {k: v for k, v in result.items() if k not in ("metrics", "block_length")} == {
        "method": METHOD,
        "bars": 120,
        "replications": 50,
        "level": 0.9,
        "seed": 7,
    }
    assert isinstance(result["block_length"], float) and result["block_length"] >= 1.0
    assert list(result["metrics"]) == METRICS
    for entry in result["metrics"].values():
        assert set(entry) == {"a", "b", "difference", "low", "high", "p_value"}
        assert entry["low"] <= entry["high"]
        assert 0.0 <= entry["p_value"] <= 1.0


def test_a_constant_edge_gives_a_positive_sharpe_difference_that_excludes_zero() -> None:
    rng = np.random.default_rng(3)
    b = ar1(rng, 500, 0.3, 0.01)
    a = b + 0.002  # 0.2% a bar on 1% noise
    sharpe_diff = paired_difference(a, b, 252.0, replications=300)["metrics"]["sharpe"]
    assert sharpe_diff["difference"] > 0
    assert 0 < sharpe_diff["low"] <= sharpe_diff["difference"] <= sharpe_diff["high"]
    assert sharpe_diff["p_value"] == 0.0


def test_same_seed_same_numbers_other_seed_other_bounds() -> None:
    a, b = market_pair(4, 300)
    first = paired_difference(a, b, 252.0, seed=11, replications=200)
    assert paired_difference(a, b, 252.0, seed=11, replications=200) == first
    other = paired_difference(a, b, 252.0, seed=12, replications=200)
    for name in METRICS:
        assert other["metrics"][name]["difference"] == first["metrics"][name]["difference"]
        bounds = (other["metrics"][name]["low"], other["metrics"][name]["high"])
        assert bounds != (first["metrics"][name]["low"], first["metrics"][name]["high"])


def test_point_figures_are_the_metrics_modules_on_the_full_series() -> None:
    a, b = market_pair(5, 250)
    result = paired_difference(a, b, 52.0, replications=20)["metrics"]
    expected = {
        "sharpe": (sharpe(a, 52.0), sharpe(b, 52.0)),
        "total_return": (total_return(a), total_return(b)),
        "max_drawdown": (max_drawdown(a), max_drawdown(b)),
    }
    for name, (value_a, value_b) in expected.items():
        assert result[name]["a"] == value_a
        assert result[name]["b"] == value_b
        assert result[name]["difference"] == value_a - value_b


def test_interval_covers_a_zero_difference_at_about_its_level() -> None:
    # Same-distribution systems: the true Sharpe and total-return differences are 0. Seeded,
    # so deterministic. The band is loose: 40 draws at 90% have a standard error of ~5%, and
    # percentile intervals run a few points short at 400 bars (~84% in 300-draw simulations;
    # these seeds give 33/40 and 32/40).
    seeds = range(40)
    covered = {"sharpe": 0, "total_return": 0}
    for seed in seeds:
        a, b = market_pair(100 + seed)
        result = paired_difference(a, b, 252.0, seed=seed, replications=200, level=0.9)
        for name in covered:
            entry = result["metrics"][name]
            covered[name] += entry["low"] <= 0.0 <= entry["high"]
    for name, count in covered.items():
        assert 0.7 <= count / len(seeds) <= 1.0, (name, count)


def test_block_length_grows_with_autocorrelation() -> None:
    rng = np.random.default_rng(6)
    n = 1500
    iid = paired_difference(rng.standard_normal(n) * 0.01, np.zeros(n), 252.0, replications=10)
    dependent = paired_difference(ar1(rng, n, 0.8, 0.01), np.zeros(n), 252.0, replications=10)
    assert iid["block_length"] < 3.0
    assert dependent["block_length"] > 3.0 * iid["block_length"]


def test_block_length_falls_back_to_one_without_an_estimate() -> None:
    assert block_length(np.full(100, 0.01)) == 1.0  # constant: arch would report ~15
    assert block_length(np.array([0.01, -0.01, 0.02])) == 1.0  # too short to estimate
    short = paired_difference(np.array([0.01, -0.02]), np.array([0.0, 0.01]), 252.0)
    assert short["block_length"] == 1.0 and short["bars"] == 2


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.zeros(10), np.zeros(9), "same bars; got 10 and 9"),
        (np.zeros(1), np.zeros(1), "at least 2 bars, got 1"),
        (np.zeros(0), np.zeros(0), "at least 2 bars, got 0"),
        (np.array([0.01, np.nan, 0.0]), np.zeros(3), "a must hold finite.*1 are NaN"),
        (np.zeros(3), np.array([np.inf, 0.0, -np.inf]), "b must hold finite.*2 are NaN"),
        (np.zeros((3, 2)), np.zeros((3, 2)), r"1-D array.*\(3, 2\)"),
    ],
)
def test_bad_series_are_value_errors(a: np.ndarray, b: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paired_difference(a, b, 252.0)


@pytest.mark.parametrize(
    ("periods", "replications", "level", "message"),
    [
        (0.0, 10, 0.9, "periods"),
        (float("nan"), 10, 0.9, "periods"),
        (252.0, 0, 0.9, "replications must be at least 1"),
        (252.0, 10, 1.0, "level must be strictly between 0 and 1"),
        (252.0, 10, 0.0, "level must be strictly between 0 and 1"),
    ],
)
def test_bad_settings_are_value_errors(
    periods: float, replications: int, level: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        paired_difference(np.zeros(5), np.zeros(5), periods, replications=replications, level=level)
