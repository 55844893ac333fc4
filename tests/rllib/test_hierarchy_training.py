"""Phases 3 and 4 on 2 CPUs: MAPPO's advantages, freezing, and the joint phase's learning rates.

Three tiny `HierarchyTrainer`s (no env runners, a 200-step batch), one PPO iteration each at
most. The modules start from random weights: what is checked here (which weights move, how
far, which values GAE uses) does not depend on a trained start.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hierarchy_configs import hierarchy_config
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from support.learners import local_learner

from multiagent.config import RunConfig
from multiagent.rllib.checkpoints import MASTER_MODULE, SYMBOL_MODULE
from multiagent.rllib.hierarchy import HierarchyTrainer
from multiagent.rllib.internals import run_learner_connector

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]

TINY_PPO = {"train_batch_size": 200, "minibatch_size": 50, "num_epochs": 2}
SMALL_NETS = {"hidden": [16], "critic_hidden": [16]}


def phase_config(tmp_path: Path, **sections: Any) -> RunConfig:
    master = {
        "iterations": 1,
        "ppo": {**TINY_PPO, "gamma": 0.9, "gae_lambda": 0.8},
        "policy": SMALL_NETS,
    }
    joint = {"iterations": 1, "ppo": {**TINY_PPO, "lr": 1e-4}}
    master.update(sections.pop("master", {}))
    joint.update(sections.pop("joint", {}))
    return hierarchy_config(tmp_path, master=master, joint=joint, **sections)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def master_phase(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("master_phase")
    config = phase_config(tmp, master={"symbol_value_heads_adapt": True})  # the opt-in path
    trainer = HierarchyTrainer(config, tmp / "run", "master")
    yield trainer
    trainer.stop()


def learner_of(trainer: HierarchyTrainer) -> Any:
    return local_learner(trainer.algo)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def part(key: str) -> str:
    return key.split(".")[0]


# advantages ------------------------------------------------------------------------------


def hand_gae(
    rewards: np.ndarray, values: np.ndarray, gamma: float, lam: float, terminated: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Textbook GAE over one episode: ``values`` has one more entry than ``rewards`` (the value
    of the last observation, the bootstrap unless the episode terminated)."""
    steps = len(rewards)
    advantages = np.zeros(steps)
    running = 0.0
    for t in reversed(range(steps)):
        following = values[t + 1] if t < steps - 1 or not terminated else 0.0
        running = rewards[t] + gamma * following - values[t] + gamma * lam * running
        advantages[t] = running
    return advantages, advantages + values[:steps]


