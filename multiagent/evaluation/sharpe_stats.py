"""How much a Sharpe ratio can be trusted: the probabilistic and the deflated Sharpe ratio.

A Sharpe ratio measured on T bars is an estimate, and its error grows with fat tails and
negative skew (Lo 2002; Mertens 2002). The *probabilistic Sharpe ratio* (Bailey & López de
Prado 2012, "The Sharpe Ratio Efficient Frontier", eq. 11) is the probability that the true
Sharpe exceeds a benchmark ``SR*``, given the estimate and the returns' shape::

    PSR(SR*) = Φ( (SR - SR*) · sqrt(T - 1) / sqrt(1 - γ3 · SR + (γ4 - 1) / 4 · SR²) )

with SR the per-bar (not annualized) Sharpe, γ3 the skewness and γ4 the kurtosis (3 for a
normal distribution) of the per-bar returns, and Φ the standard normal CDF.

A config chosen as the best of N trials has a Sharpe inflated by the choice. The *deflated
Sharpe ratio* (Bailey & López de Prado 2014, "The Deflated Sharpe Ratio", eqs. 1-2) is the PSR
against the Sharpe the best of N trials would reach by luck alone::

    SR0 = sqrt(V) · ((1 - γ) · Φ⁻¹(1 - 1/N) + γ · Φ⁻¹(1 - 1/(N e)))
    DSR = PSR(SR0)

with V the variance of the N trials' per-bar Sharpe estimates and γ ≈ 0.5772 the
Euler-Mascheroni constant. With one trial SR0 = 0 and the DSR is the PSR against zero.

Inputs and outputs here are per bar; `annualized` and `per_bar` convert with ``sqrt(periods)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

EULER_GAMMA = 0.5772156649015329


def per_bar(annual_sharpe: float, periods: float) -> float:
    return annual_sharpe / math.sqrt(periods)


def annualized(bar_sharpe: float, periods: float) -> float:
    return bar_sharpe * math.sqrt(periods)


def sharpe_moments(returns: np.ndarray) -> tuple[float, float, float, int]:
    """(per-bar Sharpe, skewness, kurtosis (normal = 3), bars) of per-bar returns, the sample
    estimates the PSR is defined with (population moments, as in the paper's example)."""
    returns = np.asarray(returns, dtype=float)
    returns = returns[np.isfinite(returns)]
    n = int(returns.size)
    if n < 3:
        return float("nan"), float("nan"), float("nan"), n
    sd = float(returns.std(ddof=1))
    if sd == 0.0:
        return float("nan"), 0.0, 3.0, n
    skew = float(stats.skew(returns, bias=True))
    kurtosis = float(stats.kurtosis(returns, fisher=False, bias=True))
    return float(returns.mean()) / sd, skew, kurtosis, n


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, bars: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """P(true Sharpe > ``benchmark``): per-bar Sharpe ratios, ``bars`` observations.

    NaN when it is not defined: fewer than 2 bars, a non-finite input, or a non-positive
    variance term (a shape so far from normal that the estimate's error is unknown)."""
    if bars < 2 or not all(map(math.isfinite, (sharpe, benchmark, skew, kurtosis))):
        return float("nan")
    variance = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if variance <= 0.0:
        return float("nan")
    z = (sharpe - benchmark) * math.sqrt(bars - 1) / math.sqrt(variance)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(trials: int, sharpe_variance: float) -> float:
    """SR0: the per-bar Sharpe the best of ``trials`` unskilled trials reaches in expectation,
    given the variance of their per-bar Sharpe estimates (0 for one trial)."""
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    if not (math.isfinite(sharpe_variance) and sharpe_variance >= 0.0):
        raise ValueError(f"sharpe_variance must be a finite variance, got {sharpe_variance}")
    if trials == 1 or sharpe_variance == 0.0:
        return 0.0
    first = stats.norm.ppf(1.0 - 1.0 / trials)
    second = stats.norm.ppf(1.0 - 1.0 / (trials * math.e))
    return math.sqrt(sharpe_variance) * ((1.0 - EULER_GAMMA) * first + EULER_GAMMA * second)


def deflated_sharpe_ratio(
    sharpe: float,
    bars: int,
    trials: int,
    sharpe_variance: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """The PSR against `expected_max_sharpe`: P(the chosen config's true Sharpe > what the best
    of ``trials`` would show by luck). Per-bar Sharpe ratios."""
    benchmark = expected_max_sharpe(trials, sharpe_variance)
    return probabilistic_sharpe_ratio(sharpe, benchmark, bars, skew, kurtosis)


def trial_sharpe_variance(annual_sharpes: Sequence[float], periods: float) -> float:
    """V of the DSR from the trials' annualized Sharpe ratios (per-bar units; 0 for < 2)."""
    values = np.array([per_bar(s, periods) for s in annual_sharpes], dtype=float)
    values = values[np.isfinite(values)]
    return float(values.var(ddof=1)) if values.size > 1 else 0.0
