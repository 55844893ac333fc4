"""Single-agent systems scored on their own env: greedy episodes of the trained policy and of
the baselines, on the same episodes, booked as the backtester books the hierarchy.

A system's policy is evaluated on the env class it trained on (`config.agent.agent_env_config`),
so an evaluation episode and a training episode of the same policy on the same bars agree step
for step. Which episodes:

- ``portfolio``: ``agent.evaluation.episodes`` episodes, each reset with seed ``seed + i`` on the
  split's views (a random pool of symbols and view per episode, as the original CLI's
  ``--episodes``); every policy sees the same N episodes.
- ``regimes`` and ``sessions``: every view of the split once, in order (capped at
  ``agent.evaluation.episodes``): for regimes the split's windows over every asset, for sessions
  every held-out session.

Booking: a bar's return is the change of the episode's equity; closed round trips (per slot,
as `backtest` defines them: a position opened, then closed or flipped, net of costs) give the
win rate and profit factor; ``in_position`` is the share of bars holding any position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from multiagent.config import RunConfig
from multiagent.config.agent import agent_env_config
from multiagent.data.episodes import EpisodeView
from multiagent.envs.market import EnvMarket
from multiagent.envs.presets import env_class
from multiagent.evaluation.metrics import return_metrics, trade_stats
from multiagent.evaluation.policies import GreedyNetPolicy


def agent_env(config: RunConfig, market: EnvMarket, views: Sequence[EpisodeView]) -> Any:
    """The env of ``config.system`` over ``views`` (portfolio, regimes or sessions)."""
    env_config = agent_env_config(config.system, config.agent)
    return env_class(env_config)(market, list(views), env_config)


def masked(observation: Any, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """(observation vector, action mask) of a ``Dict(observations, action_mask)`` observation
    or of a plain vector (every action allowed)."""
    if isinstance(observation, dict):
        return observation["observations"], observation["action_mask"]
    return np.asarray(observation), np.ones(n_actions, np.int8)


class AgentPolicy(Protocol):
    """Acts in one single-agent env, one decision at a time."""

    name: str
    kind: str
    """agent or baseline."""

    def reset(self, env: Any) -> None: ...

    def act(self, observation: np.ndarray, mask: np.ndarray, env: Any) -> int: ...


class NetAgent:
    """A trained policy in a single-agent env: `GreedyNetPolicy`'s net (an exported TorchScript
    file or an RLModule's inference path), argmax of its masked logits, the recurrent state
    carried across the episode's decisions."""

    kind = "agent"

    def __init__(self, policy: GreedyNetPolicy) -> None:
        self.policy = policy
        self.name = policy.name

    def reset(self, env: Any) -> None:
        self.policy.check(observation_shape(env), tuple(env.unwrapped.scheme.names))
        self.policy.reset(1, 1)

    def act(self, observation: np.ndarray, mask: np.ndarray, env: Any) -> int:
        policy = self.policy
        torch = policy.torch
        with torch.no_grad():
            logits, policy.state = policy.net(  # type: ignore[operator]
                torch.from_numpy(np.ascontiguousarray(observation, np.float32)[None]),
                torch.from_numpy(np.asarray(mask, np.float32)[None]),
                policy.state,
            )
        return int(logits[0].argmax())

    @classmethod
    def load(cls, path: str, name: str = "agent") -> NetAgent:
        """A policy written by the export (`multiagent.rllib.policy.export_torchscript`)."""
        return cls(GreedyNetPolicy.load(path, name))


class FixedAction:
    """The same action every decision (HOLD: stay in cash; a regime: hold its weights)."""

    kind = "baseline"

    def __init__(self, name: str, action: int) -> None:
        self.name = name
        self.action = action

    def reset(self, env: Any) -> None:
        pass

    def act(self, observation: np.ndarray, mask: np.ndarray, env: Any) -> int:
        return self.action if mask[self.action] else 0


