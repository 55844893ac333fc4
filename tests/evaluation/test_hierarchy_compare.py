"""The hierarchy comparison: multi-seed aggregation and its gate, the written files, and the
backtester with a master policy (no Ray)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from multiagent.data.featurize import FeaturePipelineConfig, compute_features
from multiagent.data.splits import Window
from multiagent.data.synthetic import SyntheticMarketConfig, generate_market
from multiagent.envs.config import HierarchicalEnvConfig
from multiagent.envs.hierarchical_env import default_neutral_action
from multiagent.envs.market import EnvMarket, build_market
from multiagent.evaluation.backtest import Backtester, PolicyRun
from multiagent.evaluation.hierarchy import (
    COMPARED,
    SCHEMA,
    compare_runs,
    pool_markets,
    render_comparison,
    render_multiseed,
    write_comparison,
)
from multiagent.evaluation.policies import BacktestPolicy, Decision, StepContext
from multiagent.evaluation.scoring import policy_metrics

T_975_2 = float(stats.t.ppf(0.975, 2))  # two-sided 95% t quantile, 3 seeds


def metrics(sharpe: float, drawdown: float, **other: float) -> dict[str, float]:
    row = {
        "sharpe": sharpe,
        "total_return": 0.0,
        "mean_episode_max_drawdown": drawdown,
        "max_drawdown": 2 * drawdown,
        "turnover": 0.0625,
        "mean_episode_return": 0.0,
        "mean_gross_budget": 1.0,
        "forced_trims_per_episode": 0.0,
    }
    row.update(other)
    return row


def seed_comparison(**systems: tuple[float, float]) -> dict[str, Any]:
    """One seed's comparison (the shape `evaluation.hierarchy.comparison_from_report` writes):
    system -> (sharpe, mean episode max drawdown)."""
    return {
        "schema": SCHEMA,
        "part": "test",
        "bars": 400,
        "books_of": 4,
        "symbols": 5,
        "systems": {name: metrics(*values) for name, values in systems.items()},
        "paired": None,
    }


# Dyadic values: every sum, mean and difference below is exact in binary floating point.
SEEDS = [
    seed_comparison(independent=(0.5, 0.25), hierarchical=(0.75, 0.125), joint=(0.5, 0.25)),
    seed_comparison(independent=(1.0, 0.5), hierarchical=(1.5, 0.25), joint=(1.25, 0.5)),
    seed_comparison(independent=(0.75, 0.375), hierarchical=(1.0, 0.1875), joint=(0.5, 0.375)),
]


def interval(values: list[float]) -> tuple[float, float, float]:
    mean = float(np.mean(values))
    half = T_975_2 * float(np.std(values, ddof=1)) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def test_means_intervals_and_paired_differences() -> None:
    summary = compare_runs(SEEDS)
    assert summary["seeds"] == 3 and summary["schema"] == SCHEMA
    assert list(summary["systems"]) == ["independent", "hierarchical", "joint"]
    for system in ("independent", "hierarchical", "joint"):
        entry = summary["systems"][system]
        assert set(entry) == set(COMPARED) | {f"{m}_vs_independent" for m in COMPARED}
        for metric in COMPARED:
            values = [s["systems"][system][metric] for s in SEEDS]
            mean, low, high = interval(values)
            assert entry[metric]["n"] == 3
            assert entry[metric]["mean"] == pytest.approx(mean, abs=1e-12)
            assert entry[metric]["low"] == pytest.approx(low, abs=1e-12)
            assert entry[metric]["high"] == pytest.approx(high, abs=1e-12)

    sharpe = summary["systems"]["hierarchical"]["sharpe_vs_independent"]
    diffs = [0.25, 0.5, 0.25]
    mean, low, high = interval(diffs)
    assert sharpe["mean"] == pytest.approx(1 / 3)
    assert sharpe["std"] == pytest.approx(float(np.std(diffs, ddof=1)))
    assert (sharpe["low"], sharpe["high"]) == pytest.approx((low, high))
    assert sharpe["high"] - sharpe["low"] > 0
    drawdown = summary["systems"]["hierarchical"]["mean_episode_max_drawdown_vs_independent"]
    assert drawdown["mean"] == pytest.approx(np.mean([-0.125, -0.25, -0.1875]))
    assert drawdown["high"] < 0
    # The independent agents against themselves: exactly zero, with no spread.
    own = summary["systems"]["independent"]["sharpe_vs_independent"]
    assert (own["mean"], own["std"], own["low"], own["high"]) == (0.0, 0.0, 0.0, 0.0)
    joint = summary["systems"]["joint"]["sharpe_vs_independent"]
    assert joint["mean"] == 0.0 and joint["low"] < 0 < joint["high"]

    gate = summary["gate"]
    assert (gate["min_sharpe_gain"], gate["min_drawdown_cut"]) == (0.2, 0.15)
    hierarchical = gate["systems"]["hierarchical"]
    assert hierarchical["sharpe_gain"] == pytest.approx(1 / 3)
    assert hierarchical["drawdown_cut"] == pytest.approx(1 - (0.5625 / 3) / 0.375)
    assert hierarchical["drawdown_change_high"] == pytest.approx(drawdown["high"])
    assert hierarchical["passed"] is True
    assert gate["systems"]["joint"] == {
        "sharpe_gain": 0.0,
        "drawdown_cut": 0.0,
        "drawdown_change_high": 0.0,
        "passed": False,
    }
    assert gate["passed"] is True  # the gate is the hierarchical system's


def test_differences_are_paired_by_seed() -> None:
    """Seeds differ a lot, the master adds a steady 0.25: the paired interval of the gain sits
    well above 0 although the two systems' own intervals overlap."""
    seeds = [
        seed_comparison(independent=(base, 0.5), hierarchical=(base + gain, 0.25))
        for base, gain in ((-1.0, 0.25), (0.5, 0.25), (2.0, 0.375))
    ]
    summary = compare_runs(seeds)
    independent = summary["systems"]["independent"]["sharpe"]
    hierarchical = summary["systems"]["hierarchical"]["sharpe"]
    assert hierarchical["low"] < independent["high"]  # unpaired: overlapping
    paired = summary["systems"]["hierarchical"]["sharpe_vs_independent"]
    assert paired["low"] > 0
    assert paired["high"] - paired["low"] < 0.1 * (independent["high"] - independent["low"])
    assert "joint" not in summary["systems"] and "joint" not in summary["gate"]["systems"]


