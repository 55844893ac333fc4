"""Bad input fails at the boundary with a message that says what to fix."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pydantic import ValidationError

from multiagent.config import validate_mapping
from multiagent.envs import (
    MASTER,
    EnvMarket,
    ExecutionConfig,
    HierarchicalEnvConfig,
    HierarchicalTradingEnv,
    SchemeConfig,
    SymbolEnvConfig,
    SymbolTradingEnv,
    make_env,
)
from multiagent.envs.sampling import EpisodeSampler
from multiagent.errors import ConfigError


def test_envs_never_import_ray() -> None:
    code = "import sys, multiagent.envs; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_next_open_needs_open_prices(session_market: EnvMarket) -> None:
    with pytest.raises(ConfigError, match="next_close"):
        SymbolTradingEnv(session_market, config=SymbolEnvConfig())


def test_action_outside_space(market: EnvMarket) -> None:
    env = make_env("symbol_7", market)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside"):
        env.step(7)
    with pytest.raises(ValueError, match="outside"):
        env.step(-1)


def test_hierarchical_step_errors(market: EnvMarket) -> None:
    env = HierarchicalTradingEnv(market, config=HierarchicalEnvConfig(n_symbols=2))
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="missing"):
        env.step({"symbol_0": 0})
    with pytest.raises(ValueError, match="master action"):
        env.step({"symbol_0": 0, "symbol_1": 0, MASTER: np.array([9, 0, 1])})


def test_too_many_slots(market: EnvMarket) -> None:
    with pytest.raises(ValueError, match="slots"):
        HierarchicalTradingEnv(market, config=HierarchicalEnvConfig(n_symbols=50))


def test_sampler_errors(market: EnvMarket) -> None:
    with pytest.raises(ConfigError, match="no episode views"):
        EpisodeSampler(market, [])
    from multiagent.envs.sampling import whole_market_views

    views = whole_market_views(market)
    with pytest.raises(ConfigError, match="weights"):
        EpisodeSampler(market, views, weights=[1.0])
    with pytest.raises(ConfigError, match="weight 0"):
        EpisodeSampler(market, views, weights=[0.0] * len(views))


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"costs": {"commission_bps": -1}}, "costs.commission_bps"),
        ({"execution": {"fill_price": "tomorrow"}}, "execution.fill_price"),
        ({"scheme": {"kind": "discrete9"}}, "scheme.kind"),
        ({"scheme": {"limit_offsets": [2.0, 1.0]}}, "scheme"),
        ({"limits": {"drawdown_breaker": 1.5}}, "limits.drawdown_breaker"),
        ({"reward": {"weights": {"sharpe": 1.0}}}, "reward.weights.sharpe"),
        ({"budget_levels": [-1.0]}, "budget_levels"),
    ],
)
def test_bad_config_names_the_key(data: dict[str, object], key: str) -> None:
    model = HierarchicalEnvConfig if "budget_levels" in data else SymbolEnvConfig
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_mapping(model, data, file="env.yaml")


def test_regimes_not_for_symbol_agents() -> None:
    with pytest.raises(ValidationError, match="symbol agents"):
        HierarchicalEnvConfig(scheme=SchemeConfig(kind="regimes"))


def test_current_close_is_explicit_and_optimistic(market: EnvMarket) -> None:
    """Filling at a price already seen is allowed only when asked for, and it flatters."""
    config = SymbolEnvConfig(execution=ExecutionConfig(fill_price="current_close"))
    env = SymbolTradingEnv(market, config=config)
    _obs, _ = env.reset(seed=0, options={"view": 0})
    _, _, _, _, info = env.step(3)
    assert info["fill_price"] == pytest.approx(market.close[0, 0])
