"""Where a policy to evaluate comes from: an exported TorchScript file, an RLlib checkpoint
folder or a run folder, and the run config that goes with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multiagent.config import RunConfig, load_config
from multiagent.errors import ConfigError
from multiagent.evaluation.policies import GreedyNetPolicy

POLICY_FILE = Path("symbols") / "policy.pt"


@dataclass
class PolicySource:
    path: Path
    kind: str
    """``torchscript`` or ``rllib``."""
    run_dir: Path | None

    def describe(self, shown: str) -> dict[str, Any]:
        return {"policy": shown, "kind": self.kind}

    def load(self, name: str = "agent") -> GreedyNetPolicy:
        if self.kind == "torchscript":
            return GreedyNetPolicy.load(str(self.path), name)
        from multiagent.rllib.policy import load_rllib_policy

        return load_rllib_policy(self.path, name)


def module_checkpoint(path: Path, module_id: str = "symbol") -> Path | None:
    """The RLModule ``module_id`` inside an RLlib checkpoint folder (an iteration, its ``algo``
    folder, or the module folder itself)."""
    for candidate in (
        path,
        path / "rl_module" / module_id,
        path / "learner_group" / "learner" / "rl_module" / module_id,
        path / "algo" / "learner_group" / "learner" / "rl_module" / module_id,
    ):
        if (candidate / "module_state.pt").is_file() or (candidate / "module_state.pkl").is_file():
            return candidate
    return None


def find_run_dir(path: Path) -> Path | None:
    """The run folder (holding ``config.yaml``) that ``path`` is in, if any."""
    for folder in (path, *path.parents):
        if (folder / "config.yaml").is_file():
            return folder
    return None


def resolve(checkpoint: Path) -> PolicySource:
    if not checkpoint.exists():
        raise ConfigError(
            f"{checkpoint}: no such checkpoint (give a policy.pt, an RLlib "
            "checkpoint folder or a run folder)"
        )
    run_dir = find_run_dir(checkpoint.resolve())
    if checkpoint.is_file():
        if not checkpoint.with_suffix(".json").is_file():
            raise ConfigError(f"{checkpoint}: a TorchScript policy needs its .json sidecar")
        return PolicySource(checkpoint, "torchscript", run_dir)
    if (checkpoint / POLICY_FILE).is_file():
        return PolicySource(checkpoint / POLICY_FILE, "torchscript", checkpoint)
    if module_checkpoint(checkpoint) is not None:
        return PolicySource(checkpoint, "rllib", run_dir)
    raise ConfigError(
        f"{checkpoint}: not a policy file, RLlib checkpoint or run folder (no "
        f"{POLICY_FILE} and no symbol RLModule inside)"
    )


def trained_symbols(source: PolicySource, config: RunConfig) -> set[str] | None:
    """The symbols of the run's training episodes when ``config`` is not the run's own (so a
    wider universe in ``config`` shows which symbols the policy never saw), else None."""
    if source.run_dir is None or not (source.run_dir / "config.yaml").is_file():
        return None
    own: RunConfig = load_config(source.run_dir / "config.yaml")
    if own == config:
        return None
    from multiagent.training.prepare import prepare

    return {s for view in prepare(own).train_views for s in view.symbols}


def run_config_for(source: PolicySource, config: Path | None) -> RunConfig:
    if config is not None:
        return load_config(config)
    if source.run_dir is None:
        raise ConfigError(
            f"{source.path} is not inside a run folder; pass --config with the run's config"
        )
    return load_config(source.run_dir / "config.yaml")
