"""The stage state machine: iterations, promotion, fall-back, sampling weights, checkpoints; and
the example curricula on the bundled data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from curriculum_helpers import curriculum_config, panel_fixture, views_fixture  # noqa: F401

from multiagent.config import RunConfig, load_preset
from multiagent.curriculum import Curriculum, load_curriculum
from multiagent.data.episodes import EpisodeView
from multiagent.data.panel import MarketPanel
from multiagent.errors import ConfigError
from multiagent.runs.prepare import prepare

EXAMPLES = Path(__file__).resolve().parents[2] / "curricula"


def build(panel: MarketPanel, views: list[EpisodeView], *stages: dict[str, Any]) -> Curriculum:
    return Curriculum(curriculum_config(*stages), views, panel, 3, "c.yaml")


def test_stages_advance_by_iterations(panel: MarketPanel, views: list[EpisodeView]) -> None:
    c = build(
        panel,
        views,
        {"name": "a", "iterations": 2, "cost_multiplier": 0.0},
        {"name": "b", "iterations": 1, "cost_multiplier": 0.5},
        {"name": "c"},
    )
    assert (c.stage_index, c.stage_name, c.cost_multiplier) == (0, "a", 0.0)
    assert not c.update(1, {})
    assert c.update(2, {})
    assert (c.stage_index, c.cost_multiplier) == (1, 0.5)
    assert c.update(3, {})
    assert c.stage_name == "c"
    assert not any(c.update(i, {}) for i in range(4, 20))  # the last stage never ends
    assert [(t.iteration, t.from_stage, t.to_stage) for t in c.history] == [
        (2, "a", "b"),
        (3, "b", "c"),
    ]
    assert c.history[0].reason == "2 iterations"


def test_promotion_by_metric(panel: MarketPanel, views: list[EpisodeView]) -> None:
    c = build(
        panel,
        views,
        {"name": "a", "promote": {"at_least": 0.5, "min_iterations": 2, "max_iterations": 5}},
        {"name": "b", "promote": {"at_least": 0.5}},
        {"name": "c"},
    )
    assert not c.update(1, {"val_sharpe": 9.0})  # before min_iterations
    assert not c.update(2, {"val_sharpe": 0.4})
    assert not c.update(2, {"val_sharpe": float("nan")})
    assert not c.update(2, {"reward_mean": 9.0})  # not the metric
    assert c.update(2, {"val_sharpe": 0.5})
    assert c.history[-1].reason == "val_sharpe 0.5 >= 0.5"
    # A validation of the iteration the stage began measured the stage before: ignored.
    assert not c.update(2, {"val_sharpe": 3.0})
    assert c.update(3, {"val_sharpe": 3.0})
    assert c.stage_name == "c"


def test_promotion_forced_at_max_iterations(panel: MarketPanel, views: list[EpisodeView]) -> None:
    c = build(
        panel,
        views,
        {"name": "a", "promote": {"at_least": 10.0, "max_iterations": 3}},
        {"name": "b"},
    )
    assert not c.update(2, {"val_sharpe": 0.0})
    assert c.update(3, {})
    assert c.history[-1].reason == "max_iterations 3 reached"


def test_fall_back_on_collapse(panel: MarketPanel, views: list[EpisodeView]) -> None:
    c = build(
        panel,
        views,
        {"name": "a", "iterations": 1},
        {"name": "b", "fall_back": {"below": -1.0, "max_times": 1}},
    )
    assert c.update(1, {})
    assert not c.update(1, {"val_sharpe": -5.0})  # measured on a's policy
    assert not c.update(2, {"val_sharpe": -0.5})
    assert c.update(3, {"val_sharpe": -1.5})
    assert c.stage_name == "a" and c.history[-1].reason == "val_sharpe -1.5 < -1"
    assert c.update(4, {})  # a lasts one iteration again
    assert not c.update(6, {"val_sharpe": -3.0})  # max_times reached
    assert c.stage_name == "b"
    assert c.fall_backs == [0, 1]


def test_uniform_task_is_json_and_names_its_views(
    panel: MarketPanel, views: list[EpisodeView]
) -> None:
    c = build(
        panel,
        views,
        {
            "name": "a",
            "symbols": ["SYN000", "SYN001", "SYN002"],
            "cost_multiplier": 0.25,
            "iterations": 1,
        },
        {"name": "b"},
    )
    task = c.task()
    assert json.loads(json.dumps(task)) == task
    assert task["stage"] == "a" and task["index"] == 0 and task["weights"] is None
    assert task["symbols"] == ["SYN000", "SYN001", "SYN002"]
    assert task["cost_multiplier"] == 0.25
    assert {views[i].symbols[0] for i in task["views"]} == {"SYN000", "SYN001", "SYN002"}
    c.update(1, {})
    assert c.task()["views"] == list(range(len(views))) and c.task()["symbols"] is None


def test_balanced_weights(panel: MarketPanel, views: list[EpisodeView]) -> None:
    c = build(panel, views, {"name": "a", "sampling": "balanced"})
    assert np.allclose(c.task()["weights"], 1.0)
    counts = np.arange(len(views)) % 4
    c.observe_views(counts, np.zeros(len(views)))
    c.observe_views(counts, np.zeros(len(views)))
    assert np.allclose(c.task()["weights"], 1.0 / (1.0 + 2 * counts))


def test_worst_weights(panel: MarketPanel, views: list[EpisodeView]) -> None:
    c = build(panel, views, {"name": "a", "sampling": "worst", "worst_boost": 3.0})
    n = len(views)
    assert np.allclose(c.task()["weights"], 4.0)  # nothing seen: all worst, i.e. uniform
    counts = np.full(n, 2)
    counts[0] = 0  # never seen: counts as worst
    means = np.linspace(-0.1, 0.2, n)
    c.observe_views(counts, means * counts)
    weights = np.asarray(c.task()["weights"])
    seen_means = means[1:]
    worst = np.concatenate([[True], seen_means <= np.quantile(seen_means, 0.25)])
    assert np.allclose(weights, np.where(worst, 4.0, 1.0))
    assert worst[1:].sum() == pytest.approx(0.25 * (n - 1), abs=1)
    assert weights[-1] == 1.0 and weights[1] == 4.0


def test_observe_views_checks_shapes(panel: MarketPanel, views: list[EpisodeView]) -> None:
    c = build(panel, views, {"name": "a"})
    with pytest.raises(ValueError, match=f"need {len(views)}"):
        c.observe_views([1, 2], [0.0, 0.0])


def test_state_round_trip(panel: MarketPanel, views: list[EpisodeView]) -> None:
    stages = (
        {"name": "a", "iterations": 2},
        {"name": "b", "sampling": "balanced", "promote": {"at_least": 1.0}},
        {"name": "c", "fall_back": {"below": -1.0}},
    )
    c = build(panel, views, *stages)
    c.observe_views(np.arange(len(views)), np.linspace(-1, 1, len(views)))
    c.update(2, {})
    c.update(3, {"val_sharpe": 0.2})
    state = json.loads(json.dumps(c.state()))
    resumed = build(panel, views, *stages)
    resumed.load_state(state)
    assert resumed.task() == c.task() and resumed.stage_name == "b"
    assert resumed.history == c.history and resumed.stage_started == 2
    # ...and the clock continues: promotion after its first trained iteration.
    assert resumed.update(4, {"val_sharpe": 1.0}) and c.update(4, {"val_sharpe": 1.0})
    assert resumed.state() == c.state()


def test_state_of_another_curriculum_is_refused(
    panel: MarketPanel, views: list[EpisodeView]
) -> None:
    c = build(panel, views, {"name": "a", "iterations": 1}, {"name": "b"})
    other = build(panel, views, {"name": "a", "iterations": 1}, {"name": "z"})
    with pytest.raises(ConfigError, match=r"c\.yaml: the stored curriculum state"):
        other.load_state(c.state())
    with pytest.raises(ConfigError, match="data changed"):
        Curriculum(c.config, views[:-1], panel, 3, "c.yaml").load_state(c.state())


@pytest.mark.parametrize("preset", ["default", "quick"])
@pytest.mark.parametrize("name", ["liquid_to_all", "difficulty", "costs"])
def test_examples_build_on_the_bundled_data(preset: str, name: str) -> None:
    config = RunConfig() if preset == "default" else load_preset(preset)
    prepared = prepare(config)
    views = prepared.train_views
    c = Curriculum(
        load_curriculum(EXAMPLES / f"{name}.yaml"),
        views,
        prepared.panel,
        config.env.n_symbols,
        f"{name}.yaml",
    )
    sizes = [len(c.stage_views(i)) for i in range(c.n_stages)]
    assert all(size > 0 for size in sizes)
    assert sizes[-1] == len(views) or name == "difficulty"
    assert json.loads(json.dumps(c.task())) == c.task()
    if name == "liquid_to_all":
        first = c.task()
        assert len(first["symbols"]) == 5
        assert {s for i in first["views"] for s in views[i].symbols} <= set(first["symbols"])
    if name == "difficulty":
        assert sizes[0] < sizes[1] < sizes[2] == len(views)
    if name == "costs":
        levels = [c.config.stages[i].cost_multiplier for i in range(c.n_stages)]
        assert levels == [0.0, 0.5, 1.0]


def test_no_training_views_is_a_config_error(panel: MarketPanel) -> None:
    config = curriculum_config({"name": "a"})
    with pytest.raises(ConfigError, match=r"c\.yaml: no training views"):
        Curriculum(config, [], panel, 3, "c.yaml")


def test_the_curriculum_package_never_imports_ray() -> None:
    import subprocess
    import sys

    code = "import sys, multiagent.curriculum; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
