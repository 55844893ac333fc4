"""The master's per-slot recent P&L (spec v2) and edge (v3) blocks: what they measure, from past
fills only."""

from __future__ import annotations

from typing import Any

import numpy as np

from multiagent.envs import EnvMarket, HierarchicalEnvConfig, HierarchicalTradingEnv
from multiagent.envs.hierarchical_env import MASTER, default_neutral_action
from multiagent.envs.observations import PORTFOLIO_FIELDS


def test_slot_pnl_is_the_ewma_of_each_slots_net_pnl(market: EnvMarket) -> None:
    config = HierarchicalEnvConfig(n_symbols=3)
    env = HierarchicalTradingEnv(market, config=config)
    captured: list[Any] = []
    step = env.core.step

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = step(*args, **kwargs)
        captured.append(result.fills)
        return result

    env.core.step = recording  # type: ignore[method-assign]
    obs, _ = env.reset(seed=1, options={"view": 0})
    n, f = env.n_slots, market.n_features
    at = 2 * f + len(PORTFOLIO_FIELDS) + 2 * n
    alpha = 1.0 - 0.5 ** (1.0 / config.observation.correlation_halflife)
    beta = 1.0 - 0.5 ** (1.0 / config.observation.edge_halflife)
    expected = np.zeros(n)
    mean, square = np.zeros(n), np.zeros(n)
    master = default_neutral_action(n, config.budget_levels)
    np.testing.assert_array_equal(obs[MASTER][at : at + n], 0.0)
    for t in range(30):
        # slot 0 buys once then holds; slot 1 flips every 5 bars; slot 2 never trades
        actions: dict[str, Any] = {"symbol_0": 1 if t == 0 else 0, "symbol_2": 0}
        actions["symbol_1"] = (1 if (t // 5) % 2 == 0 else 2) if t % 5 == 0 else 0
        actions[MASTER] = master
        obs, *_ = env.step(actions)
        fills = captured[-1]
        net = (fills.pnl - fills.costs.total)[0] / fills.equity_before[0]
        expected = (1 - alpha) * expected + alpha * net
        np.testing.assert_allclose(obs[MASTER][at : at + n], expected * 100.0, rtol=1e-5, atol=1e-9)
        mean = (1 - beta) * mean + beta * net
        square = (1 - beta) * square + beta * net**2
        root = np.sqrt(square)
        edge = np.divide(mean, root, out=np.zeros(n), where=root > 1e-12)
        np.testing.assert_allclose(obs[MASTER][at + n : at + 2 * n], edge, rtol=1e-5, atol=1e-7)
    block = obs[MASTER][at : at + n]
    assert block[2] == 0.0  # a slot that never traded earned nothing
    assert block[0] != 0.0 and block[1] != 0.0
    edge_block = obs[MASTER][at + n : at + 2 * n]
    assert edge_block[2] == 0.0 and np.all(np.abs(edge_block) <= 1.0)


def test_edge_is_scale_free(market: EnvMarket) -> None:
    """Halving every budget halves the P&L block but leaves the edge block as it was."""
    blocks = []
    for level in (1.0, 0.5):
        config = HierarchicalEnvConfig(n_symbols=2, budget_levels=(level,))
        env = HierarchicalTradingEnv(market, config=config)
        obs, _ = env.reset(seed=3, options={"view": 0})
        for t in range(25):
            actions: dict[str, Any] = {"symbol_0": 1 if t == 0 else 0, "symbol_1": 0}
            actions[MASTER] = np.array([0, 0, 1])
            obs, *_ = env.step(actions)
        at = 2 * market.n_features + len(PORTFOLIO_FIELDS) + 2 * env.n_slots
        blocks.append(obs[MASTER][at : at + 2 * env.n_slots])
    full, half = blocks
    np.testing.assert_allclose(half[0], full[0] / 2, rtol=0.05)
    np.testing.assert_allclose(half[2:], full[2:], atol=0.02)
