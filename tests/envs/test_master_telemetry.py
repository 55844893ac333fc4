"""The master's telemetry (budget levels, risk modes, budgets and exposure on calm vs stressed
bars, forced-trim turnover), the stress label it splits by, and the risk-scaled reward."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from multiagent.envs import EnvMarket, HierarchicalEnvConfig, HierarchicalTradingEnv
from multiagent.envs.hierarchical_env import MASTER
from multiagent.envs.telemetry import stress_ratio, stressed_bars
from multiagent.rllib.callbacks import master_telemetry


def run_episode(
    env: HierarchicalTradingEnv, masters: list[np.ndarray], seed: int = 0
) -> tuple[dict[str, Any], list[Any], list[float]]:
    """Every symbol agent buys on the first bar then holds; the master cycles ``masters``."""
    captured: list[Any] = []
    step = env.core.step

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = step(*args, **kwargs)
        captured.append((result.fills, args[3] if len(args) > 3 else None))
        return result

    env.core.step = recording  # type: ignore[method-assign]
    env.reset(seed=seed, options={"view": 0})
    rewards, t, info = [], 0, {}
    while env.agents:
        actions: dict[str, Any] = {a: 1 if t == 0 else 0 for a in env.symbol_agents}
        actions[MASTER] = masters[(t // env.config.communication_interval) % len(masters)]
        _, reward, _, _, info = env.step(actions)
        rewards.append(reward[MASTER])
        t += 1
    return info[MASTER]["episode"]["master"], captured, rewards


def test_level_and_mode_shares_count_the_applied_decisions(market: EnvMarket) -> None:
    config = HierarchicalEnvConfig(n_symbols=3, communication_interval=5, max_episode_bars=60)
    env = HierarchicalTradingEnv(market, config=config)
    masters = [np.array([0, 2, 4, 1]), np.array([2, 2, 2, 0])]
    summary, _, _ = run_episode(env, masters)
    decisions = summary["decisions"]
    assert decisions == -(-env.core.telemetry.steps[0] // 5)
    first = -(-decisions // 2)  # decisions with the first action (they alternate)
    expected = np.zeros(5)
    np.add.at(expected, [0, 2, 4], first)
    expected[2] += 3 * (decisions - first)
    np.testing.assert_allclose(summary["level_share"], expected / (3 * decisions))
    np.testing.assert_allclose(
        summary["mode_share"], [(decisions - first) / decisions, first / decisions, 0.0]
    )


def test_forced_turnover_is_the_notional_of_the_trims(market: EnvMarket) -> None:
    config = HierarchicalEnvConfig(n_symbols=2, communication_interval=4, max_episode_bars=40)
    env = HierarchicalTradingEnv(market, config=config)
    # Full budgets, then every budget cut to half: the held positions are trimmed.
    summary, captured, _ = run_episode(env, [np.array([4, 4, 1]), np.array([1, 1, 1])])
    forced = 0.0
    for fills, mask in captured:
        if mask is not None:
            notional = np.abs(fills.traded) * np.nan_to_num(fills.price)
            forced += float(np.where(mask, notional, 0.0).sum() / fills.equity_before[0])
    assert forced > 0
    assert summary["forced_turnover"] == pytest.approx(forced / len(captured))
    # Keeping the budgets forces nothing.
    env = HierarchicalTradingEnv(market, config=config)
    kept, _, _ = run_episode(env, [np.array([2, 2, 1])])
    assert kept["forced_turnover"] == 0.0


def test_budgets_and_exposure_split_by_stressed_bars(market: EnvMarket) -> None:
    config = HierarchicalEnvConfig(n_symbols=2, max_episode_bars=300)
    env = HierarchicalTradingEnv(market, config=config)
    summary, _, _ = run_episode(env, [np.array([2, 2, 1])])
    labels = env.seat.telemetry.stressed
    share = summary["stressed_share"]
    assert 0.0 <= share <= 1.0
    for bucket in ("calm", "stressed"):
        budget = summary[f"budget_{bucket}"]
        if budget is not None:  # the equal budgets, whatever the bar
            assert budget == pytest.approx(config.limits.max_gross_exposure)
    assert labels.shape == (market.n_bars,)
    figures = master_telemetry(summary)
    assert figures["master_level_share_2"] == 1.0 and figures["master_mode_share_1"] == 1.0
    assert figures["forced_trim_turnover"] == 0.0
    assert ("master_budget_stressed" in figures) == (summary["budget_stressed"] is not None)


def test_stress_labels_are_causal_and_find_a_volatility_burst() -> None:
    rng = np.random.default_rng(0)
    returns = rng.normal(0, 0.01, (5, 800))
    returns[:, 500:540] *= 5  # a crash-like burst
    close = 100 * np.exp(np.cumsum(returns, axis=1))
    labels = stressed_bars(close)
    assert labels[:480].mean() < 0.05
    assert labels[510:540].all()
    # Perturb the future: labels up to the cut are unchanged.
    cut = 600
    future = close.copy()
    future[:, cut + 1 :] *= np.exp(rng.normal(0, 0.2, (5, 800 - cut - 1)))
    np.testing.assert_array_equal(stressed_bars(future)[: cut + 1], labels[: cut + 1])


def test_risk_scaled_reward_does_not_grow_with_leverage(market: EnvMarket) -> None:
    """Halving every budget halves returns and their volatility: the risk-scaled reward stays
    about the same, the mean-variance one shrinks."""
    totals = {}
    for kind in ("risk_scaled", "mean_variance"):
        for level in (1.0, 0.5):
            config = HierarchicalEnvConfig.model_validate(
                {
                    "n_symbols": 3,
                    "max_episode_bars": 200,
                    "budget_levels": [level],
                    "master_reward": {
                        "kind": kind,
                        "risk_aversion": 0.0,
                        "drawdown": 0.0,
                        "volatility_floor": 0.01,  # binds only on a flat book
                    },
                }
            )
            env = HierarchicalTradingEnv(market, config=config)
            _, _, rewards = run_episode(env, [np.array([0, 0, 0, 1])], seed=4)
            totals[kind, level] = np.sum(rewards[40:])  # past the volatility estimate's warm-up
    assert totals["risk_scaled", 0.5] == pytest.approx(totals["risk_scaled", 1.0], rel=0.15)
    assert totals["mean_variance", 0.5] == pytest.approx(totals["mean_variance", 1.0] / 2, rel=0.1)


def test_risk_scaled_reward_is_bounded_where_no_volatility_is_known(market: EnvMarket) -> None:
    """An episode from the data's first bar: no volatility estimate yet, no blow-up."""
    config = HierarchicalEnvConfig.model_validate(
        {"n_symbols": 3, "max_episode_bars": 30, "master_reward": {"kind": "risk_scaled"}}
    )
    env = HierarchicalTradingEnv(market, config=config)
    _, _, rewards = run_episode(env, [np.array([2, 2, 2, 1])])
    assert np.all(np.isfinite(rewards)) and np.abs(rewards).max() < 50
    env.reset(seed=0)
    env.core.sim.t[:] = 0  # the data's first bar: no return yet, so no volatility
    assert np.isnan(market.volatility[:, 0]).all()
    assert np.isinf(env.seat.reward_volatility()).all()  # a reward of 0, not a blow-up


