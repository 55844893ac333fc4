"""Encoder checkpoints: round trip, safe loading, overwrite protection and feature checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from multiagent.encoder.checkpoint import (
    FORMAT,
    EncoderCheckpointError,
    check_features,
    load_encoder,
    read_encoder,
    save_encoder,
)
from multiagent.encoder.config import EncoderConfig
from multiagent.encoder.model import MarketEncoder
from multiagent.errors import MultiagentError

NAMES = ("ret_1", "ret_5", "vol_20", "rsi_14")
WINDOW = 6
CONFIG = EncoderConfig(hidden=8, embedding=5, layers=2)


@pytest.fixture
def encoder() -> MarketEncoder:
    torch.manual_seed(0)
    model = MarketEncoder(len(NAMES), WINDOW, CONFIG)
    model.set_normalizer(torch.tensor([0.1, -0.2, 0.3, 50.0]), torch.tensor([1.0, 2.0, 0.5, 10.0]))
    return model.eval()


@pytest.fixture
def saved(tmp_path: Path, encoder: MarketEncoder) -> Path:
    return save_encoder(
        tmp_path / "enc" / "encoder.pt", encoder, NAMES, "fp-123", {"epochs": 3, "note": "x"}
    )


def test_round_trip(saved: Path, encoder: MarketEncoder) -> None:
    assert saved.is_file()
    loaded, meta = load_encoder(saved, NAMES, WINDOW)
    assert not loaded.training
    assert meta.feature_names == NAMES
    assert meta.window == WINDOW
    assert meta.config == CONFIG
    assert meta.data_fingerprint == "fp-123"
    assert meta.info == {"epochs": 3, "note": "x"}
    a, b = encoder.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(loaded.feature_mean, encoder.feature_mean)
    assert torch.equal(loaded.feature_std, encoder.feature_std)
    x = torch.randn(3, WINDOW, len(NAMES)) * 5 + 1
    with torch.no_grad():
        assert torch.equal(loaded(x), encoder(x))
        assert torch.equal(loaded.sequence(x), encoder.sequence(x))


def test_load_without_checks(saved: Path, encoder: MarketEncoder) -> None:
    loaded, meta = load_encoder(saved)
    assert loaded.n_features == len(NAMES) and loaded.window == WINDOW
    assert loaded.embedding_dim == CONFIG.embedding
    state, meta2 = read_encoder(saved)
    assert meta2 == meta
    assert torch.equal(state["feature_mean"], encoder.feature_mean)


def test_file_loads_with_weights_only(saved: Path) -> None:
    payload = torch.load(saved, weights_only=True)
    assert payload["format"] == FORMAT
    assert payload["feature_names"] == list(NAMES)
    assert payload["window"] == WINDOW
    assert all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values())
    assert "feature_mean" in payload["state_dict"] and "feature_std" in payload["state_dict"]


def test_refuses_to_overwrite(tmp_path: Path, encoder: MarketEncoder, saved: Path) -> None:
    before = saved.read_bytes()
    torch.manual_seed(1)
    other = MarketEncoder(len(NAMES), WINDOW, CONFIG)
    with pytest.raises(EncoderCheckpointError, match="exists; refusing to overwrite"):
        save_encoder(saved, other, NAMES, "fp-other")
    assert saved.read_bytes() == before
    save_encoder(saved, other, NAMES, "fp-other", overwrite=True)
    loaded, meta = load_encoder(saved)
    assert meta.data_fingerprint == "fp-other"
    assert torch.equal(loaded.inp.weight, other.inp.weight)
    assert not torch.equal(loaded.inp.weight, encoder.inp.weight)
    # Atomic write: no temporary file is left next to the checkpoint.
    assert sorted(p.name for p in saved.parent.iterdir()) == ["encoder.pt"]


def test_wrong_number_of_names_is_refused(tmp_path: Path, encoder: MarketEncoder) -> None:
    with pytest.raises(ValueError, match="3 feature names for 4 inputs"):
        save_encoder(tmp_path / "e.pt", encoder, NAMES[:3], "fp")
    assert not (tmp_path / "e.pt").exists()


def test_missing_feature(saved: Path) -> None:
    with pytest.raises(EncoderCheckpointError, match=r"missing \['vol_20'\]") as info:
        load_encoder(saved, ("ret_1", "ret_5", "rsi_14"), WINDOW)
    assert "unexpected" not in str(info.value)
    assert str(saved) in str(info.value)


def test_extra_feature(saved: Path) -> None:
    with pytest.raises(EncoderCheckpointError, match=r"unexpected \['macd'\]") as info:
        load_encoder(saved, (*NAMES, "macd"), WINDOW)
    assert "missing" not in str(info.value)


def test_renamed_feature_names_both(saved: Path) -> None:
    with pytest.raises(EncoderCheckpointError) as info:
        load_encoder(saved, ("ret_1", "ret_5", "vol_60", "rsi_14"), WINDOW)
    message = str(info.value)
    assert "missing ['vol_20']" in message and "unexpected ['vol_60']" in message


def test_reordered_features(saved: Path) -> None:
    reordered = ("ret_5", "ret_1", "vol_20", "rsi_14")
    with pytest.raises(EncoderCheckpointError, match="same names in another order") as info:
        load_encoder(saved, reordered, WINDOW)
    assert str(list(reordered)) in str(info.value)
    assert str(list(NAMES)) in str(info.value)


def test_window_mismatch(saved: Path) -> None:
    with pytest.raises(EncoderCheckpointError, match=r"windows of 6 bars but the env observes 8"):
        load_encoder(saved, NAMES, 8)
    _, meta = read_encoder(saved)
    with pytest.raises(EncoderCheckpointError, match="observes 3"):
        check_features(meta, NAMES, 3, source="here")
    check_features(meta, list(NAMES), WINDOW, source="here")  # a list matches too


def test_errors_are_user_errors() -> None:
    assert issubclass(EncoderCheckpointError, MultiagentError)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EncoderCheckpointError, match="no encoder checkpoint there"):
        load_encoder(tmp_path / "nope.pt")
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(EncoderCheckpointError, match="no encoder checkpoint there"):
        read_encoder(tmp_path / "folder.pt")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage" * 10])
def test_garbage_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(EncoderCheckpointError, match="not a readable encoder checkpoint"):
        load_encoder(path)


def test_truncated_checkpoint(saved: Path) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(EncoderCheckpointError, match="not a readable encoder checkpoint"):
        load_encoder(saved)


def test_other_torch_formats(tmp_path: Path, encoder: MarketEncoder) -> None:
    plain_state = tmp_path / "state.pt"
    torch.save(encoder.state_dict(), plain_state)  # a bare state dict: no format tag
    with pytest.raises(EncoderCheckpointError, match=re.escape(f"expected format {FORMAT!r}")):
        load_encoder(plain_state)
    tagged = tmp_path / "tagged.pt"
    torch.save({"format": "something.else/2", "state_dict": {}}, tagged)
    with pytest.raises(EncoderCheckpointError, match=re.escape("found 'something.else/2'")):
        load_encoder(tagged)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(EncoderCheckpointError, match="found 'Tensor'"):
        load_encoder(tensor)


def test_pickled_module_is_not_executed(tmp_path: Path, encoder: MarketEncoder) -> None:
    # A whole pickled module needs arbitrary code to load: weights_only refuses it.
    path = tmp_path / "module.pt"
    torch.save(encoder, path)
    with pytest.raises(EncoderCheckpointError, match="not a readable encoder checkpoint"):
        load_encoder(path)


def test_right_tag_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "partial.pt"
    torch.save({"format": FORMAT, "state_dict": {}}, path)
    with pytest.raises(EncoderCheckpointError):
        read_encoder(path)
