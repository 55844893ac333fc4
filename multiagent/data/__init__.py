"""Market data: load, validate, synthesize, featurize, split, join exogenous series, episode views.

Imports nothing else of multiagent but `multiagent.errors`; every other package reads data
through this one.
"""

from typing import TYPE_CHECKING

from multiagent.lazy import lazy_exports

if TYPE_CHECKING:
    from multiagent.data.bundled import BUNDLED, load_bundled
    from multiagent.data.episodes import EpisodeView, make_views
    from multiagent.data.errors import DataFixWarning, DataProblem, DataValidationError
    from multiagent.data.exogenous import asof_join, load_exogenous
    from multiagent.data.features import FeatureConfig
    from multiagent.data.featurize import FeaturePipelineConfig, FeatureSet, build_features
    from multiagent.data.loaders import load_panel
    from multiagent.data.normalization import NormalizationConfig
    from multiagent.data.panel import MarketPanel
    from multiagent.data.splits import (
        SplitConfig,
        WalkForwardConfig,
        chronological_split,
        held_out,
        walk_forward_folds,
    )
    from multiagent.data.synthetic import (
        SessionConfig,
        SyntheticMarketConfig,
        generate_market,
        generate_sessions,
    )
    from multiagent.data.validation_options import ValidationOptions

__getattr__ = lazy_exports(
    __name__,
    {
        "BUNDLED": "bundled",
        "load_bundled": "bundled",
        "EpisodeView": "episodes",
        "make_views": "episodes",
        "DataFixWarning": "errors",
        "DataProblem": "errors",
        "DataValidationError": "errors",
        "asof_join": "exogenous",
        "load_exogenous": "exogenous",
        "FeatureConfig": "features",
        "FeaturePipelineConfig": "featurize",
        "FeatureSet": "featurize",
        "build_features": "featurize",
        "load_panel": "loaders",
        "NormalizationConfig": "normalization",
        "MarketPanel": "panel",
        "SplitConfig": "splits",
        "WalkForwardConfig": "splits",
        "chronological_split": "splits",
        "held_out": "splits",
        "walk_forward_folds": "splits",
        "SessionConfig": "synthetic",
        "SyntheticMarketConfig": "synthetic",
        "generate_market": "synthetic",
        "generate_sessions": "synthetic",
        "ValidationOptions": "validation_options",
    },
)

__all__ = [
    "BUNDLED",
    "DataFixWarning",
    "DataProblem",
    "DataValidationError",
    "EpisodeView",
    "FeatureConfig",
    "FeaturePipelineConfig",
    "FeatureSet",
    "MarketPanel",
    "NormalizationConfig",
    "SessionConfig",
    "SplitConfig",
    "SyntheticMarketConfig",
    "ValidationOptions",
    "WalkForwardConfig",
    "asof_join",
    "build_features",
    "chronological_split",
    "generate_market",
    "generate_sessions",
    "held_out",
    "load_bundled",
    "load_exogenous",
    "load_panel",
    "make_views",
    "walk_forward_folds",
]
