"""What a sweep's choice is worth: the overfitting statistics of the search behind it.

Every trial keeps the per-bar returns of the validation backtest behind its reported objective
(``SWEEP/trials/TRIAL/validation_returns.npy``: each fold's latest evaluation, folds
concatenated in order, with ``validation_returns.json`` beside it: fold lengths, bars per
year, objective). At the end of the sweep `selection_statistics` reads them back:

- **PBO** (`evaluation.overfitting`): CSCV over the T x N matrix of the trials' validation
  returns, S = `PBO_BLOCKS` blocks. Columns are the scored trials with returns, rows the bars
  of the folds every one of them reached (`returns_matrix`: a trial stopped early by ASHA after
  its first fold still counts, over that fold's bars; the folds are the same windows for every
  trial). Skipped, with the reason, when fewer than 2 trials or fewer than
  ``PBO_BLOCKS x MIN_BLOCK_BARS`` bars remain.
- **The search, for the DSR**: N = the scored trials (every config the search compared,
  stopped early or not), V = the variance of their annualized validation Sharpe ratios (each
  from its kept returns, as `metrics.sharpe` computes ``val_sharpe``). The chosen config
  carries them (`config.SelectionRecord`), so every later report on a run trained from it
  deflates its Sharpe ratio for this search.
- **DSR of the choice** (`evaluation.sharpe_stats`): the chosen trial's validation Sharpe
  against the Sharpe the best of N unskilled trials would show.

`write_pbo` writes ``pbo.json`` and ``pbo.png`` (the logits' histogram and the in-sample vs
out-of-sample Sharpe of the pick); `tuning.summary` writes ``summary.json`` / ``summary.md``.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from multiagent.config import SelectionRecord
from multiagent.evaluation.metrics import sharpe
from multiagent.evaluation.overfitting import (
    DEFAULT_BLOCKS,
    PBOResult,
    probability_of_backtest_overfitting,
)
from multiagent.evaluation.sharpe_stats import (
    annualized,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    sharpe_moments,
    trial_sharpe_variance,
)
from multiagent.runs.folders import read_json, write_json

RETURNS_FILE = "validation_returns.npy"
RETURNS_META = "validation_returns.json"
PBO_BLOCKS = DEFAULT_BLOCKS
MIN_BLOCK_BARS = 2
"""Bars per CSCV block at least (16 blocks: 32 validation bars)."""


# the trial's side -----------------------------------------------------------------------
def save_trial_returns(trial_dir: Path, folds: list[np.ndarray], meta: dict[str, Any]) -> None:
    """The per-bar validation returns behind a trial's objective (folds concatenated in order)
    and their description; both written atomically (the last write wins)."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    returns = np.concatenate([np.asarray(f, dtype=float) for f in folds]) if folds else np.empty(0)
    fd, tmp = tempfile.mkstemp(dir=trial_dir, suffix=".npy.tmp")
    with os.fdopen(fd, "wb") as handle:
        np.save(handle, returns)
    os.replace(tmp, trial_dir / RETURNS_FILE)
    write_json(
        trial_dir / RETURNS_META,
        {**meta, "folds": [len(f) for f in folds], "bars": len(returns)},
    )


@dataclass
class TrialReturns:
    trial_id: str
    returns: np.ndarray
    periods: float
    folds: list[int]


def load_trial_returns(trial_dir: Path, trial_id: str) -> TrialReturns | None:
    """What `save_trial_returns` wrote (None when the trial has no returns)."""
    path, meta_path = trial_dir / RETURNS_FILE, trial_dir / RETURNS_META
    if not (path.is_file() and meta_path.is_file()):
        return None
    meta = read_json(meta_path)
    returns = np.load(path, allow_pickle=False).astype(float)
    return TrialReturns(trial_id, returns, float(meta["periods"]), [int(n) for n in meta["folds"]])


# the sweep's side -----------------------------------------------------------------------
@dataclass
class SelectionStatistics:
    """The search's statistics (see the module docstring)."""

    trials: int
    """N: the scored trials."""
    sharpe_variance: float
    """Variance of the trials' annualized validation Sharpe ratios (0 for fewer than 2)."""
    trial_sharpes: dict[str, float]
    """Trial id -> annualized Sharpe of its validation returns."""
    periods: float | None
    pbo: PBOResult | None
    pbo_trials: list[str]
    """The matrix's columns, in order."""
    pbo_skipped: str | None
    excluded: dict[str, str]
    """Trial id -> why its returns are not in the PBO matrix."""
    dsr: float | None
    dsr_inputs: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def record(self) -> SelectionRecord:
        """What the chosen config carries."""
        return SelectionRecord(
            trials=max(self.trials, 1), sharpe_variance=self.sharpe_variance, source=self.source
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "sharpe_variance": self.sharpe_variance,
            "trial_sharpes": self.trial_sharpes,
            "periods": self.periods,
            "pbo": self.pbo.pbo if self.pbo is not None else None,
            "pbo_trials": self.pbo_trials,
            "pbo_skipped": self.pbo_skipped,
            "excluded": self.excluded,
            "dsr": self.dsr,
            "dsr_inputs": self.dsr_inputs,
            "source": self.source,
        }


