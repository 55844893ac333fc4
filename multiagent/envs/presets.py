"""Named env presets: the seed systems' variants as configurations of one env family.

`make_env("symbol_7", market, views)` builds a preset; `make_env(config, market, views)` builds
from a config object (its type picks the env class). Conformance tests run over every entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from multiagent.data.episodes import EpisodeView
from multiagent.envs.config import (
    CommonEnvConfig,
    ExecutionConfig,
    HierarchicalEnvConfig,
    PortfolioEnvConfig,
    RiskLimits,
    SchemeConfig,
    SymbolEnvConfig,
)
from multiagent.envs.hierarchical_env import HierarchicalTradingEnv
from multiagent.envs.market import EnvMarket
from multiagent.envs.portfolio_env import PortfolioEnv, RegimePortfolioEnv
from multiagent.envs.symbol_env import SymbolTradingEnv

PRESETS: dict[str, CommonEnvConfig] = {
    "symbol_3": SymbolEnvConfig(scheme=SchemeConfig(kind="discrete3")),
    "symbol_7": SymbolEnvConfig(scheme=SchemeConfig(kind="discrete7")),
    # Session / prediction-market data is close-only: limit orders fill against the next bar.
    "symbol_limit": SymbolEnvConfig(
        scheme=SchemeConfig(kind="limit5"), execution=ExecutionConfig(fill_price="next_close")
    ),
    "portfolio_7": PortfolioEnvConfig(scheme=SchemeConfig(kind="discrete7"), max_open_positions=3),
    "portfolio_regimes": PortfolioEnvConfig(
        scheme=SchemeConfig(kind="regimes", regime_step=1 / 3), pool_size=3
    ),
    "hierarchical": HierarchicalEnvConfig(
        n_symbols=4,
        scheme=SchemeConfig(kind="discrete7"),
        limits=RiskLimits(max_weight=0.5, drawdown_breaker=0.25),
    ),
}
"""Preset name -> config; the config's class picks the env."""


def env_class(config: CommonEnvConfig) -> Callable[..., Any]:
    if isinstance(config, HierarchicalEnvConfig):
        return HierarchicalTradingEnv
    if isinstance(config, PortfolioEnvConfig):
        return RegimePortfolioEnv if config.scheme.kind == "regimes" else PortfolioEnv
    if isinstance(config, SymbolEnvConfig):
        return SymbolTradingEnv
    raise TypeError(f"no env for config type {type(config).__name__}")


def make_env(
    preset: str | CommonEnvConfig,
    market: EnvMarket,
    views: Sequence[EpisodeView] | None = None,
    **overrides: Any,
) -> Any:
    """Build a preset (by name) or a config; ``overrides`` update top-level config fields."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"no env preset {preset!r}; choose one of {', '.join(PRESETS)}")
        config = PRESETS[preset]
    else:
        config = preset
    if overrides:
        config = type(config).model_validate({**config.model_dump(), **overrides})
    return env_class(config)(market, views, config)
