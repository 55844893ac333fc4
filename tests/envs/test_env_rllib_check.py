"""RLlib's own env checks on the RLlib-wrapped envs (imports Ray, so marked slow).

The envs package never imports Ray; this test wraps the hierarchical env the way the RLlib adapter
will (`ParallelPettingZooEnv`). RLlib 2.60's new stack has no single-agent checker of its own (it
runs Gymnasium's, which `test_env_conformance` covers).
"""

from __future__ import annotations

import os

import pytest

from multiagent.envs import PRESETS, EnvMarket, HierarchicalTradingEnv

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

pytestmark = pytest.mark.slow


def test_rllib_multi_agent_check(market: EnvMarket) -> None:
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
    from ray.rllib.utils.pre_checks.env import check_multiagent_environments

    wrapped = ParallelPettingZooEnv(HierarchicalTradingEnv(market, config=PRESETS["hierarchical"]))  # type: ignore[arg-type]
    check_multiagent_environments(wrapped)
    observations, _ = wrapped.reset(seed=0)
    assert set(observations) == set(wrapped.possible_agents)
