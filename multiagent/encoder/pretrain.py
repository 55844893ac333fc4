"""Masked next-step pretraining of the shared encoder on the training split only.

Each example is a window of W feature bars of one symbol ending at bar t. Some bars and some
single values of the window are masked (set to the normalized mean). The encoder must recover
the masked values from the rest of the window (a reconstruction head on the per-bar hidden
states), and predict bar t+1 from the embedding of bar t: its features and its log return. The
masking forces it to model how features co-move; the next-step targets force the embedding to
carry what is predictable. Bar t+1 is a label here, never an input, and every target bar lies
inside the training split: the last ``validation_fraction`` of the split (after a purge of W+1
bars) only decides early stopping.

Seeded: the same data, config and seed give the same weights (on CPU).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from multiagent.encoder.config import EncoderConfig, PretrainConfig
from multiagent.encoder.model import MarketEncoder
from multiagent.errors import ConfigError

RETURN_CLIP = 5.0


@dataclass
class PretrainData:
    """Window end points of the fit and validation parts, plus the arrays they index."""

    features: np.ndarray  # (S, T, F) float32
    next_return: np.ndarray  # (S, T) float32, standardized log return from t to t+1
    fit: np.ndarray  # (n, 2) int64 (symbol, t) of windows ending at t
    validation: np.ndarray
    window: int
    mean: np.ndarray
    std: np.ndarray
    return_std: float


def window_ends(
    valid: np.ndarray, target_ok: np.ndarray, window: int, lo: int, hi: int
) -> np.ndarray:
    """(n, 2) (symbol, t) with every bar of ``t-W+1..t`` valid, ``target_ok[s, t]``, and the
    whole window plus its target bar inside ``[lo, hi)``."""
    counts = np.concatenate(
        [np.zeros((valid.shape[0], 1), np.int64), np.cumsum(valid, axis=1, dtype=np.int64)], axis=1
    )
    t = np.arange(valid.shape[1])
    full = np.zeros_like(valid)
    full[:, window - 1 :] = (counts[:, window:] - counts[:, :-window]) == window
    inside = (t - window + 1 >= lo) & (t + 1 < hi)
    symbols, ends = np.nonzero(full & target_ok & inside[None, :])
    return np.stack([symbols, ends], axis=1).astype(np.int64)


def build_pretrain_data(
    features: np.ndarray,
    valid: np.ndarray,
    close: np.ndarray,
    train_stop: int,
    window: int,
    config: PretrainConfig,
) -> PretrainData:
    """Index the training split's windows; statistics come from the fit part only."""
    n_bars = features.shape[1]
    train_stop = min(train_stop, n_bars)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ret = np.log(close[:, 1:] / close[:, :-1])
    next_ret = np.full(close.shape, np.nan)
    next_ret[:, :-1] = log_ret
    target_ok = np.zeros_like(valid)
    target_ok[:, :-1] = valid[:, 1:] & np.isfinite(next_ret[:, :-1])
    val_start = int(train_stop * (1.0 - config.validation_fraction))
    fit_stop = val_start - (window + 1)
    fit = window_ends(valid, target_ok, window, 0, fit_stop)
    validation = window_ends(valid, target_ok, window, val_start, train_stop)
    if len(fit) < config.batch_size or len(validation) == 0:
        raise ConfigError(
            f"pretraining needs at least {config.batch_size} training windows and one validation "
            f"window of {window} valid bars; the training split has {len(fit)} and "
            f"{len(validation)} (use more data, a longer train split or a smaller batch_size)"
        )
    rows = valid[:, :fit_stop]
    sample = features[:, :fit_stop][rows]
    mean = sample.mean(axis=0)
    std = sample.std(axis=0)
    fit_returns = next_ret[fit[:, 0], fit[:, 1]]
    return_std = float(np.std(fit_returns)) or 1.0
    standardized = np.clip(np.nan_to_num(next_ret / return_std), -RETURN_CLIP, RETURN_CLIP)
    return PretrainData(
        features=np.ascontiguousarray(features, dtype=np.float32),
        next_return=standardized.astype(np.float32),
        fit=fit,
        validation=validation,
        window=window,
        mean=mean.astype(np.float32),
        std=std.astype(np.float32),
        return_std=return_std,
    )