def test_master_advantages_are_gae_over_decisions_with_the_centralized_values(
    master_phase: HierarchyTrainer,
) -> None:
    """PPO's learner connector (the one `Learner.update` runs) on sampled episodes: the master's
    value targets are GAE over its decision-level transitions (one per communication interval,
    reward = the interval's summed reward), with the values of its centralized critic; the
    advantages are those, standardized over the module's batch."""
    trainer = master_phase
    config = trainer.config
    learner = learner_of(trainer)
    gamma, lam = learner.config.gamma, learner.config.lambda_
    assert (gamma, lam) == (config.master.ppo.gamma, config.master.ppo.gae_lambda) == (0.9, 0.8)
    interval = config.env.communication_interval

    episodes = trainer.algo.env_runner.sample(num_episodes=2, explore=True)
    assert len(episodes) >= 2 and all(e.is_done for e in episodes)
    module = learner.module[MASTER_MODULE]
    expected_targets, expected_advantages, real_obs = [], [], []
    for episode in episodes:
        master = episode.agent_episodes["master"]
        assert len(master) == math.ceil(episode.env_t / interval) >= 10  # one step per decision
        obs = {k: torch.from_numpy(np.asarray(v)) for k, v in master.get_observations().items()}
        rewards = np.asarray(master.get_rewards(), dtype=np.float64)
        with torch.no_grad():
            vals = module.compute_values({Columns.OBS: obs}).numpy().astype(np.float64)
            zeroed = {**obs, "state": torch.zeros_like(obs["state"])}
            blind = module.compute_values({Columns.OBS: zeroed}).numpy().astype(np.float64)
        advantages, targets = hand_gae(rewards, vals, gamma, lam, master.is_terminated)
        _, blind_targets = hand_gae(rewards, blind, gamma, lam, master.is_terminated)
        assert not np.allclose(targets, blind_targets, atol=1e-3)  # the state matters
        expected_targets.append(targets)
        expected_advantages.append(advantages)
        real_obs.append(obs)

    batch = run_learner_connector(learner, episodes)[MASTER_MODULE]
    mask = batch[Columns.LOSS_MASK].numpy().astype(bool)
    # One extra (masked) row per episode: the last observation, the bootstrap slot.
    assert mask.size == sum(len(t) + 1 for t in expected_targets)
    assert (~mask).sum() == len(episodes)
    for key in ("obs", "market", "state"):
        rows = torch.cat([o[key] for o in real_obs])
        torch.testing.assert_close(batch[Columns.OBS][key], rows.float(), rtol=0, atol=0)

    targets = batch[Postprocessing.VALUE_TARGETS].numpy()
    np.testing.assert_allclose(
        targets[mask], np.concatenate(expected_targets), rtol=1e-5, atol=1e-4
    )
    # Advantages: (target - value) standardized over every row of the module's batch.
    with torch.no_grad():
        all_values = module.compute_values({Columns.OBS: batch[Columns.OBS]}).numpy()
    raw = targets - all_values
    np.testing.assert_allclose(raw[mask], np.concatenate(expected_advantages), rtol=1e-5, atol=1e-4)
    standardized = (raw - raw.mean()) / max(1e-4, raw.std())
    np.testing.assert_allclose(
        batch[Postprocessing.ADVANTAGES].numpy(), standardized, rtol=1e-5, atol=1e-5
    )


# freezing --------------------------------------------------------------------------------


