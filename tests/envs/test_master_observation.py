"""The master's per-slot recent P&L block (spec v2): what it measures, from past fills only."""

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
    expected = np.zeros(n)
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
    block = obs[MASTER][at : at + n]
    assert block[2] == 0.0  # a slot that never traded earned nothing
    assert block[0] != 0.0 and block[1] != 0.0
