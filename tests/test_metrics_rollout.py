"""Performance metrics, episode figures, and the sign oracle through the backtester."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multiagent.data.featurize import FeaturePipelineConfig, compute_features
from multiagent.data.splits import Window
from multiagent.data.synthetic import SyntheticMarket, SyntheticMarketConfig, generate_market
from multiagent.envs import (
    CostConfig,
    EnvMarket,
    ExecutionConfig,
    HierarchicalEnvConfig,
    SchemeConfig,
    build_market,
)
from multiagent.errors import ConfigError
from multiagent.evaluation.backtest import Backtester
from multiagent.evaluation.metrics import (
    episode_metrics,
    episode_segments,
    max_drawdown,
    periods_per_year,
    sharpe,
    total_return,
)
from multiagent.evaluation.policies import CashPolicy, OraclePolicy
from multiagent.evaluation.scoring import policy_metrics

# --- metrics ------------------------------------------------------------------------------------


def test_sharpe_by_hand() -> None:
    returns = [0.01, -0.01, 0.02, 0.0]
    mean = sum(returns) / 4  # 0.005
    variance = sum((r - mean) ** 2 for r in returns) / 3  # ddof=1
    expected = mean / math.sqrt(variance) * math.sqrt(252)
    assert expected == pytest.approx(6.1482, abs=1e-4)
    assert sharpe(np.array(returns)) == pytest.approx(expected, rel=1e-12)
    assert sharpe(returns, periods=12) == pytest.approx(mean / math.sqrt(variance) * math.sqrt(12))
    assert sharpe([-r for r in returns]) == pytest.approx(-expected)


@pytest.mark.parametrize("returns", [[0.0] * 10, [0.003] * 7, [0.01], [], [-0.02, -0.02]], ids=str)
def test_sharpe_without_risk_is_zero(returns: list[float]) -> None:
    assert sharpe(np.array(returns)) == 0.0


def test_max_drawdown_known_series() -> None:
    # Equity 1.1, 0.55, 0.66: peak 1.1, trough 0.55.
    assert max_drawdown(np.array([0.1, -0.5, 0.2])) == pytest.approx(0.5)
    # The starting equity (1.0) is a peak too.
    assert max_drawdown(np.array([-0.2, 0.1])) == pytest.approx(0.2)
    # Two drawdowns: 1 -> 0.9 (10%) and 1.08 -> 0.756 (30%).
    assert max_drawdown(np.array([-0.1, 0.2, -0.3])) == pytest.approx(0.3)
    assert max_drawdown(np.array([0.01, 0.02, 0.0])) == 0.0
    assert max_drawdown(np.array([])) == 0.0


def test_total_return() -> None:
    assert total_return(np.array([0.1, -0.5, 0.2])) == pytest.approx(1.1 * 0.5 * 1.2 - 1)
    assert total_return(np.array([0.1, -0.1])) == pytest.approx(-0.01)
    assert total_return(np.array([])) == 0.0


@pytest.mark.parametrize(
    ("frequency", "expected"),
    [("1D", 252.0), ("7D", 36.0), ("1h", 100 / (99 / (365 * 24)))],
)
def test_periods_per_year(frequency: str, expected: float) -> None:
    panel = generate_market(SyntheticMarketConfig(n_symbols=1, n_bars=100, frequency=frequency))
    assert periods_per_year(panel.panel) == pytest.approx(expected)


# --- episode figures ---------------------------------------------------------------------------


def test_episode_segments_cut_each_book_into_training_length_pieces() -> None:
    books = np.arange(2 * 10, dtype=float).reshape(2, 10) / 100
    pieces = episode_segments(books, 4)
    # 10 bars in episodes of 4: 4 + 4 + 2 (2 >= 4 // 2 counts as an episode), per book
    assert [p.size for p in pieces] == [4, 4, 2, 4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(pieces[:3]), books[0])
    # a last piece shorter than half an episode joins the one before
    assert [p.size for p in episode_segments(books[:, :9], 4)] == [4, 5, 4, 5]
    # no length (or longer than the window): the whole window is one episode per book
    assert [p.size for p in episode_segments(books, None)] == [10, 10]
    assert [p.size for p in episode_segments(books, 50)] == [10, 10]
    assert episode_segments(np.zeros((1, 0)), 4) == []


def test_episode_metrics_by_hand() -> None:
    # book 0: +10% then -50% (drawdown 50%), then +20%, +0% (no drawdown)
    books = np.array([[0.1, -0.5, 0.2, 0.0]])
    figures = episode_metrics(books, 2)
    assert figures["episodes"] == 2.0
    assert figures["mean_episode_max_drawdown"] == pytest.approx((0.5 + 0.0) / 2)
    assert figures["mean_episode_return"] == pytest.approx((1.1 * 0.5 - 1 + 0.2) / 2)


# --- the sign oracle through the backtester ------------------------------------------------------

SHORTING = HierarchicalEnvConfig(
    n_symbols=2,
    scheme=SchemeConfig(kind="discrete3", short_on_sell=True),
    execution=ExecutionConfig(allow_short=True),
    costs=CostConfig(cost_multiplier=0.0),
)


@pytest.fixture(scope="module")
def momentum() -> SyntheticMarket:
    return generate_market(
        SyntheticMarketConfig(n_symbols=3, n_bars=400, seed=1, signal="momentum", signal_r2=0.3)
    )


@pytest.fixture(scope="module")
def market(momentum: SyntheticMarket) -> EnvMarket:
    return build_market(momentum.panel, compute_features(momentum.panel, FeaturePipelineConfig()))


def test_oracle_beats_cash_on_momentum(momentum: SyntheticMarket, market: EnvMarket) -> None:
    window = Window(100, 400)
    runs = Backtester(market, SHORTING).run([OraclePolicy(momentum.signal), CashPolicy()], window)
    oracle = policy_metrics(runs["oracle"], 252.0, episode_bars=100)
    cash = policy_metrics(runs["cash"], 252.0, episode_bars=100)
    assert oracle["sharpe"] > 3.0 > cash["sharpe"] == 0.0
    assert oracle["mean_episode_return"] > 0.1
    assert oracle["closed_trades"] > 0
    # It goes short as well as long (the scheme shorts on SELL): nearly always invested.
    assert oracle["exposure"] > 0.5
    counts = runs["oracle"].action_counts
    assert counts is not None and counts[:, 1].sum() > 0 and counts[:, 2].sum() > 0
    # Deterministic: the same policy, data and window give the same figures.
    again = Backtester(market, SHORTING).run([OraclePolicy(momentum.signal)], window)
    assert policy_metrics(again["oracle"], 252.0, episode_bars=100) == oracle


def test_oracle_needs_discrete3(momentum: SyntheticMarket, market: EnvMarket) -> None:
    tester = Backtester(market, HierarchicalEnvConfig(n_symbols=2))
    with pytest.raises(ConfigError, match="discrete3"):
        tester.run([OraclePolicy(momentum.signal)], Window(100, 200))
