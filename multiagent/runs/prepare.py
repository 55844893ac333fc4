"""Phase 0 of every run: load and validate the data, build features, split, cut episode views."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from multiagent.config import DataConfig, RunConfig
from multiagent.data.bundled import load_bundled
from multiagent.data.episodes import EpisodeView, make_views
from multiagent.data.featurize import FeatureSet, build_features
from multiagent.data.loaders import load_panel
from multiagent.data.panel import MarketPanel
from multiagent.data.splits import ChronologicalSplit, Window, chronological_split, held_out
from multiagent.data.synthetic import SyntheticMarket, generate_market, generate_sessions
from multiagent.errors import ConfigError, LeakageError


@dataclass(frozen=True, eq=False)
class PreparedData:
    panel: MarketPanel
    features: FeatureSet
    split: ChronologicalSplit
    train_views: list[EpisodeView]
    validation_views: list[EpisodeView] = field(default_factory=list)
    test_views: list[EpisodeView] = field(default_factory=list)
    synthetic: SyntheticMarket | None = None
    """The generated market with its hidden truth, when the data is synthetic."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent per step (load, features)."""
    sealed: bool = False
    """The test bars were cut off (``RunConfig.seal_test``): the test split does not exist."""

    def views(self, part: str) -> list[EpisodeView]:
        if part == "test" and self.sealed:
            raise LeakageError(
                "the test split is sealed in this run (seal_test: tuning trials never see the "
                "test period; only the sweep's final evaluation of the chosen config does)"
            )
        return {
            "train": self.train_views,
            "validation": self.validation_views,
            "test": self.test_views,
        }[part]


def load_data(config: DataConfig) -> MarketPanel:
    if config.synthetic is not None:
        return generate_market(config.synthetic).panel
    if config.sessions is not None:
        return generate_sessions(config.sessions)
    symbols = list(config.symbols) if config.symbols is not None else None
    if config.bundled is not None:
        return load_bundled(
            config.bundled,
            symbols=symbols,
            start=config.start,
            end=config.end,
            options=config.validation,
        )
    return load_panel(
        list(config.paths),
        layout=config.layout,
        symbols=symbols,
        start=config.start,
        end=config.end,
        frequency=config.frequency,
        options=config.validation,
    )


def prepare(config: RunConfig, *, use_cache: bool = True) -> PreparedData:
    timings: dict[str, float] = {}
    began = time.perf_counter()
    synthetic = generate_market(config.data.synthetic) if config.data.synthetic else None
    panel = synthetic.panel if synthetic is not None else load_data(config.data)
    timings["load"] = time.perf_counter() - began
    split = chronological_split(panel.n_bars, config.split)
    if config.seal_test and config.system != "sessions":
        # The split is drawn on the full panel, then everything after validation is dropped:
        # the test bars are not in memory, so no feature, normalizer or view can reach them.
        # Features are causal, so every kept bar's features equal the unsealed run's.
        end = split.validation.stop if len(split.validation) else split.train.stop
        panel = replace(
            panel,
            timestamps=panel.timestamps[:end],
            fields={k: v[:, :end] for k, v in panel.fields.items()},
        )
    began = time.perf_counter()
    features = build_features(
        panel,
        config.features,
        fit_end=split.train.stop - 1 if config.features.normalization.method == "train" else None,
        cache_dir=Path(config.cache_dir) if config.cache_dir else None,
        use_cache=use_cache,
    )
    timings["features"] = time.perf_counter() - began

    def views(window: Window) -> list[EpisodeView]:
        if not len(window):
            return []
        found = make_views(
            panel,
            length=config.episodes.length,
            stride=config.episodes.stride,
            window=window,
            min_length=min(config.episodes.min_length, len(window)),
        )
        if not found and config.episodes.length is not None:
            # A split shorter than one episode still gets one view per symbol over all of it.
            found = make_views(panel, window=window, min_length=min(2, len(window)))
        return found

    if config.system == "sessions":
        train, validation, test = session_views(panel, config)
        return PreparedData(
            panel,
            features,
            split,
            train,
            validation,
            [] if config.seal_test else test,
            None,
            timings,
            sealed=config.seal_test,
        )
    return PreparedData(
        panel,
        features,
        split,
        views(split.train),
        views(split.validation),
        [] if config.seal_test else views(split.test),
        None if config.seal_test else synthetic,  # its hidden truth spans the test period
        timings,
        sealed=config.seal_test,
    )


def session_views(
    panel: MarketPanel, config: RunConfig
) -> tuple[list[EpisodeView], list[EpisodeView], list[EpisodeView]]:
    """(train, validation, test) of a sessions run: every session with ``episodes.min_length``
    observed bars is one view over its whole span, and the split is by session, not by time:
    ``agent.holdout`` of them are the test set, ``agent.validation_holdout`` of the rest
    validate (seeded by ``seed``; a session is in exactly one part). Features are normalized
    per session (expanding), so no statistic crosses sessions."""
    views = make_views(panel, min_length=config.episodes.min_length)
    by_name = {view.symbols[0]: view for view in views}
    if len(by_name) < 3:
        raise ConfigError(
            f"system sessions needs at least 3 sessions with {config.episodes.min_length}+ "
            f"observed bars (episodes.min_length); the data has {len(by_name)}"
        )
    rest, test = held_out(list(by_name), config.agent.holdout, config.seed)
    train, validation = held_out(list(rest), config.agent.validation_holdout, config.seed + 1)
    return (
        [by_name[n] for n in train],
        [by_name[n] for n in validation],
        [by_name[n] for n in test],
    )