@pytest.mark.parametrize(
    ("gain", "hierarchical_drawdown", "passed"),
    [
        (0.25, 0.375, True),  # Sharpe gain and drawdown cut both exactly at the threshold
        (0.25 - 2**-20, 0.375, False),  # Sharpe just short
        (0.25, 0.375 + 2**-20, False),  # drawdown cut just short
        (1.0, 0.4375, False),  # a large gain does not make up for a small cut (12.5%)
        (0.5, 0.0, True),
    ],
)
def test_gate_boundaries(gain: float, hierarchical_drawdown: float, passed: bool) -> None:
    seeds = [
        seed_comparison(independent=(base, 0.5), hierarchical=(base + gain, hierarchical_drawdown))
        for base in (0.5, 1.0, 1.5)
    ]
    summary = compare_runs(seeds, min_sharpe_gain=0.25, min_drawdown_cut=0.25)
    verdict = summary["gate"]["systems"]["hierarchical"]
    assert verdict["sharpe_gain"] == pytest.approx(gain, abs=1e-12)
    assert verdict["drawdown_cut"] == pytest.approx(1 - hierarchical_drawdown / 0.5, abs=1e-12)
    assert verdict["passed"] is passed
    assert summary["gate"]["passed"] is passed


def test_gate_fails_without_a_drawdown_to_cut_or_a_hierarchical_system() -> None:
    flat = [seed_comparison(independent=(0.5, 0.0), hierarchical=(2.0, 0.0))] * 3
    verdict = compare_runs(flat)["gate"]["systems"]["hierarchical"]
    assert verdict["drawdown_cut"] == 0.0 and verdict["passed"] is False
    # A seed without the hierarchical system: the system is left out, and the gate fails.
    partial = [
        seed_comparison(independent=(0.5, 0.25), hierarchical=(0.75, 0.125), joint=(1.0, 0.125)),
        seed_comparison(independent=(1.0, 0.5), hierarchical=(1.5, 0.25), joint=(1.5, 0.25)),
        seed_comparison(independent=(0.5, 0.25), joint=(2.0, 0.0625)),
    ]
    summary = compare_runs(partial)
    assert set(summary["systems"]) == {"independent", "joint"}
    assert summary["gate"]["passed"] is False
    assert summary["gate"]["systems"]["joint"]["passed"] is True


