"""The single-agent systems' evaluation engine: episodes, baselines, oracle, metrics, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.agent_systems import SYSTEMS, agent_config

from multiagent.envs import build_market
from multiagent.evaluation.agent_report import evaluate_agent, write_agent_report
from multiagent.evaluation.episodes import (
    AssetRegime,
    FixedAction,
    RandomAgent,
    SignOracle,
    agent_env,
    baselines,
    episode_metrics,
    run_policies,
)
from multiagent.evaluation.metrics import periods_per_year
from multiagent.runs.prepare import prepare


@pytest.fixture(scope="module", params=SYSTEMS)
def system(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    config = agent_config(request.param, tmp_path_factory.mktemp(request.param))
    prepared = prepare(config, use_cache=False)
    market = build_market(prepared.panel, prepared.features, config.agent.env.costs)
    return config, prepared, market


def test_every_policy_sees_the_same_episodes_and_a_seed_repeats_them(system) -> None:  # type: ignore[no-untyped-def]
    config, prepared, market = system
    policies = [FixedAction("cash", 0), RandomAgent(1)]
    first = run_policies(config, market, prepared.views("test"), policies)
    views = [[r.view for r in first[name]] for name in first]
    assert views[0] == views[1] and len(views[0]) >= 1
    again = run_policies(config, market, prepared.views("test"), [RandomAgent(1)])
    for a, b in zip(first["random"], again["random"], strict=True):
        np.testing.assert_array_equal(a.equity, b.equity)


def test_cash_earns_nothing_and_random_trades(system) -> None:  # type: ignore[no-untyped-def]
    config, prepared, market = system
    records = run_policies(
        config, market, prepared.views("test"), [FixedAction("cash", 0), RandomAgent(2)]
    )
    periods = periods_per_year(prepared.panel)
    cash = episode_metrics(records["cash"], periods)
    assert cash["total_return"] == 0.0 and cash["in_position"] == 0.0
    assert cash["trades_per_episode"] == 0.0 and cash["win_rate"] is None
    noisy = episode_metrics(records["random"], periods)
    assert noisy["trades_per_episode"] > 0 and noisy["in_position"] > 0
    for key in ("sharpe", "sortino", "max_drawdown", "turnover", "cost_ratio", "episodes"):
        assert key in noisy


@pytest.mark.parametrize("name", ["portfolio", "regimes"])  # sessions plant no sign signal
def test_the_sign_oracle_beats_random_on_a_momentum_market(name: str, tmp_path: Path) -> None:
    config = agent_config(name, tmp_path)
    prepared = prepare(config, use_cache=False)
    market = build_market(prepared.panel, prepared.features, config.agent.env.costs)
    assert prepared.synthetic is not None
    oracle = SignOracle(prepared.synthetic.signal)
    records = run_policies(config, market, prepared.views("test"), [oracle, RandomAgent(0)])
    periods = periods_per_year(prepared.panel)
    best = episode_metrics(records["oracle"], periods)
    noise = episode_metrics(records["random"], periods)
    assert best["total_return"] > noise["total_return"]


def test_each_asset_regime_holds_its_asset_whatever_the_slot_order(tmp_path: Path) -> None:
    config = agent_config("regimes", tmp_path)
    prepared = prepare(config, use_cache=False)
    market = build_market(prepared.panel, prepared.features, config.agent.env.costs)
    env = agent_env(config, market, prepared.views("test"))
    for row, name in enumerate(market.symbols):
        policy = AssetRegime(row, name)
        for seed in range(4):  # reset shuffles the assets into the slots
            env.reset(seed=seed, options={"view": 0})
            policy.reset(env)
            weights = env.scheme.table[policy.act(np.zeros(1), np.ones(1), env)]
            slot = int(np.flatnonzero(env.sim.symbol[0] == row)[0])
            assert weights[slot] == 1.0 and weights.sum() == 1.0
    names = [p.name for p in baselines(config, market)]
    assert {"cash", "random", "equal_weight", *(f"ALL_{s}" for s in market.symbols)} <= set(names)


def test_report_ranks_gates_and_writes_its_files(tmp_path: Path) -> None:
    config = agent_config("sessions", tmp_path)
    prepared = prepare(config, use_cache=False)
    agent = RandomAgent(5, name="sessions")
    evaluation = evaluate_agent(agent, config, prepared, source="test")
    report = evaluation.report
    assert report["lead"] == "sessions" and report["agents"] == ["sessions"]
    assert [r["rank"] for r in report["ranking"]] == list(range(1, len(report["ranking"]) + 1))
    sharpes = [report["policies"][r["policy"]]["metrics"]["sharpe"] for r in report["ranking"]]
    assert sharpes == sorted(sharpes, reverse=True)
    assert set(report["gates"]) >= {"passed", "go", "regression"}
    # Held-out sessions, one by one; none of them is a training or validation session.
    held_out = {name.split("@")[0] for name in report["per_market"]["sessions"]}
    trained = {v.symbols[0] for v in prepared.train_views + prepared.validation_views}
    assert held_out and not held_out & trained
    files = write_agent_report(evaluation, tmp_path / "report", config, tracking_uri="none")
    assert json.loads(files.json.read_text())["system"] == "sessions"
    text = files.markdown.read_text()
    assert "Held-out markets" in text and "equity.png" in text
    again = write_agent_report(evaluation, tmp_path / "report", config, tracking_uri="none")
    assert again.directory != files.directory  # an earlier report is never overwritten


def test_a_report_without_gates_says_so(tmp_path: Path) -> None:
    payload_config = agent_config("portfolio", tmp_path)
    config = payload_config.model_copy(
        update={
            "evaluation": payload_config.evaluation.model_copy(
                update={
                    "gates": payload_config.evaluation.gates.model_copy(
                        update={"go": (), "regression": ()}
                    )
                }
            )
        }
    )
    prepared = prepare(config, use_cache=False)
    evaluation = evaluate_agent(RandomAgent(0, name="portfolio"), config, prepared)
    files = write_agent_report(evaluation, tmp_path / "r", config, tracking_uri="none", plots=False)
    text = files.markdown.read_text()
    assert "No gates configured" in text
    # no gate checked: no verdict, neither PASS nor a failure (issue 23)
    assert "no gates, no verdict" in text and "PASS" not in text
    assert evaluation.report["gates"]["passed"] is None and files.passed


def test_a_regimes_window_is_one_episode_however_many_assets_lead_a_view(tmp_path: Path) -> None:
    config = agent_config("regimes", tmp_path)
    prepared = prepare(config, use_cache=False)
    market = build_market(prepared.panel, prepared.features, config.agent.env.costs)
    views = prepared.views("test")
    windows = {(v.window.start, v.window.stop) for v in views}
    assert len(views) == 2 * len(windows)  # one view per asset and window
    records = run_policies(config, market, views, [FixedAction("cash", 0)])
    assert len(records["cash"]) == len(windows)
