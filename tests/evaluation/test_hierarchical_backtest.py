"""The backtester runs the hierarchy as the env does: master schedule, budgets, forced trims.

- a hand-checked book: a master that cuts a slot's budget to 0 forces the trim on that
  step's fill, and the equity then moves with the other slot only;
- the same scripted symbol agents and master through `HierarchicalTradingEnv` (what training
  steps) and through the backtester give the same budgets, trims and equity, bar for bar;
- a master needs books of exactly its N slots, and one clear error otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from multiagent.data import SyntheticMarketConfig, generate_market
from multiagent.data.featurize import FeaturePipelineConfig, compute_features
from multiagent.data.splits import Window
from multiagent.envs import EnvMarket, HierarchicalEnvConfig, HierarchicalTradingEnv, build_market
from multiagent.envs.hierarchical_env import MASTER
from multiagent.envs.sampling import Episode
from multiagent.errors import ConfigError
from multiagent.evaluation.backtest import Backtester
from multiagent.evaluation.policies import BacktestPolicy, Decision, StepContext
from multiagent.evaluation.scoring import policy_metrics

FRICTIONLESS: dict[str, Any] = {
    "costs": {"cost_multiplier": 0.0},
    "execution": {"fill_price": "next_close"},
    "limits": {"max_weight": 1.0, "max_gross_exposure": 1.0},
}


def make_market(n_symbols: int, n_bars: int = 120, seed: int = 5) -> EnvMarket:
    panel = generate_market(
        SyntheticMarketConfig(n_symbols=n_symbols, n_bars=n_bars, seed=seed)
    ).panel
    return build_market(panel, compute_features(panel, FeaturePipelineConfig()))


def env_config(n_slots: int, **extra: Any) -> HierarchicalEnvConfig:
    return HierarchicalEnvConfig.model_validate(
        {
            **FRICTIONLESS,
            "n_symbols": n_slots,
            "communication_interval": 2,
            "scheme": {"kind": "discrete3"},
            **extra,
        }
    )


class AlwaysBuy(BacktestPolicy):
    kind = "agent"

    def __init__(self, name: str, master: Any = None) -> None:
        self.name = name
        self.master = master

    def decide(self, context: StepContext) -> Decision:
        buy = context.action_names.index("BUY")
        return Decision(actions=np.where(context.masks[..., buy], buy, 0))


class ScriptedMaster:
    """Decision k (0, 1, 2...) sends ``script[k]`` to every book (the last one repeats)."""

    def __init__(self, script: Sequence[Sequence[int]], name: str = "scripted") -> None:
        self.script = [np.asarray(a, np.int64) for a in script]
        self.name = name
        self.calls = 0
        self.seen: list[np.ndarray] = []

    def check(self, observation_dim: int, market_dim: int, nvec: Sequence[int]) -> None:
        self.nvec = list(nvec)

    def decide(self, observations: np.ndarray, market: np.ndarray) -> np.ndarray:
        self.seen.append(observations.copy())
        action = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return np.tile(action, (observations.shape[0], 1))


def test_a_cut_budget_forces_the_trim_on_the_next_fill_and_the_equity_follows() -> None:
    market = make_market(2)
    config = env_config(2)
    neutral, cut_first = [2, 2, 1], [0, 2, 1]  # level 2 = 1.0 x the equal share; level 0 = 0
    master = ScriptedMaster([neutral, cut_first])
    window = Window(40, 52)
    run = Backtester(market, config).run([AlwaysBuy("hier", master)], window)["hier"]
    close = market.close
    qty = run.values / close[run.symbols[:, :, None], np.arange(41, 52)[None, None, :]]

    assert master.calls == 6  # decisions on steps 0, 2, 4, 6, 8, 10 of 11
    assert run.master == "scripted"
    assert run.budgets is not None and run.forced is not None and run.risk_modes is not None
    # Before the cut each slot holds its equal budget (0.5 of equity); on step 2 the budget of
    # slot 0 is 0, the slot is trimmed to nothing by that step's fill, and stays flat.
    np.testing.assert_allclose(run.budgets[0, :, :2], 0.5)
    np.testing.assert_allclose(run.budgets[0, 0, 2:], 0.0)
    np.testing.assert_allclose(run.budgets[0, 1, 2:], 0.5)
    weights = run.values[0] / run.equity[0, 1:]
    np.testing.assert_allclose(weights[:, 0], 0.5, rtol=1e-9)  # bought on step 0's fill
    assert run.values[0, 0, 1] != 0.0
    np.testing.assert_array_equal(run.values[0, 0, 2:], 0.0)
    assert run.forced[0, 0, 2] and run.forced.sum() == 1  # one forced trim, that one
    # Equity follows the positions: without costs, each step's change is what the shares held
    # into it earned from close to close (fills at the next close).
    start = window.start
    for step in range(1, run.n_steps):
        held = qty[0, :, step - 1]
        move = close[run.symbols[0], start + step + 1] - close[run.symbols[0], start + step]
        assert run.equity[0, step + 1] - run.equity[0, step] == pytest.approx(
            float(held @ move), rel=1e-9, abs=1e-6
        )
    # after the trim only slot 1 moves the book
    held = qty[0, 1, 5]
    move = close[run.symbols[0, 1], start + 7] - close[run.symbols[0, 1], start + 6]
    assert run.equity[0, 7] - run.equity[0, 6] == pytest.approx(held * move, rel=1e-9)
    metrics = policy_metrics(run, 252.0)
    assert metrics["forced_trims_per_episode"] == 1.0
    assert metrics["mean_gross_budget"] == pytest.approx((2 * 1.0 + 9 * 0.5) / 11)


def test_without_a_master_the_books_keep_equal_budgets() -> None:
    market = make_market(2)
    run = Backtester(market, env_config(2)).run([AlwaysBuy("free")], Window(40, 52))["free"]
    assert run.master is None and run.budgets is not None
    np.testing.assert_allclose(run.budgets, 0.5)
    assert run.risk_modes is not None and (run.risk_modes == 1).all()
    assert run.forced is not None and not run.forced.any()


class SignRule(BacktestPolicy):
    """A deterministic symbol policy of its observation (BUY / SELL by one feature's sign)."""

    kind = "agent"
    needs_observations = True

    def __init__(self, name: str, column: int, master: Any = None) -> None:
        self.name, self.column, self.master = name, column, master

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        want = np.where(observations[..., self.column] > 0, 1, 2)
        allowed = np.take_along_axis(masks, want[..., None], axis=-1)[..., 0]
        return np.where(allowed, want, 0)

    def decide(self, context: StepContext) -> Decision:
        assert context.observations is not None
        return Decision(actions=self.act(context.observations, context.masks))


class RuleMaster:
    """A master of its inputs only: each slot's level from its window's latest first feature,
    the risk mode from the portfolio drawdown in its observation."""

    name = "rule"

    def __init__(self, n_slots: int, n_features: int) -> None:
        self.n_slots, self.n_features = n_slots, n_features

    def check(self, observation_dim: int, market_dim: int, nvec: Sequence[int]) -> None:
        self.levels = int(nvec[0])

    def decide(self, observations: np.ndarray, market: np.ndarray) -> np.ndarray:
        windows = market.reshape(market.shape[0], self.n_slots, -1)
        latest = windows[:, :, -self.n_features]
        level = np.clip(np.round(2 + 2 * np.tanh(latest)), 0, self.levels - 1).astype(np.int64)
        drawdown = observations[:, 2 * self.n_features + 2]
        mode = np.where(drawdown > 0.02, 0, np.where(observations[:, 0] > 0, 2, 1))
        return np.concatenate([level, mode[:, None]], axis=1)


def test_backtester_and_env_run_the_hierarchy_identically() -> None:
    """Same symbol rule, same master rule: the env (training's engine) and the backtester give
    the same budgets, forced trims and equity on every bar of the window."""
    n = 3
    market = make_market(n, n_bars=160, seed=9)
    config = env_config(n, communication_interval=3, scheme={"kind": "discrete3"})
    window = Window(50, 140)
    master = RuleMaster(n, market.n_features)
    policy = SignRule("hier", column=0, master=master)
    run = Backtester(market, config).run([policy], window)["hier"]

    env = HierarchicalTradingEnv(market, config=config)
    env.reset(seed=0)
    # Pin the env's episode to the backtest's book (panel order, the same window).
    env.core.reset([Episode(np.arange(n), window.start, window.stop)])
    env.seat.reset()
    env._step = 0
    observations = env._observe()
    master.check(env.master_dim, n * env.window_dim, env.seat.nvec.tolist())
    equity = [env.core.sim.equity[0]]
    budgets, forced = [], []
    while env.agents:
        obs = np.stack([observations[a]["observations"] for a in env.symbol_agents])
        masks = np.stack([observations[a]["action_mask"] for a in env.symbol_agents]) > 0
        actions: dict[str, Any] = dict(
            zip(env.symbol_agents, policy.act(obs, masks).tolist(), strict=True)
        )
        inputs = env.master_inputs()
        actions[MASTER] = master.decide(inputs["obs"][None], inputs["market"][None])[0]
        observations, _, _, _, infos = env.step(actions)
        equity.append(infos[MASTER]["equity"])
        budgets.append(infos[MASTER]["budgets"])
        forced.append(env.core.telemetry.summary(0)["forced_trades"])
    assert len(equity) == run.n_steps + 1
    assert run.budgets is not None and run.forced is not None
    np.testing.assert_array_equal(np.asarray(budgets).T, run.budgets[0])
    np.testing.assert_array_equal(np.asarray(equity), run.equity[0])
    assert forced[-1] >= int(run.forced.sum()) > 0  # the rule does cut budgets
    assert len({tuple(b) for b in budgets}) > 3  # and does move them around


def test_a_master_needs_books_of_its_slot_count() -> None:
    market = make_market(2)
    config = env_config(3)
    tester = Backtester(market, config)
    master = ScriptedMaster([[2, 2, 2, 1]])
    with pytest.raises(ConfigError, match="books of 3 symbols"):
        tester.run([AlwaysBuy("hier", master)], Window(40, 52))
    # independent agents trade the 2 symbols there are
    assert tester.run([AlwaysBuy("free")], Window(40, 52))["free"].symbols.shape == (1, 2)
