"""PNG plots of an evaluation: equity vs baselines, drawdown, action mix, per-symbol weights."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from multiagent.evaluation.backtest import PolicyRun
from multiagent.evaluation.evaluate import Evaluation
from multiagent.evaluation.metrics import drawdown_curve
from multiagent.evaluation.scoring import symbol_weights

# Saved without a timestamp or software tag, so the same evaluation writes the same files.
PNG_METADATA = {"Software": None}


def _curve(run: PolicyRun, books: list[int] | None = None) -> np.ndarray:
    equity = (run.equity if books is None else run.equity[books]).sum(axis=0)
    return np.asarray(equity[1:] / equity[0])


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110, metadata=PNG_METADATA)
    plt.close(figure)
    return path


def _shown(evaluation: Evaluation) -> list[tuple[str, np.ndarray]]:
    """Agents, every baseline but the per-symbol ones, and the best single buy-and-hold."""
    report, runs = evaluation.report, evaluation.runs
    lines = [(name, _curve(run)) for name, run in runs.items()]
    singles = [r["policy"] for r in report["ranking"] if r["policy"].startswith("ALL_")]
    hold = runs.get("buy_and_hold")
    if singles and hold is not None:
        best = singles[0]
        book = [evaluation.symbols[row] for row in hold.symbols[:, 0]].index(best[4:])
        lines.append((f"{best} (best single)", _curve(hold, [book])))
    return lines


def plot_equity(evaluation: Evaluation, path: Path) -> Path:
    dates = pd.DatetimeIndex(evaluation.timestamps)
    agents = set(evaluation.report["agents"])
    figure, axis = plt.subplots(figsize=(10, 5))
    for name, curve in _shown(evaluation):
        width, style = (2.2, "-") if name in agents else (1.1, "--")
        axis.plot(dates, curve, style, linewidth=width, label=name)
    axis.axhline(1.0, color="grey", linewidth=0.6)
    window = evaluation.report["window"]
    axis.set_title(f"Equity ({window['part']} split, after costs), start = 1")
    axis.set_ylabel("equity / initial")
    axis.legend(fontsize=8, ncol=2)
    axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_drawdown(evaluation: Evaluation, path: Path) -> Path:
    dates = pd.DatetimeIndex(evaluation.timestamps)
    agents = set(evaluation.report["agents"])
    figure, axis = plt.subplots(figsize=(10, 4))
    for name, run in evaluation.runs.items():
        if name in agents or name in ("equal_weight", "buy_and_hold"):
            drawdown = drawdown_curve(run.returns())
            axis.plot(dates, -drawdown, linewidth=2.0 if name in agents else 1.0, label=name)
    axis.set_title("Drawdown from peak equity")
    axis.set_ylabel("fraction below peak")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_actions(evaluation: Evaluation, agent: str, path: Path, smooth: int = 20) -> Path | None:
    run = evaluation.runs[agent]
    if run.action_counts is None:
        return None
    dates = pd.DatetimeIndex(evaluation.timestamps)
    counts = pd.DataFrame(run.action_counts, index=dates, columns=list(run.action_names))
    shares = counts.div(counts.sum(axis=1), axis=0).rolling(smooth, min_periods=1).mean()
    figure, axis = plt.subplots(figsize=(10, 4))
    axis.stackplot(dates, shares.to_numpy().T, labels=list(run.action_names), alpha=0.85)
    axis.set_ylim(0, 1)
    axis.set_title(f"{agent}: executed action mix over all slots ({smooth}-bar mean)")
    axis.set_ylabel("share of slot decisions")
    axis.legend(fontsize=8, loc="upper left", ncol=len(run.action_names))
    return _save(figure, path)


def plot_weights(evaluation: Evaluation, agent: str, path: Path) -> Path:
    run = evaluation.runs[agent]
    rows, weights = symbol_weights(run)
    dates = pd.DatetimeIndex(evaluation.timestamps)
    figure, axis = plt.subplots(figsize=(10, 5))
    labels = [evaluation.symbols[r] for r in rows]
    colors = [plt.get_cmap("tab20")(i % 20) for i in range(len(rows))]
    axis.stackplot(dates, np.clip(weights, 0, None), labels=labels, colors=colors, alpha=0.9)
    if (weights < 0).any():  # shorts stack below 0 in the same colours
        axis.stackplot(dates, np.clip(weights, None, 0), colors=colors, alpha=0.9)
        axis.axhline(0.0, color="black", linewidth=0.6)
    axis.set_title(f"{agent}: weight of each symbol in the combined books (long above 0)")
    axis.set_ylabel("fraction of equity")
    axis.legend(fontsize=7, ncol=5, loc="upper left")
    return _save(figure, path)


def plot_budgets(evaluation: Evaluation, agent: str, path: Path) -> Path | None:
    """What a master did: the gross budget it handed out and its risk mode, over time."""
    run = evaluation.runs[agent]
    if run.master is None or run.budgets is None or run.risk_modes is None:
        return None
    dates = pd.DatetimeIndex(evaluation.timestamps)
    gross = run.budgets.sum(axis=1)  # (K, T): each book's budgets, x equity
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    top.plot(dates, gross.mean(axis=0), linewidth=1.6, label="mean over books")
    top.fill_between(dates, gross.min(axis=0), gross.max(axis=0), alpha=0.25, label="range")
    top.axhline(1.0, color="black", linewidth=0.6, linestyle="--")
    top.set_ylabel("gross budget (x equity)")
    top.set_title(f"{agent}: the master's budgets and risk mode (1 = equal shares of the book)")
    top.legend(fontsize=8, loc="upper left")
    modes = pd.DataFrame(
        {name: (run.risk_modes == i).mean(axis=0) for i, name in enumerate(RISK_MODES)},
        index=dates,
    )
    bottom.stackplot(dates, modes.to_numpy().T, labels=list(RISK_MODES), alpha=0.85)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("share of books")
    bottom.legend(fontsize=8, loc="upper left", ncol=3)
    return _save(figure, path)


RISK_MODES = ("defensive", "neutral", "aggressive")


def write_plots(evaluation: Evaluation, out_dir: Path) -> list[Path]:
    paths = [
        plot_equity(evaluation, out_dir / "equity.png"),
        plot_drawdown(evaluation, out_dir / "drawdown.png"),
    ]
    for agent in evaluation.report["agents"]:
        prefix = "" if len(evaluation.report["agents"]) == 1 else f"{agent}_"
        actions = plot_actions(evaluation, agent, out_dir / f"{prefix}actions.png")
        if actions is not None:
            paths.append(actions)
        paths.append(plot_weights(evaluation, agent, out_dir / f"{prefix}weights.png"))
        budgets = plot_budgets(evaluation, agent, out_dir / f"{prefix}budgets.png")
        if budgets is not None:
            paths.append(budgets)
    return paths
