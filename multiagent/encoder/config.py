"""Typed settings of the shared market encoder and of its pretraining."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from multiagent.schema import Settings


class EncoderConfig(Settings):
    """Shape of the encoder; the observation window length comes from ``env.observation``."""

    hidden: int = Field(32, ge=4, le=1024, description="Channels of the temporal conv stack.")
    embedding: int = Field(32, ge=2, le=1024, description="Size of the per-bar embedding.")
    kernel: int = Field(2, ge=2, le=8, description="Conv kernel width (bars).")
    layers: int = Field(
        3, ge=1, le=8, description="Residual causal conv blocks; dilation doubles per block."
    )
    dropout: float = Field(0.0, ge=0, lt=1)

    @property
    def receptive_field(self) -> int:
        """Bars the last bar's embedding reads: 1 + (kernel - 1)(1 + 2 + ... + 2^(layers-1))."""
        return 1 + (self.kernel - 1) * (2**self.layers - 1)

    def layers_to_read(self, window: int) -> int:
        """The fewest layers (dilation doubling) whose receptive field covers ``window`` bars."""
        layers = 1
        while 1 + (self.kernel - 1) * (2**layers - 1) < window:
            layers += 1
        return layers


class PretrainConfig(Settings):
    """Masked next-step pretraining on the training split (see `multiagent.encoder.pretrain`)."""

    epochs: int = Field(20, ge=1, description="Upper bound on passes over the training windows.")
    batch_size: int = Field(256, ge=8)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    windows_per_epoch: int | None = Field(
        20_000, ge=64, description="Windows drawn per epoch (null = all of them)."
    )
    mask_steps: float = Field(
        0.15, ge=0, le=1, description="Probability that a whole bar of the window is masked."
    )
    mask_features: float = Field(
        0.15, ge=0, le=1, description="Probability that a single feature value is masked."
    )
    return_weight: float = Field(
        1.0, ge=0, description="Weight of the next-bar return loss vs the feature losses."
    )
    validation_fraction: float = Field(
        0.15,
        gt=0,
        lt=0.5,
        description="Last part of the training split held out for early stopping.",
    )
    patience: int = Field(3, ge=1, description="Epochs without validation improvement to stop.")
    min_delta: float = Field(1e-4, ge=0, description="Smallest validation-loss gain that counts.")
    device: Literal["cpu", "cuda", "auto"] = "auto"
    torch_threads: int = Field(
        1,
        ge=1,
        description="CPU threads; a small encoder runs fastest on one (more threads only "
        "contend with Ray's processes).",
    )
