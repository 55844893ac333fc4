"""Metric formulas by hand and against empyrical; report JSON helpers; go/no-go gates."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import empyrical as ep
import numpy as np
import pytest

from multiagent.config.evaluation import Gate, GateSet
from multiagent.errors import ConfigError
from multiagent.evaluation.gates import check_gates, load_gates, verdict
from multiagent.evaluation.metrics import (
    annual_return,
    annual_volatility,
    calmar,
    clean,
    herfindahl,
    max_drawdown,
    max_drawdown_duration,
    return_metrics,
    sharpe,
    sortino,
    total_return,
    trade_stats,
)
from multiagent.evaluation.report import (
    aggregate_seeds,
    confidence_interval,
    dumps,
    render_multiseed,
)

# --- return metrics by hand ---------------------------------------------------------------------

# Equity from 1: 1.1, 1.1 * 0.95 = 1.045, 1.045 * 1.02 = 1.0659, 1.0659 * 1.03 = 1.097877.
KNOWN = [0.1, -0.05, 0.02, 0.03]
KNOWN_TOTAL = 0.097877
# mean = 0.1 / 4 = 0.025; deviations 0.075, -0.075, -0.005, 0.005;
# squares 0.005625 + 0.005625 + 0.000025 + 0.000025 = 0.0113; sample variance 0.0113 / 3.
KNOWN_MEAN = 0.025
KNOWN_STD = math.sqrt(0.0113 / 3)  # 0.0613732...


def test_known_series_total_and_annual_return() -> None:
    assert total_return(KNOWN) == pytest.approx(KNOWN_TOTAL, rel=1e-12)
    # 4 bars at 4 bars a year is exactly one year: the annual return is the total return.
    assert annual_return(KNOWN, periods=4) == pytest.approx(KNOWN_TOTAL, rel=1e-12)
    # 4 bars at 252 a year is 4/252 of a year: 1.097877 ** (252 / 4) - 1 = 1.097877 ** 63 - 1.
    assert annual_return(KNOWN, periods=252) == pytest.approx(1.097877**63 - 1, rel=1e-12)
    assert annual_return(KNOWN, periods=252) == pytest.approx(357.8247, rel=1e-6)
    # 8 bars at 4 a year = 2 years: sqrt of the two-year growth.
    assert annual_return(KNOWN * 2, periods=4) == pytest.approx(KNOWN_TOTAL, rel=1e-12)


def test_known_series_volatility_sharpe_sortino() -> None:
    # Volatility 0.0613732 * sqrt(252) = 0.974269; 0.0613732 * sqrt(4) = 0.122746.
    assert annual_volatility(KNOWN, periods=252) == pytest.approx(0.974269, rel=1e-6)
    assert annual_volatility(KNOWN, periods=4) == pytest.approx(2 * KNOWN_STD, rel=1e-12)
    # Sharpe 0.025 / 0.0613732 * sqrt(252) = 0.407344 * 15.874508 = 6.46639.
    assert sharpe(KNOWN, periods=252) == pytest.approx(6.46639, rel=1e-6)
    assert sharpe(KNOWN, periods=4) == pytest.approx(KNOWN_MEAN / KNOWN_STD * 2, rel=1e-12)
    # Downside deviation: the only loss is -0.05, so sqrt(0.05 ** 2 / 4) = 0.025 = the mean;
    # Sortino = 0.025 * P / (0.025 * sqrt(P)) = sqrt(P).
    assert sortino(KNOWN, periods=252) == pytest.approx(math.sqrt(252), rel=1e-12)
    assert sortino(KNOWN, periods=4) == pytest.approx(2.0, rel=1e-12)


def test_known_series_drawdown_and_calmar() -> None:
    # Peak 1.1 after bar 1, trough 1.045 after bar 2: 1 - 1.045 / 1.1 = 0.05.
    assert max_drawdown(KNOWN) == pytest.approx(0.05, rel=1e-12)
    # Bars 2, 3, 4 (1.045, 1.0659, 1.097877) are all below 1.1: an open drawdown of 3 bars.
    assert max_drawdown_duration(KNOWN) == 3
    # Calmar with P = 4: 0.097877 / 0.05 = 1.95754.
    assert calmar(KNOWN, periods=4) == pytest.approx(1.95754, rel=1e-12)
    assert calmar(KNOWN, periods=252) == pytest.approx((1.097877**63 - 1) / 0.05, rel=1e-12)


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        # 0.9, 0.945 below 1; 1.0395 a new peak; 1.018710 below it: longest run 2.
        ([-0.1, 0.05, 0.1, -0.02], 2),
        # 1.1 peak; 0.99 below (1); 1.188 new peak; three bars down, never recovered: 3.
        ([0.1, -0.1, 0.2, -0.01, -0.01, -0.01], 3),
        # 1.1, 0.55, back to exactly 1.1 (a return to the peak ends the drawdown), 1.21: 1.
        ([0.1, -0.5, 1.0, 0.1], 1),
        # Below the starting equity from the first bar on: 4.
        ([-0.01, -0.01, 0.005, 0.001], 4),
        ([0.01, 0.02, 0.0, 0.03], 0),
        ([], 0),
    ],
)
def test_max_drawdown_duration(returns: list[float], expected: int) -> None:
    assert max_drawdown_duration(returns) == expected


def test_max_drawdown_takes_the_deepest_of_several() -> None:
    # 1.2 -> 1.08 (10%), then 1.296 -> 0.9072 (30%): the second, later and deeper, wins.
    assert max_drawdown([0.2, -0.1, 0.2, -0.3]) == pytest.approx(0.3, rel=1e-12)
    assert calmar([0.2, -0.1, 0.2, -0.3], periods=4) == pytest.approx(
        (1.2 * 0.9 * 1.2 * 0.7 - 1) / 0.3, rel=1e-12
    )


@pytest.mark.parametrize(
    "returns",
    [[], [0.0] * 5, [0.01] * 5, [0.003] * 7, [0.02]],
    ids=["empty", "zero", "c1", "c2", "one"],
)
def test_degenerate_series_give_zero_without_warnings(returns: list[float]) -> None:
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        metrics = return_metrics(np.array(returns), 252.0)
    for name in ("sharpe", "sortino", "calmar", "max_drawdown", "max_drawdown_duration"):
        assert metrics[name] == 0.0, name
    # std(ddof=1) of identical floats can be a ~1e-18 residue of the mean, not exactly 0.
    assert metrics["annual_volatility"] == pytest.approx(0.0, abs=1e-12)
    assert all(math.isfinite(v) for v in metrics.values())
    if not returns or not any(returns):
        assert metrics["total_return"] == 0.0 and metrics["annual_return"] == 0.0


def test_no_losses_gives_sortino_zero() -> None:
    returns = [0.01, 0.02, 0.0, 0.005]
    assert sortino(returns) == 0.0
    assert sharpe(returns) > 0  # there is a return, but no downside to divide by
    # One loss is enough: mean 0.025 / 5 = 0.005, downside sqrt(0.01 ** 2 / 5) = 0.01 / sqrt(5);
    # Sortino (P = 1) = 0.005 * sqrt(5) / 0.01 = sqrt(5) / 2 = 1.118034.
    with_loss = [*returns, -0.01]
    assert sortino(with_loss, periods=1) == pytest.approx(math.sqrt(5) / 2, rel=1e-12)


def test_total_loss_annualizes_to_minus_one() -> None:
    # Equity to 0 (or below, with leverage): CAGR is -100%, not a complex or NaN number.
    assert annual_return([0.1, -1.0, 0.05]) == -1.0
    assert annual_return([0.1, -1.5]) == -1.0


# --- trade statistics ---------------------------------------------------------------------------


def test_trade_stats_known_trades() -> None:
    stats = trade_stats([100.0, -50.0, 30.0, -20.0, 0.0], capital=1000.0)
    # Wins 100 and 30 of 5 trades (a flat trade is no win); gross win 130, gross loss 70;
    # mean P&L (100 - 50 + 30 - 20 + 0) / 5 = 12 on 1000 of capital.
    assert stats["win_rate"] == pytest.approx(2 / 5)
    assert stats["profit_factor"] == pytest.approx(130 / 70)
    assert stats["average_trade"] == pytest.approx(12 / 1000)


def test_trade_stats_edge_cases() -> None:
    assert trade_stats([], capital=1000.0) == {
        "win_rate": None,
        "profit_factor": None,
        "average_trade": None,
    }
    no_loss = trade_stats(np.array([10.0, 0.0, 5.0]), capital=100.0)
    assert no_loss["profit_factor"] is None
    assert no_loss["win_rate"] == pytest.approx(2 / 3)
    assert no_loss["average_trade"] == pytest.approx(0.05)
    only_losses = trade_stats([-10.0, -30.0], capital=200.0)
    assert only_losses["win_rate"] == 0.0
    assert only_losses["profit_factor"] == 0.0
    assert only_losses["average_trade"] == pytest.approx(-0.1)


# --- concentration ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10])
def test_herfindahl_equal_weights_is_one_over_n(n: int) -> None:
    weights = np.full((4, n), 0.9 / n)  # invested 90%, evenly; the cash part does not count
    assert herfindahl(weights) == pytest.approx(1 / n)


def test_herfindahl_single_position_shorts_and_flat_bars() -> None:
    assert herfindahl(np.array([[0.0, 0.4, 0.0]])) == pytest.approx(1.0)
    # Shorts count by absolute size: -0.5 and 0.5 is as concentrated as two equal longs.
    assert herfindahl(np.array([[-0.5, 0.5]])) == pytest.approx(0.5)
    # 0.75 / 0.25: 0.75 ** 2 + 0.25 ** 2 = 0.625.
    assert herfindahl(np.array([[0.6, -0.2]])) == pytest.approx(0.625)
    # Bars with no position are skipped: mean of 0.5 and 1, not of 0.5, 0, 1.
    weights = np.array([[0.5, 0.5], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    assert herfindahl(weights) == pytest.approx(0.75)
    assert herfindahl(np.zeros((3, 2))) == 0.0


# --- cross-check with empyrical -----------------------------------------------------------------


def _series(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(0.0005, 0.01, 500)
    if kind == "losing":
        return rng.normal(-0.001, 0.02, 300)
    # Fat tails (Student t, 3 degrees of freedom) and a 5-bar crash of about -34%.
    returns = 0.0004 + 0.01 * rng.standard_t(3, 500)
    returns[200:205] = -0.08
    return returns


SERIES = [("normal", 0), ("normal", 1), ("normal", 2), ("losing", 3), ("fat_crash", 4)]


@pytest.mark.parametrize(("kind", "seed"), SERIES, ids=[f"{k}-{s}" for k, s in SERIES])
@pytest.mark.parametrize("periods", [252, 252 * 7, 12])
def test_matches_empyrical(kind: str, seed: int, periods: int) -> None:
    r = _series(kind, seed)
    assert max_drawdown(r) > 0.01  # every series has a real drawdown (no nan from empyrical)
    assert sharpe(r, periods) == pytest.approx(ep.sharpe_ratio(r, annualization=periods), rel=1e-9)
    assert sortino(r, periods) == pytest.approx(
        ep.sortino_ratio(r, annualization=periods), rel=1e-9
    )
    assert annual_return(r, periods) == pytest.approx(
        ep.annual_return(r, annualization=periods), rel=1e-9
    )
    assert annual_volatility(r, periods) == pytest.approx(
        ep.annual_volatility(r, annualization=periods), rel=1e-9
    )
    assert calmar(r, periods) == pytest.approx(ep.calmar_ratio(r, annualization=periods), rel=1e-9)
    assert max_drawdown(r) == pytest.approx(-ep.max_drawdown(r), rel=1e-9)
    assert total_return(r) == pytest.approx(ep.cum_returns_final(r), rel=1e-9)


def test_deliberate_differences_from_empyrical() -> None:
    """Where empyrical answers inf or NaN, ours answers 0 (reports stay JSON-safe)."""
    no_loss = np.array([0.01, 0.02, 0.0, 0.005])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isinf(ep.sortino_ratio(no_loss)) and sortino(no_loss) == 0.0
        assert math.isnan(ep.calmar_ratio(no_loss)) and calmar(no_loss) == 0.0
        constant = np.full(5, 0.01)
        assert not math.isfinite(ep.sharpe_ratio(constant)) and sharpe(constant) == 0.0
        empty = np.array([])
        assert math.isnan(ep.annual_return(empty)) and annual_return(empty) == 0.0


# --- confidence intervals and seed aggregation --------------------------------------------------


def test_confidence_interval_by_hand() -> None:
    ci = confidence_interval([1, 2, 3, 4, 5])
    # mean 3; sample variance (4 + 1 + 0 + 1 + 4) / 4 = 2.5; std 1.5811388;
    # half width t(0.975, 4) * std / sqrt(5) = 2.7764451 * 1.5811388 / 2.2360680 = 1.963243.
    assert ci["n"] == 5
    assert ci["mean"] == pytest.approx(3.0)
    assert ci["std"] == pytest.approx(math.sqrt(2.5))
    assert ci["low"] == pytest.approx(3 - 1.963243, abs=1e-6)
    assert ci["high"] == pytest.approx(3 + 1.963243, abs=1e-6)
    # 90%: t(0.95, 4) = 2.1318468; half width 2.1318468 * 0.7071068 = 1.507443.
    narrow = confidence_interval([1, 2, 3, 4, 5], level=0.90)
    assert narrow["high"] - narrow["mean"] == pytest.approx(1.507443, abs=1e-6)


def test_confidence_interval_single_value() -> None:
    assert confidence_interval([0.7]) == {"n": 1, "mean": 0.7, "std": 0.0, "low": 0.7, "high": 0.7}


def _report(seed: int, agent: dict[str, Any], passed: bool | None) -> dict[str, Any]:
    return {
        "seed": seed,
        "window": {"part": "test"},
        "policies": {
            "ppo": {"kind": "agent", "metrics": agent},
            "ALL_AAA": {"kind": "baseline", "metrics": {"sharpe": 9.0}},
        },
        "gates": None if passed is None else {"passed": passed},
    }


def test_aggregate_seeds() -> None:
    reports = [
        _report(1, {"sharpe": 1.0, "win_rate": None, "profit_factor": None}, True),
        _report(2, {"sharpe": 2.0, "win_rate": 0.5, "profit_factor": None}, False),
        _report(3, {"sharpe": 3.0, "win_rate": None, "profit_factor": None}, None),
    ]
    summary = aggregate_seeds(reports, ["a", "b", "c"])
    assert summary["runs"] == ["a", "b", "c"] and summary["seeds"] == [1, 2, 3]
    assert list(summary["policies"]) == ["ppo"]  # per-symbol buy-and-hold rows are left out
    row = summary["policies"]["ppo"]
    assert row["sharpe"] == confidence_interval([1.0, 2.0, 3.0])
    assert row["win_rate"] == confidence_interval([0.5])  # undefined values are skipped
    assert row["profit_factor"] is None  # never defined
    assert row["turnover"] is None  # never reported
    # a run without gates has no verdict: neither a pass nor a failure
    assert summary["gates_passed"] == [True, False, None]
    assert "Gates passed in 1 of 2 runs (1 without gates: no verdict)." in render_multiseed(summary)
    ungated = aggregate_seeds([reports[2], reports[2]], ["c", "d"])
    assert ungated["gates_passed"] == [None, None]
    assert "No gates configured" in render_multiseed(ungated)
    assert "Gates passed" not in render_multiseed(ungated)


# --- JSON ---------------------------------------------------------------------------------------


def test_clean_makes_values_json_safe() -> None:
    value = {
        1: np.float64(1.5),
        "nan": float("nan"),
        "inf": [np.inf, -np.inf, np.float32("nan")],
        "ints": (np.int64(3), np.int32(-2)),
        "flag": np.bool_(True),
        "plain": {"x": 0.1, "s": "text", "none": None},
    }
    out = clean(value)
    assert out == {
        "1": 1.5,
        "nan": None,
        "inf": [None, None, None],
        "ints": [3, -2],
        "flag": True,
        "plain": {"x": 0.1, "s": "text", "none": None},
    }
    assert type(out["1"]) is float
    assert all(type(v) is int for v in out["ints"])
    assert type(out["flag"]) is bool


def test_dumps_is_strict_json_and_stable() -> None:
    report = {
        "sharpe": np.float64("nan"),
        "sortino": float("inf"),
        "values": [np.float64(0.1), 2.0, np.float64(-np.inf)],
        "n": np.int64(7),
        "share": 0.1,
    }
    text = dumps(report)
    assert text.endswith("\n")
    for token in ("NaN", "Infinity"):
        assert token not in text
    assert json.loads(text) == {
        "sharpe": None,
        "sortino": None,
        "values": [0.1, 2.0, None],
        "n": 7,
        "share": 0.1,
    }
    assert '"share": 0.1' in text  # shortest round-trip repr
    assert dumps(report) == text


# --- gates --------------------------------------------------------------------------------------


def _gates(*go: dict[str, Any], regression: tuple[dict[str, Any], ...] = ()) -> GateSet:
    return GateSet(
        go=tuple(Gate.model_validate(g) for g in go),
        regression=tuple(Gate.model_validate(g) for g in regression),
    )


def _policies(agent: dict[str, Any], **baselines: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {"ppo": {"kind": "agent", "metrics": agent}}
    out |= {name: {"kind": "baseline", "metrics": m} for name, m in baselines.items()}
    return out


RANKING = [{"rank": 1, "policy": "ppo"}]


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        (">", 1.0, False),
        (">=", 1.0, True),
        ("<", 1.0, False),
        ("<=", 1.0, True),
        (">", 0.999, True),
        ("<", 1.001, True),
        (">=", 1.001, False),
        ("<=", 0.999, False),
    ],
)
def test_fixed_threshold_at_the_boundary(op: str, value: float, expected: bool) -> None:
    gates = _gates({"metric": "sharpe", "op": op, "value": value})
    result = check_gates(gates, "ppo", _policies({"sharpe": 1.0}), RANKING)
    (gate,) = result["go"]
    assert gate["passed"] is expected
    assert result["passed"] is expected
    assert gate["value"] == 1.0 and gate["threshold"] == value and gate["against"] is None
    assert gate["gate"] == f"sharpe {op} {value:g}"
    assert result["regression"] == []


def test_best_buy_and_hold_gate() -> None:
    policies = _policies(
        {"sharpe": 0.9, "max_drawdown": 0.25},
        ALL_AAA={"sharpe": 1.2, "max_drawdown": 0.3},
        ALL_BBB={"sharpe": 0.4, "max_drawdown": 0.2},
        ALL_CCC={"sharpe": None, "max_drawdown": None},  # undefined: not a candidate
        equal_weight={"sharpe": 5.0, "max_drawdown": 0.01},  # not buy-and-hold
    )
    gates = _gates(
        {"metric": "sharpe", "op": ">=", "baseline": "best_buy_and_hold", "offset": -0.5},
        {"metric": "sharpe", "op": ">", "baseline": "best_buy_and_hold"},
        # Lower is better for "<": the best baseline is the one with the smallest drawdown.
        {"metric": "max_drawdown", "op": "<=", "baseline": "best_buy_and_hold", "offset": 0.1},
    )
    result = check_gates(gates, "ppo", policies, RANKING)
    offset, plain, drawdown = result["go"]
    assert offset["against"] == "ALL_AAA" and offset["threshold"] == pytest.approx(0.7)
    assert offset["passed"] is True
    assert offset["gate"] == "sharpe >= best_buy_and_hold - 0.5"
    assert plain["against"] == "ALL_AAA" and plain["threshold"] == 1.2
    assert plain["passed"] is False
    assert drawdown["against"] == "ALL_BBB" and drawdown["threshold"] == pytest.approx(0.3)
    assert drawdown["passed"] is True
    assert result["passed"] is False


def test_equal_weight_and_best_baseline_gates() -> None:
    policies = _policies(
        {"sharpe": 1.0},
        ALL_AAA={"sharpe": 1.5},
        equal_weight={"sharpe": 0.8},
        momentum={"sharpe": 0.3},
    )
    policies["other_agent"] = {"kind": "agent", "metrics": {"sharpe": 99.0}}
    gates = _gates(
        {"metric": "sharpe", "op": ">", "baseline": "equal_weight"},
        {"metric": "sharpe", "op": ">", "baseline": "best_baseline"},
    )
    equal, best = check_gates(gates, "ppo", policies, RANKING)["go"]
    assert (equal["against"], equal["threshold"], equal["passed"]) == ("equal_weight", 0.8, True)
    # Agents are never baselines: the best baseline is ALL_AAA, not other_agent.
    assert (best["against"], best["threshold"], best["passed"]) == ("ALL_AAA", 1.5, False)


def test_undefined_metric_or_baseline_fails() -> None:
    gates = _gates(
        {"metric": "win_rate", "op": ">", "value": 0.0},
        {"metric": "sharpe", "op": ">", "baseline": "best_buy_and_hold"},
    )
    policies = _policies({"win_rate": None, "sharpe": 2.0}, ALL_AAA={"sharpe": None})
    result = check_gates(gates, "ppo", policies, RANKING)
    win_rate, versus = result["go"]
    assert win_rate["value"] is None and win_rate["passed"] is False
    assert versus["threshold"] is None and versus["against"] is None
    assert versus["passed"] is False
    assert result["passed"] is False
    # A metric the report does not hold at all is undefined too.
    missing = check_gates(
        _gates({"metric": "turnover", "op": "<", "value": 1.0}), "ppo", policies, RANKING
    )
    assert missing["passed"] is False


def test_rank_fraction_and_overall_verdict() -> None:
    ranking = [
        {"rank": 1, "policy": "ALL_AAA"},
        {"rank": 2, "policy": "equal_weight"},
        {"rank": 3, "policy": "ppo"},
        {"rank": 4, "policy": "cash"},
    ]
    policies = _policies({"sharpe": 0.5}, ALL_AAA={}, equal_weight={}, cash={})
    gates = _gates(
        {"metric": "sharpe", "op": ">", "value": 0.0},
        regression=({"metric": "rank_fraction", "op": "<=", "value": 0.75},),
    )
    result = check_gates(gates, "ppo", policies, ranking)
    assert result["regression"][0]["value"] == pytest.approx(3 / 4)
    assert result["passed"] is True
    assert all(g["passed"] for g in result["go"] + result["regression"])
    strict = _gates(
        {"metric": "sharpe", "op": ">", "value": 0.0},
        regression=({"metric": "rank_fraction", "op": "<=", "value": 0.5},),
    )
    result = check_gates(strict, "ppo", policies, ranking)
    assert result["go"][0]["passed"] is True
    assert result["regression"][0]["passed"] is False
    assert result["passed"] is False
    assert result["agent"] == "ppo"
    # Other systems of the report are not in the field a system is ranked in.
    policies["joint"] = {"kind": "agent", "metrics": {"sharpe": 0.7}}
    crowded = [ranking[0], {"rank": 2, "policy": "joint"}, *ranking[1:]]
    result = check_gates(gates, "ppo", policies, crowded)
    assert result["regression"][0]["value"] == pytest.approx(3 / 4)


def test_no_gates_is_no_verdict() -> None:
    """An empty gate list checks nothing: no PASS (issue 23), and no failure either."""
    result = check_gates(_gates(), "ppo", _policies({"sharpe": 1.0}), RANKING)
    assert result["passed"] is None and result["go"] == [] and result["regression"] == []
    assert verdict(result) == "NO GATES"
    one = check_gates(
        _gates({"metric": "sharpe", "op": ">", "value": 2.0}), "ppo", _policies({"sharpe": 1.0}),
        RANKING,
    )  # fmt: skip
    assert verdict(one) == "FAIL"
    assert verdict({**one, "passed": True}) == "PASS"


# --- gates file ---------------------------------------------------------------------------------

VALID_GATES = """\
go:
  - {metric: sharpe, op: ">", value: 1.0}
  - {metric: max_drawdown, op: "<", value: 0.2}
