"""The backtester, the baseline policies, stress scenarios, the evaluator and `multiagent evaluate`.

Markets: the bundled S&P 500 panel (close-only, fills at the next close) through the ``default``
and ``quick`` presets, and small seeded synthetic OHLCV markets (fills at the next open). The
agent is a tiny linear torch net with the exported-policy signature
``forward(obs (R, D), mask (R, A), state (R, 0)) -> (masked logits, state)``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from multiagent.cli import app
from multiagent.config import RunConfig, load_preset
from multiagent.config.evaluation import CrashSettings, StressSettings
from multiagent.data.featurize import FeaturePipelineConfig, build_features, compute_features
from multiagent.data.panel import MarketPanel
from multiagent.data.splits import Window
from multiagent.data.synthetic import SyntheticMarketConfig, generate_market
from multiagent.envs.config import CommonEnvConfig, CostConfig, HierarchicalEnvConfig
from multiagent.envs.market import EnvMarket, build_market
from multiagent.envs.observations import ObservationBuilder
from multiagent.envs.schemes import make_slot_scheme
from multiagent.errors import ConfigError
from multiagent.evaluation.backtest import Backtester, PolicyRun, make_books, universe
from multiagent.evaluation.evaluate import Evaluator
from multiagent.evaluation.gates import NO_GATES
from multiagent.evaluation.policies import (
    BacktestPolicy,
    BuyAndHoldPolicy,
    CashPolicy,
    Decision,
    EqualWeightPolicy,
    GreedyNetPolicy,
    MomentumPolicy,
    RandomPolicy,
    StepContext,
)
from multiagent.evaluation.report import dumps, render_markdown
from multiagent.evaluation.scenarios import (
    PRICE_FIELDS,
    cost_scenarios,
    crash_factors,
    crashed_panel,
    most_volatile_windows,
    volatility_by_bar,
)
from multiagent.evaluation.scoring import SUMMARY_KEYS, policy_metrics
from multiagent.runs.prepare import PreparedData, prepare

ZERO_COSTS = CostConfig(commission_bps=0, half_spread_bps=0, slippage_bps=0, impact_coef=0)
CASH_FACTOR = 1 - 1e-12
"""The simulator scales buys that would spend the last cent by this (cash never goes negative)."""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyNet(torch.nn.Module):
    """A seeded linear policy over the observation; masked actions get -1e9."""

    def __init__(self, dim: int, n_actions: int, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.linear = torch.nn.Linear(dim, n_actions)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(n_actions, dim, generator=generator) * 0.3)
            self.linear.bias.copy_(torch.randn(n_actions, generator=generator) * 0.3)

    def forward(
        self, obs: torch.Tensor, mask: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.linear(obs)
        return torch.where(mask > 0, logits, torch.full_like(logits, -1e9)), state


def agent_dims(market: EnvMarket, env: CommonEnvConfig) -> tuple[int, int]:
    """(observation size, number of scheme actions) of a symbol agent in ``env``."""
    dim = ObservationBuilder(market, env.observation).dim
    return dim, make_slot_scheme(env.scheme).n_actions


def greedy(market: EnvMarket, env: CommonEnvConfig, seed: int = 0) -> GreedyNetPolicy:
    return GreedyNetPolicy(TinyNet(*agent_dims(market, env), seed=seed), 0)


class Recorder(BacktestPolicy):
    """Passes another policy's decisions through and keeps a copy of each."""

    def __init__(self, inner: BacktestPolicy) -> None:
        self.inner = inner
        self.name = inner.name
        self.kind = inner.kind
        self.layout = inner.layout
        self.constrained = inner.constrained
        self.needs_observations = inner.needs_observations
        self.actions: list[np.ndarray] = []
        self.decision_bars: list[np.ndarray] = []

    def reset(self, n_books: int, n_slots: int) -> None:
        self.actions = []
        self.decision_bars = []
        self.inner.reset(n_books, n_slots)

    def decide(self, context: StepContext) -> Decision:
        decision = self.inner.decide(context)
        assert decision.actions is not None
        self.actions.append(np.array(decision.actions, copy=True))
        self.decision_bars.append(np.array(context.t, copy=True))
        return decision


def weights(run: PolicyRun, book: int = 0) -> np.ndarray:
    """(N, T) position value / book equity after each step."""
    return run.values[book] / run.equity[book, 1:]


@pytest.fixture(scope="module")
def bundled() -> tuple[RunConfig, PreparedData]:
    config = load_preset("default")
    return config, prepare(config, use_cache=False)


@pytest.fixture(scope="module")
def quick() -> tuple[RunConfig, PreparedData]:
    config = load_preset("quick")
    return config, prepare(config, use_cache=False)


@pytest.fixture(scope="module")
def quick_market(quick: tuple[RunConfig, PreparedData]) -> EnvMarket:
    config, prepared = quick
    return build_market(prepared.panel, prepared.features, config.env.costs)


@pytest.fixture(scope="module")
def quick_tester(quick: tuple[RunConfig, PreparedData], quick_market: EnvMarket) -> Backtester:
    return Backtester(quick_market, quick[0].env)


@pytest.fixture(scope="module")
def quick_window(quick: tuple[RunConfig, PreparedData]) -> Window:
    return quick[1].split.test


# ------------------------------------------------------------ 1. buy-and-hold on bundled data


def test_buy_and_hold_is_buy_and_hold_on_bundled_data(
    bundled: tuple[RunConfig, PreparedData],
) -> None:
    config, prepared = bundled
    assert config.env.execution.fill_price == "next_close"
    window = prepared.split.test
    start = window.start

    def run(costs: CostConfig) -> PolicyRun:
        market = build_market(prepared.panel, prepared.features, costs)
        env = config.env.model_copy(update={"costs": costs})
        return Backtester(market, env).run([BuyAndHoldPolicy()], window)["buy_and_hold"]

    free = run(ZERO_COSTS)
    costly = run(config.env.costs)
    assert free.layout == "single" and free.symbols.shape[1] == 1
    close = prepared.panel.close[free.symbols[:, 0]]
    books = np.flatnonzero(np.isfinite(close[:, start + 1]))
    assert books.size == prepared.panel.n_symbols  # every symbol trades on this split
    capital = config.env.execution.initial_cash
    assert free.capital == capital
    np.testing.assert_array_equal(free.equity[:, 0], capital)

    # Zero costs: equity = cash * close[t] / close[start + 1] on every bar (fills at that close).
    expected = capital * close[books, start + 1 : window.stop] / close[books, start + 1][:, None]
    got = free.equity[books, 1:]
    assert got.shape == (books.size, len(window) - 1)
    ratio = got / expected
    assert np.all(ratio <= 1 + 1e-9)
    assert np.all(ratio >= CASH_FACTOR - 1e-9)
    np.testing.assert_allclose(got, expected, rtol=1e-9)

    # Default costs: the entry costs (commission + half spread + slippage, no impact without
    # volume) are the only difference: qty * p * (1 + c) = cash, so equity scales by 1/(1+c).
    parts = config.env.costs
    c = (parts.commission_bps + parts.half_spread_bps + parts.slippage_bps) * 1e-4
    scale = costly.equity[books, -1] / free.equity[books, -1]
    np.testing.assert_allclose(scale, 1 / (1 + c), rtol=1e-9)
    np.testing.assert_allclose(scale, 1 - c, rtol=1e-6)
    np.testing.assert_allclose(
        costly.equity[books, 1:], free.equity[books, 1:] / (1 + c), rtol=1e-9
    )

    for run_ in (free, costly):
        trades = run_.trades
        # exactly one round trip per symbol: opened on the first fill, closed at the last mark
        np.testing.assert_array_equal(np.sort(trades["book"]), np.arange(run_.symbols.shape[0]))
        np.testing.assert_array_equal(trades["symbol"], run_.symbols[trades["book"], 0])
        np.testing.assert_array_equal(trades["open_step"], 0)
        np.testing.assert_array_equal(trades["close_step"], run_.n_steps - 1)
        np.testing.assert_allclose(
            trades["pnl"], run_.equity[trades["book"], -1] - capital, rtol=1e-9, atol=1e-6
        )
        # bought once, never traded again
        assert np.all(run_.traded[:, 0] > 0)
        np.testing.assert_array_equal(run_.traded[:, 1:], 0.0)
    assert np.all(costly.costs[:, 0, 0] > 0)
    np.testing.assert_array_equal(free.costs, 0.0)


