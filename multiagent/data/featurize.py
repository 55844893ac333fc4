"""From a panel to the float32 feature tensor every env and model reads, cached on disk.

`build_features` = raw causal features -> past-only normalization -> one contiguous
(symbols, time, features) float32 array with a name index and a validity mask. The result is
cached under a key hashing the panel fingerprint, the feature config and the feature code
version, so a change to any of them recomputes and nothing stale is ever served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import Field

from multiagent.data.features import FeatureConfig, compute_raw_features
from multiagent.data.normalization import NormalizationConfig, NormalizerStats, normalize
from multiagent.data.panel import MarketPanel
from multiagent.schema import Settings

logger = logging.getLogger(__name__)

FEATURES_VERSION = 1
"""Bump when a feature's formula changes: it is part of the cache key."""


class FeaturePipelineConfig(Settings):
    """Features plus their normalization: everything that determines the feature tensor."""

    features: FeatureConfig = Field(default_factory=FeatureConfig)
    normalization: NormalizationConfig = Field(default_factory=NormalizationConfig)


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Features of a panel. ``values[s, t, f]`` is feature f of symbol s known at the close of t."""

    values: np.ndarray
    """(S, T, F) float32, C-contiguous; 0 where not valid."""
    valid: np.ndarray
    """(S, T) bool: every feature of the symbol is past warm-up and observed at t."""
    names: tuple[str, ...]
    lookbacks: tuple[int, ...]
    """Earlier observed bars each feature reads (its warm-up)."""
    symbols: tuple[str, ...]
    timestamps: np.ndarray
    panel_fingerprint: str
    cache_key: str
    degraded: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    stats: NormalizerStats | None = None

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no feature {name!r}; have {', '.join(self.names)}") from None

    @property
    def max_lookback(self) -> int:
        return max(self.lookbacks, default=0)


def cache_key(panel: MarketPanel, config: FeaturePipelineConfig, fit_end: int | None) -> str:
    payload = json.dumps(
        {
            "panel": panel.fingerprint(),
            "config": config.model_dump(mode="json"),
            "fit_end": fit_end,
            "version": FEATURES_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def compute_features(
    panel: MarketPanel,
    config: FeaturePipelineConfig | None = None,
    *,
    fit_end: int | None = None,
) -> FeatureSet:
    """Compute the feature tensor (no cache). ``fit_end``: last training bar, for method=train."""
    config = config or FeaturePipelineConfig()
    raw = compute_raw_features(panel, config.features)
    values, valid, stats = normalize(
        raw.values, raw.valid, raw.normalize, config.normalization, fit_end
    )
    all_valid = valid.all(axis=2) if values.shape[2] else panel.observed.copy()
    dense = np.ascontiguousarray(np.where(valid, values, 0.0), dtype=np.float32)
    return FeatureSet(
        values=dense,
        valid=all_valid & panel.observed,
        names=raw.names,
        lookbacks=raw.lookbacks,
        symbols=panel.symbols,
        timestamps=panel.timestamps,
        panel_fingerprint=panel.fingerprint(),
        cache_key=cache_key(panel, config, fit_end),
        degraded=raw.degraded,
        skipped=raw.skipped,
        stats=stats,
    )


def default_cache_dir() -> Path:
    root = os.environ.get("MULTIAGENT_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    return (
        Path(root) / "multiagent" / "features"
        if root
        else Path.home() / ".cache" / "multiagent" / "features"
    )


def build_features(
    panel: MarketPanel,
    config: FeaturePipelineConfig | None = None,
    *,
    fit_end: int | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
) -> FeatureSet:
    """`compute_features` behind an on-disk cache; a corrupt cache file is recomputed."""
    config = config or FeaturePipelineConfig()
    if not use_cache:
        return compute_features(panel, config, fit_end=fit_end)
    directory = cache_dir or default_cache_dir()
    key = cache_key(panel, config, fit_end)
    path = directory / f"{key}.npz"
    if path.exists():
        try:
            return load_feature_set(path)
        except Exception as exc:  # a truncated or foreign file: recompute, never crash
            logger.warning("feature cache %s is unreadable (%s); recomputing", path, exc)
    features = compute_features(panel, config, fit_end=fit_end)
    save_feature_set(features, path)
    return features


def save_feature_set(features: FeatureSet, path: Path) -> None:
    """Write atomically (temp file + rename): a crash never leaves a half-written cache entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "names": features.names,
        "lookbacks": features.lookbacks,
        "symbols": features.symbols,
        "panel_fingerprint": features.panel_fingerprint,
        "cache_key": features.cache_key,
        "degraded": features.degraded,
        "skipped": features.skipped,
        "version": FEATURES_VERSION,
    }
    arrays: dict[str, np.ndarray] = {
        "values": features.values,
        "valid": features.valid,
        "timestamps": features.timestamps.astype("datetime64[ns]").astype(np.int64),
        "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
    }
    if features.stats is not None:
        arrays["stats_mean"] = features.stats.mean
        arrays["stats_std"] = features.stats.std
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)  # type: ignore[arg-type]
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_feature_set(path: Path) -> FeatureSet:
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(archive["meta"].tobytes().decode())
        if meta.get("version") != FEATURES_VERSION:
            raise ValueError(f"feature version {meta.get('version')} != {FEATURES_VERSION}")
        stats = (
            NormalizerStats(archive["stats_mean"], archive["stats_std"])
            if "stats_mean" in archive
            else None
        )
        return FeatureSet(
            values=np.ascontiguousarray(archive["values"]),
            valid=archive["valid"],
            names=tuple(meta["names"]),
            lookbacks=tuple(meta["lookbacks"]),
            symbols=tuple(meta["symbols"]),
            timestamps=archive["timestamps"].astype("datetime64[ns]"),
            panel_fingerprint=meta["panel_fingerprint"],
            cache_key=meta["cache_key"],
            degraded=meta["degraded"],
            skipped=meta["skipped"],
            stats=stats,
        )
