"""Hand-checked feature values, degradation on close-only data, ranks and the cache."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multiagent.data.features import FeatureConfig, compute_raw_features, cross_sectional_rank
from multiagent.data.featurize import (
    FeaturePipelineConfig,
    build_features,
    cache_key,
    compute_features,
)
from multiagent.data.normalization import NormalizationConfig, normalize
from multiagent.data.panel import MarketPanel

RAW = FeaturePipelineConfig(normalization=NormalizationConfig(method="none"))


def _panel(close: np.ndarray, **extra: np.ndarray) -> MarketPanel:
    close = np.atleast_2d(close).astype(float)
    times = pd.date_range("2020-01-01", periods=close.shape[1], freq="D").to_numpy()
    return MarketPanel(
        symbols=tuple(f"S{i}" for i in range(close.shape[0])),
        timestamps=times.astype("datetime64[ns]"),
        fields={"close": close, **{k: np.atleast_2d(v).astype(float) for k, v in extra.items()}},
    )


def test_returns_and_volatility_match_hand_computation() -> None:
    close = np.array([100, 110, 99, 99, 120, 90, 95, 97, 100, 101] * 7, dtype=float)
    features = compute_features(_panel(close), RAW)
    ret1 = features.values[0, :, features.index("ret_1")]
    assert ret1[1] == pytest.approx(np.log(110 / 100), rel=1e-6)
    ret5 = features.values[0, :, features.index("ret_5")]
    assert ret5[9] == pytest.approx(np.log(101 / 120), rel=1e-6)
    vol20 = features.values[0, :, features.index("vol_20")]
    expected = np.std(np.diff(np.log(close[:21])), ddof=1)
    assert vol20[20] == pytest.approx(expected, rel=1e-5)


def test_rsi_is_plus_one_on_a_rising_series_and_minus_one_on_a_falling_one() -> None:
    up = compute_features(_panel(np.linspace(100, 200, 80)), RAW)
    down = compute_features(_panel(np.linspace(200, 100, 80)), RAW)
    i = up.index("rsi_14")
    assert up.values[0, 30, i] == pytest.approx(1.0)
    assert down.values[0, 30, i] == pytest.approx(-1.0)


def test_warm_up_rows_are_invalid_and_zero() -> None:
    features = compute_features(_panel(np.linspace(100, 200, 200)), RAW)
    assert not features.valid[0, : features.max_lookback].any()
    assert features.valid[0, features.max_lookback :].all()
    assert features.values.dtype == np.float32 and features.values.flags.c_contiguous


def test_close_only_data_degrades_and_says_so() -> None:
    features = compute_features(_panel(np.linspace(100, 200, 200)), RAW)
    assert "range_vol_14" in features.degraded
    assert "volume_20" in features.skipped
    assert "range_vol_14" in features.names and "volume_20" not in features.names


def test_ohlcv_data_uses_high_low() -> None:
    close = np.linspace(100, 200, 200)
    panel = _panel(close, high=close * 1.01, low=close * 0.99, volume=np.full(200, 1e3))
    features = compute_features(panel, RAW)
    assert not features.degraded and not features.skipped
    parkinson = np.sqrt(np.log(1.01 / 0.99) ** 2 / (4 * np.log(2)))
    assert features.values[0, 50, features.index("range_vol_14")] == pytest.approx(
        parkinson, rel=1e-5
    )


def test_cross_sectional_rank_is_scaled_and_ignores_missing_symbols() -> None:
    values = np.array([[1.0, 5.0], [2.0, np.nan], [3.0, 1.0]])
    valid = ~np.isnan(values)
    ranks, ok = cross_sectional_rank(values, valid)
    np.testing.assert_allclose(ranks[:, 0], [-1, 0, 1])
    np.testing.assert_allclose(ranks[[0, 2], 1], [1, -1])
    assert not ok[1, 1]


def test_duplicate_windows_are_rejected() -> None:
    with pytest.raises(ValueError, match="repeat"):
        compute_raw_features(_panel(np.linspace(1, 2, 50)), FeatureConfig(returns=(5, 5)))


def test_expanding_normalization_is_a_zscore_of_the_past() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, (1, 100, 1))
    out, valid, _ = normalize(
        x, np.ones_like(x, dtype=bool), (True,), NormalizationConfig(clip=None)
    )
    t = 60
    expected = (x[0, t, 0] - x[0, : t + 1, 0].mean()) / x[0, : t + 1, 0].std(ddof=1)
    assert out[0, t, 0] == pytest.approx(expected, rel=1e-9)
    assert not valid[0, :19].any() and valid[0, 19:].all()


def test_rolling_normalization_uses_only_the_window() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (1, 100, 1))
    config = NormalizationConfig(method="rolling", window=10, min_periods=5, clip=None)
    out, _, _ = normalize(x, np.ones_like(x, dtype=bool), (True,), config)
    window = x[0, 41:51, 0]
    assert out[0, 50, 0] == pytest.approx(
        (x[0, 50, 0] - window.mean()) / window.std(ddof=1), rel=1e-7
    )


def test_cache_hit_miss_and_invalidation(tmp_path: Path) -> None:
    panel = _panel(np.linspace(100, 200, 200))
    first = build_features(panel, RAW, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    again = build_features(panel, RAW, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.values, again.values)
    assert again.names == first.names and again.degraded == first.degraded
    other_config = FeaturePipelineConfig(features=FeatureConfig(returns=(1, 2)))
    assert cache_key(panel, other_config, None) != first.cache_key
    changed = replace(panel, fields={"close": panel.close * 1.0001})
    assert cache_key(changed, RAW, None) != first.cache_key
    build_features(changed, RAW, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_corrupt_cache_file_is_recomputed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    panel = _panel(np.linspace(100, 200, 200))
    first = build_features(panel, RAW, cache_dir=tmp_path)
    path = tmp_path / f"{first.cache_key}.npz"
    path.write_bytes(b"garbage")
    again = build_features(panel, RAW, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.values, again.values)
    assert "unreadable" in caplog.text
    assert not list(tmp_path.glob("*.tmp")), "no temp files left behind"


SERIAL = FeatureConfig(
    autocorrelation={"windows": (30,), "lags": (1, 2)},
    variance_ratio={"window": 40, "periods": (2, 4)},
    hurst={"window": 40, "scales": (1, 2, 4)},
)


def _series(name: str, raw: object) -> np.ndarray:
    values = raw.values[..., raw.names.index(name)]  # type: ignore[attr-defined]
    valid = raw.valid[..., raw.names.index(name)]  # type: ignore[attr-defined]
    return np.where(valid, values, np.nan)


def test_autocorrelation_matches_a_hand_computed_pearson_correlation() -> None:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 120)))
    raw = compute_raw_features(_panel(close), SERIAL)
    r = np.diff(np.log(close), prepend=np.nan)
    for lag in (1, 2):
        acf = _series(f"acf_30_{lag}", raw)[0]
        t = 90
        expected = np.corrcoef(r[t - 29 : t + 1], r[t - 29 - lag : t + 1 - lag])[0, 1]
        assert acf[t] == pytest.approx(expected, rel=1e-9)
        assert np.isnan(acf[: 30 + lag]).all() and np.isfinite(acf[30 + lag :]).all()


def test_variance_ratio_of_q_bar_returns_matches_its_definition() -> None:
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 150)))
    raw = compute_raw_features(_panel(close), SERIAL)
    log_close = np.log(close)
    t = 120
    one = np.diff(log_close)[t - 40 : t]
    four = (log_close[4:] - log_close[:-4])[t - 4 - 39 : t - 4 + 1]
    expected = np.log(np.var(four, ddof=1) / (4 * np.var(one, ddof=1)))
    assert _series("vr_40_4", raw)[0, t] == pytest.approx(expected, rel=1e-9)


def test_serial_features_tell_momentum_from_mean_reversion_and_a_random_walk() -> None:
    """The point of the family: a policy that never sees which market it trades can read the
    sign of the market's own dependence (random walk ~0, momentum > 0, reversion < 0)."""
    from multiagent.data.synthetic import SyntheticMarketConfig, generate_market

    market = generate_market(
        SyntheticMarketConfig(
            n_symbols=3,
            n_bars=4000,
            signal="momentum",
            signal_r2=0.09,
            signal_sign=(1, -1, 0),
            regimes={"calm": {"vol": 0.01, "drift": 0.0, "mean_duration": 10}},
        )
    )
    raw = compute_raw_features(
        market.panel,
        FeatureConfig(
            autocorrelation={"windows": (120,), "lags": (1,)},
            variance_ratio={"window": 120, "periods": (2,)},
            hurst={"window": 120},
        ),
    )
    for name in ("acf_120_1", "vr_120_2", "hurst_120"):
        mean = np.nanmean(_series(name, raw), axis=1)
        assert mean[0] > 0.05 and mean[1] < -0.05 and abs(mean[2]) < 0.04, (name, mean)
        # Read bar by bar, the sign is right most of the time on the planted symbols.
        signs = np.sign(_series(name, raw)[:2, 200:])
        assert (signs == np.array([[1], [-1]])).mean() > 0.85, name


