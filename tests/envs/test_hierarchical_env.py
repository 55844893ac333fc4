"""The master's control over the symbol agents, hand-checked on the hierarchical env."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from multiagent.envs import (
    MASTER,
    EnvMarket,
    HierarchicalEnvConfig,
    HierarchicalTradingEnv,
    RiskLimits,
)
from multiagent.envs.hierarchical_env import default_neutral_action

HOLD, BUY_LARGE, SELL_ALL = 0, 3, 5
LEVELS = (0.0, 0.5, 1.0, 1.5, 2.0)


def make(market: EnvMarket, **changes: Any) -> HierarchicalTradingEnv:
    config = HierarchicalEnvConfig(n_symbols=4, budget_levels=LEVELS, **changes)
    env = HierarchicalTradingEnv(market, config=config)
    env.reset(seed=1, options={"view": 0})
    return env


def step(
    env: HierarchicalTradingEnv, symbol_action: int | list[int], master: list[int] | None = None
) -> tuple[dict[str, Any], dict[str, float], dict[str, Any]]:
    actions = symbol_action if isinstance(symbol_action, list) else [symbol_action] * 4
    joint: dict[str, Any] = {f"symbol_{i}": a for i, a in enumerate(actions)}
    joint[MASTER] = np.array(master if master is not None else default_neutral_action(4, LEVELS))
    observations, rewards, _, _, infos = env.step(joint)
    return observations, rewards, infos


def test_budget_zero_blocks_buys(market: EnvMarket) -> None:
    env = make(market)
    observations, _, infos = step(env, BUY_LARGE, master=[0, 2, 2, 2, 1])
    weights = env.core.sim.weights()[0]
    assert weights[0] == 0.0
    assert np.all(weights[1:] > 0.2)
    assert infos[MASTER]["budgets"][0] == 0.0
    assert observations["symbol_0"]["action_mask"][1:4].sum() == 0  # no buys allowed


def test_cut_budget_trims_position_as_forced_trade(market: EnvMarket) -> None:
    env = make(market)
    step(env, BUY_LARGE)
    for _ in range(3):
        step(env, HOLD)
    before = env.core.sim.weights()[0].copy()
    step(env, HOLD, master=[1, 2, 2, 2, 1])  # slot 0: budget 0.25 -> 0.125
    after = env.core.sim.weights()[0]
    assert after[0] == pytest.approx(0.125, rel=0.02)
    assert after[1:] == pytest.approx(before[1:], rel=0.1)
    assert env.core.telemetry.forced[0, 0] == 1
    assert env.core.telemetry.forced[0, 1:].sum() == 0


def test_master_acts_only_every_interval(market: EnvMarket) -> None:
    env = make(market, communication_interval=4)
    _, _, infos = step(env, HOLD, master=[2, 2, 2, 2, 1])
    assert infos[MASTER]["decision"]
    for _ in range(3):
        _, _, infos = step(env, HOLD, master=[0, 0, 0, 0, 0])
        assert not infos[MASTER]["decision"]
        assert infos[MASTER]["budgets"] == pytest.approx([0.25] * 4)
    _, _, infos = step(env, HOLD, master=[0, 0, 0, 0, 0])
    assert infos[MASTER]["decision"]
    assert infos[MASTER]["budgets"] == pytest.approx([0.0] * 4)


def test_risk_modes_scale_budgets(market: EnvMarket) -> None:
    env = make(market)
    _, _, infos = step(env, HOLD, master=[2, 2, 2, 2, 0])
    assert infos[MASTER]["budgets"] == pytest.approx([0.125] * 4)
    assert infos[MASTER]["risk_mode"] == 0


def test_shared_cash_and_gross_limit(market: EnvMarket) -> None:
    """Budgets summing to 2x equity cannot lever the portfolio: gross exposure and cash hold."""
    env = make(market, limits=RiskLimits(max_gross_exposure=1.0))
    for _ in range(8):
        step(env, BUY_LARGE, master=[4, 4, 4, 4, 1])
        sim = env.core.sim
        assert sim.cash[0] >= 0
        assert np.abs(sim.weights()[0]).sum() <= 1.0 + 0.05  # drift after the fill only


def test_state_holds_every_observation(market: EnvMarket) -> None:
    env = make(market)
    observations, _, _ = step(env, BUY_LARGE)
    state = env.state()
    dim = env.core.observations.dim
    for i in range(4):
        np.testing.assert_array_equal(
            state[i * dim : (i + 1) * dim], observations[f"symbol_{i}"]["observations"]
        )
    np.testing.assert_array_equal(state[4 * dim :], observations[MASTER])


def test_rewards_sum_their_terms(market: EnvMarket) -> None:
    env = make(market)
    for _ in range(5):
        _, rewards, infos = step(env, BUY_LARGE)
        for agent in env.symbol_agents:
            terms = infos[agent]["reward_terms"]
            assert rewards[agent] == pytest.approx(sum(terms[name] for name in terms.dtype.names))
        master_terms = infos[MASTER]["reward_terms"]
        assert rewards[MASTER] == pytest.approx(
            sum(master_terms[n] for n in master_terms.dtype.names)
        )
