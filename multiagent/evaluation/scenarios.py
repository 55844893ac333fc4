"""Stress scenarios: cost shocks, the most volatile windows of the data, a synthetic crash.

Cost shocks change only the cost model; volatile-window replays pick the windows to rerun;
a crash changes the prices themselves, so its features are recomputed from the crashed panel
(every feature stays causal: bars before the crash are unchanged, which the tests check).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from multiagent.config.evaluation import CrashSettings, StressSettings
from multiagent.data.panel import MarketPanel
from multiagent.data.splits import Window
from multiagent.envs.config import CommonEnvConfig
from multiagent.envs.market import EnvMarket

PRICE_FIELDS = ("open", "high", "low", "close", "spread", "vwap")


def cost_scenarios(
    config: CommonEnvConfig, settings: StressSettings
) -> list[tuple[str, str, CommonEnvConfig]]:
    """(name, description, env config) of every cost shock, in a fixed order."""
    shocks = [
        ("cost_multiplier", m, f"costs_x{m:g}", f"every cost part x{m:g} ({m - 1:+.0%})")
        for m in settings.cost_multipliers
    ]
    if settings.spread_multiplier is not None:
        m = settings.spread_multiplier
        shocks.append(("spread_multiplier", m, f"spread_x{m:g}", f"quoted spread widened x{m:g}"))
    if settings.slippage_multiplier is not None:
        m = settings.slippage_multiplier
        shocks.append(("slippage_multiplier", m, f"slippage_x{m:g}", f"slippage shock x{m:g}"))
    costs = config.costs
    return [
        (
            name,
            description,
            config.model_copy(
                update={"costs": costs.model_copy(update={key: getattr(costs, key) * m})}
            ),
        )
        for key, m, name, description in shocks
    ]


def volatility_by_bar(market: EnvMarket, rows: np.ndarray) -> np.ndarray:
    """(T,) mean absolute log return across the symbols ``rows`` at each bar (0 where none)."""
    close = market.close[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        moves = np.abs(np.diff(np.log(close), axis=1))
    out = np.zeros(market.n_bars)
    finite = np.isfinite(moves)
    counts = finite.sum(axis=0)
    sums = np.where(finite, moves, 0.0).sum(axis=0)
    out[1:] = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    return out


def most_volatile_windows(
    market: EnvMarket, rows: np.ndarray, within: Window, count: int, bars: int
) -> list[Window]:
    """The ``count`` non-overlapping windows of ``bars`` bars inside ``within`` with the highest
    mean absolute return across ``rows``, in time order (fewer when ``within`` is short)."""
    if count <= 0 or len(within) < bars:
        return []
    vol = volatility_by_bar(market, rows)[within.slice()]
    # the first bar of a window is only observed (its return is earned before the window)
    sums = np.convolve(vol[1:], np.ones(bars - 1), mode="valid")
    order = np.argsort(-sums, kind="stable")
    taken: list[int] = []
    for start in order:
        if all(abs(int(start) - other) >= bars for other in taken):
            taken.append(int(start))
        if len(taken) == count:
            break
    return [Window(within.start + s, within.start + s + bars) for s in sorted(taken)]


def crash_factors(n_bars: int, window: Window, settings: CrashSettings) -> np.ndarray:
    """(T,) price multipliers: 1 before the crash, falling geometrically to ``1 - drop`` over
    ``bars`` bars, then staying there."""
    start = window.start + max(1, int(len(window) * settings.at))
    steps = np.arange(n_bars) - start + 1
    progress = np.clip(steps / settings.bars, 0.0, 1.0)
    return np.exp(np.log1p(-settings.drop) * progress)


def crashed_panel(panel: MarketPanel, window: Window, settings: CrashSettings) -> MarketPanel:
    """The panel with every price field multiplied by `crash_factors` (volume unchanged)."""
    factors = crash_factors(panel.n_bars, window, settings)
    fields = {
        name: values * factors if name in PRICE_FIELDS else values
        for name, values in panel.fields.items()
    }
    note = (
        f"synthetic crash: -{settings.drop:.0%} over {settings.bars} bars from bar "
        f"{int(np.argmax(factors < 1))}"
    )
    return replace(panel, fields=fields, notes=(*panel.notes, note))
