"""Phase 1: pretrain the shared encoder on the training split and write its checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from multiagent.config import RunConfig
from multiagent.encoder import PretrainResult, build_pretrain_data, pretrain_encoder, save_encoder
from multiagent.encoder.pretrain import PretrainData
from multiagent.runs.folders import write_json
from multiagent.runs.prepare import PreparedData

ENCODER_FILE = "encoder.pt"


@dataclass(frozen=True)
class PretrainOutput:
    path: Path
    result: PretrainResult


def data_train_stop(config: RunConfig, prepared: PreparedData) -> int:
    """The bar the encoder's training data ends at: the training split's end, or every bar of
    a sessions run (its split is by session, not by time)."""
    return prepared.panel.n_bars if config.system == "sessions" else prepared.split.train.stop


def pretrain_data(config: RunConfig, prepared: PreparedData) -> PretrainData:
    """The encoder's training windows; a `ConfigError` when the data has too few (the pipeline
    checks this before Ray starts)."""
    valid = prepared.features.valid
    if config.system == "sessions":
        # Split by session, not by time: only the training sessions' bars, all of them.
        train = {view.symbols[0] for view in prepared.train_views}
        rows = np.array([name in train for name in prepared.panel.symbols])
        valid = valid & rows[:, None]
    return build_pretrain_data(
        prepared.features.values,
        valid,
        prepared.panel.close,
        data_train_stop(config, prepared),
        config.observation.window,
        config.pretrain,
    )


def run_pretrain(
    config: RunConfig,
    prepared: PreparedData,
    out_dir: Path,
    *,
    console: Console | None = None,
) -> PretrainOutput:
    data = pretrain_data(config, prepared)
    train_stop = data_train_stop(config, prepared)
    progress = Progress(
        TextColumn("pretrain encoder"),
        BarColumn(),
        TextColumn("epoch {task.completed:.0f}/{task.total:.0f} {task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
        transient=False,
    )
    with progress:
        task = progress.add_task("pretrain", total=config.pretrain.epochs, status="")
        result = pretrain_encoder(
            data,
            config.encoder,
            config.pretrain,
            seed=config.seed,
            progress=lambda row: progress.update(
                task,
                completed=row["epoch"],
                status=f"train {row['train_loss']:.4f} val {row['val_loss']:.4f}",
            ),
        )
        progress.update(task, total=len(result.history))
    info = {
        "history": result.history,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "seconds": result.seconds,
        "fit_windows": result.n_fit_windows,
        "validation_windows": result.n_validation_windows,
        "return_std": result.return_std,
        "train_bars": [0, train_stop],
    }
    path = save_encoder(
        out_dir / ENCODER_FILE,
        result.encoder,
        prepared.features.names,
        prepared.panel.fingerprint(),
        info,
    )
    write_json(out_dir / "pretrain.json", info)
    return PretrainOutput(path, result)
