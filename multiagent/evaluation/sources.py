"""What to evaluate: the systems a path holds, and the run config that goes with them.

A *system* is what trades: the symbol policy, and for the hierarchy its master.

| system | phase | what runs |
|---|---|---|
| ``independent`` | symbols (2) | the symbol policy, equal budgets, neutral mode |
| ``hierarchical`` | master (3) | phase 3's master over its (frozen) symbol policy |
| ``joint`` | joint (4) | phase 4's master and symbol policy after joint tuning |

A path is a run folder (every system its phases finished; ``RUN/PHASE/policy.pt`` and, for
master and joint, ``RUN/PHASE/master.pt``), an exported ``policy.pt`` (with ``master.pt``
beside it when it has one), or a trainer's checkpoint folder in a format its adapter
registered (`register_checkpoint_format`; the RLlib adapter registers its folders of symbol and
master RLModules). Evaluation never imports a trainer: it runs what a format loads through the
policy protocol. Asking for a system the path cannot provide is an error, never a fallback to
another system.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from multiagent.config import RunConfig, load_config
from multiagent.errors import ConfigError
from multiagent.evaluation.policies import GreedyNetPolicy, MasterDecider
from multiagent.runs.folders import recorded_path

SYSTEMS = ("independent", "hierarchical", "joint")
SYSTEM_PHASES = {"independent": "symbols", "hierarchical": "master", "joint": "joint"}
PHASE_SYSTEMS = {phase: system for system, phase in SYSTEM_PHASES.items()}
POLICY_NAME = "policy.pt"
MASTER_NAME = "master.pt"
POLICY_FILE = Path("symbols") / POLICY_NAME
"""The independent system's export in a run folder."""


class CheckpointFormat(Protocol):
    """A trainer's checkpoint folder layout and how to load its policies for evaluation."""

    kind: str
    """The name reports show for systems loaded from it (e.g. ``rllib``)."""

    def module(self, path: Path, module_id: str) -> Path | None:
        """The saved module ``module_id`` (``symbol`` or ``master``) under ``path``, if any."""
        ...

    def load_policy(self, path: Path, name: str) -> GreedyNetPolicy:
        """The greedy symbol policy saved under ``path``."""
        ...

    def load_master(self, path: Path, name: str) -> MasterDecider:
        """The greedy master saved under ``path``."""
        ...


_FORMATS: dict[str, CheckpointFormat] = {}


def register_checkpoint_format(checkpoint_format: CheckpointFormat) -> None:
    """Let evaluation read ``checkpoint_format``'s folders (an adapter calls this on import)."""
    _FORMATS[checkpoint_format.kind] = checkpoint_format


def _format_of(path: Path) -> CheckpointFormat | None:
    return next((f for f in _FORMATS.values() if f.module(path, "symbol") is not None), None)


@dataclass(frozen=True)
class SystemSource:
    system: str
    kind: str
    """``torchscript`` or a registered checkpoint format's kind (``rllib``)."""
    policy: Path
    """The symbol policy: a ``policy.pt`` or a checkpoint folder."""
    master: Path | None
    """The master: a ``master.pt`` or the checkpoint folder; None: neutral master."""

    def describe(self, run_dir: Path | None) -> dict[str, Any]:
        def shown(path: Path | None) -> str | None:
            if path is None:
                return None
            return str(path) if run_dir is None else recorded_path(run_dir, path)

        return {
            "system": self.system,
            "kind": self.kind,
            "policy": shown(self.policy),
            "master": shown(self.master),
        }

    def load(self) -> GreedyNetPolicy:
        """The greedy system, named after it, with its master attached (None: neutral)."""
        if self.kind == "torchscript":
            from multiagent.evaluation.master_policy import MasterNetPolicy

            policy = GreedyNetPolicy.load(str(self.policy), self.system)
            if self.master is not None:
                policy.master = MasterNetPolicy.load(self.master, f"{self.system}_master")
            return policy
        checkpoint_format = _FORMATS[self.kind]
        policy = checkpoint_format.load_policy(self.policy, self.system)
        if self.master is not None:
            policy.master = checkpoint_format.load_master(self.master, f"{self.system}_master")
        return policy


@dataclass
class PolicySource:
    path: Path
    """What the user pointed at."""
    run_dir: Path | None
    systems: list[SystemSource]
    notes: list[str] = field(default_factory=list)
    """Systems of a run folder left out, and why."""

    @property
    def kind(self) -> str:
        return self.systems[0].kind

    def describe(self, shown: str) -> dict[str, Any]:
        return {
            "path": shown,
            "systems": {s.system: s.describe(self.run_dir) for s in self.systems},
            "notes": list(self.notes),
        }

    def load(self) -> list[GreedyNetPolicy]:
        return [s.load() for s in self.systems]


def find_run_dir(path: Path) -> Path | None:
    """The run folder (holding ``config.yaml``) that ``path`` is in, if any."""
    for folder in (path, *path.parents):
        if (folder / "config.yaml").is_file():
            return folder
    return None


def _phase_of(path: Path, run_dir: Path | None) -> str | None:
    """The phase folder (symbols, master, joint) ``path`` lies in inside its run folder."""
    if run_dir is None:
        return None
    try:
        parts = path.resolve().relative_to(run_dir.resolve()).parts
    except ValueError:
        return None
    return parts[0] if parts and parts[0] in PHASE_SYSTEMS else None