class MaskedNextStepModel(nn.Module):
    """The encoder plus the pretraining heads (dropped after pretraining)."""

    def __init__(self, encoder: MarketEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        f, h, e = encoder.n_features, encoder.config.hidden, encoder.embedding_dim
        self.reconstruct = nn.Linear(h, f)
        self.next_features = nn.Linear(e, f)
        self.next_return = nn.Linear(e, 1)

    def forward(
        self, windows: torch.Tensor, hide: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.encoder.sequence(windows, hide)
        embedding = self.encoder.out(hidden[:, -1])
        return (
            self.reconstruct(hidden),
            self.next_features(embedding),
            self.next_return(embedding).squeeze(-1),
        )


@dataclass
class PretrainResult:
    encoder: MarketEncoder
    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool
    seconds: float
    n_fit_windows: int
    n_validation_windows: int
    return_std: float
    extra: dict[str, Any] = field(default_factory=dict)


def _batch(
    data: PretrainData, ends: np.ndarray, config: PretrainConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, ...]:
    w = data.window
    lags = np.arange(-w + 1, 1)
    symbols, t = ends[:, 0], ends[:, 1]
    windows = data.features[symbols[:, None], t[:, None] + lags[None, :]]
    target_feat = data.features[symbols, t + 1]
    target_ret = data.next_return[symbols, t]
    n, f = len(ends), data.features.shape[2]
    hide = rng.random((n, w, 1)) < config.mask_steps
    hide = hide | (rng.random((n, w, f)) < config.mask_features)
    return (
        torch.from_numpy(windows),
        torch.from_numpy(hide.astype(np.float32)),
        torch.from_numpy(target_feat),
        torch.from_numpy(target_ret),
    )


def _losses(
    model: MaskedNextStepModel,
    batch: tuple[torch.Tensor, ...],
    config: PretrainConfig,
    device: torch.device,
) -> tuple[torch.Tensor, dict[str, float]]:
    windows, hide, target_feat, target_ret = (x.to(device) for x in batch)
    encoder = model.encoder
    recon, next_feat, next_ret = model(windows, hide)
    scaled = encoder.normalize(windows)
    hidden_count = hide.sum().clamp(min=1.0)
    recon_loss = (((recon - scaled) ** 2) * hide).sum() / hidden_count / scaled.shape[-1]
    target = encoder.normalize(target_feat)
    next_loss = ((next_feat - target) ** 2).mean()
    return_loss = ((next_ret - target_ret) ** 2).mean()
    total = recon_loss + next_loss + config.return_weight * return_loss
    return total, {
        "reconstruct": float(recon_loss.detach()),
        "next_features": float(next_loss.detach()),
        "next_return": float(return_loss.detach()),
    }


def pretrain_encoder(
    data: PretrainData,
    encoder_config: EncoderConfig,
    config: PretrainConfig,
    *,
    seed: int = 0,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> PretrainResult:
    """Train until validation loss stops improving for ``patience`` epochs; keep the best."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.torch_threads)
    try:
        return _pretrain(data, encoder_config, config, seed, progress)
    finally:
        torch.set_num_threads(threads)


def _pretrain(
    data: PretrainData,
    encoder_config: EncoderConfig,
    config: PretrainConfig,
    seed: int,
    progress: Callable[[dict[str, float]], None] | None,
) -> PretrainResult:
    began = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if config.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(config.device)
    encoder = MarketEncoder(data.features.shape[2], data.window, encoder_config)
    encoder.set_normalizer(torch.from_numpy(data.mean), torch.from_numpy(data.std))
    model = MaskedNextStepModel(encoder).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    # A fixed validation sample with fixed masks: epochs are compared on the same examples.
    val_rng = np.random.default_rng(seed + 1)
    val_ends = data.validation
    if len(val_ends) > 20_000:
        val_ends = val_ends[np.sort(val_rng.choice(len(val_ends), 20_000, replace=False))]
    val_batches = [
        _batch(data, val_ends[i : i + 4096], config, val_rng) for i in range(0, len(val_ends), 4096)
    ]
    # The loss of predicting a zero return: the no-skill line for the next-return loss (the
    # validation period's variance differs from the fit period's, so it is not 1.0).
    no_skill = float(
        np.average(
            [float((b[3] ** 2).mean()) for b in val_batches],
            weights=[len(b[0]) for b in val_batches],
        )
    )
    per_epoch = config.windows_per_epoch or len(data.fit)
    best, best_epoch, best_state, stale = math.inf, 0, None, 0
    history: list[dict[str, float]] = []
    stopped_early = False
    for epoch in range(1, config.epochs + 1):
        model.train()
        picks = rng.choice(len(data.fit), size=per_epoch, replace=per_epoch > len(data.fit))
        totals: dict[str, float] = {}
        n_batches = 0
        for i in range(0, per_epoch, config.batch_size):
            batch = _batch(data, data.fit[picks[i : i + config.batch_size]], config, rng)
            loss, parts = _losses(model, batch, config, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            n_batches += 1
            for key, value in {"loss": float(loss.detach()), **parts}.items():
                totals[key] = totals.get(key, 0.0) + value
        model.eval()
        with torch.no_grad():
            weights = [len(b[0]) for b in val_batches]
            val = [_losses(model, b, config, device) for b in val_batches]
            val_loss = float(np.average([float(v[0]) for v in val], weights=weights))
            val_ret = float(np.average([v[1]["next_return"] for v in val], weights=weights))
        row = {f"train_{k}": v / n_batches for k, v in totals.items()}
        row.update(
            {
                "epoch": float(epoch),
                "val_loss": val_loss,
                "val_next_return": val_ret,
                "val_next_return_no_skill": no_skill,
            }
        )
        history.append(row)
        if progress is not None:
            progress(row)
        if val_loss < best - config.min_delta:
            best, best_epoch, stale = val_loss, epoch, 0
            best_state = {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                stopped_early = epoch < config.epochs
                break
    assert best_state is not None
    encoder = encoder.cpu()
    encoder.load_state_dict(best_state)
    encoder.eval()
    return PretrainResult(
        encoder=encoder,
        history=history,
        best_epoch=best_epoch,
        stopped_early=stopped_early,
        seconds=time.perf_counter() - began,
        n_fit_windows=len(data.fit),
        n_validation_windows=len(data.validation),
        return_std=data.return_std,
    )
