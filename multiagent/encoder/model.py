"""The shared market encoder: a causal temporal conv net over a window of feature bars.

Why a temporal conv and not a GRU or a transformer: the window is short (8 bars by default), so
a stack of causal dilated convolutions (kernel 2, dilations 1, 2, 4) sees the whole window with
three layers, runs every bar in parallel (no sequential recurrence), traces cleanly to
TorchScript for inference, and costs a few thousand multiply-adds per symbol and bar, which keeps
it far below RLlib's own per-step cost. Causality is structural (left padding only), so the
embedding of bar t never reads bar t+1 even inside the window; a test perturbs later bars.

The encoder owns its input normalizer (per-feature mean and std from the pretraining data, as
buffers) so its statistics travel with its weights into every RLModule and export.
"""

from __future__ import annotations

import torch
from torch import nn

from multiagent.encoder.config import EncoderConfig


class _CausalBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation)
        # LayerNorm over channels, bar by bar: a norm pooling over time would leak later bars.
        self.norm = nn.LayerNorm(channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(nn.functional.pad(x, (self.pad, 0)))
        y = self.norm(y.transpose(1, 2)).transpose(1, 2)
        return x + self.drop(nn.functional.gelu(y))


class MarketEncoder(nn.Module):
    """(B, W, F) feature windows -> (B, E) embedding of the last bar, or (B, W, H) per bar."""

    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, n_features: int, window: int, config: EncoderConfig | None = None) -> None:
        super().__init__()
        config = config or EncoderConfig()
        self.config = config
        self.n_features = n_features
        self.window = window
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.inp = nn.Conv1d(n_features, config.hidden, 1)
        self.blocks = nn.Sequential(
            *(
                _CausalBlock(config.hidden, config.kernel, 2**i, config.dropout)
                for i in range(config.layers)
            )
        )
        self.out = nn.Linear(config.hidden, config.embedding)

    @property
    def embedding_dim(self) -> int:
        return self.config.embedding

    def set_normalizer(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(torch.clamp(std, min=1e-6))

    def normalize(self, values: torch.Tensor) -> torch.Tensor:
        """Feature values (..., F) in the encoder's normalized units."""
        return (values - self.feature_mean) / self.feature_std

    def sequence(self, windows: torch.Tensor, hide: torch.Tensor | None = None) -> torch.Tensor:
        """(B, W, F) -> (B, W, H): hidden state of every bar, each from bars <= itself.

        ``hide`` (B, W, F), 1 where a value is masked out, sets it to the normalized mean (0):
        the pretraining task's masking, applied after normalization so a masked value carries
        no information.
        """
        x = self.normalize(windows)
        if hide is not None:
            x = x * (1.0 - hide)
        h = self.blocks(self.inp(x.transpose(1, 2)))
        return h.transpose(1, 2)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.out(self.sequence(windows)[:, -1])
