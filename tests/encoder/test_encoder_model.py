"""The shared market encoder: shapes, causality, masking and its normalizer buffers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from multiagent.encoder.config import EncoderConfig
from multiagent.encoder.model import MarketEncoder

SMALL = EncoderConfig(hidden=8, embedding=6, layers=3)


def make_encoder(
    n_features: int = 5, window: int = 8, config: EncoderConfig = SMALL, seed: int = 0
) -> MarketEncoder:
    torch.manual_seed(seed)
    encoder = MarketEncoder(n_features, window, config)
    gen = torch.Generator().manual_seed(seed + 100)
    encoder.set_normalizer(
        torch.randn(n_features, generator=gen), torch.rand(n_features, generator=gen) + 0.5
    )
    return encoder.eval()


def windows(batch: int, window: int, n_features: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, window, n_features, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("batch", "window", "n_features"), [(1, 8, 5), (4, 3, 7), (2, 16, 1), (5, 1, 3)]
)
def test_output_shapes(batch: int, window: int, n_features: int) -> None:
    encoder = make_encoder(n_features, window)
    x = windows(batch, window, n_features)
    hidden = encoder.sequence(x)
    embedding = encoder(x)
    assert hidden.shape == (batch, window, SMALL.hidden)
    assert embedding.shape == (batch, SMALL.embedding)
    assert torch.isfinite(hidden).all() and torch.isfinite(embedding).all()
    # forward() is the output head applied to the last bar's hidden state.
    assert torch.allclose(embedding, encoder.out(hidden[:, -1]))


def test_default_config_and_embedding_dim() -> None:
    encoder = MarketEncoder(4, 8)
    assert encoder.config == EncoderConfig()
    assert encoder.embedding_dim == EncoderConfig().embedding
    assert encoder.n_features == 4 and encoder.window == 8
    custom = MarketEncoder(4, 8, EncoderConfig(hidden=12, embedding=3, layers=2))
    assert custom.embedding_dim == 3
    assert len(custom.blocks) == 2
    assert custom(torch.zeros(2, 8, 4)).shape == (2, 3)


def test_batch_rows_are_independent() -> None:
    # Each window is encoded on its own: changing one row of the batch leaves the others alone.
    encoder = make_encoder()
    x = windows(3, 8, 5)
    y = x.clone()
    y[1] += 2.0
    a, b = encoder.sequence(x), encoder.sequence(y)
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2])
    assert not torch.equal(a[1], b[1])


@pytest.mark.parametrize("k", [0, 3, 6])
def test_sequence_is_causal(k: int) -> None:
    encoder = make_encoder(seed=k)
    x = windows(4, 8, 5, seed=k)
    y = x.clone()
    y[:, k + 1 :] += 3.0 * torch.randn_like(y[:, k + 1 :])
    a, b = encoder.sequence(x), encoder.sequence(y)
    assert torch.equal(a[:, : k + 1], b[:, : k + 1])
    assert not torch.equal(a[:, k + 1 :], b[:, k + 1 :])


@pytest.mark.parametrize("k", [0, 3, 6])
def test_conv_stack_is_causal_without_the_norm(k: int) -> None:
    # The convolutions alone pad on the left only: every bar's hidden state depends only on
    # bars at or before it (the per-bar LayerNorm keeps that; see test_sequence_is_causal).
    encoder = make_encoder(seed=k)
    for block in encoder.blocks:
        block.norm = nn.Identity()
    x = windows(4, 8, 5, seed=k)
    y = x.clone()
    y[:, k + 1 :] += 3.0 * torch.randn_like(y[:, k + 1 :])
    a, b = encoder.sequence(x), encoder.sequence(y)
    assert torch.equal(a[:, : k + 1], b[:, : k + 1])
    assert not torch.equal(a[:, k + 1 :], b[:, k + 1 :])
    # ... and a change at bar k reaches bar k and every later bar of the window.
    z = x.clone()
    z[:, k] += 1.0
    c = encoder.sequence(z)
    assert torch.equal(a[:, :k], c[:, :k])
    assert all(not torch.equal(a[:, j], c[:, j]) for j in range(k, 8))


def test_receptive_field_covers_the_window() -> None:
    # kernel 2, dilations 1, 2, 4: the last bar sees all 8 bars (the norm plays no part in that).
    encoder = make_encoder()
    for block in encoder.blocks:
        block.norm = nn.Identity()
    x = windows(2, 8, 5)
    base = encoder(x)
    y = x.clone()
    y[:, 0] += 1.0
    assert not torch.equal(base, encoder(y))


def test_fully_hidden_window_ignores_values() -> None:
    encoder = make_encoder()
    hide = torch.ones(3, 8, 5)
    a = encoder.sequence(windows(3, 8, 5, seed=1), hide)
    b = encoder.sequence(windows(3, 8, 5, seed=2) * 50.0, hide)
    assert torch.equal(a, b)
    # Hidden means "the normalized mean": the same as feeding the raw feature means.
    at_mean = encoder.feature_mean.expand(3, 8, 5).clone()
    assert torch.allclose(a, encoder.sequence(at_mean), atol=1e-6)


def test_hidden_value_equals_feature_mean() -> None:
    encoder = make_encoder()
    x = windows(2, 8, 5)
    hide = torch.zeros_like(x)
    hide[:, 2, :] = 1.0  # a whole bar
    hide[:, 5, 3] = 1.0  # a single value
    replaced = x.clone()
    replaced[:, 2, :] = encoder.feature_mean
    replaced[:, 5, 3] = encoder.feature_mean[3]
    masked = encoder.sequence(x, hide)
    assert torch.allclose(masked, encoder.sequence(replaced), atol=1e-6)
    assert not torch.allclose(masked, encoder.sequence(x), atol=1e-3)
    # A zero mask is no mask.
    assert torch.equal(encoder.sequence(x, torch.zeros_like(x)), encoder.sequence(x))


def test_normalizer_is_applied_and_travels_in_state_dict() -> None:
    encoder = make_encoder()
    state = encoder.state_dict()
    assert "feature_mean" in state and "feature_std" in state
    assert torch.equal(state["feature_mean"], encoder.feature_mean)
    # Buffers, not trainable parameters.
    names = {name for name, _ in encoder.named_parameters()}
    assert "feature_mean" not in names and "feature_std" not in names
    # Shifting the input by the mean change and scaling by the std change is invisible.
    x = windows(2, 8, 5)
    other = MarketEncoder(5, 8, SMALL)
    other.load_state_dict(state)
    other.eval()
    assert torch.equal(other(x), encoder(x))
    other.set_normalizer(encoder.feature_mean + 1.0, encoder.feature_std * 2.0)
    shifted = (x - encoder.feature_mean) / encoder.feature_std * other.feature_std
    shifted = shifted + other.feature_mean
    assert torch.allclose(other(shifted), encoder(x), atol=1e-5)
    assert not torch.allclose(other(x), encoder(x), atol=1e-3)


def test_set_normalizer_clamps_zero_std() -> None:
    encoder = MarketEncoder(3, 4, SMALL)
    encoder.set_normalizer(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 2.0, 1e-9]))
    assert torch.equal(encoder.feature_mean, torch.tensor([1.0, 2.0, 3.0]))
    assert encoder.feature_std.tolist() == pytest.approx([1e-6, 2.0, 1e-6])
    assert torch.isfinite(encoder(torch.ones(2, 4, 3))).all()


def test_eval_is_deterministic_with_dropout() -> None:
    encoder = make_encoder(config=EncoderConfig(hidden=8, embedding=6, dropout=0.5))
    x = windows(4, 8, 5)
    assert torch.equal(encoder(x), encoder(x))  # eval(): dropout is off
    encoder.train()
    torch.manual_seed(0)
    first = encoder(x)
    torch.manual_seed(1)
    assert not torch.equal(first, encoder(x))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_traces_to_torchscript() -> None:
    encoder = make_encoder()
    x = windows(3, 8, 5)
    traced = torch.jit.trace(encoder, x)
    assert torch.allclose(traced(windows(3, 8, 5, seed=9)), encoder(windows(3, 8, 5, seed=9)))


@pytest.mark.parametrize(("kernel", "layers"), [(2, 3), (2, 5), (3, 2), (4, 3)])
def test_declared_receptive_field_is_what_the_last_bar_reads(kernel: int, layers: int) -> None:
    config = EncoderConfig(hidden=8, embedding=6, layers=layers, kernel=kernel)
    reach = config.receptive_field
    encoder = make_encoder(window=reach + 4, config=config)
    for block in encoder.blocks:
        block.norm = nn.Identity()
    x = windows(2, reach + 4, 5)
    base = encoder(x)
    inside, outside = x.clone(), x.clone()
    inside[:, -reach] += 1.0  # the oldest bar it reads
    outside[:, -reach - 1] += 1.0  # one bar older: never read
    assert not torch.equal(base, encoder(inside))
    assert torch.equal(base, encoder(outside))
    assert config.layers_to_read(reach) == layers
    assert config.layers_to_read(reach + 1) == layers + 1


def test_a_window_longer_than_the_encoder_reads_is_refused_with_the_layers_to_set() -> None:
    from multiagent.config import RunConfig

    with pytest.raises(
        ValueError,
        match=r"window is 32 bars but the encoder reads the last 8 "
        r".*set encoder.layers: 5",
    ):
        RunConfig.model_validate({"env": {"observation": {"window": 32}}})
    config = RunConfig.model_validate(
        {"env": {"observation": {"window": 32}}, "encoder": {"layers": 5}}
    )
    assert config.encoder.receptive_field == 32
    with pytest.raises(ValueError, match=r"agent.env.observation.window is 12"):
        RunConfig.model_validate(
            {"system": "portfolio", "agent": {"env": {"observation": {"window": 12}}}}
        )
