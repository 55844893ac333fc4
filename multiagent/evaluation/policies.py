"""Policies the backtester runs: baselines, rules, and an adapter for any greedy network.

A policy decides for K books x N slots at once. It either sends scheme actions (exactly what a
trained symbol agent sends: it trades through the agent's action scheme, budgets and risk
limits) or target weights (benchmarks: an unconstrained investor with the same fills and costs
but none of the agent's risk limits, so buy-and-hold is buy-and-hold).

Layouts say which books a policy trades: ``agent`` (books of the agent's N slots), ``universe``
(one book holding every symbol) or ``single`` (one book per symbol).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

import numpy as np

from multiagent.envs.market import EnvMarket
from multiagent.errors import ConfigError

Layout = Literal["agent", "universe", "single"]
Kind = Literal["agent", "baseline"]


@dataclass
class StepContext:
    """What a policy may look at on decision bar ``t``: nothing after the close of ``t``."""

    step: int
    t: np.ndarray
    """(K,) decision bar of each book."""
    symbols: np.ndarray
    """(K, N) market rows of the slots."""
    qty: np.ndarray
    """(K, N) shares held."""
    masks: np.ndarray
    """(K, N, A) bool allowed scheme actions."""
    observations: np.ndarray | None
    """(K, N, D) float32 agent observations (only built when a policy needs them)."""
    market: EnvMarket
    action_names: tuple[str, ...]


class Decision(NamedTuple):
    actions: np.ndarray | None = None
    """(K, N) scheme actions."""
    targets: np.ndarray | None = None
    """(K, N) target weights of equity, applied where ``rebalance``."""
    rebalance: np.ndarray | None = None


class MasterDecider(Protocol):
    """A master (risk allocator) the backtester can run over books of N slots: the greedy
    export of a trained master (`multiagent.evaluation.master_policy.MasterNetPolicy`) or any
    rule with the same two methods."""

    name: str

    def check(self, observation_dim: int, market_dim: int, nvec: Sequence[int]) -> None:
        """Raise `ConfigError` when the master cannot act in this env (wrong shapes)."""

    def decide(self, observations: np.ndarray, market: np.ndarray) -> np.ndarray:
        """(R, M) master observations and (R, N x W x F) slot windows -> (R, N + 1) actions."""
        ...


class BacktestPolicy:
    name: str = "policy"
    kind: Kind = "baseline"
    layout: Layout = "agent"
    constrained: bool = True
    """Trade under the agent's risk limits (False: benchmark investor, default limits)."""
    needs_observations: bool = False
    master: MasterDecider | None = None
    """The master setting this policy's budgets every ``communication_interval`` bars (agent
    layout only); None: equal budgets and the neutral mode, as independent agents."""

    def reset(self, n_books: int, n_slots: int) -> None:
        """Called before each window."""

    def check(self, observation_dim: int, action_names: tuple[str, ...]) -> None:
        """Raise `ConfigError` when the policy cannot act in this env (wrong shapes)."""

    def decide(self, context: StepContext) -> Decision:
        raise NotImplementedError


def _action(names: tuple[str, ...], *candidates: str) -> int:
    for name in candidates:
        if name in names:
            return names.index(name)
    raise ValueError(f"the action scheme {names} has none of {candidates}")


def directional_actions(
    direction: np.ndarray, masks: np.ndarray, names: tuple[str, ...]
) -> np.ndarray:
    """BUY (the scheme's full buy) where ``direction > 0``, SELL where < 0, HOLD otherwise or
    where that action is masked."""
    buy = _action(names, "BUY", "BUY_LARGE", "BID_NEAR")
    sell = _action(names, "SELL", "SELL_ALL", "ASK_NEAR")
    want = np.where(direction > 0, buy, np.where(direction < 0, sell, 0))
    allowed = np.take_along_axis(masks, want[..., None], axis=-1)[..., 0]
    return np.where(allowed, want, 0)


class CashPolicy(BacktestPolicy):
    """Never trades: the zero line every policy must beat after costs."""

    name = "cash"

    def decide(self, context: StepContext) -> Decision:
        return Decision(actions=np.zeros(context.symbols.shape, np.int64))