@pytest.fixture(scope="module")
def gapped_panel() -> MarketPanel:
    """4 synthetic symbols: 1 starts at bar 105, 2 has a hole at 150-152, 3 misses bar 101."""
    panel = generate_market(SyntheticMarketConfig(n_symbols=4, n_bars=300, seed=1)).panel
    fields = {name: values.copy() for name, values in panel.fields.items()}
    for values in fields.values():
        values[1, :105] = np.nan
        values[2, 150:153] = np.nan
        values[3, 101] = np.nan
    return dataclasses.replace(panel, fields=fields)


@pytest.mark.parametrize("fill_price", ["next_open", "next_close"])
def test_buy_and_hold_with_missing_bars(gapped_panel: MarketPanel, fill_price: str) -> None:
    """A symbol without a bar at the first fill buys on its first bar; a hole is marked at the
    last close. (The synthetic data has a spread field, so zero costs need spread x0.)"""
    costs = ZERO_COSTS.model_copy(update={"spread_multiplier": 0.0})
    market = build_market(gapped_panel, compute_features(gapped_panel), costs)
    env = HierarchicalEnvConfig(n_symbols=2, costs=costs)
    env = env.model_copy(
        update={"execution": env.execution.model_copy(update={"fill_price": fill_price})}
    )
    window = Window(100, 300)
    run = Backtester(market, env).run([BuyAndHoldPolicy()], window)["buy_and_hold"]
    np.testing.assert_array_equal(run.symbols[:, 0], [0, 1, 2, 3])  # coverage >= 90%
    fills = np.arange(window.start + 1, window.stop)
    for book, row in enumerate(run.symbols[:, 0]):
        close = market.close[row, fills]
        reference = market.open[row, fills] if fill_price == "next_open" else close
        first = int(np.flatnonzero(np.isfinite(close))[0])
        assert first == {0: 0, 1: 4, 2: 0, 3: 1}[int(row)]
        mark = close.copy()
        for i in range(1, mark.size):  # the last close marks a missing bar
            if not np.isfinite(mark[i]):
                mark[i] = mark[i - 1]
        expected = np.where(
            np.arange(close.size) >= first, run.capital * mark / reference[first], run.capital
        )
        np.testing.assert_allclose(run.equity[book, 1:], expected, rtol=1e-9)
        assert run.traded[book, first] > 0
        assert np.count_nonzero(run.traded[book]) == 1
        trades = run.trades
        assert list(trades["open_step"][trades["book"] == book]) == [first]


def test_trades_add_up_with_missing_bars(gapped_panel: MarketPanel) -> None:
    market = build_market(gapped_panel, compute_features(gapped_panel))
    env = HierarchicalEnvConfig(n_symbols=2)
    runs = Backtester(market, env).run(
        [
            RandomPolicy(5),
            MomentumPolicy(3),
            EqualWeightPolicy(2),
            BuyAndHoldPolicy(),
            greedy(market, env, seed=3),
        ],
        Window(100, 300),
    )
    for name, run in runs.items():
        assert np.all(np.isfinite(run.equity)), name
        per_book = np.bincount(
            run.trades["book"], weights=run.trades["pnl"], minlength=run.equity.shape[0]
        )
        np.testing.assert_allclose(
            per_book, run.equity[:, -1] - run.capital, rtol=1e-9, atol=1e-9 * run.capital
        )
    # no order fills on a missing bar: symbol 2 is not traded on bars 150-152
    equal = runs["equal_weight"]
    holes = np.arange(150, 153) - 101  # steps filling on those bars
    slot = int(np.flatnonzero(equal.symbols[0] == 2)[0])
    assert np.all(equal.costs[0, slot, holes] == 0)
    np.testing.assert_array_equal(np.diff(equal.values[0, slot, holes[0] - 1 : holes[-1] + 1]), 0)


# ------------------------------------------------------------ 2. cash and equal weight


def test_cash_policy_never_trades(quick_tester: Backtester, quick_window: Window) -> None:
    run = quick_tester.run([CashPolicy()], quick_window)["cash"]
    capital = quick_tester.config.execution.initial_cash
    np.testing.assert_array_equal(run.equity, capital)
    np.testing.assert_array_equal(run.traded, 0.0)
    np.testing.assert_array_equal(run.values, 0.0)
    np.testing.assert_array_equal(run.costs, 0.0)
    assert run.trades["pnl"].size == 0
    assert run.action_counts is not None
    assert run.action_counts[:, 1:].sum() == 0  # HOLD only
    metrics = policy_metrics(run, 252.0)
    assert metrics["turnover"] == 0.0
    assert metrics["closed_trades"] == 0
    assert metrics["total_return"] == 0.0
    assert metrics["exposure"] == 0.0


@pytest.mark.parametrize("every", [1, 5, 21])
def test_equal_weight_rebalances_to_one_over_n(
    quick_tester: Backtester, quick_window: Window, every: int
) -> None:
    run = quick_tester.run([EqualWeightPolicy(every)], quick_window)["equal_weight"]
    assert run.layout == "universe" and run.symbols.shape[0] == 1
    n = run.symbols.shape[1]
    assert n == quick_tester.market.n_symbols
    steps = np.arange(run.n_steps)
    rebalance = steps % every == 0
    # next_close fills: the fill bar's close marks the book, so the weights are the targets
    w = weights(run)
    np.testing.assert_allclose(w[:, rebalance], 1 / n, atol=1e-3)
    assert np.all(run.traded[0, rebalance] > 0)
    np.testing.assert_array_equal(run.traded[0, ~rebalance], 0.0)
    np.testing.assert_array_equal(run.costs[0][:, ~rebalance], 0.0)
    if every > 1:  # between rebalances the weights drift with the prices
        assert np.abs(w[:, ~rebalance] - 1 / n).max() > 1e-3


def test_equal_weight_exact_without_costs(
    quick: tuple[RunConfig, PreparedData], quick_window: Window
) -> None:
    config, prepared = quick
    market = build_market(prepared.panel, prepared.features, ZERO_COSTS)
    env = config.env.model_copy(update={"costs": ZERO_COSTS})
    run = Backtester(market, env).run([EqualWeightPolicy(4)], quick_window)["equal_weight"]
    n = run.symbols.shape[1]
    rebalance = np.arange(run.n_steps) % 4 == 0
    np.testing.assert_allclose(weights(run)[:, rebalance], 1 / n, rtol=1e-9)
    np.testing.assert_allclose(weights(run).sum(axis=0), 1.0, rtol=1e-9)  # never any cash


# ------------------------------------------------------------ 3. trade accounting


@pytest.mark.parametrize(
    "make",
    [
        lambda market, env: RandomPolicy(1),
        lambda market, env: MomentumPolicy(5),
        lambda market, env: EqualWeightPolicy(7),
        lambda market, env: BuyAndHoldPolicy(),
        greedy,
    ],
    ids=["random", "momentum", "equal_weight", "buy_and_hold", "greedy_net"],
)
def test_closed_trades_add_up_to_the_equity_change(
    quick_tester: Backtester, quick_window: Window, make: Any
) -> None:
    policy = make(quick_tester.market, quick_tester.config)
    run = quick_tester.run([policy], quick_window)[policy.name]
    trades = run.trades
    n_books = run.equity.shape[0]
    assert trades["pnl"].size > 0
    assert np.all(trades["open_step"] <= trades["close_step"])
    assert np.all((trades["close_step"] >= 0) & (trades["close_step"] < run.n_steps))
    np.testing.assert_array_equal(trades["symbol"], run.symbols[trades["book"], trades["slot"]])
    per_book = np.bincount(trades["book"], weights=trades["pnl"], minlength=n_books)
    change = run.equity[:, -1] - run.capital
    np.testing.assert_allclose(per_book, change, rtol=1e-9, atol=1e-9 * run.capital)
    # and the step P&L adds up to the equity path
    np.testing.assert_allclose(
        run.capital + np.cumsum(run.net_pnl.sum(axis=1), axis=1),
        run.equity[:, 1:],
        rtol=1e-9,
    )