def _scored(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        t
        for t in trials
        if t.get("status") == "done"
        and t.get("objective") is not None
        and math.isfinite(float(t["objective"]))
    ]


def selection_statistics(
    trials: list[dict[str, Any]],
    best: dict[str, Any] | None,
    directory: Path,
    source: str,
    blocks: int = PBO_BLOCKS,
) -> SelectionStatistics:
    """PBO over the trials' validation returns, V and N of the search, and the DSR of ``best``
    (``trials``: the rows of ``trials.json``; returns read from ``directory/trials/ID/``)."""
    scored = _scored(trials)
    loaded: dict[str, TrialReturns] = {}
    excluded: dict[str, str] = {}
    for trial in scored:
        trial_id = str(trial["trial_id"])
        found = load_trial_returns(directory / "trials" / trial_id, trial_id)
        if found is None or found.returns.size == 0:
            excluded[trial_id] = "no validation returns kept"
        elif not np.isfinite(found.returns).all():
            excluded[trial_id] = "non-finite validation returns"
        else:
            loaded[trial_id] = found
    periods = (
        loaded[str(best["trial_id"])].periods
        if best is not None and str(best["trial_id"]) in loaded
        else next((t.periods for t in loaded.values()), None)
    )
    trial_sharpes = {i: sharpe(t.returns, t.periods) for i, t in loaded.items()}
    values = np.array(list(trial_sharpes.values()), dtype=float)
    variance = float(values.var(ddof=1)) if values.size > 1 else 0.0

    pbo, columns, skipped = _pbo(loaded, excluded, blocks)
    dsr, inputs = _dsr(best, loaded, len(scored), list(trial_sharpes.values()), periods)
    return SelectionStatistics(
        trials=len(scored),
        sharpe_variance=variance,
        trial_sharpes=trial_sharpes,
        periods=periods,
        pbo=pbo,
        pbo_trials=columns,
        pbo_skipped=skipped,
        excluded=excluded,
        dsr=dsr,
        dsr_inputs=inputs,
        source=source,
    )


def returns_matrix(
    loaded: dict[str, TrialReturns], excluded: dict[str, str]
) -> tuple[np.ndarray, list[str]]:
    """(T x N matrix, column trial ids) over the folds every trial reached.

    Every column must cover the same bars. A sweep with early stopping (ASHA) stops most trials
    after their first fold, so the matrix keeps every trial and cuts every trial's returns to
    the folds all of them reached (the first fold, when some stopped there): more trials over
    fewer bars, rather than the one trial that ran every fold. A trial whose fold layout
    disagrees with the others' on those folds (another split) is left out, in ``excluded``."""
    if not loaded:
        return np.empty((0, 0)), []
    depth = min(len(t.folds) for t in loaded.values())
    reference = max(loaded.values(), key=lambda t: (len(t.folds), t.returns.size))
    layout = reference.folds[:depth]
    columns, series = [], []
    for trial_id, trial in loaded.items():
        if trial.folds[:depth] != layout:
            excluded[trial_id] = (
                f"its first {depth} fold(s) hold {trial.folds[:depth]} bars, not {layout}"
            )
            continue
        columns.append(trial_id)
        series.append(trial.returns[: sum(layout)])
    if not columns:
        return np.empty((0, 0)), []
    return np.column_stack(series), columns


def _pbo(
    loaded: dict[str, TrialReturns], excluded: dict[str, str], blocks: int
) -> tuple[PBOResult | None, list[str], str | None]:
    matrix, columns = returns_matrix(loaded, excluded)
    if len(columns) < 2:
        return (
            None,
            columns,
            (
                f"{len(columns)} trial(s) with validation returns over the same bars: the PBO "
                "compares at least 2"
            ),
        )
    if matrix.shape[0] < blocks * MIN_BLOCK_BARS:
        return (
            None,
            columns,
            (
                f"{matrix.shape[0]} validation bars: too few for {blocks} blocks of at least "
                f"{MIN_BLOCK_BARS} bars"
            ),
        )
    periods = loaded[columns[0]].periods
    return probability_of_backtest_overfitting(matrix, blocks, periods=periods), columns, None


