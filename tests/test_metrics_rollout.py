"""Performance metrics and deterministic symbol-policy rollouts through the hierarchical env."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multiagent.data.episodes import EpisodeView, make_views
from multiagent.data.featurize import FeaturePipelineConfig, compute_features
from multiagent.data.synthetic import SyntheticMarket, SyntheticMarketConfig, generate_market
from multiagent.envs import (
    CostConfig,
    EnvMarket,
    ExecutionConfig,
    HierarchicalEnvConfig,
    HierarchicalTradingEnv,
    SchemeConfig,
    build_market,
    whole_market_views,
)
from multiagent.evaluation.metrics import max_drawdown, periods_per_year, sharpe, total_return
from multiagent.evaluation.rollout import (
    OracleSymbolPolicy,
    SymbolPolicy,
    evaluate_symbol_policy,
)

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


# --- rollouts -----------------------------------------------------------------------------------


class HoldPolicy:
    def __init__(self) -> None:
        self.resets = 0

    def reset(self, env: HierarchicalTradingEnv) -> None:
        self.resets += 1

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        assert observations.dtype == np.float32 and observations.ndim == 2
        assert masks.shape[0] == observations.shape[0]
        return np.zeros(len(observations), dtype=np.int64)


class RandomPolicy:
    """Random valid actions, re-seeded per episode (a fixed sequence of episode seeds)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.episode = 0
        self.rng = np.random.default_rng(seed)

    def reset(self, env: HierarchicalTradingEnv) -> None:
        self.rng = np.random.default_rng([self.seed, self.episode])
        self.episode += 1

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        scores = self.rng.random(masks.shape) * (masks > 0)
        return scores.argmax(axis=1)


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


@pytest.fixture(scope="module")
def views(momentum: SyntheticMarket) -> list[EpisodeView]:
    return make_views(momentum.panel, length=100, min_length=50)


def test_hold_policy_is_flat(market: EnvMarket, views: list[EpisodeView]) -> None:
    policy: SymbolPolicy = HoldPolicy()
    result = evaluate_symbol_policy(policy, market, views, SHORTING, seed=0)
    assert isinstance(policy, HoldPolicy)
    assert policy.resets == len(views) == len(result.returns) == len(result.summaries)
    for returns, view in zip(result.returns, views, strict=True):
        assert len(returns) == view.length - 1
        assert np.all(returns == 0.0)
    assert all(s["trades"] == 0 for s in result.summaries)
    metrics = result.metrics
    assert metrics["sharpe"] == 0.0
    assert metrics["mean_episode_return"] == 0.0
    assert metrics["max_drawdown"] == 0.0
    assert metrics["trades_per_episode"] == 0.0
    assert metrics["turnover"] == 0.0 and metrics["exposure"] == 0.0
    assert metrics["episodes"] == len(views)
    assert metrics["bars"] == sum(v.length - 1 for v in views)
    assert result.periods_per_year == 252.0


def test_max_views_and_periods(market: EnvMarket, views: list[EpisodeView]) -> None:
    policy = HoldPolicy()
    result = evaluate_symbol_policy(
        policy, market, views, SHORTING, seed=0, max_views=2, periods_per_year=12.0
    )
    assert policy.resets == 2 and result.metrics["episodes"] == 2.0
    assert result.periods_per_year == 12.0


def test_same_policy_same_seed_same_returns(market: EnvMarket, views: list[EpisodeView]) -> None:
    first = evaluate_symbol_policy(RandomPolicy(7), market, views, SHORTING, seed=4)
    second = evaluate_symbol_policy(RandomPolicy(7), market, views, SHORTING, seed=4)
    assert first.metrics["trades_per_episode"] > 0  # it does trade
    assert len(first.returns) == len(second.returns)
    for a, b in zip(first.returns, second.returns, strict=True):
        assert np.array_equal(a, b)
    assert first.metrics == second.metrics
    # The policy's own randomness matters (so the equality above is not vacuous).
    other = evaluate_symbol_policy(RandomPolicy(8), market, views, SHORTING, seed=4)
    assert any(not np.array_equal(a, b) for a, b in zip(first.returns, other.returns, strict=True))


def test_oracle_beats_hold_on_momentum(
    momentum: SyntheticMarket, market: EnvMarket, views: list[EpisodeView]
) -> None:
    oracle = evaluate_symbol_policy(OracleSymbolPolicy(momentum.signal), market, views, SHORTING)
    hold = evaluate_symbol_policy(HoldPolicy(), market, views, SHORTING)
    assert oracle.metrics["sharpe"] > 3.0
    assert oracle.metrics["sharpe"] > hold.metrics["sharpe"]
    assert oracle.metrics["mean_episode_return"] > 0.1
    assert oracle.metrics["trades_per_episode"] > 0
    # It goes short as well as long (the scheme shorts on SELL): nearly always invested.
    assert oracle.metrics["exposure"] > 0.5
    histograms = [s["action_histogram"] for s in oracle.summaries]
    assert sum(h["SELL"] for h in histograms) > 0 and sum(h["BUY"] for h in histograms) > 0
    # Deterministic: the same policy, data and seed give the same figures.
    again = evaluate_symbol_policy(OracleSymbolPolicy(momentum.signal), market, views, SHORTING)
    assert again.metrics == oracle.metrics


def test_oracle_on_whole_market_views(momentum: SyntheticMarket, market: EnvMarket) -> None:
    views = whole_market_views(market)
    result = evaluate_symbol_policy(OracleSymbolPolicy(momentum.signal), market, views, SHORTING)
    assert result.metrics["episodes"] == 3.0
    assert result.metrics["sharpe"] > 3.0


def test_oracle_needs_discrete3(momentum: SyntheticMarket, market: EnvMarket) -> None:
    env = HierarchicalTradingEnv(market, config=HierarchicalEnvConfig(n_symbols=2))
    policy = OracleSymbolPolicy(momentum.signal)
    with pytest.raises(ValueError, match="discrete3"):
        policy.reset(env)
    with pytest.raises(ValueError, match="discrete3"):
        evaluate_symbol_policy(
            policy, market, whole_market_views(market), HierarchicalEnvConfig(n_symbols=2)
        )