regression:
  - {metric: sharpe, op: ">=", baseline: best_buy_and_hold, offset: -0.25}
  - {metric: rank_fraction, op: "<=", value: 0.5}
"""


def test_load_gates_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text(VALID_GATES)
    gates = load_gates(path)
    assert [g.describe() for g in gates.go] == ["sharpe > 1", "max_drawdown < 0.2"]
    assert [g.describe() for g in gates.regression] == [
        "sharpe >= best_buy_and_hold - 0.25",
        "rank_fraction <= 0.5",
    ]
    assert gates.regression[0].offset == -0.25 and gates.regression[0].value is None
    # A file with only one group keeps the defaults of the other.
    path.write_text('go:\n  - {metric: win_rate, op: ">", value: 0.5}\n')
    partial = load_gates(str(path))
    assert len(partial.go) == 1 and partial.regression == GateSet().regression


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("go: []\nregresion: []\n", "regresion"),
        ('go:\n  - {metric: sharpe, op: ">", value: 1, threshold: 2}\n', "threshold"),
        ('go:\n  - {metric: sharpe, op: "=>", value: 1}\n', "op"),
        ('go:\n  - {metric: alpha, op: ">", value: 1}\n', "metric"),
        (
            'go:\n  - {metric: sharpe, op: ">", value: 1, baseline: equal_weight}\n',
            "exactly one of `value` and `baseline`",
        ),
        ('go:\n  - {metric: sharpe, op: ">"}\n', "exactly one of `value` and `baseline`"),
        ('go:\n  - {metric: sharpe, op: ">", baseline: best_symbol}\n', "baseline"),
        ("- just\n- a list\n", "mapping"),
        ("go:\n  - {metric: sharpe, op: >, value: 1}\n", "YAML"),  # unquoted ">" in YAML
    ],
    ids=[
        "unknown-key",
        "unknown-gate-key",
        "bad-op",
        "unknown-metric",
        "value-and-baseline",
        "no-threshold",
        "unknown-baseline",
        "not-a-mapping",
        "bad-yaml",
    ],
)
def test_load_gates_errors_name_the_file(tmp_path: Path, text: str, hint: str) -> None:
    path = tmp_path / "my-gates.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_gates(path)
    message = str(caught.value)
    assert str(path) in message
    assert hint in message
    assert caught.value.file == str(path)
