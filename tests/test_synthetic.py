"""Synthetic markets: seeded, reproducible, with a planted signal whose oracle is known."""

from __future__ import annotations

import numpy as np
import pytest

from multiagent.data.synthetic import (
    SessionConfig,
    SyntheticMarketConfig,
    generate_market,
    generate_sessions,
)


def test_same_seed_same_market_and_other_seed_differs() -> None:
    a = generate_market(SyntheticMarketConfig(seed=7, n_bars=300))
    b = generate_market(SyntheticMarketConfig(seed=7, n_bars=300))
    c = generate_market(SyntheticMarketConfig(seed=8, n_bars=300))
    assert a.panel.fingerprint() == b.panel.fingerprint() != c.panel.fingerprint()
    np.testing.assert_array_equal(a.signal, b.signal)
    np.testing.assert_array_equal(a.regime, b.regime)


def test_bars_are_consistent() -> None:
    panel = generate_market(SyntheticMarketConfig(n_bars=500, gap_vol=0.002)).panel
    high, low = panel.fields["high"], panel.fields["low"]
    assert (high >= np.maximum(panel.fields["open"], panel.close)).all()
    assert (low <= np.minimum(panel.fields["open"], panel.close)).all()
    assert (panel.fields["spread"] > 0).all() and (panel.fields["volume"] > 0).all()


@pytest.mark.parametrize("kind", ["ar1", "momentum"])
def test_planted_signal_explains_the_configured_variance(kind: str) -> None:
    market = generate_market(
        SyntheticMarketConfig(
            n_symbols=4,
            n_bars=20_000,
            signal=kind,
            signal_r2=0.05,
            regimes={"calm": {"vol": 0.01, "drift": 0.0, "mean_duration": 10}},
        )
    )
    returns = market.log_returns[:, 2:]
    predictor = market.signal[:, 1:-1]
    r2 = [np.corrcoef(predictor[s], returns[s])[0, 1] ** 2 for s in range(4)]
    assert np.mean(r2) == pytest.approx(0.05, abs=0.01)


def test_oracle_beats_chance_only_when_a_signal_is_planted() -> None:
    strong = generate_market(SyntheticMarketConfig(n_bars=3000, signal_r2=0.02))
    weak = generate_market(SyntheticMarketConfig(n_bars=3000, signal_r2=0.0))
    assert strong.oracle_sharpe() > 2.0
    assert abs(weak.oracle_sharpe()) < 1.0


def test_per_symbol_signal_strength_orders_oracle_pnl() -> None:
    market = generate_market(
        SyntheticMarketConfig(n_symbols=3, n_bars=20_000, signal_r2=(0.0, 0.01, 0.05))
    )
    pnl = (market.oracle_positions()[:, :-1] * market.log_returns[:, 1:]).mean(axis=1)
    assert pnl[0] < pnl[1] < pnl[2]


def test_regimes_differ_in_volatility_and_drift() -> None:
    market = generate_market(SyntheticMarketConfig(n_bars=20_000, signal="none"))
    returns = market.log_returns[:, 1:]
    regime = market.regime[1:]
    vol = [returns[:, regime == k].std() for k in range(3)]
    mean = [returns[:, regime == k].mean() for k in range(3)]
    assert vol[0] < vol[1] < vol[2]
    assert mean[2] < mean[0]


def test_orders_filled_at_next_open_earn_the_planted_return() -> None:
    market = generate_market(SyntheticMarketConfig(n_bars=200))
    panel = market.panel
    open_to_open = np.log(panel.fields["open"][:, 2:] / panel.fields["open"][:, 1:-1])
    np.testing.assert_allclose(open_to_open, market.log_returns[:, 1:-1], atol=1e-12)


def test_invalid_configs_are_rejected() -> None:
    with pytest.raises(ValueError, match="signal_r2 lists 2 values for 3 symbols"):
        SyntheticMarketConfig(n_symbols=3, signal_r2=(0.1, 0.2))
    with pytest.raises(ValueError, match="regimes"):
        SyntheticMarketConfig(regimes={"boom": {"vol": 0.1, "drift": 0, "mean_duration": 5}})
    with pytest.raises(ValueError, match="min_bars"):
        SessionConfig(min_bars=50, max_bars=10)


def test_sessions_have_varied_lengths_coverage_and_spreads() -> None:
    panel = generate_sessions(SessionConfig(n_sessions=80, seed=3))
    again = generate_sessions(SessionConfig(n_sessions=80, seed=3))
    assert panel.fingerprint() == again.fingerprint()
    observed = panel.observed
    spans = np.array([np.ptp(np.flatnonzero(row)) + 1 for row in observed])
    assert spans.min() >= 10 and spans.max() >= 300 and spans.max() <= 1000
    coverage = observed.sum(axis=1) / spans
    assert coverage.min() < 0.9 and coverage.max() > 0.9
    close = panel.close[observed]
    assert ((close > 0) & (close < 1)).all()