def test_random_policy_trades_many_round_trips(
    quick_tester: Backtester, quick_window: Window
) -> None:
    run = quick_tester.run([RandomPolicy(1)], quick_window)["random"]
    assert run.trades["pnl"].size > 20
    assert run.action_counts is not None
    assert run.action_counts.sum() == run.n_steps * run.symbols.size
    assert np.count_nonzero(run.action_counts.sum(axis=0)) > 2


# ------------------------------------------------------------ 4. determinism and errors


def test_random_policy_is_deterministic_per_seed(
    quick_tester: Backtester, quick_window: Window
) -> None:
    first = quick_tester.run([RandomPolicy(3)], quick_window)["random"]
    second = quick_tester.run([RandomPolicy(3)], quick_window)["random"]
    np.testing.assert_array_equal(first.equity, second.equity)
    np.testing.assert_array_equal(first.trades["pnl"], second.trades["pnl"])
    other = quick_tester.run([RandomPolicy(4)], quick_window)["random"]
    assert not np.array_equal(first.equity, other.equity)
    # the same policy object re-seeds on every window
    policy = RandomPolicy(3)
    again = [quick_tester.run([policy], quick_window)["random"].equity for _ in range(2)]
    np.testing.assert_array_equal(again[0], first.equity)
    np.testing.assert_array_equal(again[1], first.equity)


def test_batched_policies_do_not_interact(quick_tester: Backtester, quick_window: Window) -> None:
    alone = quick_tester.run([RandomPolicy(3)], quick_window)["random"]
    other = RandomPolicy(4)
    other.name = "random_4"
    together = quick_tester.run(
        [MomentumPolicy(5), other, RandomPolicy(3), CashPolicy(), EqualWeightPolicy(3)],
        quick_window,
    )
    assert list(together) == ["momentum_5", "random_4", "random", "cash", "equal_weight"]
    np.testing.assert_array_equal(together["random"].equity, alone.equity)
    np.testing.assert_array_equal(together["random"].trades["pnl"], alone.trades["pnl"])
    np.testing.assert_array_equal(together["random"].trades["book"], alone.trades["book"])


def test_on_step_counts_every_policy_step(quick_tester: Backtester, quick_window: Window) -> None:
    counted: list[int] = []
    policies = [CashPolicy(), BuyAndHoldPolicy(), EqualWeightPolicy(), RandomPolicy(0)]
    quick_tester.run(policies, quick_window, on_step=counted.append)
    assert sum(counted) == (len(quick_window) - 1) * len(policies)


