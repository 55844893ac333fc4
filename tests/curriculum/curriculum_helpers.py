"""Fixtures and helpers of the curriculum tests: a small synthetic market with volume and its
'train' views. A uniquely named module the tests import, not a conftest: tests elsewhere import
`conftest` by name, and conftests collected in one run shadow each other in `sys.modules`.
Fixtures are registered under ``name=`` so importing them does not shadow test arguments."""

from __future__ import annotations

from typing import Any

import pytest

from multiagent.curriculum.config import CurriculumConfig
from multiagent.data import SyntheticMarketConfig, generate_market
from multiagent.data.episodes import EpisodeView, make_views
from multiagent.data.featurize import FeaturePipelineConfig, compute_features
from multiagent.data.panel import MarketPanel
from multiagent.data.splits import Window
from multiagent.envs import EnvMarket, build_market

TRAIN = Window(0, 400)
"""The 'training split' of the fixture panel (600 bars)."""


def curriculum_config(*stages: dict[str, Any], **top: Any) -> CurriculumConfig:
    return CurriculumConfig.model_validate({"name": "test", **top, "stages": list(stages)})


@pytest.fixture(scope="session", name="panel")
def panel_fixture() -> MarketPanel:
    return generate_market(SyntheticMarketConfig(n_symbols=6, n_bars=600, seed=5)).panel


@pytest.fixture(scope="session", name="views")
def views_fixture(panel: MarketPanel) -> list[EpisodeView]:
    return make_views(panel, length=100, window=TRAIN)


@pytest.fixture(scope="session", name="market")
def market_fixture(panel: MarketPanel) -> EnvMarket:
    return build_market(panel, compute_features(panel, FeaturePipelineConfig()))
