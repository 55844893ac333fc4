"""The backtester: many policies over one time window, batched through the training core.

Every policy runs through `TradingCore`, the engine the training envs step, with the run's cost
model, fill rule and action scheme, so a backtest and a training episode of the same policy on
the same bars agree bar for bar. The policies sharing a layout and a set of risk limits are
stacked into one core (B = policies x books), so a window costs one vectorized step per bar
whatever the number of policies.

Books: the evaluation universe is every symbol with a bar on ``min_coverage`` of the window.
An agent book holds N of them (the agent's slot count); the universe is cut into books in panel
order and the last book is filled up from the start, so every symbol is traded at least once.

The hierarchy: agent books run under a master seat (`multiagent.envs.master.MasterSeat`, the
code the hierarchical env runs). A policy's ``master`` decides every ``communication_interval``
bars from the same observation as in training, its budgets and risk mode bind the symbol orders
of the same step, and a cut budget forces the trim on that step's fill. A policy without a
master gets the neutral action (equal budgets ``max_gross_exposure / N``, neutral mode): the
independent agents, and the rule baselines that trade through the agent's scheme.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from multiagent.data.splits import Window
from multiagent.envs.config import CommonEnvConfig, HierarchicalEnvConfig, RiskLimits
from multiagent.envs.core import TradingCore, override_orders
from multiagent.envs.market import EnvMarket
from multiagent.envs.master import MasterSeat
from multiagent.envs.orders import Orders
from multiagent.envs.sampling import Episode
from multiagent.errors import ConfigError
from multiagent.evaluation.policies import BacktestPolicy, Layout, MasterDecider, StepContext


@dataclass
class PolicyRun:
    """Everything one policy did in one window, per book (K) and slot (N) and step (T)."""

    name: str
    kind: str
    layout: str
    symbols: np.ndarray
    """(K, N) market rows."""
    start: int
    """Decision bar of the first step; step i fills on bar ``start + 1 + i``."""
    capital: float
    """Initial equity of each book."""
    budget: float
    """Each slot's equal share of its book's equity (the neutral master's budget)."""
    equity: np.ndarray
    """(K, T + 1) book equity, from the initial capital."""
    values: np.ndarray
    """(K, N, T) position value of each slot after each step."""
    net_pnl: np.ndarray
    """(K, N, T) gross P&L minus costs of each slot per step."""
    costs: np.ndarray
    """(K, N, T)."""
    traded: np.ndarray
    """(K, T) traded notional."""
    trades: dict[str, np.ndarray]
    """Closed trades: book, slot, symbol, open_step, close_step, pnl (net, currency)."""
    action_counts: np.ndarray | None
    """(T, A) executed scheme actions over all slots, None for target-weight policies."""
    action_names: tuple[str, ...]
    budgets: np.ndarray | None = None
    """(K, N, T) each slot's budget (fraction of equity) on each step; None outside agent books."""
    risk_modes: np.ndarray | None = None
    """(K, T) the master's risk mode on each step (0 defensive, 1 neutral, 2 aggressive)."""
    forced: np.ndarray | None = None
    """(K, N, T) bool: the slot was trimmed to a budget its master cut on that step."""
    master: str | None = None
    """Name of the master that set the budgets (None: neutral, equal budgets)."""

    @property
    def n_steps(self) -> int:
        return self.equity.shape[1] - 1

    def returns(self, books: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Per-bar returns of the books' combined equity (default: all books)."""
        equity = self.equity if books is None else self.equity[list(books)]
        total = equity.sum(axis=0)
        return np.asarray(total[1:] / total[:-1] - 1.0)


def universe(market: EnvMarket, window: Window, min_coverage: float = 0.9) -> np.ndarray:
    """Rows of the symbols with a bar on at least ``min_coverage`` of the window's bars."""
    seen = np.isfinite(market.close[:, window.slice()]).mean(axis=1)
    rows = np.flatnonzero(seen >= min_coverage)
    if rows.size == 0:
        raise ConfigError(
            f"no symbol has bars on {min_coverage:.0%} of bars {window.start}-{window.stop - 1}"
        )
    return rows


def make_books(rows: np.ndarray, layout: Layout, n_slots: int) -> np.ndarray:
    """(K, N) market rows of the books of a layout."""
    if layout == "single":
        return rows[:, None]
    if layout == "universe":
        return rows[None, :]
    n = min(n_slots, rows.size)
    k = -(-rows.size // n)
    padded = np.resize(rows, k * n)  # wraps around: the last book is filled from the start
    return padded.reshape(k, n)


@dataclass
class _Group:
    layout: Layout
    constrained: bool
    policies: list[BacktestPolicy] = field(default_factory=list)


class _TradeBook:
    """Running round-trip accounting of every slot (see `metrics` for the trade definition)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.pnl = np.zeros(shape)
        self.opened = np.zeros(shape, np.int64)
        self.rows: list[np.ndarray] = []

    def update(self, step: int, before: np.ndarray, after: np.ndarray, net: np.ndarray) -> None:
        live = (before != 0) | (after != 0)
        self.pnl += np.where(live, net, 0.0)
        closed = (before != 0) & ((after == 0) | (np.sign(before) != np.sign(after)))
        if closed.any():
            self._close(closed, step)
        opened = (after != 0) & ((before == 0) | closed)
        self.opened[opened] = step

    def _close(self, where: np.ndarray, step: int) -> None:
        book, slot = np.nonzero(where)
        self.rows.append(
            np.stack(
                [
                    book,
                    slot,
                    self.opened[book, slot],
                    np.full(book.size, step),
                    self.pnl[book, slot],
                ],
                axis=1,
            )
        )
        self.pnl[where] = 0.0

    def finish(self, step: int, position: np.ndarray) -> np.ndarray:
        """Close what is still open at the last mark; (M, 5) rows."""
        if (position != 0).any():
            self._close(position != 0, step)
        return np.concatenate(self.rows) if self.rows else np.zeros((0, 5))


class Backtester:
    """Runs policies over windows of one market with one env configuration."""

    def __init__(
        self,
        market: EnvMarket,
        config: CommonEnvConfig,
        *,
        n_slots: int | None = None,
        min_coverage: float = 0.9,
    ) -> None:
        self.market = market
        self.config = config
        if n_slots is None:
            n_slots = config.n_symbols if isinstance(config, HierarchicalEnvConfig) else 1
        self.n_slots = n_slots
        self.min_coverage = min_coverage
        self.benchmark_config = config.model_copy(update={"limits": RiskLimits()})

    def run(
        self,
        policies: Sequence[BacktestPolicy],
        window: Window,
        *,
        on_step: Callable[[int], None] | None = None,
    ) -> dict[str, PolicyRun]:
        """Every policy over ``window``: decisions on bars start .. stop-2, fills up to stop-1."""
        if len(window) < 2:
            raise ConfigError(f"window {window.start}-{window.stop - 1} has fewer than 2 bars")
        names = [p.name for p in policies]
        if len(set(names)) != len(names):
            raise ConfigError(f"policy names must be unique, got {names}")
        rows = universe(self.market, window, self.min_coverage)
        groups: dict[tuple[str, bool], _Group] = {}
        for policy in policies:
            key = (policy.layout, policy.constrained)
            groups.setdefault(key, _Group(policy.layout, policy.constrained)).policies.append(
                policy
            )
        out: dict[str, PolicyRun] = {}
        for group in groups.values():
            out.update(self._run_group(group, rows, window, on_step))
        return {name: out[name] for name in names}

    def _run_group(
        self,
        group: _Group,
        rows: np.ndarray,
        window: Window,
        on_step: Callable[[int], None] | None,
    ) -> dict[str, PolicyRun]:
        books = make_books(rows, group.layout, self.n_slots)
        n_books, n_slots = books.shape
        n_pol = len(group.policies)
        config = self.config if group.constrained else self.benchmark_config
        masters = [p.master for p in group.policies]
        seat_config = self._seat_config(group, n_slots, masters, window)
        # Agent books: the equal share (the neutral master keeps it); benchmarks: the whole book.
        budget = 1.0
        if group.layout == "agent":
            budget = config.limits.max_gross_exposure / n_slots
            if seat_config is None:  # what the neutral master's first decision would set
                budget = min(budget, config.limits.max_weight)
        core = TradingCore(self.market, config, n_pol * n_books, n_slots, budget)
        seat = MasterSeat(core, seat_config) if seat_config is not None else None
        symbols = np.tile(books, (n_pol, 1))
        core.reset([Episode(s, window.start, window.stop) for s in symbols])
        names = core.scheme.names
        if names[0] != "HOLD":
            raise ConfigError(f"the backtester needs HOLD as action 0, scheme has {names}")
        steps = len(window) - 1
        shape = (n_pol * n_books, n_slots)
        equity = np.empty((shape[0], steps + 1))
        equity[:, 0] = core.sim.equity
        values = np.empty((*shape, steps))
        net = np.empty((*shape, steps))
        costs = np.empty((*shape, steps))
        traded = np.empty((shape[0], steps))
        n_actions = len(names)
        action_counts = np.zeros((n_pol, steps, n_actions), np.int64)
        trades = _TradeBook(shape)
        slices = [slice(i * n_books, (i + 1) * n_books) for i in range(n_pol)]
        window_dim = core.observations.feature_dim
        for policy in group.policies:
            policy.check(core.observations.dim, names)
            policy.reset(n_books, n_slots)
            if policy.master is not None and seat is not None:
                policy.master.check(seat.dim, n_slots * window_dim, seat.nvec.tolist())
        need_obs = seat is not None or any(p.needs_observations for p in group.policies)
        all_voluntary = np.ones(shape, bool)
        budgets = np.empty((*shape, steps)) if seat is not None else None
        modes = np.empty((shape[0], steps), np.int64) if seat is not None else None
        forced = np.zeros((*shape, steps), bool) if seat is not None else None
        master_actions = np.tile(seat.neutral, (shape[0], 1)) if seat is not None else None
        for step in range(steps):
            # As in the env: masks and observations are those of the decision bar before the
            # master acts; its new budgets (written into the core in place) size the orders
            # of this same step and reach the symbol agents' observations from the next bar.
            masks = core.masks()
            observations = core.observe() if need_obs else None
            trims, trim_mask = None, None
            if seat is not None and seat.decision_due(step):
                assert observations is not None and master_actions is not None
                decided = [m is not None for m in masters]
                if any(decided):
                    master_obs = seat.observe(observations, step)
                    market_windows = observations[:, :, :window_dim].reshape(shape[0], -1)
                    for master, rows_of in zip(masters, slices, strict=True):
                        if master is None:
                            continue
                        if getattr(master, "reads_truth", False):  # a yardstick (oracle)
                            master_actions[rows_of] = master.decide_at(  # type: ignore[attr-defined]
                                core.sim.t[rows_of], core.sim.symbol[rows_of]
                            )
                        else:
                            master_actions[rows_of] = master.decide(
                                master_obs[rows_of], market_windows[rows_of]
                            )
                seat.apply(master_actions)
                trims, trim_mask = seat.trims()
            actions = np.zeros(shape, np.int64)
            targets = np.zeros(shape)
            rebalance = np.zeros(shape, bool)
            sim = core.sim
            for policy, rows_of in zip(group.policies, slices, strict=True):
                decision = policy.decide(
                    StepContext(
                        step=step,
                        t=sim.t[rows_of],
                        symbols=sim.symbol[rows_of],
                        qty=sim.qty[rows_of],
                        masks=masks[rows_of],
                        observations=None if observations is None else observations[rows_of],
                        market=self.market,
                        action_names=names,
                    )
                )
                if decision.actions is not None:
                    actions[rows_of] = decision.actions
                if decision.targets is not None and decision.rebalance is not None:
                    targets[rows_of] = decision.targets
                    rebalance[rows_of] = decision.rebalance
            imposed, imposed_mask = trims, trim_mask
            if rebalance.any():
                imposed_mask = rebalance if trim_mask is None else rebalance | trim_mask
                rebalanced = Orders(
                    active=rebalance,
                    keep=np.zeros(shape),
                    weight=targets,
                    voluntary=all_voluntary,
                )
                imposed = (
                    rebalanced
                    if trims is None or trim_mask is None
                    else override_orders(rebalanced, trims, trim_mask)
                )
            if budgets is not None and modes is not None and forced is not None:
                budgets[..., step] = core.budget
                modes[:, step] = core.risk_mode
                if trim_mask is not None:
                    forced[..., step] = trim_mask
            before = sim.qty
            result = core.step(actions, masks, imposed, imposed_mask)
            fills = result.fills
            equity[:, step + 1] = fills.equity
            values[..., step] = core.sim.qty * core.sim.mark
            cost = fills.costs.total
            costs[..., step] = cost
            net[..., step] = fills.pnl - cost
            traded[:, step] = fills.traded_notional
            trades.update(step, before, core.sim.qty, fills.pnl - cost)
            executed = result.executed
            for i, rows_of in enumerate(slices):
                action_counts[i, step] = np.bincount(
                    executed[rows_of].reshape(-1), minlength=n_actions
                )
            if on_step is not None:
                on_step(n_pol)
        closed = trades.finish(steps - 1, core.sim.qty)
        out = {}
        for i, (policy, rows_of) in enumerate(zip(group.policies, slices, strict=True)):
            mine = (closed[:, 0] >= rows_of.start) & (closed[:, 0] < rows_of.stop)
            book = closed[mine, 0].astype(np.int64) - rows_of.start
            slot = closed[mine, 1].astype(np.int64)
            acts_by_scheme = policy.kind == "agent" or group.constrained
            out[policy.name] = PolicyRun(
                name=policy.name,
                kind=policy.kind,
                layout=group.layout,
                symbols=books,
                start=window.start,
                capital=config.execution.initial_cash,
                budget=budget,
                equity=equity[rows_of],
                values=values[rows_of],
                net_pnl=net[rows_of],
                costs=costs[rows_of],
                traded=traded[rows_of],
                trades={
                    "book": book,
                    "slot": slot,
                    "symbol": books[book, slot],
                    "open_step": closed[mine, 2].astype(np.int64),
                    "close_step": closed[mine, 3].astype(np.int64),
                    "pnl": closed[mine, 4],
                },
                action_counts=action_counts[i] if acts_by_scheme else None,
                action_names=names,
                budgets=None if budgets is None else budgets[rows_of],
                risk_modes=None if modes is None else modes[rows_of],
                forced=None if forced is None else forced[rows_of],
                master=None if policy.master is None else policy.master.name,
            )
        return out

    def _seat_config(
        self,
        group: _Group,
        n_slots: int,
        masters: list[MasterDecider | None],
        window: Window,
    ) -> HierarchicalEnvConfig | None:
        """The env config the master seat of agent books runs with (None: no seat)."""
        config = self.config
        if group.layout != "agent" or not group.constrained:
            if any(m is not None for m in masters):
                raise ConfigError("a master runs only over agent books under the agent's limits")
            return None
        if not isinstance(config, HierarchicalEnvConfig):
            if any(m is not None for m in masters):
                raise ConfigError("a master needs the hierarchical env config (env.n_symbols...)")
            return None
        if any(m is not None for m in masters) and n_slots != config.n_symbols:
            raise ConfigError(
                f"the master decides for books of {config.n_symbols} symbols, but bars "
                f"{window.start}-{window.stop - 1} have only {n_slots} symbols with enough "
                f"bars (min_coverage {self.min_coverage:g})"
            )
        return config
