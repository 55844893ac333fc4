"""The shared market encoder (torch only, no Ray): model, masked pretraining, checkpoints."""

from typing import TYPE_CHECKING

from multiagent.lazy import lazy_exports

if TYPE_CHECKING:
    from multiagent.encoder.checkpoint import (
        EncoderCheckpointError,
        EncoderMeta,
        check_features,
        load_encoder,
        read_encoder,
        save_encoder,
    )
    from multiagent.encoder.config import EncoderConfig, PretrainConfig
    from multiagent.encoder.model import MarketEncoder
    from multiagent.encoder.pretrain import PretrainResult, build_pretrain_data, pretrain_encoder

__getattr__ = lazy_exports(
    __name__,
    {
        "EncoderCheckpointError": "checkpoint",
        "EncoderMeta": "checkpoint",
        "check_features": "checkpoint",
        "load_encoder": "checkpoint",
        "read_encoder": "checkpoint",
        "save_encoder": "checkpoint",
        "EncoderConfig": "config",
        "PretrainConfig": "config",
        "MarketEncoder": "model",
        "PretrainResult": "pretrain",
        "build_pretrain_data": "pretrain",
        "pretrain_encoder": "pretrain",
    },
)

__all__ = [
    "EncoderCheckpointError",
    "EncoderConfig",
    "EncoderMeta",
    "MarketEncoder",
    "PretrainConfig",
    "PretrainResult",
    "build_pretrain_data",
    "check_features",
    "load_encoder",
    "pretrain_encoder",
    "read_encoder",
    "save_encoder",
]