def test_master_phase_trains_the_master_and_symbol_value_heads_only(
    master_phase: HierarchyTrainer,
) -> None:
    trainer = master_phase
    learner = learner_of(trainer)
    symbol_before = snapshot(learner.module[SYMBOL_MODULE])
    master_before = snapshot(learner.module[MASTER_MODULE])
    result = trainer.train(1)
    symbol_after = snapshot(learner.module[SYMBOL_MODULE])
    master_after = snapshot(learner.module[MASTER_MODULE])

    moved = changed(symbol_before, symbol_after)
    assert moved  # the symbol value head adapts (master.symbol_value_heads_adapt)
    assert {part(k) for k in moved} == {"vf"}
    for key in symbol_before:  # actor (and the shared encoder) bit-identical
        if part(key) in ("encoder", "core", "pi"):
            assert torch.equal(symbol_before[key], symbol_after[key]), key
    moved = changed(master_before, master_after)
    assert {part(k) for k in moved} == {"context", "pi", "vf"}
    assert not any(part(k) == "encoder" for k in moved)
    # One encoder object: the master's encoder is the symbol's.
    assert learner.module[MASTER_MODULE].encoder is learner.module[SYMBOL_MODULE].encoder

    # The env runner acts with the learner's weights after the iteration.
    for module_id, after in ((SYMBOL_MODULE, symbol_after), (MASTER_MODULE, master_after)):
        runner = trainer.algo.get_module(module_id).state_dict()
        assert runner.keys() == after.keys()
        for key in after:
            assert torch.equal(runner[key], after[key]), (module_id, key)

    row = result.history[-1]
    assert row["iteration"] == 1
    assert math.isfinite(row["master_policy_entropy"]) and row["master_policy_entropy"] > 0
    assert math.isfinite(row["master_vf_loss"]) and math.isfinite(row["vf_loss"])
    assert math.isfinite(row["val_sharpe"])
    # The master's telemetry: entropy as a share of its maximum, the critic's explained
    # variance, and (once an episode has ended) how it used its budgets.
    assert 0 < row["master_entropy_fraction"] <= 1
    assert "master_vf_explained_var" in row
    assert row["episodes"] > 0
    telemetry = {"master_level_share_0", "master_mode_share_1", "forced_trim_turnover"}
    assert telemetry <= set(row)
    assert sum(row[f"master_level_share_{k}"] for k in range(5)) == pytest.approx(1.0)
    logged = json.loads((trainer.dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert logged["iteration"] == 1 and "master_policy_loss" in logged
    assert "master_entropy_fraction" in logged and telemetry <= set(logged)


def test_master_phase_keeps_the_symbol_module_fixed_without_value_adaptation(
    tmp_path: Path,
) -> None:
    config = phase_config(tmp_path, master={"symbol_value_heads_adapt": False})
    trainer = HierarchyTrainer(config, tmp_path / "run", "master")
    try:
        learner = learner_of(trainer)
        symbol_before = snapshot(learner.module[SYMBOL_MODULE])
        master_before = snapshot(learner.module[MASTER_MODULE])
        trainer.algo.train()
        symbol_after = snapshot(learner.module[SYMBOL_MODULE])
        master_after = snapshot(learner.module[MASTER_MODULE])
        runner = trainer.algo.get_module(SYMBOL_MODULE).state_dict()
    finally:
        trainer.stop()
    assert changed(symbol_before, symbol_after) == set()
    assert all(torch.equal(runner[k], v) for k, v in symbol_after.items())
    assert {part(k) for k in changed(master_before, master_after)} == {"context", "pi", "vf"}


# joint phase -----------------------------------------------------------------------------


def test_joint_phase_moves_the_symbol_actor_at_its_low_rate(tmp_path: Path) -> None:
    config = phase_config(tmp_path, joint={"encoder_lr": 3e-5, "centralized_critic": True})
    joint = config.joint
    assert joint.symbol_actor_lr == 1e-5  # the default under test
    trainer = HierarchyTrainer(config, tmp_path / "run", "joint")
    try:
        learner = learner_of(trainer)
        symbol = learner.module[SYMBOL_MODULE]
        master = learner.module[MASTER_MODULE]
        (optimizer,) = learner.registered_optimizers()
        rate = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
        params = [p for g in optimizer.param_groups for p in g["params"]]
        assert len(rate) == len(params)  # every parameter once
        unique = {id(p) for m in (symbol, master) for p in m.parameters()}
        assert set(rate) == unique  # nothing frozen in the joint phase
        for name, param in symbol.named_parameters():
            expected = {"pi": 1e-5, "encoder": 3e-5, "vf": joint.ppo.lr}[part(name)]
            assert rate[id(param)] == expected, name
        for name, param in master.named_parameters():
            expected = 3e-5 if part(name) == "encoder" else joint.ppo.lr
            assert rate[id(param)] == expected, name
        # One group per module part, each at its part's rate (groups never merge on equal
        # rates: a PBT donor's optimizer state must fit any recipient).
        assert {g["lr"] for g in optimizer.param_groups} == {1e-5, 3e-5, 1e-4}

        symbol_before = snapshot(symbol)
        master_before = snapshot(master)
        trainer.algo.train()
        steps = {int(s["step"]) for s in optimizer.state_dict()["state"].values()}
        symbol_after = snapshot(symbol)
        master_after = snapshot(master)
        runner = trainer.algo.get_module(SYMBOL_MODULE).state_dict()
    finally:
        trainer.stop()
    (n_steps,) = steps
    assert n_steps >= 1

    def largest_move(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], name: str):
        return max(float((after[k] - before[k]).abs().max()) for k in before if part(k) == name)

    # Adam moves a weight by at most about lr per step (bias-corrected m / sqrt(v) <= ~1 for
    # steady gradients; (1 - b1) / sqrt(1 - b2) ~ 3.2 in the worst case).
    pi_move = largest_move(symbol_before, symbol_after, "pi")
    encoder_move = largest_move(symbol_before, symbol_after, "encoder")
    assert 0 < pi_move <= 3.2 * 1e-5 * n_steps
    assert 0 < encoder_move <= 3.2 * 3e-5 * n_steps
    master_move = max(largest_move(master_before, master_after, p) for p in ("context", "pi"))
    assert master_move > 3 * pi_move
    assert largest_move(symbol_before, symbol_after, "vf") > 3 * pi_move
    assert all(torch.equal(runner[k], v) for k, v in symbol_after.items())
