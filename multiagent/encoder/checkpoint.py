"""Encoder checkpoints: weights + config + feature names + normalizer stats + data fingerprint.

One ``torch.save`` file of plain containers and tensors, so it loads with
``torch.load(weights_only=True)`` (no pickled code runs on load). The normalizer statistics are
buffers of the state dict. Loading against a feature list that differs in names or order fails
with one message naming the differences: an encoder silently fed permuted features is the worst
kind of bug.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from multiagent.encoder.config import EncoderConfig
from multiagent.encoder.model import MarketEncoder
from multiagent.errors import MultiagentError

FORMAT = "multiagent.encoder/1"


class EncoderCheckpointError(MultiagentError):
    """An encoder checkpoint is missing, unreadable or does not fit the data."""


@dataclass(frozen=True)
class EncoderMeta:
    feature_names: tuple[str, ...]
    window: int
    config: EncoderConfig
    data_fingerprint: str
    info: dict[str, Any]


def save_encoder(
    path: str | Path,
    encoder: MarketEncoder,
    feature_names: tuple[str, ...] | list[str],
    data_fingerprint: str,
    info: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write atomically; refuses to replace an existing file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise EncoderCheckpointError(f"{path} exists; refusing to overwrite it")
    if len(feature_names) != encoder.n_features:
        raise ValueError(f"{len(feature_names)} feature names for {encoder.n_features} inputs")
    payload = {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        "config": encoder.config.model_dump(),
        "feature_names": list(feature_names),
        "window": encoder.window,
        "data_fingerprint": data_fingerprint,
        "info": info or {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_encoder(path: str | Path) -> tuple[dict[str, torch.Tensor], EncoderMeta]:
    path = Path(path)
    if not path.is_file():
        raise EncoderCheckpointError(f"{path}: no encoder checkpoint there")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise EncoderCheckpointError(
            f"{path}: not a readable encoder checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise EncoderCheckpointError(f"{path}: expected format {FORMAT!r}, found {found!r}")
    try:
        meta = EncoderMeta(
            feature_names=tuple(payload["feature_names"]),
            window=int(payload["window"]),
            config=EncoderConfig.model_validate(payload["config"]),
            data_fingerprint=str(payload["data_fingerprint"]),
            info=dict(payload["info"]),
        )
        state = dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError) as exc:
        raise EncoderCheckpointError(
            f"{path}: incomplete encoder checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    return state, meta


def check_features(
    meta: EncoderMeta, feature_names: tuple[str, ...] | list[str], window: int, *, source: str
) -> None:
    """Raise unless the encoder was trained on exactly these features (same order) and window."""
    expected, got = list(meta.feature_names), list(feature_names)
    if expected != got:
        missing = [n for n in expected if n not in got]
        extra = [n for n in got if n not in expected]
        detail = []
        if missing:
            detail.append(f"missing {missing}")
        if extra:
            detail.append(f"unexpected {extra}")
        if not detail:
            detail.append(f"same names in another order: expected {expected}, got {got}")
        raise EncoderCheckpointError(
            f"{source}: the encoder was pretrained on other features ({'; '.join(detail)}); "
            "pretrain again with this run's feature config"
        )
    if meta.window != window:
        raise EncoderCheckpointError(
            f"{source}: the encoder was pretrained on windows of {meta.window} bars but the env "
            f"observes {window} (env.observation.window)"
        )


def load_encoder(
    path: str | Path,
    feature_names: tuple[str, ...] | list[str] | None = None,
    window: int | None = None,
) -> tuple[MarketEncoder, EncoderMeta]:
    state, meta = read_encoder(path)
    if feature_names is not None:
        check_features(meta, feature_names, window or meta.window, source=str(path))
    encoder = MarketEncoder(len(meta.feature_names), meta.window, meta.config)
    try:
        encoder.load_state_dict(state)
    except RuntimeError as exc:
        raise EncoderCheckpointError(
            f"{path}: weights do not fit the encoder its config describes ({exc})"
        ) from None
    encoder.eval()
    return encoder, meta