@pytest.mark.parametrize("kind", ["risk_scaled", "mean_variance"])
def test_neutral_baseline_pays_only_what_the_allocation_adds(market: EnvMarket, kind: str) -> None:
    """``baseline: neutral``: a shadow book takes the same symbol actions under equal budgets.
    A master keeping the neutral allocation earns exactly 0; one that departs from it earns
    its book's reward minus the shadow's, and the symbol agents' rewards are those of the
    episode's own book."""
    config = HierarchicalEnvConfig.model_validate(
        {"n_symbols": 3, "max_episode_bars": 80, "master_reward": {"kind": kind}}
    )
    shadowed = config.model_copy(
        update={"master_reward": config.master_reward.model_copy(update={"baseline": "neutral"})}
    )
    neutral = HierarchicalTradingEnv(market, config=shadowed)
    assert neutral.books == 2
    _, _, rewards = run_episode(neutral, [neutral.seat.neutral])
    assert np.all(np.asarray(rewards) == 0.0)

    masters = [np.array([4, 0, 2, 2]), np.array([1, 4, 3, 0])]
    plain = HierarchicalTradingEnv(market, config=config)
    summary, _, own = run_episode(plain, masters)
    shadow_env = HierarchicalTradingEnv(market, config=config)
    _, _, shadow = run_episode(shadow_env, [shadow_env.seat.neutral])
    env = HierarchicalTradingEnv(market, config=shadowed)
    relative_summary, _, relative = run_episode(env, masters)
    # Same symbol actions in every run (buy, then hold), so the shadow is the neutral run.
    np.testing.assert_allclose(relative, np.asarray(own) - np.asarray(shadow), atol=1e-9)
    assert relative_summary == summary  # the episode's own book is unchanged


def test_the_master_observes_the_markets_causal_stress(market: EnvMarket) -> None:
    """The master observation's stress field is log(`stress_ratio`) at the decision bar, and
    the ratio up to a bar does not move when later prices do."""
    config = HierarchicalEnvConfig(n_symbols=3, max_episode_bars=50)
    env = HierarchicalTradingEnv(market, config=config)
    obs, _ = env.reset(seed=2, options={"view": 1})
    ratios = stress_ratio(market.close)
    at = env.master_dim - 3  # ... Herfindahl, stress, decision flag, bars to decision
    for _ in range(10):
        t = int(env.core.sim.t[0])
        assert obs[MASTER][at] == pytest.approx(np.log(ratios[t]), abs=1e-6)
        actions: dict[str, Any] = {a: 0 for a in env.symbol_agents}
        actions[MASTER] = env.seat.neutral
        obs, *_ = env.step(actions)
    cut = 300
    future = market.close.copy()
    future[:, cut + 1 :] *= 1.5
    np.testing.assert_array_equal(stress_ratio(future)[: cut + 1], ratios[: cut + 1])
    assert np.all(ratios > 0) and ratios[0] == 1.0
