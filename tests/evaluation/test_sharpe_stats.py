"""PSR and DSR against the papers' worked example, closed forms and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from multiagent.evaluation.sharpe_stats import (
    annualized,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    per_bar,
    probabilistic_sharpe_ratio,
    sharpe_moments,
    trial_sharpe_variance,
)


def test_the_deflated_sharpe_papers_numerical_example() -> None:
    """Bailey & López de Prado (2014), section 4: 100 trials whose annualized Sharpe ratios
    vary by 0.5, the best at 2.5 over 1,250 daily bars, skew -3, kurtosis 10:
    SR0 = 0.1132 per day and DSR = 0.9004."""
    periods = 250
    variance = 0.5 / periods  # annualized variance -> per-bar variance
    sr0 = expected_max_sharpe(100, variance)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(per_bar(2.5, periods), 1250, 100, variance, skew=-3, kurtosis=10)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_psr_closed_form_under_normal_returns() -> None:
    """Skew 0, kurtosis 3: PSR = Φ((SR - SR*) √(T-1) / √(1 + SR²/2)) (Lo 2002's variance)."""
    sr, bench, bars = 0.1, 0.02, 500
    expected = stats.norm.cdf((sr - bench) * math.sqrt(bars - 1) / math.sqrt(1 + sr**2 / 2))
    assert probabilistic_sharpe_ratio(sr, bench, bars) == pytest.approx(expected, rel=1e-12)
    assert probabilistic_sharpe_ratio(0.05, 0.05, 100) == pytest.approx(0.5)


def test_fat_tails_and_negative_skew_lower_the_psr() -> None:
    normal = probabilistic_sharpe_ratio(0.1, 0.0, 300)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 300, skew=-2.0, kurtosis=9.0) < normal
    assert probabilistic_sharpe_ratio(0.1, 0.0, 3000) > normal  # more bars, more certainty


def test_one_trial_deflates_nothing() -> None:
    assert expected_max_sharpe(1, 0.3) == 0.0
    assert deflated_sharpe_ratio(0.08, 400, 1, 0.3) == probabilistic_sharpe_ratio(0.08, 0.0, 400)
    more = [expected_max_sharpe(n, 0.001) for n in (2, 10, 100, 1000)]
    assert more == sorted(more) and more[0] > 0  # more trials, a higher bar to clear


def test_undefined_inputs_give_nan_or_a_clear_error() -> None:
    assert math.isnan(probabilistic_sharpe_ratio(float("nan"), 0.0, 100))
    assert math.isnan(probabilistic_sharpe_ratio(0.1, 0.0, 1))
    assert math.isnan(probabilistic_sharpe_ratio(3.0, 0.0, 100, skew=5.0, kurtosis=1.0))
    with pytest.raises(ValueError, match="trials"):
        expected_max_sharpe(0, 0.1)
    with pytest.raises(ValueError, match="variance"):
        expected_max_sharpe(5, -1.0)


def test_moments_match_scipy_and_the_metric_sharpe() -> None:
    rng = np.random.default_rng(0)
    returns = rng.standard_t(5, 800) * 0.01 + 0.0005
    sr, skew, kurtosis, bars = sharpe_moments(returns)
    assert bars == 800
    assert sr == pytest.approx(returns.mean() / returns.std(ddof=1))
    assert skew == pytest.approx(stats.skew(returns))
    assert kurtosis == pytest.approx(stats.kurtosis(returns) + 3.0)
    assert annualized(per_bar(1.7, 252), 252) == pytest.approx(1.7)
    assert trial_sharpe_variance([1.0], 252) == 0.0
    assert trial_sharpe_variance([0.5, 1.5], 252) == pytest.approx(np.var([0.5, 1.5], ddof=1) / 252)


def test_psr_is_calibrated_on_pure_noise() -> None:
    """Returns with a true Sharpe of 0: PSR(0) > 0.95 about 5% of the time."""
    rng = np.random.default_rng(7)
    psr = []
    for _ in range(2000):
        sr, skew, kurtosis, bars = sharpe_moments(rng.normal(0.0, 0.01, 250))
        psr.append(probabilistic_sharpe_ratio(sr, 0.0, bars, skew, kurtosis))
    assert np.mean(np.array(psr) > 0.95) == pytest.approx(0.05, abs=0.015)


def test_the_best_of_many_noise_strategies_is_deflated() -> None:
    """50 pure-noise strategies: the best one's PSR(0) is usually above 0.95 (the selection
    bias), its DSR with the 50 trials rarely is."""
    rng = np.random.default_rng(11)
    best_psr, best_dsr = [], []
    for _ in range(200):
        returns = rng.normal(0.0, 0.01, (50, 250))
        moments = [sharpe_moments(r) for r in returns]
        sharpes = np.array([m[0] for m in moments])
        best = int(np.argmax(sharpes))
        sr, skew, kurtosis, bars = moments[best]
        best_psr.append(probabilistic_sharpe_ratio(sr, 0.0, bars, skew, kurtosis))
        variance = float(sharpes.var(ddof=1))
        best_dsr.append(deflated_sharpe_ratio(sr, bars, 50, variance, skew, kurtosis))
    assert np.mean(np.array(best_psr) > 0.95) > 0.8
    assert np.mean(np.array(best_dsr) > 0.95) < 0.1