class CountingNet(torch.nn.Module):
    """A recurrent net whose state counts its calls; buys on even counts, holds on odd."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(
        self, obs: torch.Tensor, mask: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self.seen.append(state.clone())
        logits = torch.zeros_like(mask)
        logits[:, 1] = torch.where(state[:, 0] % 2 == 0, 1.0, -1.0)
        logits = torch.where(mask > 0, logits, torch.full_like(logits, -1e9))
        return logits, state + 1


def test_greedy_net_keeps_state_per_slot_and_resets_per_window(
    quick_tester: Backtester, quick_window: Window
) -> None:
    net = CountingNet()
    policy = GreedyNetPolicy(net, 2)
    window = Window(quick_window.start, quick_window.start + 6)
    first = quick_tester.run([policy], window)["agent"]
    n_rows = first.symbols.size
    assert len(net.seen) == 5
    for step, state in enumerate(net.seen):
        assert state.shape == (n_rows, 2)
        assert torch.equal(state, torch.full((n_rows, 2), float(step)))
    net.seen.clear()
    second = quick_tester.run([policy], window)["agent"]
    assert torch.equal(net.seen[0], torch.zeros(n_rows, 2))
    np.testing.assert_array_equal(first.equity, second.equity)
    assert first.action_counts is not None
    assert first.action_counts[0, 1] == n_rows  # step 0: state 0 -> action 1 everywhere


def test_backtester_rejects_bad_runs(quick_tester: Backtester, quick_window: Window) -> None:
    with pytest.raises(ConfigError, match="unique"):
        quick_tester.run([RandomPolicy(1), RandomPolicy(2)], quick_window)
    with pytest.raises(ConfigError, match="unique"):
        quick_tester.run([CashPolicy(), MomentumPolicy(5), CashPolicy()], quick_window)
    start = quick_window.start
    for window in (Window(start, start + 1), Window(start, start)):
        with pytest.raises(ConfigError, match="fewer than 2 bars"):
            quick_tester.run([CashPolicy()], window)
    # two bars: one decision, one fill
    run = quick_tester.run([RandomPolicy(0)], Window(start, start + 2))["random"]
    assert run.n_steps == 1 and run.equity.shape[1] == 2


def test_universe_coverage(quick_market: EnvMarket, quick_window: Window) -> None:
    np.testing.assert_array_equal(
        universe(quick_market, quick_window), np.arange(quick_market.n_symbols)
    )
    close = quick_market.close.copy()
    window = quick_window
    close[1, window.start : window.start + len(window) // 2] = np.nan  # ~50% coverage
    close[3, window.start : window.start + len(window) // 20] = np.nan  # ~95% coverage
    sparse = dataclasses.replace(quick_market, close=close)
    np.testing.assert_array_equal(universe(sparse, window), [0, 2, 3, 4])
    np.testing.assert_array_equal(universe(sparse, window, min_coverage=0.4), [0, 1, 2, 3, 4])
    empty = dataclasses.replace(quick_market, close=np.full_like(close, np.nan))
    with pytest.raises(ConfigError, match="no symbol"):
        universe(empty, window)


# ------------------------------------------------------------ 5. no look-ahead


def perturbed_after(
    panel: MarketPanel, features: Any, k: int, env: CommonEnvConfig, seed: int = 0
) -> EnvMarket:
    """The market with every price x1.3, volume x2 and features + noise on bars after ``k``."""
    fields = {}
    for name, values in panel.fields.items():
        changed = values.copy()
        changed[:, k + 1 :] *= 2.0 if name == "volume" else 1.3
        fields[name] = changed
    rng = np.random.default_rng(seed)
    values = features.values.copy()
    tail = values[:, k + 1 :]
    values[:, k + 1 :] = tail + rng.normal(0, 1.0, tail.shape).astype(np.float32)
    changed_panel = dataclasses.replace(panel, fields=fields)
    return build_market(changed_panel, dataclasses.replace(features, values=values), env.costs)


@pytest.mark.parametrize("fill_price", ["next_open", "next_close"])
def test_no_look_ahead(fill_price: str) -> None:
    generated = generate_market(SyntheticMarketConfig(n_symbols=3, n_bars=160, seed=11)).panel
    features = compute_features(generated, FeaturePipelineConfig())
    env = HierarchicalEnvConfig(n_symbols=2)
    env = env.model_copy(
        update={"execution": env.execution.model_copy(update={"fill_price": fill_price})}
    )
    window = Window(30, 160)
    k = 100
    base = build_market(generated, features, env.costs)
    changed = perturbed_after(generated, features, k, env)
    assert np.array_equal(base.close[:, : k + 1], changed.close[:, : k + 1])
    assert not np.array_equal(base.close[:, k + 1 :], changed.close[:, k + 1 :])

    def run(market: EnvMarket) -> tuple[dict[str, PolicyRun], list[Recorder]]:
        recorders = [
            Recorder(MomentumPolicy(5)),
            Recorder(greedy(market, env, seed=2)),
            Recorder(RandomPolicy(9)),
        ]
        return Backtester(market, env).run(recorders, window), recorders

    runs_a, rec_a = run(base)
    runs_b, rec_b = run(changed)
    decided_k = k - window.start  # the step decided on bar k (fills on k + 1)
    for a, b in zip(rec_a, rec_b, strict=True):
        assert a.decision_bars[decided_k][0] == k
        for step in range(decided_k + 1):
            np.testing.assert_array_equal(a.actions[step], b.actions[step], err_msg=a.name)
        run_a, run_b = runs_a[a.name], runs_b[b.name]
        # equity[:, i + 1] is marked at the close of the bar step i fills on (start + 1 + i):
        # everything up to and including the fill on bar k is unchanged
        np.testing.assert_array_equal(
            run_a.equity[:, : decided_k + 1], run_b.equity[:, : decided_k + 1], err_msg=a.name
        )
        np.testing.assert_array_equal(
            run_a.values[..., :decided_k], run_b.values[..., :decided_k], err_msg=a.name
        )
    # the perturbation is real: positions held after k are marked differently
    assert not np.array_equal(runs_a["momentum_5"].equity, runs_b["momentum_5"].equity)
    agent_actions = np.stack(rec_a[1].actions)
    assert np.unique(agent_actions).size > 1  # the tiny net does more than one thing


# ------------------------------------------------------------ 6. books


def test_make_books() -> None:
    rows = np.array([3, 5, 7, 11, 13, 17, 19, 23, 29, 31])
    books = make_books(rows, "agent", 4)
    assert books.shape == (3, 4)
    assert set(books.reshape(-1)) == set(rows)
    np.testing.assert_array_equal(books[:2].reshape(-1), rows[:8])
    np.testing.assert_array_equal(books[-1], [29, 31, 3, 5])  # filled up from the start
    for book in books:
        assert np.unique(book).size == book.size
    single = make_books(rows, "single", 4)
    assert single.shape == (10, 1)
    np.testing.assert_array_equal(single[:, 0], rows)
    whole = make_books(rows, "universe", 4)
    assert whole.shape == (1, 10)
    np.testing.assert_array_equal(whole[0], rows)
    # exact multiple: no wrap; fewer rows than slots: one book of them all
    np.testing.assert_array_equal(make_books(rows[:8], "agent", 4), rows[:8].reshape(2, 4))
    np.testing.assert_array_equal(make_books(rows[:3], "agent", 4), rows[None, :3])
    for n_slots in range(1, 12):
        for size in range(1, 11):
            books = make_books(rows[:size], "agent", n_slots)
            assert set(books.reshape(-1)) == set(rows[:size])
            assert books.shape[1] == min(n_slots, size)
            assert all(np.unique(b).size == b.size for b in books)


def test_agent_books_in_a_run_cover_the_universe(
    quick_tester: Backtester, quick_window: Window
) -> None:
    runs = quick_tester.run(
        [RandomPolicy(0), BuyAndHoldPolicy(), EqualWeightPolicy()], quick_window
    )
    rows = universe(quick_tester.market, quick_window)
    agent = runs["random"]
    assert agent.layout == "agent"
    assert agent.symbols.shape == (2, 4)  # 5 symbols in books of 4
    assert set(agent.symbols.reshape(-1)) == set(rows)
    assert agent.budget == pytest.approx(min(1 / 4, quick_tester.config.limits.max_weight))
    assert runs["buy_and_hold"].symbols.shape == (rows.size, 1)
    assert runs["equal_weight"].symbols.shape == (1, rows.size)
    assert runs["buy_and_hold"].budget == 1.0


# ------------------------------------------------------------ 7. scenarios


def test_cost_scenarios_multiply_costs(
    quick: tuple[RunConfig, PreparedData], quick_market: EnvMarket, quick_window: Window
) -> None:
    env = quick[0].env
    base_costs = env.costs.model_copy(update={"cost_multiplier": 2.0})
    env = env.model_copy(update={"costs": base_costs})
    scenarios = cost_scenarios(env, StressSettings())
    assert [name for name, _, _ in scenarios] == [
        "costs_x1.5",
        "costs_x2",
        "spread_x3",
        "slippage_x3",
    ]
    by_name = {name: config for name, _, config in scenarios}
    assert by_name["costs_x1.5"].costs.cost_multiplier == pytest.approx(3.0)
    assert by_name["costs_x2"].costs.cost_multiplier == pytest.approx(4.0)
    assert by_name["spread_x3"].costs.spread_multiplier == pytest.approx(3.0)
    assert by_name["spread_x3"].costs.cost_multiplier == 2.0
    assert by_name["slippage_x3"].costs.slippage_multiplier == pytest.approx(3.0)
    for _, description, config in scenarios:
        assert description
        assert config.model_copy(update={"costs": base_costs}) == env  # only the costs change
    none = StressSettings(cost_multipliers=(), spread_multiplier=None, slippage_multiplier=None)
    assert cost_scenarios(env, none) == []

    # a trading policy pays more under every shock
    plain = quick[0].env

    def run(config: CommonEnvConfig) -> dict[str, PolicyRun]:
        return Backtester(quick_market, config).run(
            [RandomPolicy(2), EqualWeightPolicy(5)], quick_window
        )

    base = run(plain)
    for name, _, config in cost_scenarios(plain, StressSettings()):
        shocked = run(config)
        for policy in ("random", "equal_weight"):
            assert shocked[policy].costs.sum() > base[policy].costs.sum() * 1.2, (name, policy)
        assert shocked["equal_weight"].equity[0, -1] < base["equal_weight"].equity[0, -1]


def test_most_volatile_windows(quick_market: EnvMarket, quick_window: Window) -> None:
    rows = universe(quick_market, quick_window)
    bars = 40
    chosen = most_volatile_windows(quick_market, rows, quick_window, 3, bars)
    assert len(chosen) == 3
    assert [w.start for w in chosen] == sorted(w.start for w in chosen)
    for window in chosen:
        assert len(window) == bars
        assert quick_window.start <= window.start and window.stop <= quick_window.stop
    for left, right in itertools.pairwise(chosen):
        assert left.stop <= right.start
    vol = volatility_by_bar(quick_market, rows)

    def score(start: int) -> float:  # the returns earned inside a window (its first bar observed)
        return float(vol[start + 1 : start + bars].mean())

    every = [score(s) for s in range(quick_window.start, quick_window.stop - bars + 1)]
    assert max(score(w.start) for w in chosen) == pytest.approx(max(every))
    for window in chosen:
        assert score(window.start) > np.mean(every)
    # edge cases: too short, none asked, exactly one window's length
    assert most_volatile_windows(quick_market, rows, Window(100, 100 + bars - 1), 2, bars) == []
    assert most_volatile_windows(quick_market, rows, quick_window, 0, bars) == []
    exact = Window(100, 100 + bars)
    assert most_volatile_windows(quick_market, rows, exact, 2, bars) == [exact]


def test_crashed_panel_is_causal() -> None:
    panel = generate_market(SyntheticMarketConfig(n_symbols=3, n_bars=400, seed=4)).panel
    original = {name: values.copy() for name, values in panel.fields.items()}
    window = Window(200, 400)
    settings = CrashSettings(drop=0.3, bars=4, at=0.25)
    crash = window.start + int(len(window) * settings.at)  # the first bar that falls
    crashed = crashed_panel(panel, window, settings)
    factors = crash_factors(panel.n_bars, window, settings)
    assert int(np.argmax(factors < 1)) == crash
    assert f"from bar {crash}" in crashed.notes[-1]
    for name, values in panel.fields.items():
        np.testing.assert_array_equal(values, original[name])  # the input is not changed
        after = crashed.fields[name]
        np.testing.assert_array_equal(after[:, :crash], values[:, :crash], err_msg=name)
        if name in PRICE_FIELDS:
            down = crash + settings.bars - 1
            np.testing.assert_allclose(
                after[:, down:], values[:, down:] * (1 - settings.drop), rtol=1e-12
            )
            falling = after[:, crash:down] / values[:, crash:down]
            assert np.all(np.diff(falling, axis=1) < 0)
            assert np.all((falling < 1) & (falling > 1 - settings.drop))
        else:
            np.testing.assert_array_equal(after, values, err_msg=name)

    config = FeaturePipelineConfig()
    before = build_features(panel, config, use_cache=False)
    rebuilt = build_features(crashed, config, use_cache=False)
    np.testing.assert_array_equal(rebuilt.values[:, :crash], before.values[:, :crash])
    np.testing.assert_array_equal(rebuilt.valid[:, :crash], before.valid[:, :crash])
    assert not np.array_equal(rebuilt.values[:, crash], before.values[:, crash])


# ------------------------------------------------------------ 8. the evaluator


def report_settings_off(section: str) -> Any:
    settings = load_preset("quick").evaluation
    return getattr(settings, section).model_copy(update={"enabled": False})


def evaluate_quick(settings_update: dict[str, Any] | None = None, seed: int = 0) -> Any:
    """An evaluation on fresh objects: config, data, market and net all rebuilt."""
    config = load_preset("quick")
    prepared = prepare(config, use_cache=False)
    settings = config.evaluation.model_copy(update=settings_update or {})
    evaluator = Evaluator(config, prepared, settings)
    agent = GreedyNetPolicy(TinyNet(*agent_dims(evaluator.market, config.env), seed=seed), 0)
    return evaluator.evaluate([agent], TINY_SOURCE)


TINY_SOURCE = {
    "path": "tiny.pt",
    "systems": {
        "agent": {"system": "agent", "kind": "torchscript", "policy": "tiny.pt", "master": None}
    },
    "notes": [],
}
"""A source as `PolicySource.describe` writes it, for a policy named "agent"."""
RANKING_HEADER = (
    "| rank | policy | Sharpe (annualized) | return (% of capital) | max DD (%) | "
    "mean episode max DD (%) | turnover (% of equity per bar) | "
    "win rate (% of closed trades) | cost ratio (% of gross P&L) |"
)


def test_evaluator_end_to_end() -> None:
    first = evaluate_quick()
    report = first.report
    for key in (
        "schema",
        "policies",
        "ranking",
        "walk_forward",
        "stress",
        "gates",
        "generalization",
    ):
        assert key in report, key
    assert report["schema"] == "multiagent.report/1"
    assert report["agents"] == ["agent"]
    assert report["source"] == TINY_SOURCE
    # one system: it leads, no master (neutral), nothing to compare it with
    assert report["lead"] == "agent"
    assert report["systems"] == {"agent": {"master": None}}
    assert report["comparison"] is None
    # the overfitting statistics: in their section and in the agent's metrics (gates read them)
    statistics = report["statistics"]
    assert statistics["selection"] == {"trials": 1, "sharpe_variance": 0.0}
    assert set(statistics["spa"]) == {
        "cash",
        "buy_and_hold",
        "equal_weight",
        "random",
        "momentum_20",
    }
    entry = statistics["policies"]["agent"]
    assert entry["intervals"]["sharpe"]["low"] <= entry["intervals"]["sharpe"]["high"]
    agent_metrics = report["policies"]["agent"]["metrics"]
    for key in ("psr", "psr_vs_best_baseline", "dsr"):
        assert agent_metrics[key] == entry[key] or agent_metrics[key] is None, key
    # the SPA p-value is the report's (its family of systems), not the agent's own figure
    assert "spa_pvalue" not in agent_metrics and "spa_pvalue" in entry
    assert "dsr" not in report["policies"]["cash"]["metrics"]

    ranking = report["ranking"]
    sharpes = [row["sharpe"] for row in ranking]
    assert sharpes == sorted(sharpes, reverse=True)
    assert [row["rank"] for row in ranking] == list(range(1, len(ranking) + 1))
    assert {row["policy"] for row in ranking} == set(report["policies"])
    expected = {"agent", "cash", "buy_and_hold", "equal_weight", "random", "momentum_20"}
    assert expected <= set(report["policies"])
    symbols = report["window"]["universe"]
    assert symbols == ["AAPL", "JPM", "KO", "MSFT", "XOM"]
    for symbol in symbols:
        row = report["policies"][f"ALL_{symbol}"]
        assert row["kind"] == "baseline" and row["layout"] == "single"
    assert report["policies"]["cash"]["metrics"]["total_return"] == 0.0
    assert report["policies"]["cash"]["metrics"]["turnover"] == 0.0
    assert "mean_episode_max_drawdown" in SUMMARY_KEYS
    for row in ranking:
        assert set(SUMMARY_KEYS) <= set(row), row["policy"]

    # episode metrics: each book's bars cut into training-episode lengths; the neutral master's
    # figures: equal budgets all along, never defensive or aggressive, no forced trims
    config = load_preset("quick")
    metrics = report["policies"]["agent"]["metrics"]
    steps, length = report["window"]["steps"], config.episodes.length
    per_book = max(1, steps // length + (steps % length >= max(1, length // 2)))
    assert metrics["episodes"] == 2 * per_book  # the agent's 5 symbols in 2 books
    assert 0 < metrics["mean_episode_max_drawdown"] <= metrics["max_drawdown"] + 1e-12
    assert np.isfinite(metrics["mean_episode_return"])
    limits = config.env.limits
    n_slots = report["env"]["slots_per_book"]
    budget = min(limits.max_gross_exposure / n_slots, limits.max_weight)
    assert metrics["mean_gross_budget"] == pytest.approx(n_slots * budget)
    assert metrics["defensive_share"] == 0.0 and metrics["aggressive_share"] == 0.0
    assert metrics["forced_trims_per_episode"] == 0.0
    for name, row in report["policies"].items():
        # agent-layout baselines (cash, random, momentum) run under the neutral master too;
        # single and universe books (buy-and-hold, equal weight) have no master seat
        assert "mean_episode_max_drawdown" in row["metrics"], name
        assert ("mean_gross_budget" in row["metrics"]) == (row["layout"] == "agent"), name
    assert report["policies"]["cash"]["metrics"]["mean_gross_budget"] == pytest.approx(
        n_slots * budget
    )
    assert report["policies"]["cash"]["metrics"]["mean_episode_max_drawdown"] == 0.0

    gates = report["gates"]
    assert gates["agent"] == "agent"
    assert gates["passed"] == all(g["passed"] for grp in ("go", "regression") for g in gates[grp])
    assert report["system_gates"] == {"agent": gates}
    # rank_fraction: the agent's rank among itself and the baselines
    kinds = {name: row["kind"] for name, row in report["policies"].items()}
    field = [
        r["policy"] for r in ranking if kinds[r["policy"]] == "baseline" or r["policy"] == "agent"
    ]
    (rank_gate,) = [g for g in gates["regression"] if g["gate"].startswith("rank_fraction")]
    assert rank_gate["value"] == pytest.approx((field.index("agent") + 1) / len(field))
    assert report["walk_forward"]["folds"]
    names = [s["name"] for s in report["stress"]["scenarios"]]
    assert names[0] == "base" and "crash" in names and "costs_x2" in names
    general = report["generalization"]["agent"]
    assert len(general["books"]) == 2
    assert {s["symbol"] for s in general["symbols"]} == set(symbols)

    # the runs behind the report line up with the window
    steps = report["window"]["steps"]
    assert first.timestamps.shape == (steps,)
    assert all(run.n_steps == steps for run in first.runs.values())

    # determinism: same checkpoint + data -> the same bytes
    second = evaluate_quick()
    text = dumps(report)
    assert text == dumps(second.report)
    assert json.loads(text)["ranking"] == json.loads(dumps(second.report))["ranking"]
    # (and the report does depend on the policy)
    other = evaluate_quick({"walk_forward": report_settings_off("walk_forward")}, seed=1)
    assert other.report["policies"]["agent"] != report["policies"]["agent"]

    markdown = render_markdown(report, ["equity.png"])
    # every markdown table row has as many cells as its header (no stray "|" in a cell)
    widths: list[int] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            widths.append(line.count("|"))
        elif widths:
            assert len(set(widths)) == 1, widths
            widths = []
    assert "- systems (tiny.pt): agent: `tiny.pt`" in markdown
    assert "## Ranking by Sharpe" in markdown
    assert RANKING_HEADER in markdown
    verdict = "PASS" if gates["passed"] else "FAIL"
    lead = f"## Verdict: the agent system: gates **{verdict}**"
    assert f"## Gates of agent: **{verdict}**" in markdown
    # the verdict comes first, then the gates, then the ranking
    assert lead in markdown
    order = [lead, "## Gates of agent", "## Ranking by Sharpe"]
    assert [markdown.index(h) for h in order] == sorted(markdown.index(h) for h in order)
    assert "Paired differences" not in markdown  # one system: no comparison
    assert "| metric | value | unit |" in markdown
    assert f"| sharpe | {metrics['sharpe']:.2f} | annualized |" in markdown
    assert "| mean_episode_max_drawdown | " in markdown
    assert "**agent**" in markdown
    assert "![equity](equity.png)" in markdown


def test_evaluator_on_a_synthetic_market_without_extras() -> None:
    config = RunConfig.model_validate(
        {
            "data": {"synthetic": {"n_symbols": 3, "n_bars": 500, "seed": 7}},
            "episodes": {"length": 100, "min_length": 20},
            "split": {"purge": 5},
            "env": {"n_symbols": 2},
        }
    )
    prepared = prepare(config, use_cache=False)
    settings = config.evaluation.model_copy(
        update={
            "walk_forward": config.evaluation.walk_forward.model_copy(update={"enabled": False}),
            "stress": config.evaluation.stress.model_copy(update={"enabled": False}),
        }
    )
    evaluator = Evaluator(config, prepared, settings)
    agent = greedy(evaluator.market, config.env)
    report = evaluator.evaluate([agent], {"policy": "tiny"}).report
    assert report["walk_forward"] is None and report["stress"] is None
    assert report["env"]["execution"]["fill_price"] == "next_open"
    assert {f"ALL_{s}" for s in report["window"]["universe"]} <= set(report["policies"])
    assert len(report["generalization"]["agent"]["books"]) == 2  # 3 symbols in books of 2
    dumps(report)  # serializable (no NaN)
    markdown = render_markdown(report)
    assert "## Ranking by Sharpe" in markdown
    assert report["lead"] == "agent" and report["system_gates"]["agent"] == report["gates"]
    # no agent: no gates, no lead system, no verdict
    baselines_only = Evaluator(config, prepared, settings).evaluate([], {"policy": "none"})
    assert baselines_only.report["gates"] is None
    assert baselines_only.report["system_gates"] == {}
    assert baselines_only.report["lead"] is None and baselines_only.report["comparison"] is None
    assert "## Gates" not in render_markdown(baselines_only.report)
    assert "## Verdict" not in render_markdown(baselines_only.report)


# ------------------------------------------------------------ 9. the CLI


@pytest.fixture
def exported(
    tmp_path: Path, quick: tuple[RunConfig, PreparedData], quick_market: EnvMarket
) -> tuple[Path, Path]:
    """A tiny TorchScript policy (+ sidecar) and the quick run config, written to tmp_path."""
    config = quick[0]
    dim, n_actions = agent_dims(quick_market, config.env)
    example = (torch.zeros(3, dim), torch.ones(3, n_actions), torch.zeros(3, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch flags torch.jit; it works
        traced = torch.jit.trace(TinyNet(dim, n_actions).eval(), example, check_trace=False)
    pt = tmp_path / "policy.pt"
    traced.save(str(pt))
    meta = {
        "format": "multiagent.policy/1",
        "signature": "(observations (B, D), mask (B, A), state (B, S)) -> (logits, state)",
        "observation_dim": dim,
        "n_actions": n_actions,
        "state_size": 0,
        "recurrent": "none",
    }
    pt.with_suffix(".json").write_text(json.dumps(meta))
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return pt, cfg


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["evaluate", *args])


FAST = ("--no-walk-forward", "--no-stress")
REPORT_FILES = ("report.json", "report.md", "equity.png", "drawdown.png", "actions.png")


def test_cli_evaluate_writes_a_report(
    exported: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    pt, cfg = exported
    out = tmp_path / "rep"
    args = ["--checkpoint", str(pt), "--config", str(cfg), "--out", str(out)]
    result = invoke(*args, "--no-fail-on-gates")
    assert result.exit_code == 0, result.output
    for name in (*REPORT_FILES, "weights.png"):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
    report = json.loads((out / "report.json").read_text())
    # a bare policy.pt (no master.pt beside it) is the independent system: neutral master
    assert report["source"] == {
        "path": str(pt),
        "systems": {
            "independent": {
                "system": "independent",
                "kind": "torchscript",
                "policy": str(pt),
                "master": None,
            }
        },
        "notes": [],
    }
    assert report["agents"] == ["independent"] and report["lead"] == "independent"
    assert report["systems"] == {"independent": {"master": None}}
    assert report["comparison"] is None
    assert "independent" in report["policies"] and "agent" not in report["policies"]
    assert set(report["generalization"]) == {"independent"}
    assert report["gates"]["agent"] == "independent"
    assert report["system_gates"] == {"independent": report["gates"]}
    assert report["walk_forward"]["folds"] and report["stress"]["scenarios"]
    markdown = (out / "report.md").read_text()
    assert "## Ranking by Sharpe" in markdown
    assert f"- systems ({pt}): independent: `{pt}`" in markdown
    assert "## Verdict: the independent system" in markdown
    assert "gates of independent (lead: decides the exit code)" in result.output
    first = {p.name: p.read_bytes() for p in out.iterdir()}

    # a second run never replaces the first report: it goes to rep-2, byte for byte the same
    result = invoke(*args, "--no-fail-on-gates")
    assert result.exit_code == 0, result.output
    again = tmp_path / "rep-2"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert (again / "report.json").read_bytes() == first["report.json"]
    # plots are written without timestamps either: the whole folder is the same
    assert {p.name: p.read_bytes() for p in again.iterdir()} == first

    # --overwrite replaces rep itself
    result = invoke(*args, "--no-fail-on-gates", "--overwrite", *FAST)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "rep-3").exists()
    assert json.loads((out / "report.json").read_text())["walk_forward"] is None


def test_cli_gate_failure_exits_3(exported: tuple[Path, Path], tmp_path: Path) -> None:
    pt, cfg = exported
    gates = tmp_path / "gates.yaml"
    gates.write_text(
        yaml.safe_dump({"go": [{"metric": "sharpe", "op": ">", "value": 100}], "regression": []})
    )
    out = tmp_path / "gated"
    args = ["--checkpoint", str(pt), "--config", str(cfg), "--out", str(out), *FAST]
    result = invoke(*args, "--gates", str(gates))
    assert result.exit_code == 3, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["gates"]["passed"] is False
    assert [g["gate"] for g in report["gates"]["go"]] == ["sharpe > 100"]
    assert report["gates"]["regression"] == []
    assert "FAIL" in result.output
    # every gate passes: exit 0 with fail-on-gates on
    easy = tmp_path / "easy.yaml"
    easy.write_text(
        yaml.safe_dump({"go": [{"metric": "sharpe", "op": ">", "value": -100}], "regression": []})
    )
    result = invoke(*args, "--gates", str(easy), "--overwrite")
    assert result.exit_code == 0, result.output


def test_cli_empty_gate_list_gives_no_verdict(exported: tuple[Path, Path], tmp_path: Path) -> None:
    """Issue 23: no gates checked nothing, so no PASS; and nothing failed, so exit 0."""
    pt, cfg = exported
    gates = tmp_path / "no-gates.yaml"
    gates.write_text("go: []\nregression: []\n")
    out = tmp_path / "ungated"
    args = ["--checkpoint", str(pt), "--config", str(cfg), "--out", str(out), *FAST]
    result = invoke(*args, "--gates", str(gates), "--no-statistics")
    assert result.exit_code == 0, result.output
    assert "PASS" not in result.output and "FAIL" not in result.output
    assert f"gates of independent (lead: decides the exit code): {NO_GATES}" in " ".join(
        result.output.split()
    )
    report = json.loads((out / "report.json").read_text())
    assert report["gates"]["passed"] is None
    assert report["system_gates"]["independent"]["passed"] is None
    markdown = (out / "report.md").read_text()
    assert "## Verdict: the independent system: no gates, no verdict" in markdown
    assert "## Gates of independent: **NO GATES**" in markdown and NO_GATES in markdown
    assert "PASS" not in markdown and "FAIL" not in markdown


def test_cli_missing_checkpoint_is_one_line(exported: tuple[Path, Path], tmp_path: Path) -> None:
    _, cfg = exported
    missing = tmp_path / "nowhere" / "policy.pt"
    result = invoke("--checkpoint", str(missing), "--config", str(cfg), "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "no such checkpoint" in lines[0] and str(missing) in lines[0]
    # a policy file without its sidecar
    pt = tmp_path / "lonely.pt"
    pt.write_bytes(b"x")
    result = invoke("--checkpoint", str(pt), "--config", str(cfg))
    assert result.exit_code == 1
    assert "sidecar" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "text",
    [
        "go: [{metric: sharpe, op: '>', value: 1}\n",  # not YAML
        "go: [{metric: happiness, op: '>', value: 1}]\n",  # unknown metric
        "go: [{metric: sharpe, op: '>'}]\n",  # no threshold
        "gates: []\n",  # unknown key
        "- sharpe\n",  # not a mapping
    ],
    ids=["syntax", "metric", "threshold", "key", "list"],
)
def test_cli_malformed_gates_file(exported: tuple[Path, Path], tmp_path: Path, text: str) -> None:
    pt, cfg = exported
    gates = tmp_path / "bad-gates.yaml"
    gates.write_text(text)
    out = tmp_path / "never"
    result = invoke(
        "--checkpoint", str(pt), "--config", str(cfg), "--out", str(out), "--gates", str(gates)
    )
    assert result.exit_code == 1, result.output
    assert str(gates) in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_cli_evaluates_a_run_folder(exported: tuple[Path, Path], tmp_path: Path) -> None:
    """A run folder: its config.yaml and symbols/policy.pt are found, the report goes in it."""
    pt, cfg = exported
    run_dir = tmp_path / "run"
    (run_dir / "symbols").mkdir(parents=True)
    (run_dir / "config.yaml").write_bytes(cfg.read_bytes())
    (run_dir / "symbols" / "policy.pt").write_bytes(pt.read_bytes())
    (run_dir / "symbols" / "policy.json").write_bytes(pt.with_suffix(".json").read_bytes())
    result = invoke(
        "--checkpoint", str(run_dir), "--part", "validation", "--no-fail-on-gates", *FAST
    )
    assert result.exit_code == 0, result.output
    report = json.loads((run_dir / "report" / "report.json").read_text())
    assert report["window"]["part"] == "validation"
    # the run folder's finished systems: only symbols/ here, shown relative to the run folder
    assert report["source"] == {
        "path": str(run_dir),
        "systems": {
            "independent": {
                "system": "independent",
                "kind": "torchscript",
                "policy": str(Path("symbols") / "policy.pt"),
                "master": None,
            }
        },
        "notes": [],
    }
    assert report["agents"] == ["independent"]
    # a bad --part and a policy outside any run folder without --config: one-line errors
    for args in (
        ["--checkpoint", str(run_dir), "--part", "train"],
        ["--checkpoint", str(pt)],
    ):
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def with_partial_coverage(
    quick: tuple[RunConfig, PreparedData], rows: list[int], missing: float
) -> PreparedData:
    """The quick data with the first ``missing`` fraction of the test split removed for rows."""
    config, prepared = quick
    window = prepared.split.test
    fields = {name: values.copy() for name, values in prepared.panel.fields.items()}
    for values in fields.values():
        values[rows, window.start : window.start + int(missing * len(window))] = np.nan
    panel = dataclasses.replace(prepared.panel, fields=fields)
    features = build_features(panel, config.features, use_cache=False)
    return dataclasses.replace(prepared, panel=panel, features=features)


def test_report_universe_uses_the_configured_coverage(
    quick: tuple[RunConfig, PreparedData],
) -> None:
    config = quick[0]
    prepared = with_partial_coverage(quick, [0], 0.3)  # AAPL on 70% of the test bars
    settings = config.evaluation.model_copy(
        update={
            "min_coverage": 0.5,
            "walk_forward": report_settings_off("walk_forward"),
            "stress": report_settings_off("stress"),
        }
    )
    report = Evaluator(config, prepared, settings).evaluate([], {"policy": "none"}).report
    assert "ALL_AAPL" in report["policies"]  # AAPL was traded ...
    assert "AAPL" in report["window"]["universe"]  # ... so it is in the evaluated universe


def test_evaluator_accepts_a_universe_below_90_percent_coverage(
    quick: tuple[RunConfig, PreparedData],
) -> None:
    config = quick[0]
    prepared = with_partial_coverage(quick, [0, 1, 2, 3, 4], 0.3)  # every symbol on 70%
    settings = config.evaluation.model_copy(
        update={
            "min_coverage": 0.5,
            "walk_forward": report_settings_off("walk_forward"),
            "stress": report_settings_off("stress"),
        }
    )
    report = Evaluator(config, prepared, settings).evaluate([], {"policy": "none"}).report
    assert len(report["window"]["universe"]) == 5


# ------------------------------------------------------------ 10. multi-seed and MLflow


def make_run(root: Path, name: str, pt: Path, cfg: Path, seed: int) -> Path:
    """A run folder as training leaves it: config.yaml (with its seed) + symbols/policy.pt."""
    run_dir = root / name
    (run_dir / "symbols").mkdir(parents=True)
    config = yaml.safe_load(cfg.read_text())
    config["seed"] = seed
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "symbols" / "policy.pt").write_bytes(pt.read_bytes())
    (run_dir / "symbols" / "policy.json").write_bytes(pt.with_suffix(".json").read_bytes())
    return run_dir


def test_report_over_seeds_writes_confidence_intervals(
    exported: tuple[Path, Path], tmp_path: Path
) -> None:
    pt, cfg = exported
    runs = [make_run(tmp_path / "runs", f"seed{s}", pt, cfg, s) for s in range(3)]
    result = CliRunner().invoke(app, ["report", *map(str, runs), "--no-fail-on-gates", *FAST])
    assert result.exit_code == 0, result.output
    for run_dir in runs:
        assert (run_dir / "report" / "report.json").is_file()
    summary = json.loads((tmp_path / "runs" / "multiseed" / "multiseed.json").read_text())
    assert summary["schema"] == "multiagent.multiseed/1"
    assert summary["seeds"] == [0, 1, 2]
    # the random baseline is seeded by the run's seed: its Sharpe varies over the runs
    random_sharpe = [
        json.loads((r / "report" / "report.json").read_text())["policies"]["random"]["metrics"][
            "sharpe"
        ]
        for r in runs
    ]
    interval = summary["policies"]["random"]["sharpe"]
    assert interval["n"] == 3
    assert interval["mean"] == pytest.approx(np.mean(random_sharpe))
    assert interval["low"] < interval["mean"] < interval["high"]
    assert "Multi-seed evaluation" in (tmp_path / "runs/multiseed/multiseed.md").read_text()
    assert summary["policies"]["independent"]["sharpe"]["n"] == 3
    # a folder that is no run folder: one clear error
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["report", str(empty)])
    assert result.exit_code == 1
    assert "not a run folder (no config.yaml" in result.output
    assert "Traceback" not in result.output
    # a run folder with no trained system in it: one clear error too
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    (untrained / "config.yaml").write_bytes(cfg.read_bytes())
    result = CliRunner().invoke(app, ["report", str(untrained)])
    assert result.exit_code == 1
    assert "no trained system to evaluate" in result.output
    assert "Traceback" not in result.output


def test_report_refuses_a_run_given_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 23: the same seed twice reads as two agreeing seeds (zero-width intervals)."""
    monkeypatch.chdir(tmp_path)
    for name in ("x", "y"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "config.yaml").write_text("seed: 0\n")
    spellings = ["runs/x", "runs/y", "./runs/x/", str(tmp_path / "runs" / "x")]
    result = CliRunner().invoke(app, ["report", *spellings])
    assert result.exit_code == 1
    line = " ".join(result.output.split())  # one line, however the terminal wraps it
    resolved = (tmp_path / "runs" / "x").resolve()
    assert f"{resolved} is given 3 times (as runs/x, {tmp_path / 'runs' / 'x'})" in line
    assert "give each run once" in line and "runs/y" not in line
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs" / "x" / "report").exists()  # refused before any work


