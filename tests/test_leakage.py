"""Leak-proofing: perturb every input after bar t; nothing at or before t may change.

Runs over every registered feature family (`FAMILIES`) and every normalizer, so a new feature
that reads the future fails here without anyone writing a test for it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multiagent.data.exogenous import ExogenousSeries, asof_join
from multiagent.data.features import FAMILIES, FeatureConfig, compute_raw_features
from multiagent.data.featurize import FeaturePipelineConfig, compute_features
from multiagent.data.normalization import NormalizationConfig
from multiagent.data.panel import MarketPanel
from multiagent.data.splits import (
    SplitConfig,
    WalkForwardConfig,
    chronological_split,
    walk_forward_folds,
)
from multiagent.data.synthetic import SyntheticMarketConfig, generate_market

SMALL = FeatureConfig(
    returns=(1, 3),
    volatility=(5,),
    momentum=(4,),
    rsi=(5,),
    macd={"fast": 3, "slow": 6, "signal": 3},
    zscore=(5,),
    volume=(4,),
    range_volatility=(4,),
    regime={"short": 4, "long": 8},
    cross_sectional=("ret_3", "vol_5"),
    autocorrelation={"windows": (6,), "lags": (1, 2)},
    variance_ratio={"window": 6, "periods": (2, 3)},
    hurst={"window": 6, "scales": (1, 2, 4)},
)


def _panel(seed: int, n_bars: int = 90, holes: bool = True) -> MarketPanel:
    panel = generate_market(
        SyntheticMarketConfig(n_symbols=4, n_bars=n_bars, seed=seed, signal="momentum")
    ).panel
    if not holes:
        return panel
    fields = {name: array.copy() for name, array in panel.fields.items()}
    rng = np.random.default_rng(seed)
    for name in fields:  # a late listing and scattered missing bars
        fields[name][0, :15] = np.nan
        fields[name][2, rng.choice(n_bars, 6, replace=False)] = np.nan
    for name in fields:
        fields[name][np.isnan(fields["close"])] = np.nan
    return replace(panel, fields=fields)


def _perturb_after(panel: MarketPanel, t: int, seed: int) -> MarketPanel:
    rng = np.random.default_rng(seed + 1000)
    fields = {name: array.copy() for name, array in panel.fields.items()}
    n_future = panel.n_bars - t - 1
    shape = (panel.n_symbols, n_future)
    scale = np.exp(rng.normal(0, 0.3, shape))
    for name in ("open", "high", "low", "close"):
        fields[name][:, t + 1 :] *= scale
    fields["high"][:, t + 1 :] *= 1.01
    fields["volume"][:, t + 1 :] *= rng.uniform(0.1, 10, shape)
    fields["spread"][:, t + 1 :] *= rng.uniform(0.1, 10, shape)
    # Also remove some future bars and add others back: observation pattern changes too.
    drop = rng.random(shape) < 0.1
    for name in fields:
        fields[name][:, t + 1 :][drop] = np.nan
    return replace(panel, fields=fields)


def test_the_leak_config_switches_on_every_registered_family() -> None:
    for family, build in FAMILIES.items():
        assert build(SMALL), f"family {family} produces no feature under the leak-test config"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    t=st.integers(0, 88),
    method=st.sampled_from(["expanding", "rolling", "none"]),
    holes=st.booleans(),
)
def test_features_at_or_before_t_ignore_everything_after_t(
    seed: int, t: int, method: str, holes: bool
) -> None:
    panel = _panel(seed, holes=holes)
    config = FeaturePipelineConfig(
        features=SMALL,
        normalization=NormalizationConfig(method=method, window=10, min_periods=3),  # type: ignore[arg-type]
    )
    before = compute_features(panel, config)
    after = compute_features(_perturb_after(panel, t, seed), config)
    np.testing.assert_array_equal(before.values[:, : t + 1], after.values[:, : t + 1])
    np.testing.assert_array_equal(before.valid[:, : t + 1], after.valid[:, : t + 1])
    changed = not np.array_equal(before.values[:, t + 1 :], after.values[:, t + 1 :])
    assert changed or t >= 87, "the perturbation must actually reach the features"


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.integers(50, 88))
def test_train_fitted_normalizer_ignores_data_after_the_fit_end(seed: int, t: int) -> None:
    panel = _panel(seed)
    config = FeaturePipelineConfig(
        features=SMALL, normalization=NormalizationConfig(method="train", min_periods=3)
    )
    fit_end = 49
    before = compute_features(panel, config, fit_end=fit_end)
    after = compute_features(_perturb_after(panel, t, seed), config, fit_end=fit_end)
    assert before.stats is not None and after.stats is not None
    np.testing.assert_array_equal(before.stats.mean, after.stats.mean)
    np.testing.assert_array_equal(before.values[:, : t + 1], after.values[:, : t + 1])


def test_raw_features_respect_their_declared_lookback() -> None:
    """No feature is marked valid before its declared warm-up (guards the `valid` mask)."""
    panel = _panel(3, holes=False)
    raw = compute_raw_features(panel, SMALL)
    for f, (name, lookback) in enumerate(zip(raw.names, raw.lookbacks, strict=True)):
        first_valid = np.flatnonzero(raw.valid[1, :, f])
        assert len(first_valid), name
        assert first_valid[0] >= lookback, f"{name} valid before its declared look-back"


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.integers(0, 88), lag_hours=st.integers(0, 72))
def test_asof_join_ignores_values_published_after_t(seed: int, t: int, lag_hours: int) -> None:
    panel = _panel(seed, holes=False)
    rng = np.random.default_rng(seed)
    stamps = panel.timestamps + np.timedelta64(12, "h")  # published mid-day
    values = rng.normal(size=panel.n_bars)
    series = ExogenousSeries(stamps, {"x": values})
    lag = f"{lag_hours}h"
    before = asof_join(panel, series, lag)["x"]
    future = values.copy()
    cutoff = panel.timestamps[t]
    later = stamps + np.timedelta64(lag_hours, "h") > cutoff
    future[later] = rng.normal(size=int(later.sum())) + 100
    after = asof_join(panel, ExogenousSeries(stamps, {"x": future}), lag)["x"]
    np.testing.assert_array_equal(before[:, : t + 1], after[:, : t + 1])


def test_split_boundaries_depend_on_time_only() -> None:
    panel = _panel(1)
    perturbed = _perturb_after(panel, 40, 1)
    assert chronological_split(panel.n_bars, SplitConfig()) == chronological_split(
        perturbed.n_bars, SplitConfig()
    )
    config = WalkForwardConfig(train_bars=30, test_bars=10, purge=2)
    assert walk_forward_folds(panel.n_bars, config) == walk_forward_folds(perturbed.n_bars, config)