def resolve(checkpoint: Path, system: str | None = None) -> PolicySource:
    """The systems ``checkpoint`` holds (``system``: that one only, or an error)."""
    if system is not None and system not in SYSTEMS:
        raise ConfigError(f"--system must be one of {', '.join(SYSTEMS)}, not {system!r}")
    if not checkpoint.exists():
        raise ConfigError(
            f"{checkpoint}: no such checkpoint (give a policy.pt, an RLlib "
            "checkpoint folder or a run folder)"
        )
    run_dir = find_run_dir(checkpoint.resolve())
    if checkpoint.is_file():
        found = [_from_export(checkpoint, run_dir, system)]
        return PolicySource(checkpoint, run_dir, found)
    checkpoint_format = _format_of(checkpoint)
    if checkpoint_format is not None:
        found = [_from_checkpoint(checkpoint_format, checkpoint, run_dir, system)]
        return PolicySource(checkpoint, run_dir, found)
    if (checkpoint / "config.yaml").is_file():
        return _from_run_folder(checkpoint, system)
    raise ConfigError(
        f"{checkpoint}: not a policy file, RLlib checkpoint or run folder (no "
        f"{POLICY_FILE} and no symbol RLModule inside)"
    )


def _from_export(path: Path, run_dir: Path | None, system: str | None) -> SystemSource:
    if path.name == MASTER_NAME:
        raise ConfigError(
            f"{path}: give the symbol policy ({path.with_name(POLICY_NAME)}); the master "
            "beside it is picked up"
        )
    if not path.with_suffix(".json").is_file():
        raise ConfigError(f"{path}: a TorchScript policy needs its .json sidecar")
    master = path.with_name(MASTER_NAME)
    chosen = _system_of(
        path, run_dir, system, master.is_file(), f"its master ({master} is missing)"
    )
    return SystemSource(chosen, "torchscript", path, master if chosen != "independent" else None)


def _from_checkpoint(
    checkpoint_format: CheckpointFormat, path: Path, run_dir: Path | None, system: str | None
) -> SystemSource:
    has_master = checkpoint_format.module(path, "master") is not None
    chosen = _system_of(
        path, run_dir, system, has_master, "a master RLModule (a phase-2 checkpoint)"
    )
    master = path if chosen != "independent" else None
    return SystemSource(chosen, checkpoint_format.kind, path, master)


def _system_of(
    path: Path, run_dir: Path | None, system: str | None, has_master: bool, lacking: str
) -> str:
    """The system a single export or checkpoint is: ``system`` when asked (an error when it
    needs a master the path lacks), else its phase's, else by whether it has a master."""
    own = PHASE_SYSTEMS.get(_phase_of(path, run_dir) or "", "independent")
    if own == "independent" and has_master:
        own = "hierarchical"
    chosen = system or own
    if chosen != "independent" and not has_master:
        raise ConfigError(
            f"{path}: the {chosen} system needs {lacking}; this holds the symbol policy only: "
            "evaluate it with --system independent"
        )
    return chosen


def _from_run_folder(run_dir: Path, system: str | None) -> PolicySource:
    """Every system whose phase finished, by its exports (``PHASE/policy.pt`` + master.pt)."""
    status: dict[str, str] = {}
    pipeline = run_dir / "pipeline.json"
    if pipeline.is_file():
        try:
            phases = json.loads(pipeline.read_text(encoding="utf-8")).get("phases", {})
            status = {name: str(record.get("status")) for name, record in phases.items()}
        except (ValueError, AttributeError) as error:
            raise ConfigError(f"{pipeline}: not a pipeline record ({error})") from None
    found: list[SystemSource] = []
    notes: list[str] = []
    for name in SYSTEMS if system is None else (system,):
        phase = SYSTEM_PHASES[name]
        policy = run_dir / phase / POLICY_NAME
        master = run_dir / phase / MASTER_NAME if name != "independent" else None
        missing = [p for p in (policy, master) if p is not None and not p.is_file()]
        why = None
        if status and status.get(phase, "not run") != "done":
            why = f"phase {phase} is {status.get(phase, 'not run')} in {pipeline.name}"
        elif missing:
            why = f"{missing[0]} is missing"
        if why is None:
            found.append(SystemSource(name, "torchscript", policy, master))
        elif system is not None:
            raise ConfigError(f"{run_dir}: no {name} system to evaluate ({why})")
        elif phase in status or policy.is_file():
            notes.append(f"{name}: left out ({why})")
    if not found:
        raise ConfigError(
            f"{run_dir}: no trained system to evaluate (no {POLICY_FILE}; train it first: "
            "multiagent train pipeline)"
        )
    return PolicySource(run_dir, run_dir, found, notes)


def trained_symbols(source: PolicySource, config: RunConfig) -> set[str] | None:
    """The symbols of the run's training episodes when ``config`` is not the run's own (so a
    wider universe in ``config`` shows which symbols the policy never saw), else None."""
    if source.run_dir is None or not (source.run_dir / "config.yaml").is_file():
        return None
    own: RunConfig = load_config(source.run_dir / "config.yaml")
    if own == config:
        return None
    from multiagent.runs.prepare import prepare

    return {s for view in prepare(own).train_views for s in view.symbols}


def run_config_for(source: PolicySource, config: Path | None) -> RunConfig:
    if config is not None:
        return load_config(config)
    if source.run_dir is None:
        raise ConfigError(
            f"{source.path} is not inside a run folder; pass --config with the run's config"
        )
    return load_config(source.run_dir / "config.yaml")