def test_report_is_logged_to_mlflow(
    exported: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    pt, cfg = exported
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = invoke(
        "--checkpoint", str(pt), "--config", str(cfg), "--out", str(tmp_path / "rep"),
        "--tracking-uri", uri, "--no-fail-on-gates", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("multiagent-evaluation")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    # metrics per system: SYSTEM.metric, the report's own figures
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    sharpe = report["policies"]["independent"]["metrics"]["sharpe"]
    assert run.data.metrics["independent.sharpe"] == pytest.approx(sharpe)
    assert "independent.mean_episode_max_drawdown" in run.data.metrics
    assert "sharpe" not in run.data.metrics and "agent.sharpe" not in run.data.metrics
    assert not any(key.startswith("independent.vs_independent") for key in run.data.metrics)
    # the lead system's trust figures, unprefixed (what `multiagent compare` shows)
    assert run.data.metrics["dsr"] == pytest.approx(
        report["policies"]["independent"]["metrics"]["dsr"]
    )
    assert run.data.metrics["independent.psr"] == pytest.approx(
        report["policies"]["independent"]["metrics"]["psr"]
    )
    assert run.data.params["part"] == "test"
    assert run.data.params["systems"] == "independent"
    assert run.data.params["source"] == str(pt)
    assert run.data.tags["gates_passed"] == str(report["gates"]["passed"])
    assert run.data.tags["lead_system"] == "independent"
    assert run.data.tags["phase"] == "evaluate"
    assert "mlflow.parentRunId" not in run.data.tags  # no pipeline run to nest under
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/report.json", "report/report.md", "report/equity.png"} <= artifacts
    assert "MLFLOW_TRACKING_URI" not in os.environ  # no process-wide default left behind


def test_evaluation_of_a_tracked_run_nests_under_its_pipeline_run(
    exported: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run folder whose pipeline.json names its MLflow run: logged there by default."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    pt, cfg = exported
    uri = f"sqlite:///{tmp_path / 'pipeline.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    parent = client.create_run(client.create_experiment("multiagent-training")).info.run_id
    run_dir = make_run(tmp_path, "run", pt, cfg, 0)
    record = {"mlflow": {"uri": uri, "run_id": parent}, "phases": {"symbols": {"status": "done"}}}
    (run_dir / "pipeline.json").write_text(json.dumps(record))
    result = invoke("--checkpoint", str(run_dir), "--no-fail-on-gates", *FAST)
    assert result.exit_code == 0, result.output
    training = client.get_experiment_by_name("multiagent-training")
    assert training is not None
    children = client.search_runs(
        [training.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )
    (child,) = children
    assert "independent.sharpe" in child.data.metrics
    assert child.data.params["source"] == str(run_dir)
    assert child.data.params["systems"] == "independent"
    assert client.get_experiment_by_name("multiagent-evaluation") is None

    # an explicit, different store: a run of its own in multiagent-evaluation there
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = invoke(
        "--checkpoint", str(run_dir), "--tracking-uri", other, "--overwrite",
        "--no-fail-on-gates", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    elsewhere = mlflow.MlflowClient(tracking_uri=other)
    experiment = elsewhere.get_experiment_by_name("multiagent-evaluation")
    assert experiment is not None
    (run,) = elsewhere.search_runs([experiment.experiment_id])
    assert "independent.sharpe" in run.data.metrics
    assert "mlflow.parentRunId" not in run.data.tags
    assert len(client.search_runs([training.experiment_id])) == 2  # parent + first child only
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_cli_system_option_errors_are_one_line(exported: tuple[Path, Path], tmp_path: Path) -> None:
    """--system asks for one system: one the export lacks, or an unknown one, is an error."""
    pt, cfg = exported
    assert not pt.with_name("master.pt").exists()
    cases = {"hierarchical": "needs its master", "joint": "needs its master", "bogus": "bogus"}
    for system, message in cases.items():
        result = invoke("--checkpoint", str(pt), "--config", str(cfg), "--system", system)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith("error:"), lines[0]
        assert message in lines[0], lines[0]
        if system == "bogus":
            assert "--system must be one of independent, hierarchical, joint" in lines[0]
        else:
            assert f"the {system} system" in lines[0] and "--system independent" in lines[0]
    # a run folder without the phase: never a fallback to another system
    run_dir = make_run(tmp_path, "run", pt, cfg, 0)
    for command in ("evaluate", "report"):
        where = ["--checkpoint", str(run_dir)] if command == "evaluate" else [str(run_dir)]
        result = CliRunner().invoke(app, [command, *where, "--system", "hierarchical"])
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert "no hierarchical system to evaluate" in lines[0], lines[0]
        assert not (run_dir / "report").exists()


def test_cli_system_independent_on_a_bare_export(
    exported: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    pt, cfg = exported
    out = tmp_path / "rep"
    result = invoke(
        "--checkpoint", str(pt), "--config", str(cfg), "--out", str(out),
        "--system", "independent", "--no-fail-on-gates", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["agents"] == ["independent"]
    assert list(report["source"]["systems"]) == ["independent"]


def test_unreachable_tracking_server_warns_and_succeeds(
    exported: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    pt, cfg = exported
    result = invoke(
        "--checkpoint", str(pt), "--config", str(cfg), "--out", str(tmp_path / "rep"),
        "--tracking-uri", "http://127.0.0.1:9", "--no-fail-on-gates", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "MLflow tracking to http://127.0.0.1:9 is off" in result.output
    assert (tmp_path / "rep" / "report.json").is_file()
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_symbols_outside_the_training_run_are_flagged_held_out(
    exported: tuple[Path, Path], tmp_path: Path
) -> None:
    """Train on a subset (the run's config), evaluate on the wider universe (--config)."""
    pt, cfg = exported
    wide = yaml.safe_load(cfg.read_text())
    panel_symbols = prepare(load_preset("quick")).panel.symbols
    held = panel_symbols[-1]
    narrow = {**wide, "data": {**wide["data"], "symbols": list(panel_symbols[:-1])}}
    run_dir = make_run(tmp_path, "run", pt, cfg, 0)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(narrow))
    result = invoke(
        "--checkpoint", str(run_dir), "--config", str(cfg), "--no-fail-on-gates", *FAST
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((run_dir / "report" / "report.json").read_text())
    general = report["generalization"]["independent"]
    flags = {s["symbol"]: s["held_out"] for s in general["symbols"]}
    assert flags[held] is True
    assert not any(v for k, v in flags.items() if k != held)
    assert f"{held} (held out)" in (run_dir / "report" / "report.md").read_text()