class RandomAgent:
    """Uniform over the allowed actions, seeded: the floor a policy must clear."""

    kind = "baseline"

    def __init__(self, seed: int = 0, name: str = "random") -> None:
        self.seed = seed
        self.name = name
        self.rng = np.random.default_rng(seed)

    def reset(self, env: Any) -> None:
        pass

    def act(self, observation: np.ndarray, mask: np.ndarray, env: Any) -> int:
        return int(self.rng.choice(np.flatnonzero(mask)))


class AssetRegime:
    """regimes: hold one asset fully (``ALL_<asset>``), whatever slot the episode put it in."""

    kind = "baseline"

    def __init__(self, asset_row: int, asset: str) -> None:
        self.row = asset_row
        self.name = f"ALL_{asset}"

    def reset(self, env: Any) -> None:
        inner = env.unwrapped
        slot = int(np.flatnonzero(inner.sim.symbol[0] == self.row)[0])
        target = np.zeros(inner.scheme.table.shape[1])
        target[slot] = 1.0
        match = np.flatnonzero(np.all(np.isclose(inner.scheme.table, target), axis=1))
        if not match.size:
            raise ValueError(f"no regime holds {self.name[4:]} alone; add one to the regimes")
        self.action = int(match[0])

    def act(self, observation: np.ndarray, mask: np.ndarray, env: Any) -> int:
        return self.action


def baselines(config: RunConfig, market: EnvMarket) -> list[AgentPolicy]:
    """The system's baselines: cash (HOLD), random, and for regimes ``ALL_<asset>`` per asset
    and the equal-weight regime; portfolio's buy-and-hold is the `BuyAndHoldAgent`."""
    out: list[AgentPolicy] = [FixedAction("cash", 0), RandomAgent(config.seed)]
    if config.system == "regimes":
        out += [AssetRegime(row, name) for row, name in enumerate(market.symbols)]
        out.append(EqualWeightRegime())
    elif config.system == "portfolio":
        out.append(BuyAndHoldAgent())
    return out


class EqualWeightRegime:
    """regimes: the regime closest to equal weights over the assets, fully invested."""

    kind = "baseline"
    name = "equal_weight"

    def reset(self, env: Any) -> None:
        table = env.unwrapped.scheme.table
        n = table.shape[1]
        self.action = int(np.argmin(np.abs(table - 1.0 / n).sum(axis=1)))

    def act(self, observation: np.ndarray, mask: np.ndarray, env: Any) -> int:
        return self.action


class BuyAndHoldAgent:
    """portfolio: buy the first symbols offered until the position limit, then hold them."""

    kind = "baseline"
    name = "buy_and_hold"

    def reset(self, env: Any) -> None:
        pass

    def act(self, observation: np.ndarray, mask: np.ndarray, env: Any) -> int:
        inner = env.unwrapped
        if inner.core.sim.qty[0, inner._focus] != 0:
            return 0
        buy = 1  # every scheme's first buy action
        return buy if mask[buy] else 0


class SignOracle:
    """The sign oracle of a market with a planted signal, in a single-agent env: privileged,
    it reads the hidden ``signal`` (S, T) of the symbol in focus at the decision bar, the
    yardstick of the learn checks. Per symbol (portfolio, sessions) it buys where the signal
    says up and sells where it says down, through the env's scheme (`directional_actions`);
    regimes: all in the asset with the strongest upward signal, cash when none is up."""

    kind = "oracle"

    def __init__(self, signal: np.ndarray, name: str = "oracle") -> None:
        self.signal = np.nan_to_num(np.asarray(signal, dtype=float))
        self.name = name

    def reset(self, env: Any) -> None:
        pass

    def act(self, observation: np.ndarray, mask: np.ndarray, env: Any) -> int:
        from multiagent.evaluation.policies import directional_actions

        inner = env.unwrapped
        sim = _simulator(inner)
        t = int(sim.t[0])
        if hasattr(inner, "scheme") and hasattr(inner.scheme, "table"):
            strength = self.signal[sim.symbol[0], t]
            if strength.max() <= 0:
                return int(np.flatnonzero(inner.scheme.table.sum(axis=1) == 0)[0])
            target = np.zeros_like(strength)
            target[int(strength.argmax())] = 1.0
            return int(np.argmin(np.abs(inner.scheme.table - target).sum(axis=1)))
        focus = getattr(inner, "_focus", 0)
        direction = np.sign(self.signal[sim.symbol[0, focus], t])
        names = inner.scheme.names
        return int(directional_actions(np.array([direction]), mask[None].astype(bool), names)[0])


