"""Masked next-step pretraining: window indexing, the fit/validation split, no look-ahead past the
training split, determinism, early stopping and that it learns a planted signal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from multiagent.data.featurize import FeaturePipelineConfig, compute_features
from multiagent.data.synthetic import RegimeSpec, SyntheticMarketConfig, generate_market
from multiagent.encoder.config import EncoderConfig, PretrainConfig
from multiagent.encoder.model import MarketEncoder
from multiagent.encoder.pretrain import (
    RETURN_CLIP,
    MaskedNextStepModel,
    PretrainData,
    build_pretrain_data,
    pretrain_encoder,
    window_ends,
)
from multiagent.errors import ConfigError

WINDOW = 8
TRAIN_STOP = 300
ENCODER = EncoderConfig(hidden=8, embedding=6, layers=3)
TINY = PretrainConfig(epochs=2, windows_per_epoch=256, batch_size=64, device="cpu")


@dataclass(frozen=True)
class Arrays:
    features: np.ndarray
    valid: np.ndarray
    close: np.ndarray


@pytest.fixture(scope="module")
def arrays() -> Arrays:
    market = generate_market(SyntheticMarketConfig(n_symbols=3, n_bars=400, seed=5))
    features = compute_features(market.panel, FeaturePipelineConfig())
    return Arrays(features.values, features.valid, market.panel.close)


def data_of(arrays: Arrays, config: PretrainConfig = TINY) -> PretrainData:
    return build_pretrain_data(
        arrays.features, arrays.valid, arrays.close, TRAIN_STOP, WINDOW, config
    )


def states_equal(a: MarketEncoder, b: MarketEncoder) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- window_ends ------------------------------------------------------------------------------


def test_window_ends_hand_built() -> None:
    valid = np.array(
        [
            [True, True, True, True, True, True],
            [True, True, False, True, True, True],
        ]
    )
    target_ok = np.ones_like(valid)
    target_ok[:, -1] = False
    ends = window_ends(valid, target_ok, 3, 0, 6)
    # Symbol 1 has one full window (bars 3..5) but its target bar 6 is outside [0, 6).
    assert ends.tolist() == [[0, 2], [0, 3], [0, 4]]
    assert ends.dtype == np.int64 and ends.shape == (3, 2)
    # lo: the first bar of the window must be >= lo.
    assert window_ends(valid, target_ok, 3, 1, 6).tolist() == [[0, 3], [0, 4]]
    # hi: the target bar t+1 must be < hi.
    assert window_ends(valid, target_ok, 3, 0, 5).tolist() == [[0, 2], [0, 3]]
    # target_ok gates each end point.
    target_ok[0, 3] = False
    assert window_ends(valid, target_ok, 3, 0, 6).tolist() == [[0, 2], [0, 4]]
    # A longer window than any valid run: nothing.
    assert window_ends(valid, target_ok, 7, 0, 6).shape == (0, 2)


def test_window_ends_window_one() -> None:
    valid = np.array([[False, True, True, False, True]])
    target_ok = np.array([[True, True, True, True, False]])
    assert window_ends(valid, target_ok, 1, 0, 5).tolist() == [[0, 1], [0, 2]]


@pytest.mark.parametrize("seed", range(4))
def test_window_ends_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    valid = rng.random((3, 40)) < 0.85
    target_ok = rng.random((3, 40)) < 0.9
    window, lo, hi = int(rng.integers(1, 6)), int(rng.integers(0, 8)), int(rng.integers(25, 41))
    expected = [
        [s, t]
        for s in range(3)
        for t in range(40)
        if t - window + 1 >= lo
        and t + 1 < hi
        and valid[s, t - window + 1 : t + 1].all()
        and target_ok[s, t]
    ]
    assert window_ends(valid, target_ok, window, lo, hi).tolist() == expected


# --- build_pretrain_data ------------------------------------------------------------------------


def test_too_few_windows_raise_config_error(arrays: Arrays) -> None:
    big_batch = PretrainConfig(batch_size=10_000, device="cpu")
    with pytest.raises(ConfigError, match="pretraining needs at least 10000 training windows"):
        data_of(arrays, big_batch)
    # A training split that ends before the features are valid.
    with pytest.raises(ConfigError, match="training split has 0 and 0"):
        build_pretrain_data(arrays.features, arrays.valid, arrays.close, 100, WINDOW, TINY)


def test_no_validation_window_raises(arrays: Arrays) -> None:
    valid = arrays.valid.copy()
    val_start = int(TRAIN_STOP * (1 - TINY.validation_fraction))
    valid[:, val_start:] = False
    with pytest.raises(ConfigError, match="and 0 \\(use more data"):
        build_pretrain_data(arrays.features, valid, arrays.close, TRAIN_STOP, WINDOW, TINY)


def test_fit_and_validation_are_purged_and_inside_the_split(arrays: Arrays) -> None:
    data = data_of(arrays)
    assert len(data.fit) >= TINY.batch_size and len(data.validation) > 0
    fit_t, val_t = data.fit[:, 1], data.validation[:, 1]
    # Every window and its target bar lie inside the training split.
    assert (val_t + 1 < TRAIN_STOP).all() and (fit_t - WINDOW + 1 >= 0).all()
    # Validation comes after fit, with a gap of at least one window between the last fit target
    # bar and the first validation window bar.
    first_val_bar = int((val_t - WINDOW + 1).min())
    last_fit_target = int((fit_t + 1).max())
    assert first_val_bar - last_fit_target - 1 >= WINDOW
    assert first_val_bar >= int(TRAIN_STOP * (1 - TINY.validation_fraction))
    # No bar is shared by a fit window (with its target) and a validation window.
    fit_bars = {(s, b) for s, t in data.fit.tolist() for b in range(t - WINDOW + 1, t + 2)}
    val_bars = {(s, b) for s, t in data.validation.tolist() for b in range(t - WINDOW + 1, t + 2)}
    assert not fit_bars & val_bars
    # Every window is fully valid and so is its target bar.
    for s, t in np.concatenate([data.fit, data.validation]).tolist():
        assert arrays.valid[s, t - WINDOW + 1 : t + 2].all()


def test_statistics_come_from_the_fit_part(arrays: Arrays) -> None:
    data = data_of(arrays)
    fit_stop = int(TRAIN_STOP * (1 - TINY.validation_fraction)) - (WINDOW + 1)
    rows = arrays.features[:, :fit_stop][arrays.valid[:, :fit_stop]]
    np.testing.assert_allclose(data.mean, rows.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data.std, rows.std(axis=0), rtol=1e-5, atol=1e-6)
    # The next-return target: log return t -> t+1 over the fit returns' std, clipped.
    s, t = data.fit[:, 0], data.fit[:, 1]
    raw = np.log(arrays.close[s, t + 1] / arrays.close[s, t])
    assert data.return_std == pytest.approx(float(np.std(raw)))
    expected = np.clip(raw / data.return_std, -RETURN_CLIP, RETURN_CLIP)
    np.testing.assert_allclose(data.next_return[s, t], expected, rtol=1e-5, atol=1e-6)
    assert data.features.dtype == np.float32 and data.next_return.dtype == np.float32


# --- pretrain_encoder ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(arrays: Arrays):
    return pretrain_encoder(data_of(arrays), ENCODER, TINY, seed=0)


def test_result_shape_and_normalizer(arrays: Arrays, reference) -> None:
    data = data_of(arrays)
    encoder = reference.encoder
    assert isinstance(encoder, MarketEncoder) and not encoder.training
    assert encoder.n_features == arrays.features.shape[2] and encoder.window == WINDOW
    assert encoder.feature_mean.device.type == "cpu"
    assert torch.equal(encoder.feature_mean, torch.from_numpy(data.mean))
    assert torch.equal(encoder.feature_std, torch.clamp(torch.from_numpy(data.std), min=1e-6))
    assert reference.n_fit_windows == len(data.fit)
    assert reference.n_validation_windows == len(data.validation)
    assert reference.return_std == data.return_std
    assert [row["epoch"] for row in reference.history] == [1.0, 2.0]
    for row in reference.history:
        for key in ("train_loss", "train_reconstruct", "val_loss", "val_next_return"):
            assert np.isfinite(row[key])
    assert 1 <= reference.best_epoch <= len(reference.history)


def test_no_look_ahead_past_train_stop(arrays: Arrays, reference) -> None:
    rng = np.random.default_rng(0)
    features = arrays.features.copy()
    close = arrays.close.copy()
    valid = arrays.valid.copy()
    future = (slice(None), slice(TRAIN_STOP, None))
    features[future] += rng.normal(0, 5, features[future].shape).astype(np.float32)
    close[future] *= np.exp(rng.normal(0, 0.3, close[future].shape))
    valid[future] = rng.random(valid[future].shape) < 0.5
    perturbed = build_pretrain_data(features, valid, close, TRAIN_STOP, WINDOW, TINY)
    original = data_of(arrays)
    assert np.array_equal(perturbed.fit, original.fit)
    assert np.array_equal(perturbed.validation, original.validation)
    assert np.array_equal(perturbed.mean, original.mean)
    assert np.array_equal(perturbed.std, original.std)
    assert perturbed.return_std == original.return_std
    result = pretrain_encoder(perturbed, ENCODER, TINY, seed=0)
    assert states_equal(result.encoder, reference.encoder)
    assert result.history == reference.history


def test_a_training_bar_does_change_the_weights(arrays: Arrays, reference) -> None:
    # Control for the look-ahead test: the same perturbation inside the split is seen.
    data = data_of(arrays)
    features = arrays.features.copy()
    s, t = (int(x) for x in data.fit[len(data.fit) // 2])
    features[s, t - 3 : t + 2] += 5.0
    changed = build_pretrain_data(features, arrays.valid, arrays.close, TRAIN_STOP, WINDOW, TINY)
    result = pretrain_encoder(changed, ENCODER, TINY, seed=0)
    assert not states_equal(result.encoder, reference.encoder)


def test_same_seed_same_weights_other_seed_other_weights(arrays: Arrays, reference) -> None:
    data = data_of(arrays)
    again = pretrain_encoder(data, ENCODER, TINY, seed=0)
    assert states_equal(again.encoder, reference.encoder)
    assert again.history == reference.history
    other = pretrain_encoder(data, ENCODER, TINY, seed=1)
    assert not states_equal(other.encoder, reference.encoder)
    x = torch.from_numpy(data.features[:2, 200 - WINDOW + 1 : 201])
    with torch.no_grad():
        assert not torch.allclose(other.encoder(x), reference.encoder(x))


def test_progress_reports_every_epoch(arrays: Arrays, reference) -> None:
    rows: list[dict[str, float]] = []
    result = pretrain_encoder(data_of(arrays), ENCODER, TINY, seed=0, progress=rows.append)
    assert rows == result.history == reference.history


def test_early_stopping_returns_the_best_epoch(arrays: Arrays) -> None:
    # No later epoch can beat the first by min_delta: patience 1 stops after epoch 2.
    data = data_of(arrays)
    config = TINY.model_copy(update={"epochs": 30, "patience": 1, "min_delta": 1e6})
    result = pretrain_encoder(data, ENCODER, config, seed=3)
    assert len(result.history) == 2
    assert result.stopped_early and result.best_epoch == 1
    # The returned weights are epoch 1's, not epoch 2's: equal to a one-epoch run's.
    one = pretrain_encoder(data, ENCODER, TINY.model_copy(update={"epochs": 1}), seed=3)
    two = pretrain_encoder(data, ENCODER, TINY.model_copy(update={"epochs": 2}), seed=3)
    assert states_equal(result.encoder, one.encoder)
    assert not states_equal(result.encoder, two.encoder)


@pytest.mark.parametrize(
    ("lr", "seed", "stops"),
    [(0.02, 1, True), (1e-3, 0, False)],
    ids=["noisy-stops", "patient-runs-out"],
)
def test_early_stopping_bookkeeping(arrays: Arrays, lr: float, seed: int, stops: bool) -> None:
    # A large learning rate overshoots within a few epochs (validation loss jumps up) and
    # patience 1 stops; with patience = epochs the run always uses every epoch.
    data = data_of(arrays)
    epochs = 12
    patience = 1 if stops else epochs
    config = TINY.model_copy(update={"epochs": epochs, "patience": patience, "lr": lr})
    result = pretrain_encoder(data, ENCODER, config, seed=seed)
    history = result.history
    assert result.stopped_early == (len(history) < epochs)
    assert result.stopped_early is stops
    losses = [row["val_loss"] for row in history]
    assert losses[result.best_epoch - 1] == min(losses)
    if result.stopped_early:
        # Stopped on the first epoch that failed to improve on the best by min_delta.
        assert result.best_epoch == len(history) - 1
        assert losses[-1] >= losses[-2] - config.min_delta
    # The returned encoder is the best epoch's: a run cut at that epoch gives the same weights.
    cut = pretrain_encoder(
        data, ENCODER, config.model_copy(update={"epochs": result.best_epoch}), seed=seed
    )
    assert cut.history == history[: result.best_epoch]
    assert states_equal(result.encoder, cut.encoder)


def test_learns_a_planted_momentum_signal() -> None:
    # One calm, driftless regime keeps the validation targets' scale equal to the fit part's,
    # so a standardized next-return loss of ~1.0 means no skill (the signal explains 30%).
    calm = {"calm": RegimeSpec(vol=0.01, drift=0.0, mean_duration=10_000)}
    market = generate_market(
        SyntheticMarketConfig(
            n_symbols=4, n_bars=1200, seed=0, signal="momentum", signal_r2=0.3, regimes=calm
        )
    )
    features = compute_features(market.panel, FeaturePipelineConfig())
    config = PretrainConfig(
        epochs=4,
        windows_per_epoch=1024,
        batch_size=64,
        lr=3e-3,
        patience=4,
        return_weight=3.0,
        device="cpu",
    )
    data = build_pretrain_data(
        features.values, features.valid, market.panel.close, 1200, WINDOW, config
    )
    result = pretrain_encoder(data, ENCODER.model_copy(update={"hidden": 16}), config, seed=0)
    val = data.validation
    no_skill = float(np.mean(data.next_return[val[:, 0], val[:, 1]] ** 2))
    best = result.history[result.best_epoch - 1]["val_next_return"]
    assert best < 1.0
    assert best < 0.9 * no_skill


def test_masked_model_heads_shapes() -> None:
    encoder = MarketEncoder(5, WINDOW, ENCODER)
    model = MaskedNextStepModel(encoder)
    x = torch.randn(3, WINDOW, 5)
    recon, next_feat, next_ret = model(x, torch.zeros_like(x))
    assert recon.shape == (3, WINDOW, 5)
    assert next_feat.shape == (3, 5)
    assert next_ret.shape == (3,)
    # The next-step heads read the same embedding the RL policy gets from forward().
    with torch.no_grad():
        assert torch.allclose(model.next_return(encoder(x)).squeeze(-1), next_ret)
