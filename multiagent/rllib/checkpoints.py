"""Where our RLlib checkpoints keep their RLModules, and the format evaluation reads them by.

Importing this module registers `RLLIB_CHECKPOINTS` with evaluation (`multiagent.rllib` imports
it), so `multiagent evaluate RUN/symbols/iter_000004` works without evaluation importing Ray.
Ray is imported only when a policy is loaded.
"""

from __future__ import annotations

from pathlib import Path

from multiagent.evaluation.policies import GreedyNetPolicy, MasterDecider
from multiagent.evaluation.sources import register_checkpoint_format

SYMBOL_MODULE = "symbol"
MASTER_MODULE = "master"
SYMBOL_VECTOR_MODULE = "default_policy"
"""A vector-env phase 2 saves the symbol module under RLlib's single-agent default id."""


def module_path(checkpoint: Path, module_id: str) -> Path:
    """The RLModule folder of ``module_id`` inside one of our phase checkpoints (the symbol
    module of a vector-env phase 2 under RLlib's default id)."""
    modules = checkpoint / "algo" / "learner_group" / "learner" / "rl_module"
    vector = modules / SYMBOL_VECTOR_MODULE
    if module_id == SYMBOL_MODULE and not (modules / module_id).is_dir() and vector.is_dir():
        return vector
    return modules / module_id


def module_checkpoint(path: Path, module_id: str = SYMBOL_MODULE) -> Path | None:
    """The RLModule ``module_id`` inside an RLlib checkpoint folder (an iteration, its ``algo``
    folder, or the module folder itself)."""
    names = (module_id, SYMBOL_VECTOR_MODULE) if module_id == SYMBOL_MODULE else (module_id,)
    for name in names:
        for candidate in (
            path,
            path / "rl_module" / name,
            path / "learner_group" / "learner" / "rl_module" / name,
            path / "algo" / "learner_group" / "learner" / "rl_module" / name,
        ):
            if candidate.name != name and candidate == path:
                continue
            state = (candidate / "module_state.pt", candidate / "module_state.pkl")
            if any(file.is_file() for file in state):
                return candidate
    return None


class RLlibCheckpoints:
    """Our RLlib checkpoint folders as an evaluation `CheckpointFormat`."""

    kind = "rllib"

    def module(self, path: Path, module_id: str) -> Path | None:
        return module_checkpoint(path, module_id)

    def load_policy(self, path: Path, name: str) -> GreedyNetPolicy:
        from multiagent.rllib.policy import load_rllib_policy

        return load_rllib_policy(path, name)

    def load_master(self, path: Path, name: str) -> MasterDecider:
        from multiagent.rllib.policy import load_rllib_master

        return load_rllib_master(path, name)


RLLIB_CHECKPOINTS = RLlibCheckpoints()
register_checkpoint_format(RLLIB_CHECKPOINTS)