def momentum_signal(close: np.ndarray) -> np.ndarray:
    """(S, T) each symbol's last log return at each bar (0 where unknown): the planted signal
    of a momentum market (``signal: momentum``, `SessionConfig.momentum`), from prices alone."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_close = np.log(close)
    out = np.zeros_like(log_close)
    out[:, 1:] = log_close[:, 1:] - log_close[:, :-1]
    return np.nan_to_num(out)


@dataclass
class EpisodeRecord:
    """One episode of one policy."""

    view: str
    equity: np.ndarray
    """(T + 1,) from the initial capital, one value per completed bar."""
    trade_pnl: np.ndarray
    """Net P&L (currency) of each closed round trip."""
    in_position: np.ndarray
    """(T,) bool: any position held after the bar."""
    summary: dict[str, Any] = field(default_factory=dict)
    """The env's telemetry summary (trades, turnover, costs, exposure, action histogram)."""

    @property
    def returns(self) -> np.ndarray:
        return np.asarray(self.equity[1:] / self.equity[:-1] - 1.0)


def _episode_options(
    config: RunConfig, n_views: int, episodes: int | None = None
) -> list[tuple[int, dict[str, Any]]]:
    """(reset seed, options) of each evaluation episode (see the module docstring)."""
    cap = episodes or config.agent.evaluation.episodes
    if config.system == "portfolio":
        return [(config.seed + i, {}) for i in range(cap)]
    return [(config.seed + i, {"view": i}) for i in range(min(n_views, cap))]


def run_episode(env: Any, policy: AgentPolicy, seed: int, options: dict[str, Any]) -> EpisodeRecord:
    """One episode of ``policy`` in ``env``, greedy, booked bar by bar."""
    n_actions = int(env.action_space.n)
    observation, info = env.reset(seed=seed, options=options)
    inner = env.unwrapped
    qty = _positions(inner)
    capital = float(inner.config.execution.initial_cash)
    equity = [capital]
    open_pnl = np.zeros_like(qty, dtype=float)
    closed: list[float] = []
    holding: list[bool] = []
    policy.reset(env)
    done = False
    summary: dict[str, Any] = {}
    while not done:
        vector, mask = masked(observation, n_actions)
        observation, _, terminated, truncated, info = env.step(policy.act(vector, mask, env))
        done = terminated or truncated
        if "equity" not in info:
            continue  # a rotation decision: the bar completes with the last symbol's
        fills = inner.last_fills
        after = _positions(inner)
        net = (fills.pnl - fills.costs.total)[0]
        live = (qty != 0) | (after != 0)
        open_pnl += np.where(live, net, 0.0)
        shut = (qty != 0) & ((after == 0) | (np.sign(qty) != np.sign(after)))
        closed += open_pnl[shut].tolist()
        open_pnl[shut] = 0.0
        qty = after
        equity.append(float(info["equity"]))
        holding.append(bool((after != 0).any()))
        summary = info.get("episode", summary)
    closed += open_pnl[qty != 0].tolist()  # what is still open closes at the last mark
    view = _view_name(inner, info)
    return EpisodeRecord(view, np.asarray(equity), np.asarray(closed), np.asarray(holding), summary)


def _simulator(inner: Any) -> Any:
    return inner.core.sim if hasattr(inner, "core") else inner.sim


def _positions(inner: Any) -> np.ndarray:
    return np.asarray(_simulator(inner).qty[0], dtype=float).copy()


