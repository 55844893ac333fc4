"""Trading environments: one simulator, pluggable action schemes, Gymnasium and PettingZoo envs.

Split in three as in Qlib's RL framework: `simulator` (state changes only in `step()`), the
interpreters `observations` and `schemes` (state -> observation, action -> orders), and
`rewards` (composable, reported terms). `core` wires them for B portfolios x N slots; the env
classes only adapt `core` to an API. Never imports Ray.
"""

from typing import TYPE_CHECKING

from multiagent.lazy import lazy_exports

if TYPE_CHECKING:
    from multiagent.envs.config import (
        CostConfig,
        ExecutionConfig,
        HierarchicalEnvConfig,
        ObservationConfig,
        PortfolioEnvConfig,
        RewardConfig,
        RewardWeights,
        RiskLimits,
        SchemeConfig,
        SymbolEnvConfig,
    )
    from multiagent.envs.core import BatchedTradingCore, TradingCore
    from multiagent.envs.hierarchical_env import MASTER, HierarchicalTradingEnv
    from multiagent.envs.market import EnvMarket, build_market
    from multiagent.envs.orders import Fills, Orders
    from multiagent.envs.portfolio_env import PortfolioEnv, RegimePortfolioEnv
    from multiagent.envs.presets import PRESETS, make_env
    from multiagent.envs.sampling import Episode, EpisodeSampler, whole_market_views
    from multiagent.envs.simulator import Simulator
    from multiagent.envs.symbol_env import SymbolTradingEnv

__getattr__ = lazy_exports(
    __name__,
    {
        "CostConfig": "config",
        "ExecutionConfig": "config",
        "HierarchicalEnvConfig": "config",
        "ObservationConfig": "config",
        "PortfolioEnvConfig": "config",
        "RewardConfig": "config",
        "RewardWeights": "config",
        "RiskLimits": "config",
        "SchemeConfig": "config",
        "SymbolEnvConfig": "config",
        "BatchedTradingCore": "core",
        "TradingCore": "core",
        "MASTER": "hierarchical_env",
        "HierarchicalTradingEnv": "hierarchical_env",
        "EnvMarket": "market",
        "build_market": "market",
        "Fills": "orders",
        "Orders": "orders",
        "PortfolioEnv": "portfolio_env",
        "RegimePortfolioEnv": "portfolio_env",
        "PRESETS": "presets",
        "make_env": "presets",
        "Episode": "sampling",
        "EpisodeSampler": "sampling",
        "whole_market_views": "sampling",
        "Simulator": "simulator",
        "SymbolTradingEnv": "symbol_env",
    },
)

__all__ = [
    "MASTER",
    "PRESETS",
    "BatchedTradingCore",
    "CostConfig",
    "EnvMarket",
    "Episode",
    "EpisodeSampler",
    "ExecutionConfig",
    "Fills",
    "HierarchicalEnvConfig",
    "HierarchicalTradingEnv",
    "ObservationConfig",
    "Orders",
    "PortfolioEnv",
    "PortfolioEnvConfig",
    "RegimePortfolioEnv",
    "RewardConfig",
    "RewardWeights",
    "RiskLimits",
    "SchemeConfig",
    "Simulator",
    "SymbolEnvConfig",
    "SymbolTradingEnv",
    "TradingCore",
    "build_market",
    "make_env",
    "whole_market_views",
]
