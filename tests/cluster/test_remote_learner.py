"""A remote learner (`resources.num_learners: 1`, the cluster layout where the learner is a
Ray actor, on a GPU node when there is one): the shared-encoder PPO learner trains there, its
weights reach the sampling runner, and checkpoints and evaluation work as with the driver's
own learner."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.tiny import tiny_config

from multiagent.rllib.symbols import SymbolTrainer


def runner_module(trainer: SymbolTrainer) -> Any:
    """The symbol module the driver's runner samples with (a single-agent runner holds the
    module itself, a multi-agent one a MultiRLModule)."""
    module = trainer.algo.env_runner.module
    return module[trainer.symbol_id] if hasattr(module, "keys") else module


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("learners", [1, 2])
def test_remote_learners_train_and_sync_the_runner(tmp_path: Path, learners: int) -> None:
    """With 2 learners (data parallel, torch DDP over gloo on CPUs) both hold the same weights
    after every update: the shared encoder's single optimizer works under DDP too."""
    config = tiny_config(tmp_path, resources={"num_learners": learners})
    trainer = SymbolTrainer(config, tmp_path / "run")
    try:
        assert trainer.algo.learner_group.is_remote
        before = {k: v.detach().clone() for k, v in runner_module(trainer).state_dict().items()}
        trainer.iterate(evaluate=False)
        row = trainer.iterate(evaluate=True, checkpoint=True)
        assert math.isfinite(row["policy_loss"]) and math.isfinite(row["val_sharpe"])
        module_id = trainer.symbol_id
        learned = trainer.algo.learner_group.get_weights()[module_id]
        sampling = runner_module(trainer).state_dict()
        moved = [k for k in learned if not np.allclose(before[k].numpy(), learned[k])]
        assert moved, "the remote learner did not change any weight"
        for key in learned:  # the runner samples with the learner's weights
            assert np.allclose(sampling[key].numpy(), learned[key]), key
        per_learner = trainer.algo.learner_group.foreach_learner(
            lambda learner: {
                k: v.detach().cpu().numpy()
                for k, v in learner.module[module_id].state_dict().items()
            }
        )
        weights = [r.get() if hasattr(r, "get") else r for r in per_learner]
        assert len(weights) == learners
        for other in weights[1:]:
            assert all(np.allclose(other[k], weights[0][k]) for k in weights[0])
    finally:
        trainer.stop()
    resources = json.loads((tmp_path / "run" / "symbols" / "resources.json").read_text())
    assert resources["num_learners"] == learners
    assert (tmp_path / "run" / "symbols" / "checkpoints" / "iter_00002" / "algo").is_dir()
