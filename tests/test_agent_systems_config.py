"""The single-agent systems' config, data split and env plumbing (no Ray)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.agent_systems import agent_config, agent_payload
from typer.testing import CliRunner

from multiagent.cli import app, with_agent_options
from multiagent.config import PRESETS, RunConfig, load_preset
from multiagent.data.synthetic import (
    SessionConfig,
    SyntheticMarketConfig,
    generate_market,
    generate_sessions,
)
from multiagent.envs import build_market, make_env
from multiagent.errors import ConfigError
from multiagent.runs.prepare import prepare
from multiagent.training.pretrain_phase import run_pretrain


@pytest.mark.parametrize("name", ["portfolio", "regimes", "sessions"])
def test_the_presets_load_as_their_systems(name: str) -> None:
    assert name in PRESETS
    config = load_preset(name)
    assert config.system == name and config.phases == ("pretrain", "agent")


def test_a_system_reads_its_own_sections_and_refuses_the_hierarchys() -> None:
    with pytest.raises(ValueError, match="`env` configures the hierarchy; system portfolio"):
        RunConfig.model_validate({"system": "portfolio", "env": {"n_symbols": 3}})
    with pytest.raises(ValueError, match="system regimes trades target-weight regimes"):
        RunConfig.model_validate({"system": "regimes"})
    with pytest.raises(ValueError, match="regimes is for system regimes, not portfolio"):
        RunConfig.model_validate(
            {"system": "portfolio", "agent": {"env": {"scheme": {"kind": "regimes"}}}}
        )
    with pytest.raises(ValueError, match="use system: sessions"):
        RunConfig.model_validate({"data": {"sessions": {"n_sessions": 5}}})
    with pytest.raises(ValueError, match=r"normalization\.method train pools statistics"):
        RunConfig.model_validate(
            {
                "system": "sessions",
                "data": {"sessions": {}},
                "features": {"normalization": {"method": "train"}},
            }
        )
    # A saved config (every section written out at its defaults) loads back.
    config = load_preset("regimes")
    assert RunConfig.model_validate(config.model_dump(mode="json")) == config


def test_the_portfolio_pool_is_clamped_to_the_market() -> None:
    panel = generate_market(SyntheticMarketConfig(n_symbols=5, n_bars=300)).panel
    from multiagent.data.featurize import FeaturePipelineConfig, build_features

    market = build_market(panel, build_features(panel, FeaturePipelineConfig(), use_cache=False))
    env = make_env("portfolio_7", market)  # 2 x 3 positions = 6 > 5 symbols: clamped
    assert env.pool == 5
    env.reset(seed=0)
    with pytest.raises(ValueError, match="pool_size 6 but the market has 5 symbols"):
        make_env("portfolio_7", market, pool_size=6)


def test_sessions_are_split_by_session_and_pretraining_sees_the_training_ones_only(
    tmp_path: Path,
) -> None:
    config = agent_config("sessions", tmp_path)
    prepared = prepare(config, use_cache=False)
    parts = [
        {v.symbols[0] for v in views}
        for views in (prepared.train_views, prepared.validation_views, prepared.test_views)
    ]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(parts[2]) == round(len(set().union(*parts)) * config.agent.holdout)
    # Each view is one whole session.
    for view in prepared.test_views:
        row = prepared.panel.symbol_index(view.symbols[0])
        seen = np.flatnonzero(prepared.panel.observed[row])
        assert (view.window.start, view.window.stop) == (seen[0], seen[-1] + 1)
    # Held-out sessions perturbed: the pretrained encoder does not change.
    first = run_pretrain(config, prepared, tmp_path / "a").path.read_bytes()
    held = [prepared.panel.symbol_index(n) for n in parts[1] | parts[2]]
    close = prepared.panel.close.copy()
    close[held] = np.where(np.isfinite(close[held]), 0.5, np.nan)
    from dataclasses import replace

    panel = replace(prepared.panel, fields={**prepared.panel.fields, "close": close})
    from multiagent.data.featurize import build_features

    features = build_features(panel, config.features, use_cache=False)
    moved = replace(prepared, panel=panel, features=features)
    second = run_pretrain(config, moved, tmp_path / "b")
    import torch

    a = torch.load(tmp_path / "a" / "encoder.pt", weights_only=False)
    b = torch.load(second.path, weights_only=False)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert first  # the file exists and was read


def test_session_momentum_is_planted_and_zero_keeps_the_old_draws() -> None:
    base = generate_sessions(SessionConfig(n_sessions=4, min_bars=200, max_bars=300, seed=1))
    again = generate_sessions(
        SessionConfig(n_sessions=4, min_bars=200, max_bars=300, seed=1, autocorrelation=0.0)
    )
    np.testing.assert_array_equal(base.close, again.close)
    planted = generate_sessions(
        SessionConfig(n_sessions=30, min_bars=300, max_bars=400, seed=1, autocorrelation=-0.5)
    )
    logit = np.log(planted.close / (1 - planted.close))
    steps = np.diff(logit, axis=1)
    a, b = steps[:, 1:].ravel(), steps[:, :-1].ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    assert np.corrcoef(a[ok], b[ok])[0, 1] < -0.3


def test_agent_options_apply_to_single_agent_presets_only() -> None:
    config = with_agent_options(load_preset("portfolio"), "lstm", 7, 32)
    assert config.agent.policy.recurrent == "lstm" and config.agent.evaluation.episodes == 7
    assert config.agent.policy.max_seq_len == 32
    with pytest.raises(ConfigError, match="--seq-len configure the single-agent presets"):
        with_agent_options(load_preset("quick"), "lstm", None)
    with pytest.raises(ConfigError, match="--policy must be mlp, lstm or gru"):
        with_agent_options(load_preset("portfolio"), "transformer", None)
    with pytest.raises(ConfigError, match="max_seq_len"):
        with_agent_options(load_preset("portfolio"), None, None, 1)
    result = CliRunner().invoke(app, ["run", "--preset", "quick", "--policy", "lstm"])
    assert result.exit_code == 1 and "single-agent presets" in result.output


def test_an_agent_payload_validates() -> None:
    from pathlib import Path

    for system in ("portfolio", "regimes", "sessions"):
        assert RunConfig.model_validate(agent_payload(system, Path("/tmp"))).system == system


@pytest.mark.parametrize("name", ["default", "quick", "portfolio", "regimes", "sessions"])
def test_every_shipped_preset_loads_its_data(name: str) -> None:
    """A preset naming a symbol its bundled file lacks fails only when run (the portfolio
    preset once listed AMZN and INTC, which `sp500` does not hold)."""
    from multiagent.config import load_preset
    from multiagent.runs.prepare import load_data

    config = load_preset(name)
    panel = load_data(config.data)
    wanted = config.data.symbols
    assert panel.n_symbols >= (len(wanted) if wanted else 1)
