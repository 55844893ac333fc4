"""CSCV / PBO: a case worked by hand, a brute-force re-implementation written from the paper's
steps (loops, no block statistics), and simulations (pure noise: about 0.5; a planted edge:
about 0)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from multiagent.evaluation.overfitting import (
    PBOResult,
    combination_masks,
    probability_of_backtest_overfitting,
)


def brute_force(matrix: np.ndarray, blocks: int) -> tuple[list[float], list[int]]:
    """The paper's steps one combination at a time: (logits, chosen trials)."""
    bars, trials = matrix.shape
    length = bars // blocks
    matrix = matrix[bars - length * blocks :]
    parts = [matrix[b * length : (b + 1) * length] for b in range(blocks)]
    logits, chosen = [], []
    for train_blocks in itertools.combinations(range(blocks), blocks // 2):
        train = np.concatenate([parts[b] for b in train_blocks])
        test = np.concatenate([parts[b] for b in range(blocks) if b not in train_blocks])

        def sharpe(x: np.ndarray) -> np.ndarray:
            std = x.std(axis=0, ddof=1)
            return np.where(std < 1e-12, 0.0, x.mean(axis=0) / np.where(std < 1e-12, 1, std))

        best = int(np.argmax(sharpe(train)))
        rank = stats.rankdata(sharpe(test))[best]  # average ranks for ties
        omega = rank / (trials + 1)
        logits.append(math.log(omega / (1 - omega)))
        chosen.append(best)
    return logits, chosen


def test_a_case_worked_by_hand() -> None:
    """S = 2 blocks of 2 bars, 2 trials. Block 0 favours trial 0 (Sharpe √2 vs 1/√2), block 1
    trial 1 (0.035/0.0212 = 1.650 vs 1/√2): whichever half picks, the pick comes last on the
    other half: rank 1 of 2, ω̄ = 1/3, λ = ln(1/2) both times, PBO = 1."""
    matrix = np.array(
        [
            [0.01, 0.00],
            [0.03, 0.01],
            [0.00, 0.02],
            [0.02, 0.05],
        ]
    )
    result = probability_of_backtest_overfitting(matrix, blocks=2)
    assert result.n_combinations == 2
    assert result.chosen.tolist() == [0, 1]
    np.testing.assert_allclose(result.relative_ranks, [1 / 3, 1 / 3])
    np.testing.assert_allclose(result.logits, [math.log(0.5)] * 2)
    assert result.pbo == 1.0
    np.testing.assert_allclose(result.in_sample_sharpe, [math.sqrt(2), 0.035 / (0.03 / 2**0.5)])
    np.testing.assert_allclose(result.out_of_sample_sharpe, [1 / math.sqrt(2)] * 2)
    assert result.degradation_slope == pytest.approx(0.0, abs=1e-9)
    assert result.probability_of_loss == 0.0


def test_matches_a_brute_force_cscv() -> None:
    """S = 4, N = 3 (6 combinations) and S = 6, N = 5 with a dropped bar: the block-statistics
    shortcut gives the loop's logits and choices exactly."""
    rng = np.random.default_rng(7)
    for blocks, bars, trials in ((4, 8, 3), (6, 31, 5)):
        matrix = rng.normal(0.001, 0.01, (bars, trials))
        result = probability_of_backtest_overfitting(matrix, blocks=blocks)
        logits, chosen = brute_force(matrix, blocks)
        assert result.n_combinations == math.comb(blocks, blocks // 2)
        assert result.bars_dropped == bars % blocks
        np.testing.assert_allclose(result.logits, logits, rtol=0, atol=1e-12)
        assert result.chosen.tolist() == chosen
        assert result.pbo == pytest.approx(np.mean(np.array(logits) <= 0))


def test_combinations_are_symmetric_halves() -> None:
    masks = combination_masks(6)
    assert masks.shape == (20, 6) and (masks.sum(axis=1) == 3).all()
    assert len({tuple(row) for row in masks}) == 20


def test_ties_share_their_rank_and_the_median_counts_as_overfit() -> None:
    """Identical trials: the first is chosen, every trial ties out of sample at the average
    rank (N + 1) / 2, ω̄ = 1/2, λ = 0, which the ≤ convention counts as overfit."""
    rng = np.random.default_rng(0)
    column = rng.normal(0.0, 0.01, 64)
    result = probability_of_backtest_overfitting(np.tile(column[:, None], (1, 4)), blocks=8)
    assert (result.chosen == 0).all()
    np.testing.assert_allclose(result.logits, 0.0, atol=1e-12)
    assert result.pbo == 1.0
    flat = probability_of_backtest_overfitting(np.zeros((32, 3)), blocks=4)  # never traded
    assert flat.pbo == 1.0 and (flat.in_sample_sharpe == 0).all()


def noise(seed: int, edge: float = 0.0) -> np.ndarray:
    """1,000 bars of 50 iid normal strategies (per-bar sd 1%); column 17 drifts by ``edge``."""
    matrix = np.random.default_rng(seed).normal(0.0, 0.01, (1000, 50))
    matrix[:, 17] += edge
    return matrix


def test_pure_noise_is_a_coin_flip() -> None:
    """50 iid normal strategies over 1,000 bars, S = 16: the in-sample winner is as likely to
    fall below the out-of-sample median as to stay above it: PBO 1/2 in expectation. One
    realization is a noisy estimate (its 12,870 combinations share the same bars: the PBOs of
    seeds 0-19 spread with a standard deviation of about 0.15), so the test averages 20 seeds
    (measured: 0.472) and checks the spread."""
    results = [probability_of_backtest_overfitting(noise(seed)) for seed in range(20)]
    assert results[0].n_combinations == 12870 and results[0].n_bars == 992
    assert results[0].bars_dropped == 8
    pbos = np.array([r.pbo for r in results])
    assert pbos.mean() == pytest.approx(0.5, abs=0.1)
    assert 0.05 < pbos.std() < 0.3
    # Noise has no persistence: the pick loses out of sample half the time, and the better it
    # looked in sample, the worse it does out of sample (complementary halves of fixed bars).
    assert np.mean([r.probability_of_loss for r in results]) == pytest.approx(0.5, abs=0.1)
    assert np.mean([r.degradation_slope for r in results]) < 0.0


def test_a_planted_edge_is_not_overfit() -> None:
    """One of 50 strategies drifts up (per-bar Sharpe 0.25, against 0 for the other 49): it
    wins in sample and stays on top out of sample: PBO about 0 (seeds 0-9: mean 0.009, at
    most 0.075)."""
    results = [
        probability_of_backtest_overfitting(noise(s, 0.0025), periods=252) for s in range(10)
    ]
    pbos = np.array([r.pbo for r in results])
    assert pbos.mean() < 0.05 and pbos.max() < 0.1
    first = results[0]
    assert first.pbo < 0.05
    assert (first.chosen == 17).mean() > 0.95
    assert first.probability_of_loss < 0.05
    assert np.median(first.out_of_sample_sharpe) > 2.0  # annualized: 0.25 x sqrt(252) ~ 4


def test_deterministic_and_json() -> None:
    rng = np.random.default_rng(5)
    matrix = rng.normal(0.0, 0.01, (200, 10))
    first = probability_of_backtest_overfitting(matrix, blocks=8)
    second = probability_of_backtest_overfitting(matrix.copy(), blocks=8)
    np.testing.assert_array_equal(first.logits, second.logits)
    assert first.pbo == second.pbo
    payload = first.to_json()
    assert payload["combinations"] == 70 and payload["trials"] == 10
    assert len(payload["logits"]) == 70 and payload["pbo"] == first.pbo
    assert isinstance(first, PBOResult)
    import json

    json.dumps(payload)  # plain Python numbers only


@pytest.mark.parametrize(
    ("matrix", "blocks", "message"),
    [
        (np.zeros((32, 1)), 4, "at least 2 trials"),
        (np.zeros(32), 4, "2-D"),
        (np.zeros((32, 3)), 5, "even integer"),
        (np.zeros((32, 3)), 0, "even integer"),
        (np.zeros((32, 3)), 2.0, "even integer"),
        (np.zeros((10, 3)), 16, "10 bars .* 16 blocks"),
        (np.zeros((3, 3)), 2, "at least 2 bars"),
        (np.zeros((32, 3)), 24, "combinations"),
        (np.array([[0.0, 1.0]] * 15 + [[np.nan, 0.0]]), 4, r"NaN or infinite \(first at bar 15"),
    ],
)
def test_bad_inputs_say_what_was_expected(matrix: np.ndarray, blocks: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        probability_of_backtest_overfitting(matrix, blocks=blocks)
