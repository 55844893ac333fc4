"""The shared market encoder (torch only, no Ray): model, masked pretraining, checkpoints."""

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
