"""Small synthetic markets shared by the env tests (built once per session)."""

from __future__ import annotations

import pytest

from multiagent.data import SessionConfig, SyntheticMarketConfig, generate_market, generate_sessions
from multiagent.data.featurize import FeaturePipelineConfig, compute_features
from multiagent.data.panel import MarketPanel
from multiagent.envs import EnvMarket, build_market


def market_from_panel(panel: MarketPanel) -> EnvMarket:
    return build_market(panel, compute_features(panel, FeaturePipelineConfig()))


@pytest.fixture(scope="session")
def synthetic_panel() -> MarketPanel:
    return generate_market(SyntheticMarketConfig(n_symbols=8, n_bars=400, seed=3)).panel


@pytest.fixture(scope="session")
def market(synthetic_panel: MarketPanel) -> EnvMarket:
    return market_from_panel(synthetic_panel)


@pytest.fixture(scope="session")
def session_market() -> EnvMarket:
    panel = generate_sessions(SessionConfig(n_sessions=6, min_bars=60, max_bars=120, seed=2))
    return market_from_panel(panel)