def _dsr(
    best: dict[str, Any] | None,
    loaded: dict[str, TrialReturns],
    trials: int,
    annual_sharpes: list[float],
    periods: float | None,
) -> tuple[float | None, dict[str, Any]]:
    if best is None or str(best["trial_id"]) not in loaded or periods is None:
        return None, {"skipped": "the chosen trial kept no validation returns"}
    returns = loaded[str(best["trial_id"])].returns
    bar_sharpe, skew, kurtosis, bars = sharpe_moments(returns)
    variance = trial_sharpe_variance(annual_sharpes, periods)  # per bar
    n = max(trials, 1)
    value = deflated_sharpe_ratio(bar_sharpe, bars, n, variance, skew, kurtosis)
    inputs = {
        "sharpe": annualized(bar_sharpe, periods) if math.isfinite(bar_sharpe) else None,
        "bars": bars,
        "skew": skew if math.isfinite(skew) else None,
        "kurtosis": kurtosis if math.isfinite(kurtosis) else None,
        "trials": n,
        "expected_max_sharpe": annualized(expected_max_sharpe(n, variance), periods),
        "periods": periods,
    }
    return (value if math.isfinite(value) else None), inputs


# outputs ----------------------------------------------------------------------------------
def write_pbo(stats: SelectionStatistics, directory: Path) -> list[Path]:
    """``pbo.json`` (always: the figures, or why they were skipped) and ``pbo.png``."""
    payload: dict[str, Any] = {
        "pbo": stats.pbo.pbo if stats.pbo is not None else None,
        "skipped": stats.pbo_skipped,
        "columns": stats.pbo_trials,
        "excluded": stats.excluded,
    }
    if stats.pbo is not None:
        payload.update(stats.pbo.to_json())
    write_json(directory / "pbo.json", payload)
    written = [directory / "pbo.json"]
    if stats.pbo is not None:
        written.append(plot_pbo(stats.pbo, directory / "pbo.png"))
    return written


def plot_pbo(result: PBOResult, path: Path) -> Path:
    """The logits' histogram (the mass at or left of 0 is the PBO) and the pick's in-sample vs
    out-of-sample Sharpe with the degradation fit."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(figure)
    left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    logits = result.logits
    distinct = np.unique(logits)
    if distinct.size <= 25:  # few trials: λ takes few values, one bar each
        counts = np.array([(logits == v).sum() for v in distinct]) / logits.size
        width = 0.8 * (np.diff(distinct).min() if distinct.size > 1 else 1.0)
        colors = ["C3" if v <= 0 else "C0" for v in distinct]
        left.bar(distinct, counts, width=width, color=colors)
    else:
        edges = np.histogram_bin_edges(logits, bins=40)
        if not (edges == 0).any():
            edges = np.sort(np.append(edges, 0.0))  # a bin edge at 0: bins are all one side
        counts, edges = np.histogram(logits, bins=edges)
        colors = ["C3" if hi <= 0 else "C0" for hi in edges[1:]]
        left.bar(edges[:-1], counts / logits.size, width=np.diff(edges), align="edge", color=colors)
    left.axvline(0.0, color="black", linewidth=1)
    left.set_xlabel("logit λ of the in-sample best's out-of-sample rank")
    left.set_ylabel("share of combinations")
    left.set_title(
        f"PBO = {result.pbo:.3f} (red: λ ≤ 0)\n{result.n_trials} trials, "
        f"{result.n_combinations:,} combinations of {result.n_blocks} blocks x "
        f"{result.block_bars} bars",
        fontsize=10,
    )
    left.grid(alpha=0.3)
    x, y = result.in_sample_sharpe, result.out_of_sample_sharpe
    right.scatter(x, y, s=6, alpha=0.3, color="C0")
    if math.isfinite(result.degradation_slope):
        line = np.linspace(x.min(), x.max(), 2)
        right.plot(
            line,
            result.degradation_slope * line + result.degradation_intercept,
            color="C3",
            label=f"slope {result.degradation_slope:.2f}",
        )
        right.legend(fontsize=8)
    right.axhline(0.0, color="grey", linewidth=0.6)
    unit = "annualized" if result.periods != 1.0 else "per bar"
    right.set_xlabel(f"in-sample Sharpe of the pick ({unit})")
    right.set_ylabel("its out-of-sample Sharpe")
    right.set_title(
        f"performance degradation; P(out-of-sample Sharpe < 0) = {result.probability_of_loss:.3f}",
        fontsize=10,
    )
    right.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    return path