def _view_name(inner: Any, info: dict[str, Any]) -> str:
    """The episode's symbols (its session, or its pool in slot order) and its bars."""
    sim = _simulator(inner)
    names = [sim.market.symbols[int(row)] for row in sim.symbol[0]]
    return f"{'+'.join(names)}@{int(sim.start[0])}-{int(sim.stop[0])}"


def distinct_windows(views: Sequence[EpisodeView]) -> list[EpisodeView]:
    """One view per window: a regimes episode trades every asset, so the per-symbol views of
    one window are the same episode (each would count it again)."""
    seen: dict[tuple[int, int], EpisodeView] = {}
    for view in views:
        seen.setdefault((view.window.start, view.window.stop), view)
    return list(seen.values())


def run_policies(
    config: RunConfig,
    market: EnvMarket,
    views: Sequence[EpisodeView],
    policies: Sequence[AgentPolicy],
    *,
    episodes: int | None = None,
) -> dict[str, list[EpisodeRecord]]:
    """Every policy on the same evaluation episodes of ``views`` (one env, reset per episode);
    ``episodes`` overrides ``agent.evaluation.episodes``."""
    if not views:
        raise ValueError("no episode views to evaluate on")
    if config.system == "regimes":
        views = distinct_windows(views)
    env = agent_env(config, market, views)
    options = _episode_options(config, len(views), episodes)
    return {
        policy.name: [run_episode(env, policy, seed, dict(o)) for seed, o in options]
        for policy in policies
    }


def episode_metrics(records: Sequence[EpisodeRecord], periods: float) -> dict[str, Any]:
    """A system's figures over its evaluation episodes: the per-bar returns of every episode
    in sequence (Sharpe, Sortino, drawdown, ...), closed trades (win rate, profit factor), and
    the per-episode means the seed systems reported (in-position %, trades per episode,
    turnover, costs)."""
    returns = np.concatenate([r.returns for r in records]) if records else np.zeros(0)
    out: dict[str, Any] = return_metrics(returns, periods)
    capital = float(records[0].equity[0]) if records else 1.0
    trades = np.concatenate([r.trade_pnl for r in records]) if records else np.zeros(0)
    out.update(trade_stats(trades, capital))
    out["closed_trades"] = int(trades.size)
    out["episodes"] = len(records)
    bars = sum(len(r.in_position) for r in records)
    out["in_position"] = float(sum(r.in_position.sum() for r in records) / max(bars, 1))
    out["exposure"] = out["in_position"]
    out["mean_episode_return"] = float(np.mean([r.equity[-1] / r.equity[0] - 1 for r in records]))
    summaries = [r.summary for r in records if r.summary]
    for key, name in (("trades", "trades_per_episode"), ("turnover", "turnover")):
        values = [float(s[key]) for s in summaries]
        out[name] = float(np.mean(values)) if values else 0.0
    costs = sum(float(s.get("costs", 0.0)) for s in summaries)
    gross = float(sum(r.equity[-1] - r.equity[0] for r in records)) + costs
    out["cost_ratio"] = costs / abs(gross) if abs(gross) > 1e-9 else None
    out["gross_exposure"] = (
        float(np.mean([s["mean_exposure"] for s in summaries])) if summaries else 0.0
    )
    return out


def per_market(records: Sequence[EpisodeRecord], periods: float) -> dict[str, dict[str, Any]]:
    """sessions: each held-out market's own figures (one episode each)."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        figures = return_metrics(record.returns, periods)
        out[record.view] = {
            "bars": len(record.returns),
            "total_return": figures["total_return"],
            "sharpe": figures["sharpe"],
            "max_drawdown": figures["max_drawdown"],
            "trades": int(record.summary.get("trades", 0)),
            "in_position": float(record.in_position.mean()) if len(record.in_position) else 0.0,
        }
    return out


def observation_shape(env: gym.Env[Any, Any]) -> int:
    space = env.observation_space
    inner = space["observations"] if isinstance(space, gym.spaces.Dict) else space
    assert inner.shape is not None
    return int(inner.shape[0])