def test_written_and_rendered_comparisons(tmp_path: Path) -> None:
    comparison = seed_comparison(
        independent=(0.5, 0.25), hierarchical=(0.75, 0.125), joint=(float("nan"), 0.25)
    )
    folder = write_comparison(comparison, tmp_path / "hierarchy")
    written = json.loads((folder / "comparison.json").read_text())
    assert written["systems"]["hierarchical"] == comparison["systems"]["hierarchical"]
    assert written["systems"]["joint"]["sharpe"] is None  # NaN is not JSON
    markdown = (folder / "comparison.md").read_text()
    assert markdown == render_comparison(comparison)
    assert markdown.startswith(
        "# Hierarchy comparison (test split, 400 bars, 5 symbols in books of 4)\n"
    )
    assert "| system | Sharpe (annualized) | return (% of capital) |" in markdown
    assert "turnover (% of equity per bar)" in markdown
    assert "| independent | 0.50 | +0.0% | 25.0% | 50.0% | 6.25% | 1.00 |" in markdown
    assert "| hierarchical | 0.75 | +0.0% | 12.5% | 25.0% | 6.25% | 1.00 |" in markdown

    text = render_multiseed(compare_runs(SEEDS))
    assert text.startswith("# Hierarchy comparison over 3 seeds (mean [95% t-interval])")
    assert "- hierarchical: Sharpe +0.33, drawdown cut +50.0% (interval high -3.2%): PASS" in text
    assert "- joint: Sharpe +0.00, drawdown cut +0.0% (interval high +0.0%): FAIL" in text
    # No per-seed bootstrap in these comparisons: the test-period evidence is unknown.
    assert "- hierarchical: test-period bootstrap -, over seeds ±0.36: NOT enough" in text


def with_paired(comparison: dict[str, Any], **widths: float) -> dict[str, Any]:
    """``comparison`` with a per-seed bootstrap interval of the Sharpe gain of each system."""
    systems = {
        name: {"metrics": {"sharpe": {"low": -width / 2, "high": width / 2}}}
        for name, width in widths.items()
    }
    return {**comparison, "paired": {"reference": "independent", "systems": systems}}


def test_gate_needs_the_seeds_drawdown_interval_below_zero() -> None:
    """Mean Sharpe gain and mean drawdown cut both pass, but one seed's drawdown grew: the
    paired interval of the change reaches above 0, so the gate fails."""
    seeds = [
        seed_comparison(independent=(1.0, 0.5), hierarchical=(1.5, 0.125)),
        seed_comparison(independent=(1.0, 0.5), hierarchical=(1.5, 0.125)),
        seed_comparison(independent=(1.0, 0.25), hierarchical=(1.5, 0.375)),
    ]
    verdict = compare_runs(seeds)["gate"]["systems"]["hierarchical"]
    assert verdict["sharpe_gain"] == 0.5 and verdict["drawdown_cut"] > 0.15
    assert verdict["drawdown_change_high"] > 0
    assert verdict["passed"] is False


def test_evidence_pools_the_seeds_bootstrap_intervals() -> None:
    """Four seeds each with a bootstrap interval of width w (se = w / 2z): the mean gain's
    half-width is z * sqrt(4 se^2) / 4 = w / 4."""
    narrow = [with_paired(s, hierarchical=0.6) for s in (*SEEDS, SEEDS[0])]
    evidence = compare_runs(narrow)["evidence"]["hierarchical"]
    assert evidence["bootstrap_half_width"] == pytest.approx(0.15)
    assert evidence["enough"] is True
    assert evidence["seed_half_width"] > 0
    wide = [with_paired(s, hierarchical=1.0) for s in (*SEEDS, SEEDS[0])]
    assert compare_runs(wide)["evidence"]["hierarchical"]["enough"] is False
    text = render_multiseed(compare_runs(wide))
    assert "- hierarchical: test-period bootstrap ±0.25, over seeds" in text
    assert "NOT enough: the test cannot tell a gain of the gate's size from none" in text


def test_oracle_capture_is_the_share_of_the_oracles_gain() -> None:
    seeds = [
        seed_comparison(
            independent=(1.0, 0.5), hierarchical=(1.25, 0.375), oracle_allocator=(2.0, 0.25)
        ),
        seed_comparison(
            independent=(0.5, 0.5), hierarchical=(0.75, 0.375), oracle_allocator=(1.5, 0.25)
        ),
    ]
    summary = compare_runs(seeds)
    assert "oracle_allocator" in summary["systems"]
    capture = summary["oracle_capture"]["hierarchical"]
    assert capture == {"sharpe": 0.25, "drawdown": 0.5}
    text = render_multiseed(summary)
    assert "- hierarchical: Sharpe 25.0%, drawdown change 50.0%" in text
    rows = render_comparison(seeds[0])
    assert "| oracle_allocator | 2.00 |" in rows
    # No oracle in the seeds (real data): no capture figures.
    assert "oracle_capture" not in compare_runs(SEEDS)


# the backtester with a master -------------------------------------------------------------


@pytest.fixture(scope="module")
def market() -> EnvMarket:
    panel = generate_market(SyntheticMarketConfig(n_symbols=6, n_bars=300, seed=5)).panel
    return build_market(panel, compute_features(panel, FeaturePipelineConfig()))


ENV = HierarchicalEnvConfig(n_symbols=3, communication_interval=4)
WINDOW = Window(100, 250)


