"""No look-ahead in the envs: perturbing every price after bar p changes no observation, mask,
reward or info of the steps before p (the step that fills on bar p is the first allowed to
change). The same check covers the market arrays behind the impact model."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from multiagent.data.features import FeatureConfig
from multiagent.data.featurize import FeaturePipelineConfig, compute_features
from multiagent.data.panel import MarketPanel
from multiagent.envs import (
    PRESETS,
    EnvMarket,
    HierarchicalTradingEnv,
    build_market,
    make_env,
)
from multiagent.envs.hierarchical_env import random_joint_action


def perturbed(panel: MarketPanel, first_bar: int, seed: int) -> MarketPanel:
    rng = np.random.default_rng(seed)
    fields = {}
    shock = np.exp(rng.normal(0, 0.2, panel.close[:, first_bar:].shape))
    for name, values in panel.fields.items():
        changed = values.copy()
        factor = shock if name != "volume" else shock**3
        changed[:, first_bar:] = values[:, first_bar:] * factor
        fields[name] = changed
    return replace(panel, fields=fields)


def market_of(panel: MarketPanel) -> EnvMarket:
    return build_market(panel, compute_features(panel))


def run_single(env: Any, actions: np.ndarray) -> list[tuple[int, Any, float, Any]]:
    obs, _ = env.reset(seed=0, options={"view": 0})
    out = []
    for action in actions:
        mask = obs["action_mask"] if isinstance(obs, dict) else None
        chosen = int(action % env.action_space.n)
        if mask is not None and not mask[chosen]:
            chosen = 0
        obs, reward, terminated, truncated, info = env.step(chosen)
        bar = env.core.sim.t[0] if hasattr(env, "core") else env.sim.t[0]
        flat = obs["observations"] if isinstance(obs, dict) else obs
        mask = obs["action_mask"] if isinstance(obs, dict) else None
        out.append((int(bar), (flat.copy(), None if mask is None else mask.copy()), reward, info))
        if terminated or truncated:
            break
    return out


@pytest.mark.parametrize("name", ["symbol_3", "symbol_7", "symbol_limit", "portfolio_regimes"])
@pytest.mark.parametrize("first_bar", [60, 150])
def test_gym_envs_do_not_look_ahead(
    synthetic_panel: MarketPanel, name: str, first_bar: int
) -> None:
    actions = np.random.default_rng(first_bar).integers(0, 1000, 250)
    config = PRESETS[name]
    if name == "symbol_limit":
        config = config.model_copy(
            update={"execution": config.execution.model_copy(update={"fill_price": "next_open"})}
        )
    base = run_single(make_env(config, market_of(synthetic_panel)), actions)
    changed = run_single(
        make_env(config, market_of(perturbed(synthetic_panel, first_bar, 1))), actions
    )
    compared = 0
    for (bar, obs_a, reward_a, info_a), (_, obs_b, reward_b, info_b) in zip(
        base, changed, strict=True
    ):
        if bar >= first_bar:  # this step filled on a perturbed bar
            break
        np.testing.assert_array_equal(obs_a[0], obs_b[0])
        if obs_a[1] is not None:
            np.testing.assert_array_equal(obs_a[1], obs_b[1])
        assert reward_a == reward_b
        assert info_a["equity"] == info_b["equity"]
        compared += 1
    assert compared >= first_bar // 2
    assert any(a[2] != b[2] for a, b in zip(base, changed, strict=True))


def test_hierarchical_env_does_not_look_ahead(synthetic_panel: MarketPanel) -> None:
    first_bar = 120

    def run(panel: MarketPanel) -> list[tuple[int, np.ndarray, dict[str, float]]]:
        env = HierarchicalTradingEnv(market_of(panel), config=PRESETS["hierarchical"])  # type: ignore[arg-type]
        rng = np.random.default_rng(0)
        obs, _ = env.reset(seed=4, options={"view": 0})
        out = []
        while env.agents:
            obs, rewards, _, _, _ = env.step(random_joint_action(env, obs, rng))
            out.append((int(env.core.sim.t[0]), env.state().copy(), rewards))
        return out

    base, changed = run(synthetic_panel), run(perturbed(synthetic_panel, first_bar, 2))
    compared = 0
    for (bar, state_a, rewards_a), (_, state_b, rewards_b) in zip(base, changed, strict=False):
        if bar >= first_bar:
            break
        np.testing.assert_array_equal(state_a, state_b)
        assert rewards_a == rewards_b
        compared += 1
    assert compared > 50


def test_market_arrays_are_causal(synthetic_panel: MarketPanel) -> None:
    first_bar = 200
    a = market_of(synthetic_panel)
    b = market_of(perturbed(synthetic_panel, first_bar, 3))
    for name in ("adv", "volatility", "features", "half_spread", "close"):
        np.testing.assert_array_equal(
            getattr(a, name)[:, :first_bar], getattr(b, name)[:, :first_bar], err_msg=name
        )
        assert not np.array_equal(getattr(a, name)[:, first_bar:], getattr(b, name)[:, first_bar:])


SERIAL_FEATURES = FeaturePipelineConfig(
    features=FeatureConfig(
        autocorrelation={"windows": (30,), "lags": (1, 2)},
        variance_ratio={"window": 40, "periods": (2, 5)},
        hurst={"window": 40, "scales": (1, 2, 4, 8)},
    )
)


@pytest.mark.parametrize("first_bar", [90, 170])
def test_a_long_window_of_serial_features_does_not_look_ahead(
    synthetic_panel: MarketPanel, first_bar: int
) -> None:
    """The longer context (a 32-bar window with the 30-40 bar serial-dependence features) reads
    nothing after the bar it is built at."""
    base_config = PRESETS["symbol_3"]
    config = base_config.model_copy(
        update={"observation": base_config.observation.model_copy(update={"window": 32})}
    )
    actions = np.random.default_rng(first_bar).integers(0, 1000, 250)

    def run(panel: MarketPanel) -> list[tuple[int, Any, float, Any]]:
        market = build_market(panel, compute_features(panel, SERIAL_FEATURES))
        assert {"acf_30_1", "vr_40_5", "hurst_40"} <= set(market.feature_names)
        return run_single(make_env(config, market), actions)

    base, changed = run(synthetic_panel), run(perturbed(synthetic_panel, first_bar, 5))
    compared = 0
    for (bar, obs_a, reward_a, _), (_, obs_b, reward_b, _) in zip(base, changed, strict=True):
        if bar >= first_bar:
            break
        np.testing.assert_array_equal(obs_a[0], obs_b[0])
        assert reward_a == reward_b
        compared += 1
    assert compared >= first_bar // 2
    assert not all(np.array_equal(a[1][0], b[1][0]) for a, b in zip(base, changed, strict=True))
