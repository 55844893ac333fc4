"""Trading environments: one simulator, pluggable action schemes, Gymnasium and PettingZoo envs.

Split in three as in Qlib's RL framework: `simulator` (state changes only in `step()`), the
interpreters `observations` and `schemes` (state -> observation, action -> orders), and
`rewards` (composable, reported terms). `core` wires them for B portfolios x N slots; the env
classes only adapt `core` to an API. Never imports Ray.
"""

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