def test_switching_signal_strength_differs_between_symbols_and_over_time() -> None:
    levels = (0.09, 0.0)
    config = SyntheticMarketConfig(
        n_symbols=4,
        n_bars=20_000,
        seed=3,
        signal="momentum",
        signal_r2=levels * 2,
        signal_switching=100,
    )
    market = generate_market(config)
    path = market.signal_r2
    assert path.shape == (4, 20_000) and set(np.unique(path)) <= set(levels)
    switches = (np.diff(path, axis=1) != 0).sum()
    # A redraw lands on the same value half the time: about T / 100 / 2 changes per symbol.
    assert 0.7 * 4 * 100 < switches < 1.3 * 4 * 100
    assert 0.4 < (path > 0).mean() < 0.6  # every symbol spends about as long at each strength
    assert (path[:, :5000] > 0).mean(axis=1).std() < 0.15
    returns = market.log_returns
    for strength in levels:
        live = path[:, 1:] == strength
        x = returns[:, :-1][live]
        y = returns[:, 1:][live]
        # The autocorrelation is sqrt(R2) while the strength is in force (within noise).
        assert abs(np.corrcoef(x, y)[0, 1] - np.sqrt(strength)) < 0.03
    # The oracle's sign is that of the next bar's predictable part, 0 without a signal.
    off = path[:, 1:] == 0
    assert np.all(market.signal[:, :-1][off] == 0)
    assert np.all(market.signal[:, :-1][~off] != 0)


def test_without_switching_the_market_and_its_r2_path_are_unchanged() -> None:
    fixed = SyntheticMarketConfig(n_symbols=3, n_bars=300, seed=1, signal_r2=(0.04, 0.02, 0.0))
    market = generate_market(fixed)
    np.testing.assert_array_equal(market.signal_r2[:, 0], [0.04, 0.02, 0.0])
    assert np.all(market.signal_r2 == market.signal_r2[:, :1])
    # Switching draws from its own stream: the regimes and shocks are the same market's.
    switching = generate_market(fixed.model_copy(update={"signal_switching": 50.0}))
    np.testing.assert_array_equal(switching.regime, market.regime)
    again = generate_market(fixed.model_copy(update={"signal_switching": 50.0}))
    np.testing.assert_array_equal(again.log_returns, switching.log_returns)


def test_switching_needs_a_mean_duration_of_a_bar_or_more() -> None:
    with pytest.raises(ValueError, match="signal_switching"):
        SyntheticMarketConfig(signal_switching=0.5)


def _lag1_autocorrelation(market_returns: np.ndarray) -> np.ndarray:
    r = market_returns[:, 1:]
    return np.array([np.corrcoef(row[:-1], row[1:])[0, 1] for row in r])


def test_mixed_signs_plant_momentum_reversion_and_nothing_and_the_oracle_follows() -> None:
    config = SyntheticMarketConfig(
        n_symbols=6,
        n_bars=20_000,
        signal="momentum",
        signal_r2=0.05,
        signal_sign="mixed",
        regimes={"calm": {"vol": 0.01, "drift": 0.0, "mean_duration": 10}},
    )
    market = generate_market(config)
    np.testing.assert_array_equal(config.signs(), [1, -1, 0, 1, -1, 0])
    rho = _lag1_autocorrelation(market.log_returns)
    assert rho[[0, 3]] == pytest.approx(np.sqrt(0.05), abs=0.03)
    assert rho[[1, 4]] == pytest.approx(-np.sqrt(0.05), abs=0.03)
    assert rho[[2, 5]] == pytest.approx(0.0, abs=0.03)
    # No signal: no published strength, and the oracle stays out.
    assert (market.signal_r2[[2, 5]] == 0).all() and (market.oracle_positions()[[2, 5]] == 0).all()
    # Where there is one, the oracle's positions earn the planted edge on every symbol.
    pnl = (market.oracle_positions()[:, :-1] * market.log_returns[:, 1:]).mean(axis=1)
    assert (pnl[[0, 1, 3, 4]] > 0).all()
    assert market.oracle_sharpe() > 5


def test_explicit_signs_and_the_positive_default_keeps_the_old_market() -> None:
    base = SyntheticMarketConfig(n_symbols=3, n_bars=400, signal="momentum")
    explicit = generate_market(base.model_copy(update={"signal_sign": (1, 1, 1)}))
    assert explicit.panel.fingerprint() == generate_market(base).panel.fingerprint()
    flipped = generate_market(base.model_copy(update={"signal_sign": (-1, 1, 0)}))
    assert _lag1_autocorrelation(flipped.log_returns)[0] < 0


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"signal": "ar1", "signal_sign": "mixed"}, "applies to signal 'momentum' only"),
        ({"signal": "momentum", "signal_sign": (1, -1)}, "signal_sign lists 2 values for 3"),
        ({"signal": "momentum", "signal_sign": (1, 2, 0)}, "signal_sign"),
    ],
)
def test_bad_signs_are_refused(update: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SyntheticMarketConfig.model_validate({"n_symbols": 3, **update})
