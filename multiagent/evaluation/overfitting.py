"""The probability of backtest overfitting (PBO), by combinatorially symmetric cross-validation.

Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest Overfitting", Journal of
Computational Finance 20(4), 2017 (SSRN 2326253). A search tried N configurations on the same T
bars; M is the T x N matrix of their per-bar returns. CSCV asks: had we chosen the best
configuration on one half of the bars, how would it have ranked on the other half? The steps
(the paper's section 2.2, with the Sharpe ratio as the performance measure):

1. Split M's rows into S disjoint contiguous blocks of equal length (S even; 16 by default). When
   T is not a multiple of S the oldest ``T mod S`` rows are dropped (`PBOResult.bars_dropped`),
   so every block has ``T // S`` bars, as the paper's equal submatrices require.
2. For each of the C(S, S/2) ways of choosing S/2 blocks: the training set J is the chosen
   blocks (in time order), the testing set J̄ the other S/2. Both have T/2 bars: symmetric.
3. The Sharpe ratio (mean / std with ddof=1, per bar) of every configuration on J and on J̄.
4. n* = the configuration with the best Sharpe on J (ties: the lowest index).
5. ω̄ = the relative rank of n*'s Sharpe on J̄ among the N: rank / (N + 1), rank 1 = the worst,
   tied Sharpes sharing their average rank (R's ``rank`` default, which the paper's code uses).
   Dividing by N + 1 keeps ω̄ inside (0, 1), so every logit is finite.
6. The logit λ = ln(ω̄ / (1 - ω̄)): λ > 0 when n* beat the median configuration out of sample,
   λ < 0 when it fell below it, λ = 0 exactly at the median.
7. PBO = the share of combinations with λ ≤ 0: the estimate of P(the configuration chosen in
   sample does no better than the median one out of sample).

**The ≤ convention.** The paper defines PBO as ∫_{-∞}^{0} f(λ) dλ and estimates it by counting
the combinations whose λ lies in (-∞, 0]; the authors' and the R ``pbo`` package's count is
``lambda <= 0``. λ = 0 (the chosen configuration landing exactly on the out-of-sample median,
possible with an odd N or with ties) means the selection bought nothing, so it counts as
overfitting: the conservative side. For N iid noise strategies with an even N, P(λ ≤ 0) is
exactly 1/2.

Alongside the PBO (the paper's section 2.3): the pairs (in-sample Sharpe of n*, its
out-of-sample Sharpe) over the combinations, the slope of the out-of-sample Sharpe regressed
on the in-sample one (*performance degradation*: a negative slope means the better a
configuration looked in sample, the worse it did out of sample), and the *probability of loss*,
the share of combinations where n*'s out-of-sample Sharpe is below zero.

**Speed.** Every combination's Sharpe ratios come from block statistics, not from the returns:
for each block b and configuration n, the bar count L, the sum of returns and the sum of
squared returns, after subtracting each configuration's full-sample mean (a subset's mean is
the centred mean plus that shift, its variance is unchanged, and centring keeps
``sum(x²) - sum(x)²/n`` from cancelling catastrophically). A training set's sums are a
(combinations x S) 0/1 matrix times the (S x N) block sums, its test set's the totals minus
them, so one matrix product per statistic gives all C(S, S/2) x N Sharpe ratios. S = 16
(12,870 combinations) over 50 configurations takes milliseconds; combinations are processed
in chunks so memory stays bounded.

**What to do with the number.** PBO near 0: the in-sample winner also tends to win out of
sample; the search found something that persists. PBO near 0.5: choosing the best in sample
is no better than picking at random: the search's winner is luck. Above 0.5: choosing the
in-sample best is worse than random (the search fits noise that reverses). A high PBO does not
say the chosen configuration loses money, only that its rank among the tried ones is not to be
trusted: report the deflated Sharpe ratio (`sharpe_stats`) of the choice rather than its raw
Sharpe, narrow the search (fewer, coarser configurations), lengthen the evaluation window, and
judge the choice on data the search never saw. The estimate needs the N configurations to be
evaluated on the same bars, and enough bars per block for a Sharpe ratio to mean something.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_BLOCKS = 16
MAX_COMBINATIONS = 1_000_000
"""C(22, 11) = 705,432 is the largest S this accepts (S = 24 would be 2.7 million)."""
_CHUNK = 4096
_TINY_STD = 1e-12
"""A standard deviation below this is no risk taken: Sharpe ratio 0 (as `metrics.sharpe`)."""


@dataclass(frozen=True)
class PBOResult:
    """The CSCV of one T x N matrix (per-bar returns of N configurations)."""

    pbo: float
    """Share of combinations with λ ≤ 0."""
    logits: np.ndarray
    """λ of every combination, in the order of ``itertools.combinations(range(S), S // 2)``."""
    relative_ranks: np.ndarray
    """ω̄ = out-of-sample rank / (N + 1) of the in-sample best, per combination."""
    chosen: np.ndarray
    """Index (column of the matrix) of the in-sample best, per combination."""
    in_sample_sharpe: np.ndarray
    """Sharpe ratio of the chosen configuration on the training half (× sqrt(periods))."""
    out_of_sample_sharpe: np.ndarray
    """... and on the testing half."""
    degradation_slope: float
    """Least-squares slope of the out-of-sample on the in-sample Sharpe (NaN if undefined)."""
    degradation_intercept: float
    probability_of_loss: float
    """Share of combinations where the chosen configuration's out-of-sample Sharpe is < 0."""
    n_trials: int
    n_bars: int
    """Rows used (T less ``bars_dropped``)."""
    bars_dropped: int
    n_blocks: int
    periods: float
    """The Sharpe ratios above are per bar × sqrt(periods) (1: per bar)."""

    @property
    def n_combinations(self) -> int:
        return int(self.logits.size)

    @property
    def block_bars(self) -> int:
        return self.n_bars // self.n_blocks

    def to_json(self) -> dict[str, Any]:
        """JSON-safe: every combination's figures, and the summary numbers."""
        return {
            "pbo": self.pbo,
            "convention": "share of combinations with logit <= 0; relative rank = rank / (N+1)",
            "trials": self.n_trials,
            "bars": self.n_bars,
            "bars_dropped": self.bars_dropped,
            "blocks": self.n_blocks,
            "block_bars": self.block_bars,
            "combinations": self.n_combinations,
            "periods": self.periods,
            "degradation": {
                "slope": _finite_or_none(self.degradation_slope),
                "intercept": _finite_or_none(self.degradation_intercept),
            },
            "probability_of_loss": self.probability_of_loss,
            "logit_mean": float(self.logits.mean()),
            "logit_median": float(np.median(self.logits)),
            "logits": self.logits.tolist(),
            "relative_ranks": self.relative_ranks.tolist(),
            "chosen": self.chosen.tolist(),
            "in_sample_sharpe": self.in_sample_sharpe.tolist(),
            "out_of_sample_sharpe": self.out_of_sample_sharpe.tolist(),
        }


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def check_matrix(returns: Any, blocks: int) -> np.ndarray:
    """``returns`` as a float (T, N) array, or a ValueError that says what was expected."""
    if isinstance(blocks, bool) or not isinstance(blocks, int | np.integer):
        raise ValueError(f"blocks must be an even integer >= 2, got {blocks!r}")
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be an even integer >= 2, got {blocks}")
    combinations = math.comb(blocks, blocks // 2)
    if combinations > MAX_COMBINATIONS:
        raise ValueError(
            f"blocks={blocks} gives {combinations:,} combinations; at most "
            f"{MAX_COMBINATIONS:,} are enumerated (use blocks <= 22)"
        )
    matrix = np.asarray(returns, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(
            f"returns must be a 2-D (bars x trials) matrix, got {matrix.ndim} dimension(s)"
        )
    bars, trials = matrix.shape
    if trials < 2:
        raise ValueError(f"returns must hold at least 2 trials (columns), got {trials}")
    if bars < blocks:
        raise ValueError(
            f"returns has {bars} bars (rows) for {blocks} blocks: at least one bar per block"
        )
    if (bars // blocks) * (blocks // 2) < 2:
        raise ValueError(
            f"returns has {bars} bars: each half ({blocks // 2} blocks of {bars // blocks} bars) "
            "needs at least 2 bars for a Sharpe ratio"
        )
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"returns must be finite: {int(bad.sum())} value(s) are NaN or infinite (first at "
            f"bar {row}, trial {column})"
        )
    return matrix


def combination_masks(blocks: int) -> np.ndarray:
    """(C(S, S/2), S) 0/1: row c marks the training blocks of combination c."""
    half = blocks // 2
    chosen = np.array(list(itertools.combinations(range(blocks), half)), dtype=np.intp)
    masks = np.zeros((chosen.shape[0], blocks))
    np.put_along_axis(masks, chosen, 1.0, axis=1)
    return masks


def _sharpe(sums: np.ndarray, squares: np.ndarray, count: int, means: np.ndarray) -> np.ndarray:
    """Per-bar Sharpe ratios from sums of centred returns (``means``: the centring shift)."""
    mean = sums / count
    variance = np.maximum(squares - sums * mean, 0.0) / (count - 1)
    std = np.sqrt(variance)
    out = np.zeros_like(mean)
    ok = std >= _TINY_STD
    np.divide(mean + means, std, out=out, where=ok)
    return out


def probability_of_backtest_overfitting(
    returns: Any, blocks: int = DEFAULT_BLOCKS, *, periods: float = 1.0
) -> PBOResult:
    """CSCV over a (T bars x N trials) matrix of per-bar returns (see the module docstring).

    ``periods`` only scales the reported Sharpe pairs (× sqrt(periods), e.g. bars per year);
    ranks, logits and the PBO do not depend on it. Deterministic: no sampling."""
    matrix = check_matrix(returns, blocks)
    if not (math.isfinite(periods) and periods > 0):
        raise ValueError(f"periods must be a positive number, got {periods}")
    bars, trials = matrix.shape
    length = bars // blocks
    dropped = bars - length * blocks
    used = matrix[dropped:]
    means = used.mean(axis=0)
    centred = (used - means).reshape(blocks, length, trials)
    block_sums = centred.sum(axis=1)  # (S, N)
    block_squares = (centred**2).sum(axis=1)
    total_sums = block_sums.sum(axis=0)
    total_squares = block_squares.sum(axis=0)
    half = (blocks // 2) * length

    masks = combination_masks(blocks)
    n_combinations = masks.shape[0]
    chosen = np.empty(n_combinations, dtype=np.intp)
    ranks = np.empty(n_combinations)
    is_sharpe = np.empty(n_combinations)
    oos_sharpe = np.empty(n_combinations)
    for start in range(0, n_combinations, _CHUNK):
        part = masks[start : start + _CHUNK]
        train_sums = part @ block_sums  # (c, N)
        train_squares = part @ block_squares
        train = _sharpe(train_sums, train_squares, half, means)
        test = _sharpe(total_sums - train_sums, total_squares - train_squares, half, means)
        best = np.argmax(train, axis=1)  # the first maximum: ties go to the lowest index
        rows = np.arange(part.shape[0])
        score = test[rows, best][:, None]
        below = (test < score).sum(axis=1)
        tied = (test == score).sum(axis=1)  # includes the chosen one itself
        chosen[start : start + part.shape[0]] = best
        ranks[start : start + part.shape[0]] = below + (tied + 1) / 2.0
        is_sharpe[start : start + part.shape[0]] = train[rows, best]
        oos_sharpe[start : start + part.shape[0]] = test[rows, best]

    relative = ranks / (trials + 1)
    logits = np.log(relative / (1.0 - relative))
    scale = math.sqrt(periods)
    is_sharpe *= scale
    oos_sharpe *= scale
    slope, intercept = _fit(is_sharpe, oos_sharpe)
    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        relative_ranks=relative,
        chosen=chosen,
        in_sample_sharpe=is_sharpe,
        out_of_sample_sharpe=oos_sharpe,
        degradation_slope=slope,
        degradation_intercept=intercept,
        probability_of_loss=float(np.mean(oos_sharpe < 0.0)),
        n_trials=trials,
        n_bars=length * blocks,
        bars_dropped=dropped,
        n_blocks=blocks,
        periods=float(periods),
    )


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Ordinary least squares y = slope · x + intercept; NaN slope when x does not vary."""
    dx = x - x.mean()
    spread = float(dx @ dx)
    if spread <= 1e-24 * max(1.0, float(x @ x)):
        return float("nan"), float(y.mean())
    slope = float(dx @ (y - y.mean())) / spread
    return slope, float(y.mean() - slope * x.mean())
