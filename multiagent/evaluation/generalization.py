"""The report's generalization section: how each agent did per book (episode) and per symbol,
with symbols outside the training episodes flagged held out, so a score carried by one symbol or
one book shows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from multiagent.evaluation.backtest import PolicyRun
from multiagent.evaluation.metrics import trade_stats
from multiagent.evaluation.policies import BacktestPolicy
from multiagent.evaluation.scoring import SUMMARY_KEYS, policy_metrics

if TYPE_CHECKING:
    from multiagent.evaluation.evaluate import Evaluator


def generalization_section(
    ev: Evaluator, runs: dict[str, PolicyRun], agents: Sequence[BacktestPolicy]
) -> dict[str, Any]:
    """Per book (episode) and per symbol, for each agent; symbols outside the training
    episodes are flagged held out."""
    trained = ev.trained_symbols
    if trained is None:
        trained = {s for v in ev.prepared.train_views for s in v.symbols}
    hold = runs.get("buy_and_hold")
    hold_return = {}
    if hold is not None:
        for book, row in enumerate(hold.symbols[:, 0]):
            hold_return[int(row)] = float(hold.equity[book, -1] / hold.equity[book, 0] - 1)
    out: dict[str, Any] = {}
    for agent in agents:
        run = runs[agent.name]
        books = [
            {
                "book": k,
                "symbols": [ev.names[r] for r in run.symbols[k]],
                "metrics": {
                    key: value
                    for key, value in policy_metrics(
                        run, ev.periods, [k], episode_bars=ev.episode_bars
                    ).items()
                    if key in (*SUMMARY_KEYS, "annual_return", "closed_trades")
                },
            }
            for k in range(run.symbols.shape[0])
        ]
        symbols = []
        rows = run.symbols.reshape(-1)
        allocated = run.budget * run.capital
        for row in np.unique(rows):
            slots = np.argwhere(run.symbols == row)
            pnl = sum(float(run.net_pnl[k, n].sum()) for k, n in slots)
            trades = run.trades["pnl"][run.trades["symbol"] == row]
            stats = trade_stats(trades, run.capital)
            symbols.append(
                {
                    "symbol": ev.names[row],
                    "held_out": ev.names[row] not in trained,
                    "slots": len(slots),
                    "return_on_budget": pnl / (allocated * len(slots)),
                    "buy_and_hold_return": hold_return.get(int(row)),
                    "closed_trades": int(trades.size),
                    "win_rate": stats["win_rate"],
                    "exposure": float(np.mean([(run.values[k, n] != 0).mean() for k, n in slots])),
                }
            )
        out[agent.name] = {"books": books, "symbols": symbols}
    return out