class BuyWhenAllowed(BacktestPolicy):
    """BUY (action 1) whenever the mask allows it, else HOLD."""

    kind = "agent"

    def __init__(self, name: str, master: Any = None) -> None:
        self.name, self.master = name, master

    def decide(self, context: StepContext) -> Decision:
        return Decision(actions=np.where(context.masks[..., 1], 1, 0))


class FixedMaster:
    name = "fixed"

    def __init__(self, action: np.ndarray) -> None:
        self.action = action
        self.calls = 0

    def check(self, observation_dim: int, market_dim: int, nvec: Any) -> None:
        self.shapes = (observation_dim, market_dim)

    def decide(self, observations: np.ndarray, market: np.ndarray) -> np.ndarray:
        assert (observations.shape[1], market.shape[1]) == self.shapes
        self.calls += 1
        return np.tile(self.action, (observations.shape[0], 1))


def backtest(market: EnvMarket, master: FixedMaster | None) -> PolicyRun:
    policy = BuyWhenAllowed("system", master)
    return Backtester(market, ENV).run([policy], WINDOW)["system"]


def test_a_neutral_master_is_the_independent_system(market: EnvMarket) -> None:
    master = FixedMaster(default_neutral_action(3, ENV.budget_levels))
    with_master = backtest(market, master)
    without = backtest(market, None)
    np.testing.assert_array_equal(with_master.equity, without.equity)
    np.testing.assert_array_equal(with_master.budgets, without.budgets)
    assert policy_metrics(without, 252.0)["exposure"] > 0.3
    assert without.symbols.shape == (2, 3)  # 6 symbols in books of 3
    # Asked on decision bars only: steps 0, 4, 8, ... of the window.
    assert master.calls == math.ceil((len(WINDOW) - 1) / ENV.communication_interval)


def test_a_master_cutting_every_budget_keeps_the_book_flat(market: EnvMarket) -> None:
    zero = np.array([0, 0, 0, 1])  # budget level 0.0 for every slot, neutral mode
    run = backtest(market, FixedMaster(zero))
    flat = policy_metrics(run, 252.0)
    assert flat["exposure"] == 0.0 and flat["closed_trades"] == 0
    assert flat["mean_gross_budget"] == 0.0
    np.testing.assert_array_equal(run.equity, run.capital)
    aggressive = policy_metrics(backtest(market, FixedMaster(np.array([4, 4, 4, 2]))), 252.0)
    neutral = policy_metrics(backtest(market, None), 252.0)
    assert aggressive["gross_exposure"] > neutral["gross_exposure"]
    assert aggressive["aggressive_share"] == 1.0 and neutral["aggressive_share"] == 0.0


def test_pooled_markets_average_metrics_and_combine_bootstrap_intervals() -> None:
    """One seed tested on two markets: each metric the mean; the Sharpe gain's interval that
    of a mean of two independent estimates (half-widths 0.4 and 0.3: sqrt(.16 + .09) / 2)."""
    first = with_paired(
        seed_comparison(independent=(1.0, 0.5), hierarchical=(1.5, 0.25)), hierarchical=0.8
    )
    second = with_paired(
        seed_comparison(independent=(0.5, 0.25), hierarchical=(0.75, 0.125)), hierarchical=0.6
    )
    for comparison, gain in ((first, 0.5), (second, 0.25)):
        comparison["paired"]["systems"]["hierarchical"]["metrics"]["sharpe"]["difference"] = gain
    pooled = pool_markets([first, second])
    assert pooled["markets"] == 2 and pooled["bars"] == 800
    assert pooled["systems"]["hierarchical"]["sharpe"] == 1.125
    assert pooled["systems"]["independent"]["mean_episode_max_drawdown"] == 0.375
    sharpe = pooled["paired"]["systems"]["hierarchical"]["metrics"]["sharpe"]
    assert sharpe["difference"] == 0.375
    assert sharpe["high"] - sharpe["difference"] == pytest.approx(0.25)
    assert pool_markets([first]) == first
    # Pooled seeds feed compare_runs like single-market ones.
    summary = compare_runs([pooled, pooled])
    assert summary["evidence"]["hierarchical"]["bootstrap_half_width"] == pytest.approx(
        0.25 / math.sqrt(2)
    )


def test_system_comparison_settings_keep_everything_but_the_split_and_extras() -> None:
    from multiagent.config.evaluation import EvaluationConfig

    settings = EvaluationConfig.model_validate(
        {"part": "validation", "min_coverage": 0.8, "bootstrap_replications": 200}
    )
    comparison = settings.system_comparison()
    assert comparison.part == "test"
    assert not comparison.walk_forward.enabled and not comparison.stress.enabled
    assert comparison.min_coverage == 0.8 and comparison.bootstrap_replications == 200
    assert settings.part == "validation"  # the original is untouched (frozen)