def test_serial_features_are_not_normalized_per_symbol() -> None:
    """An expanding per-symbol z-score would subtract each market's own level of dependence."""
    raw = compute_raw_features(_panel(np.linspace(1, 2, 200)), SERIAL)
    flags = dict(zip(raw.names, raw.normalize, strict=True))
    assert not any(flags[n] for n in ("acf_30_1", "acf_30_2", "vr_40_2", "vr_40_4", "hurst_40"))


def test_a_constant_stretch_gives_invalid_not_infinite_values() -> None:
    close = np.concatenate([np.linspace(1, 2, 60), np.full(80, 2.0)])
    raw = compute_raw_features(_panel(close), SERIAL)
    for name in ("acf_30_1", "vr_40_2", "hurst_40"):
        f = raw.names.index(name)
        assert np.isfinite(raw.values[0, raw.valid[0, :, f], f]).all()
        assert not raw.valid[0, -1, f], f"{name} valid on a flat price"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("autocorrelation", {"windows": (2,)}, "windows of 3 bars or more"),
        ("autocorrelation", {"lags": (0,)}, "lags are 1 bar or more"),
        ("variance_ratio", {"periods": (1,)}, "q >= 2"),
        ("hurst", {"scales": (4, 4)}, "two or more distinct horizons"),
    ],
)
def test_bad_serial_settings_are_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeatureConfig.model_validate({field: value})
