"""A run folder's records of its pipeline: ``pipeline.json`` (each phase's status, outputs and
figures) and ``data.json`` (the market it trained on), and what reading them decides: which
phases run, where a phase continues from, whether a folder holds anything to resume.

Kept apart from `pipeline` (the phases themselves) so the checks made before Ray starts and the
command line read the same record the same way.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from multiagent.config import RunConfig
from multiagent.config.phases import PHASES
from multiagent.errors import ConfigError
from multiagent.runs.folders import load_run_config, read_json

PIPELINE_FILE = "pipeline.json"
DATA_FILE = "data.json"
"""The run's record of its market: source, fingerprint, symbols and the loading's notes."""


def phase_range(
    from_phase: str | None, to_phase: str | None, phases: tuple[str, ...] = PHASES
) -> list[str]:
    """The phases ``from_phase..to_phase`` of ``phases`` (a run config's ``phases``)."""
    for name in (from_phase, to_phase):
        if name is not None and name not in phases:
            raise ConfigError(f"no phase {name!r}; this run's phases are {', '.join(phases)}")
    first = phases.index(from_phase) if from_phase else 0
    last = phases.index(to_phase) if to_phase else len(phases) - 1
    if first > last:
        raise ConfigError(f"--from-phase {from_phase} comes after --to-phase {to_phase}")
    return list(phases[first : last + 1])


def latest_checkpoint(phase_dir: Path) -> Path | None:
    from multiagent.rllib.trainer import STATE_FILE

    found = sorted(p.parent for p in (phase_dir / "checkpoints").glob(f"iter_*/{STATE_FILE}"))
    return found[-1] if found else None


def run_config_to_use(config: RunConfig | None, run_dir: Path, *, continuing: bool) -> RunConfig:
    """The config a run goes on with: a continued run's own (``config``, when given, must be
    the same), else ``config``."""
    if continuing:
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"{run_dir} is not a run folder (no config.yaml) to continue")
        stored = load_run_config(run_dir)
        if config is not None and config != stored:
            raise ConfigError(
                f"{run_dir} was made with another config; continue it without --config/--preset"
            )
        return stored
    if config is None:
        raise ConfigError("a run config is needed unless continuing a run")
    return config


def read_state(path: Path) -> dict[str, Any]:
    """``pipeline.json``, refused with the way out when it is not the record this module
    writes (a JSON object whose ``phases`` maps phase names to objects)."""
    way_out = (
        f"restore it, or delete it and start over with --run-dir {path.parent} "
        "--from-phase pretrain"
    )
    try:
        state = read_json(path)
    except ConfigError as error:
        raise ConfigError(f"{error}; {way_out}", file=str(path)) from None
    phases = state.get("phases") if isinstance(state, dict) else None
    if not isinstance(phases, dict) or not all(isinstance(r, dict) for r in phases.values()):
        raise ConfigError(
            f"{path}: not a pipeline record (expected a JSON object with a `phases` object of "
            f"phase records); {way_out}",
            file=str(path),
            field="phases",
        )
    return dict(state)


def discard_unstarted(run_dir: Path) -> bool:
    """Delete ``run_dir`` when no phase has begun in it, and say whether it did.

    For a folder its caller created for a run whose start failed: nothing there could be
    resumed, and left behind it would make the next try need ``--overwrite``. A folder with a
    phase recorded (even one that failed) is kept for ``--resume``."""
    path = run_dir / PIPELINE_FILE
    if path.is_file():
        try:
            if read_state(path)["phases"]:
                return False
        except ConfigError:
            return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return True
