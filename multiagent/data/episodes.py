"""Episode views: one symbol (or symbol set) over one time window, scored for difficulty.

Environments draw episodes from views; curricula order views from easy to hard by their
difficulty metrics, computed only from bars inside the view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multiagent.data.panel import MarketPanel
from multiagent.data.splits import Window


@dataclass(frozen=True)
class EpisodeView:
    symbols: tuple[str, ...]
    window: Window
    volatility: float
    """Std of one-bar log returns inside the view (fraction per bar)."""
    spread: float
    """Mean quoted spread / close inside the view (fraction); NaN when the data has no spread."""
    coverage: float
    """Fraction of the view's bars with a real bar for all its symbols."""

    @property
    def length(self) -> int:
        return len(self.window)


def _score(panel: MarketPanel, rows: list[int], window: Window) -> tuple[float, float, float]:
    close = panel.close[rows, window.start : window.stop]
    observed = ~np.isnan(close)
    coverage = float(observed.all(axis=0).mean()) if close.size else 0.0
    log_close = np.log(close)
    returns = np.diff(log_close, axis=1)
    returns = returns[np.isfinite(returns)]
    volatility = float(returns.std(ddof=1)) if returns.size > 1 else float("nan")
    spread = float("nan")
    if panel.has("spread"):
        relative = panel.fields["spread"][rows, window.start : window.stop] / close
        relative = relative[np.isfinite(relative)]
        spread = float(relative.mean()) if relative.size else float("nan")
    return volatility, spread, coverage


def make_views(
    panel: MarketPanel,
    *,
    length: int | None = None,
    stride: int | None = None,
    window: Window | None = None,
    min_length: int = 50,
    symbols: tuple[str, ...] | None = None,
) -> list[EpisodeView]:
    """Views of each symbol over ``window`` (default: all bars).

    ``length`` cuts each symbol's observed span into consecutive views of that many bars
    (``stride`` apart, default ``length``); without it a view spans the symbol's whole observed
    range (the natural unit for session data). Views shorter than ``min_length`` observed bars
    are dropped.
    """
    window = window or Window(0, panel.n_bars)
    views: list[EpisodeView] = []
    for name in symbols or panel.symbols:
        row = panel.symbol_index(name)
        seen = np.flatnonzero(panel.observed[row, window.start : window.stop]) + window.start
        if len(seen) < min_length:
            continue
        first, last = int(seen[0]), int(seen[-1]) + 1
        spans: list[Window]
        if length is None:
            spans = [Window(first, last)]
        else:
            step = stride or length
            spans = [Window(a, a + length) for a in range(first, last - length + 1, step)]
        for span in spans:
            n_obs = int(panel.observed[row, span.start : span.stop].sum())
            if n_obs < min_length:
                continue
            volatility, spread, coverage = _score(panel, [row], span)
            views.append(EpisodeView((name,), span, volatility, spread, coverage))
    return views


def difficulty(view: EpisodeView, reference: list[EpisodeView]) -> float:
    """Mean percentile of volatility, spread and missing coverage among ``reference`` views.

    0 = easiest (calm, tight, complete), 1 = hardest. NaN metrics (no spread) are left out.
    """
    scores = []
    for metric, sign in (("volatility", 1), ("spread", 1), ("coverage", -1)):
        values = np.array([getattr(v, metric) for v in reference], dtype=float)
        mine = getattr(view, metric)
        values = values[np.isfinite(values)]
        if not np.isfinite(mine) or not len(values):
            continue
        scores.append(float(np.mean(sign * values < sign * mine)))
    return float(np.mean(scores)) if scores else 0.0