class RandomPolicy(BacktestPolicy):
    """Uniform among the allowed actions; the generator is re-seeded for every window."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self, n_books: int, n_slots: int) -> None:
        self.rng = np.random.default_rng(self.seed)

    def decide(self, context: StepContext) -> Decision:
        scores = self.rng.random(context.masks.shape)
        return Decision(actions=np.argmax(np.where(context.masks, scores, -1.0), axis=-1))


class MomentumPolicy(BacktestPolicy):
    """Time-series momentum: long (or short, where the scheme shorts) the sign of the symbol's
    return over the last ``lookback`` bars, known at the close of the decision bar."""

    def __init__(self, lookback: int = 20) -> None:
        self.lookback = lookback
        self.name = f"momentum_{lookback}"

    def decide(self, context: StepContext) -> Decision:
        close = context.market.close
        t = context.t[:, None]
        now = close[context.symbols, t]
        then = close[context.symbols, np.maximum(t - self.lookback, 0)]
        with np.errstate(invalid="ignore", divide="ignore"):
            past = now / then - 1.0
        direction = np.where(np.isfinite(past) & (t >= self.lookback), np.sign(past), 0.0)
        return Decision(actions=directional_actions(direction, context.masks, context.action_names))


class OraclePolicy(BacktestPolicy):
    """The sign oracle of a synthetic market, trading through the agent's own scheme.

    Privileged: it reads the hidden signal of each slot's symbol at the decision bar (the
    planted part of the next bar's return). Under the same costs, limits, budgets and fills as
    the agent it is the yardstick a symbol policy is measured against: BUY where the signal
    says up, SELL where it says down (a short where the scheme shorts), HOLD where masked.
    """

    name = "oracle"

    def __init__(self, signal: np.ndarray, name: str = "oracle") -> None:
        self.signal = signal
        self.name = name

    def check(self, observation_dim: int, action_names: tuple[str, ...]) -> None:
        if action_names[:3] != ("HOLD", "BUY", "SELL"):
            raise ConfigError(
                f"the oracle needs the discrete3 scheme (HOLD, BUY, SELL), not {action_names}"
            )

    def decide(self, context: StepContext) -> Decision:
        direction = np.sign(self.signal[context.symbols, context.t[:, None]])
        return Decision(actions=directional_actions(direction, context.masks, context.action_names))


class EqualWeightPolicy(BacktestPolicy):
    """1/N of equity in every symbol of the universe, rebalanced every ``rebalance_every`` bars."""

    name = "equal_weight"
    layout: Layout = "universe"
    constrained = False

    def __init__(self, rebalance_every: int = 21) -> None:
        self.rebalance_every = rebalance_every

    def decide(self, context: StepContext) -> Decision:
        shape = context.symbols.shape
        rebalance = np.full(shape, context.step % self.rebalance_every == 0)
        return Decision(targets=np.full(shape, 1.0 / shape[1]), rebalance=rebalance)


class BuyAndHoldPolicy(BacktestPolicy):
    """All equity in one symbol, bought at the first fill and held (ALL_<symbol> in reports)."""

    name = "buy_and_hold"
    layout: Layout = "single"
    constrained = False

    def decide(self, context: StepContext) -> Decision:
        # Buy until the position exists (a symbol without a bar at the first fill buys later).
        flat = context.qty == 0
        return Decision(targets=np.ones(flat.shape), rebalance=flat)


class GreedyNetPolicy(BacktestPolicy):
    """A trained symbol policy: argmax of its masked logits, recurrent state kept per slot.

    ``net`` maps ``(observations (R, D), mask (R, A), state (R, S)) -> (logits, state)``: an
    exported TorchScript file or the inference path of an RLModule.
    """

    kind: Kind = "agent"
    needs_observations = True

    def __init__(
        self,
        net: object,
        state_size: int,
        name: str = "agent",
        *,
        observation_dim: int | None = None,
        n_actions: int | None = None,
        master: MasterDecider | None = None,
    ) -> None:
        import torch

        self.torch = torch
        self.master = master
        self.net = net
        self.state_size = state_size
        self.name = name
        self.observation_dim = observation_dim
        self.n_actions = n_actions
        self.state = torch.zeros(0, state_size)

    def check(self, observation_dim: int, action_names: tuple[str, ...]) -> None:
        problems = []
        if self.observation_dim is not None and self.observation_dim != observation_dim:
            problems.append(
                f"observations of {self.observation_dim} values, the env gives {observation_dim}"
            )
        if self.n_actions is not None and self.n_actions != len(action_names):
            problems.append(
                f"{self.n_actions} actions, the env's scheme has {len(action_names)} {action_names}"
            )
        if problems:
            raise ConfigError(
                f"policy {self.name!r} does not fit this run config: it expects "
                + " and ".join(problems)
                + " (evaluate with the config the policy was trained with)"
            )

    def reset(self, n_books: int, n_slots: int) -> None:
        self.state = self.torch.zeros(n_books * n_slots, self.state_size)

    def decide(self, context: StepContext) -> Decision:
        torch = self.torch
        assert context.observations is not None
        obs = context.observations
        rows = obs.shape[0] * obs.shape[1]
        with torch.no_grad():
            logits, self.state = self.net(  # type: ignore[operator]
                torch.from_numpy(np.ascontiguousarray(obs.reshape(rows, -1), np.float32)),
                torch.from_numpy(context.masks.reshape(rows, -1).astype(np.float32)),
                self.state,
            )
        return Decision(actions=logits.argmax(dim=-1).numpy().reshape(obs.shape[:2]))

    @classmethod
    def load(cls, path: str, name: str = "agent") -> GreedyNetPolicy:
        """A policy written by `multiagent.rllib.policy.export_torchscript` (+ its .json)."""
        import json

        sidecar = Path(path).with_suffix(".json")
        try:
            meta = json.loads(sidecar.read_text())
            state_size = int(meta["state_size"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(
                f"{sidecar}: not a policy sidecar ({type(error).__name__}: {error}); it is "
                "written by the export next to policy.pt"
            ) from None
        net = load_torchscript(path, "policy")
        return cls(
            net,
            state_size,
            name,
            observation_dim=meta.get("observation_dim"),
            n_actions=meta.get("n_actions"),
        )


def load_torchscript(path: str | Path, what: str) -> object:
    """A TorchScript file written by our exports (``what``: policy or master, for the error)."""
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path))
    except (RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ConfigError(f"{path}: not a TorchScript {what} ({first})") from None


def default_baselines(
    seed: int = 0, momentum_lookback: int = 20, rebalance_every: int = 21
) -> list[BacktestPolicy]:
    return [
        CashPolicy(),
        BuyAndHoldPolicy(),
        EqualWeightPolicy(rebalance_every),
        RandomPolicy(seed),
        MomentumPolicy(momentum_lookback),
    ]
