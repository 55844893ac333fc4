"""Paired differences between two systems backtested on the same bars, with honest intervals.

Two systems (say hierarchical vs independent) run over the same bars give two aligned per-bar
return series ``a`` and ``b``. `paired_difference` reports ``metric(a) - metric(b)`` for the
Sharpe ratio, total return and max drawdown, with a percentile interval and a bootstrap p-value
of "no difference".

Why a block bootstrap
    Per-bar returns are autocorrelated (positions are held over several bars, so are the gains)
    and heteroskedastic (volatility clusters). An iid bootstrap or a t-interval over bars treats
    every bar as new information and so understates the width of the interval. The stationary
    bootstrap of Politis & Romano (1994) resamples blocks of consecutive bars with geometric
    lengths, keeping the short-range dependence inside each block; its mean block length comes
    from the data (Politis & White 2004, with the correction of Patton, Politis & White 2009),
    estimated on the per-bar difference ``a - b`` because that is the series whose dependence
    drives the variance of the difference.

Why paired
    Both systems see the same market. Resampling the *same* bar indices for both series keeps
    that common noise in every replicate, where it cancels in the difference; resampling them
    separately would add each system's market exposure to the width twice and hide real gaps.

Formulas are those of `multiagent.evaluation.metrics` (not restated here): the figures for
``a`` and ``b`` are the metric functions on the full series, and each replicate applies the same
functions to the resampled pair. The sign is always ``a - b``; for max drawdown (a positive
fraction) a positive difference means ``a`` lost more. Max drawdown depends on the order of the
bars, which the bootstrap keeps only within blocks, so its interval is the roughest of the three.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from arch.bootstrap import StationaryBootstrap, optimal_block_length

from multiagent.evaluation.metrics import clean, max_drawdown, sharpe, total_return

METHOD = "stationary block bootstrap (Politis-Romano), paired bars"

# The Politis-White estimator scans autocorrelations up to lag ceil(sqrt(n)) + 5; below about
# twice that many bars (n < 20) it has nothing to estimate from (arch raises for n < 8), so short
# series get block length 1, the iid bootstrap.
MIN_BARS_FOR_BLOCK_ESTIMATE = 20


def _series(name: str, values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-bar returns, got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"{name} must hold finite per-bar returns; {bad} are NaN or infinite")
    return array


def _validated(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two series as 1-D float arrays, or a ValueError saying what was expected."""
    a, b = _series("a", a), _series("b", b)
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must be aligned returns over the same bars; got {a.size} and {b.size} bars"
        )
    if a.size < 2:
        raise ValueError(f"a paired comparison needs at least 2 bars, got {a.size}")
    return a, b


def _check_settings(periods: float, replications: int, level: float) -> None:
    if not (math.isfinite(periods) and periods > 0):
        raise ValueError(f"periods (bars per year) must be a positive number, got {periods}")
    if replications < 1:
        raise ValueError(f"replications must be at least 1, got {replications}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")


def block_length(difference: np.ndarray) -> float:
    """Mean block length for the stationary bootstrap of ``difference`` (at least 1).

    1 (the iid bootstrap) where the estimate does not exist: a constant series (no dependence
    to keep; arch would turn rounding noise into a spurious length) or fewer than
    `MIN_BARS_FOR_BLOCK_ESTIMATE` bars.
    """
    difference = np.asarray(difference, dtype=float)
    if difference.size < MIN_BARS_FOR_BLOCK_ESTIMATE or np.ptp(difference) == 0.0:
        return 1.0
    with np.errstate(divide="ignore", invalid="ignore"):  # near-constant: NaN, handled below
        estimate = float(optimal_block_length(difference)["stationary"].iloc[0])
    return max(estimate, 1.0) if math.isfinite(estimate) else 1.0


def resample(
    series: tuple[np.ndarray, ...],
    statistics: Callable[..., list[float]],
    block: float,
    *,
    seed: int,
    replications: int,
) -> np.ndarray:
    """(replications x statistics) of ``statistics`` over stationary-bootstrap resamples of
    ``series``, the same bar indices for every series (paired), mean block length ``block``."""
    bootstrap = StationaryBootstrap(
        block,  # type: ignore[arg-type]  # arch uses 1 / block only: a float is exact
        *series,
        seed=np.random.default_rng(seed),
    )
    rows = []
    for resampled, _ in bootstrap.bootstrap(replications):
        # ndarrays in, ndarrays out (arch annotates any array-like); asarray copies nothing.
        rows.append(statistics(*(np.asarray(x, dtype=float) for x in resampled)))
    return np.asarray(rows, dtype=float).reshape(replications, -1)


def _summary(
    value_a: float, value_b: float, replicates: np.ndarray, level: float
) -> dict[str, float]:
    """Point figures, percentile interval and two-sided bootstrap p-value of one metric."""
    low, high = np.quantile(replicates, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    # The smallest level at which the percentile interval would exclude 0.
    p_value = 2.0 * min(float(np.mean(replicates <= 0.0)), float(np.mean(replicates >= 0.0)))
    return {
        "a": value_a,
        "b": value_b,
        "difference": value_a - value_b,
        "low": float(low),
        "high": float(high),
        "p_value": min(p_value, 1.0),
    }


def paired_difference(
    a: np.ndarray,
    b: np.ndarray,
    periods: float,
    *,
    seed: int = 0,
    replications: int = 1000,
    level: float = 0.95,
) -> dict[str, Any]:
    """Sharpe, total-return and max-drawdown differences ``a - b`` with block-bootstrap CIs.

    ``a`` and ``b`` are simple per-bar returns of two systems over the same bars; ``periods``
    is bars per year (the Sharpe annualization). Every replicate resamples the same bar indices
    for both series. The result is JSON-ready and the same for the same ``seed``.
    """
    a, b = _validated(a, b)
    _check_settings(periods, replications, level)
    metrics: dict[str, Callable[[np.ndarray], float]] = {
        "sharpe": partial(sharpe, periods=periods),
        "total_return": total_return,
        "max_drawdown": max_drawdown,
    }
    block = block_length(a - b)
    # arch annotates block_size as int, but the stationary bootstrap only uses 1 / block_size
    # (the geometric blocks' mean length), so the estimate is passed unrounded.
    replicates = resample(
        (a, b),
        lambda a_star, b_star: [metric(a_star) - metric(b_star) for metric in metrics.values()],
        block,
        seed=seed,
        replications=replications,
    )
    summaries = {
        name: _summary(metric(a), metric(b), replicates[:, j], level)
        for j, (name, metric) in enumerate(metrics.items())
    }
    result = {
        "method": METHOD,
        "bars": int(a.size),
        "block_length": block,
        "replications": int(replications),
        "level": float(level),
        "seed": int(seed),
        "metrics": summaries,
    }
    return dict(clean(result))
