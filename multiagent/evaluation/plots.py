"""PNG plots of an evaluation: equity vs baselines, drawdown, action mix, per-symbol weights.

Read as a quant reads them (issue 23): a legend never covers data (it sits beside the axes),
a flat line is never hidden under a reference line, and weights that churn from bar to bar are
a heatmap (symbol x time), not a stack of lines that turns into a sawtooth. Each figure is
built by a ``*_figure`` function of plain arrays (tested for structure) and saved by its
``plot_*`` function.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from multiagent.evaluation.backtest import PolicyRun
from multiagent.evaluation.evaluate import Evaluation
from multiagent.evaluation.metrics import drawdown_curve
from multiagent.evaluation.scoring import symbol_weights

# Saved without a timestamp or software tag, so the same evaluation writes the same files.
PNG_METADATA = {"Software": None}
REFERENCE_ZORDER = 1
"""Reference lines (equity 1.0, weight 0) lie under every curve."""
MAX_WEIGHT_ROWS = 30
"""Symbols shown one per row in ``weights.png``; the rest share an ``other`` row."""


def _curve(run: PolicyRun, books: list[int] | None = None) -> np.ndarray:
    equity = (run.equity if books is None else run.equity[books]).sum(axis=0)
    return np.asarray(equity[1:] / equity[0])


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110, metadata=PNG_METADATA)
    plt.close(figure)
    return path


def legend_beside(axis: Axes, **options: Any) -> None:
    """The legend to the right of the axes, outside them: inside, it covers a stack that
    fills the axes (action mix, risk modes) or the curves it names."""
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, **options)


def line_style(name: str, agents: set[str]) -> dict[str, Any]:
    """Agents bold on top, baselines dashed; cash (flat at 1.0) dotted black above the 1.0
    reference line, which would otherwise hide it."""
    if name in agents:
        return {"linestyle": "-", "linewidth": 2.2, "zorder": REFERENCE_ZORDER + 3}
    if name == "cash":
        return {
            "linestyle": ":",
            "linewidth": 1.8,
            "color": "black",
            "zorder": REFERENCE_ZORDER + 2,
        }
    return {"linestyle": "--", "linewidth": 1.1, "zorder": REFERENCE_ZORDER + 1}


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


def equity_figure(
    dates: pd.DatetimeIndex,
    curves: Sequence[tuple[str, np.ndarray]],
    agents: set[str],
    part: str,
) -> Figure:
    figure, axis = plt.subplots(figsize=(11, 5))
    for name, curve in curves:
        axis.plot(dates, curve, label=name, **line_style(name, agents))
    axis.axhline(1.0, color="grey", linewidth=0.6, zorder=REFERENCE_ZORDER)
    axis.set_title(f"Equity ({part} split, after costs), start = 1")
    axis.set_ylabel("equity / initial")
    legend_beside(axis, fontsize=8)
    axis.grid(alpha=0.3)
    return figure


def plot_equity(evaluation: Evaluation, path: Path) -> Path:
    dates = pd.DatetimeIndex(evaluation.timestamps)
    agents = set(evaluation.report["agents"])
    part = evaluation.report["window"]["part"]
    return _save(equity_figure(dates, _shown(evaluation), agents, part), path)


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
    legend_beside(axis, fontsize=8)
    axis.grid(alpha=0.3)
    return _save(figure, path)


def actions_figure(shares: pd.DataFrame, agent: str, smooth: int) -> Figure:
    """``shares``: (T, A) share of each action per bar, indexed by date, already smoothed."""
    figure, axis = plt.subplots(figsize=(11, 4))
    names = [str(c) for c in shares.columns]
    axis.stackplot(shares.index, shares.to_numpy().T, labels=names, alpha=0.85)
    axis.set_ylim(0, 1)
    axis.margins(x=0)
    axis.set_title(f"{agent}: executed action mix over all slots ({smooth}-bar mean)")
    axis.set_ylabel("share of slot decisions")
    legend_beside(axis, fontsize=8, title="action")
    return figure


def plot_actions(evaluation: Evaluation, agent: str, path: Path, smooth: int = 20) -> Path | None:
    run = evaluation.runs[agent]
    if run.action_counts is None:
        return None
    dates = pd.DatetimeIndex(evaluation.timestamps)
    counts = pd.DataFrame(run.action_counts, index=dates, columns=list(run.action_names))
    shares = counts.div(counts.sum(axis=1), axis=0).rolling(smooth, min_periods=1).mean()
    return _save(actions_figure(shares, agent, smooth), path)


def weight_rows(
    labels: Sequence[str], weights: np.ndarray, shown: int = MAX_WEIGHT_ROWS
) -> tuple[list[str], np.ndarray]:
    """Rows of the heatmap: symbols by mean absolute weight, the most held on top; past
    ``shown`` rows the rest are summed into one ``other (N)`` row (hundreds of one-pixel rows
    read as noise)."""
    order = np.argsort(-np.abs(weights).mean(axis=1), kind="stable")
    names = [labels[i] for i in order]
    ordered = weights[order]
    if len(names) <= shown:
        return names, ordered
    rest = len(names) - (shown - 1)
    kept = ordered[: shown - 1]
    return [*names[: shown - 1], f"other ({rest})"], np.vstack([kept, ordered[shown - 1 :].sum(0)])


def weights_figure(
    dates: pd.DatetimeIndex, labels: Sequence[str], weights: np.ndarray, agent: str
) -> Figure:
    """A heatmap, symbol x bar, of the weight held (fraction of equity): a policy that
    re-allocates every bar churns, and a stack of lines over that churn is a sawtooth nobody
    can read (issue 23); colour keeps each symbol on its own row. White is flat; with shorts
    the scale is diverging (blue long, red short), symmetric about 0."""
    names, rows = weight_rows(labels, weights)
    figure, axis = plt.subplots(figsize=(11, max(3.0, 1.2 + 0.28 * len(names))))
    shorts = bool((rows < 0).any())
    top = float(np.abs(rows).max()) if rows.size else 0.0
    top = top if top > 0 else 1.0
    start, end = mdates.date2num(dates[0]), mdates.date2num(dates[-1])
    image = axis.imshow(
        rows,
        aspect="auto",
        interpolation="nearest",
        cmap="RdBu" if shorts else "Blues",
        vmin=-top if shorts else 0.0,
        vmax=top,
        extent=(start, end, len(names) - 0.5, -0.5),
    )
    axis.xaxis_date()
    axis.set_yticks(range(len(names)), names, fontsize=7 if len(names) > 15 else 8)
    side = "long > 0, short < 0" if shorts else "long only"
    axis.set_title(f"{agent}: weight of each symbol in the combined books ({side})")
    bar = figure.colorbar(image, ax=axis, pad=0.01)
    bar.set_label("fraction of equity")
    return figure


def plot_weights(evaluation: Evaluation, agent: str, path: Path) -> Path:
    run = evaluation.runs[agent]
    rows, weights = symbol_weights(run)
    dates = pd.DatetimeIndex(evaluation.timestamps)
    labels = [evaluation.symbols[r] for r in rows]
    return _save(weights_figure(dates, labels, weights, agent), path)


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
    legend_beside(top, fontsize=8)
    modes = pd.DataFrame(
        {name: (run.risk_modes == i).mean(axis=0) for i, name in enumerate(RISK_MODES)},
        index=dates,
    )
    bottom.stackplot(dates, modes.to_numpy().T, labels=list(RISK_MODES), alpha=0.85)
    bottom.set_ylim(0, 1)
    bottom.set_xlim(dates[0], dates[-1])  # shared: no blank margin beside the stack
    bottom.set_ylabel("share of books")
    legend_beside(bottom, fontsize=8)
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
