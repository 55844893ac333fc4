"""Is a training run repeatable? Compare two run folders made with the same seed and config.

What must match exactly: every ``metrics.jsonl`` row (wall-clock fields aside), every weight
of every checkpointed RLlib module, the pretrained encoder and the exported policies. Files are
compared by content, not bytes: pickles and TorchScript archives also record the folder they
were written in. ``python scripts/check_reproducible.py`` runs a tiny pipeline twice and
prints this comparison; `tests/rllib/test_reproducible.py` runs it in CI.
"""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

WALL_CLOCK_KEYS = frozenset({"seconds"})
"""Metrics fields that measure time, not learning: never compared."""


def run_differences(first: Path, second: Path) -> list[str]:
    """One line per difference between two run folders (empty: the runs are identical)."""
    differences: list[str] = []
    for log in sorted(first.rglob("metrics.jsonl")):
        differences += _metrics_differences(log, second / log.relative_to(first))
    for pattern, loader in (
        ("module_state.pkl", _load_pickle),
        ("encoder.pt", _load_torch),
        ("*.pt", _load_torchscript),
    ):
        for path in sorted(first.rglob(pattern)):
            if pattern == "*.pt" and path.name == "encoder.pt":
                continue
            name = path.relative_to(first)
            differences += _weight_differences(path, second / name, name.as_posix(), loader)
    return differences


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _metrics_differences(path: Path, other: Path) -> list[str]:
    if not other.is_file():
        return [f"{other}: missing"]
    rows, others = _rows(path), _rows(other)
    if len(rows) != len(others):
        return [f"{path.parent.name}/metrics.jsonl: {len(rows)} rows vs {len(others)}"]
    found = []
    for number, (row, twin) in enumerate(zip(rows, others, strict=True), start=1):
        for key in sorted((set(row) | set(twin)) - WALL_CLOCK_KEYS):
            a, b = row.get(key), twin.get(key)
            if not _same(a, b):
                found.append(f"{path.parent.name}/metrics.jsonl row {number} {key}: {a} vs {b}")
    return found


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _weight_differences(path: Path, other: Path, name: str, loader: Any) -> list[str]:
    if not other.is_file():
        return [f"{other}: missing"]
    weights, twins = dict(_arrays(loader(path))), dict(_arrays(loader(other)))
    if weights.keys() != twins.keys():
        return [f"{name}: tensors {sorted(weights)} vs {sorted(twins)}"]
    return [
        f"{name}: {key} differs (max |diff| {np.max(np.abs(weights[key] - twins[key])):.3g})"
        if weights[key].shape == twins[key].shape
        else f"{name}: {key} shape {weights[key].shape} vs {twins[key].shape}"
        for key in sorted(weights)
        if not np.array_equal(weights[key], twins[key])
    ]


def _arrays(value: Any, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _arrays(item, f"{prefix}/{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _arrays(item, f"{prefix}/{index}")
    elif isinstance(value, np.ndarray):
        yield prefix, value
    elif hasattr(value, "detach"):  # a torch tensor
        yield prefix, value.detach().cpu().numpy()


def _load_pickle(path: Path) -> Any:
    with path.open("rb") as handle:
        return pickle.load(handle)


def _load_torch(path: Path) -> Any:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _load_torchscript(path: Path) -> Any:
    import torch

    return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
