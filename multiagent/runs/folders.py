"""Run folders: created fresh, never reused silently, with the config that made them."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from multiagent.config import RunConfig, load_config
from multiagent.errors import ConfigError
from multiagent.logs import log_to


def run_path(run_dir: Path, recorded: str | Path) -> Path:
    """A path a run record holds: relative to the run folder (records are movable with their
    folder), or, in records written before that, absolute or relative to the working dir."""
    path = Path(recorded)
    if path.is_absolute():
        return path
    inside = run_dir / path
    return inside if inside.exists() or not path.exists() else path


def recorded_path(run_dir: Path, path: Path) -> str:
    """``path`` as run records hold it: relative to the run folder, so a run folder can be
    moved with its records (`run_path` reads it back); outside the folder, as given."""
    try:
        return str(path.resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return str(path)


def free_path(path: Path, *, sep: str = "-", first: int = 2, suffix: str = "") -> Path:
    """``path`` when nothing is there, else the first free ``NAME{sep}{n}{suffix}`` from
    ``first`` on (``suffix`` stays last: ``best.yaml`` -> ``best-2.yaml``): what the user or an
    earlier run wrote is never replaced."""
    if not path.exists():
        return path
    stem = path.name[: -len(suffix)] if suffix and path.name.endswith(suffix) else path.name
    n = first
    while (candidate := path.with_name(f"{stem}{sep}{n}{suffix}")).exists():
        n += 1
    return candidate


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    """``runs_dir/name``, or ``name-2``, ``name-3``... when taken: earlier runs are kept. The
    folder is created here, so two runs starting at once never share one."""
    base = Path(runs_dir)
    base.mkdir(parents=True, exist_ok=True)
    while True:
        candidate = free_path(base / name)
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue


def fresh_dir(path: Path, overwrite: bool = False) -> Path:
    """``path`` if it is new or empty (or ``overwrite``), else ``path-2``, ``path-3``...:
    earlier reports are never replaced silently."""
    if overwrite or not path.exists() or not any(path.iterdir()):
        path.mkdir(parents=True, exist_ok=True)
        return path
    candidate = free_path(path)
    candidate.mkdir(parents=True)
    return candidate


def check_run_dir_free(path: Path, *, overwrite: bool = False) -> None:
    """Refuse ``path`` for a new run, changing nothing: a file, or a folder that already holds
    files (unless ``overwrite``). Asked before the run's checks, so a refusal costs nothing."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file, not a run folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise ConfigError(
            f"{path} already holds a run: continue it with --resume, redo phases with "
            "--from-phase (their outputs are archived), or replace it with --overwrite"
        )


def claim_run_dir(path: Path, *, overwrite: bool = False) -> Path:
    """``path`` for a new run: refused when it already holds files, unless ``overwrite`` (then
    they are deleted: the user asked for it by name)."""
    check_run_dir_free(path, overwrite=overwrite)
    if path.is_dir() and any(path.iterdir()):
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_run_config(config: RunConfig, run_dir: Path) -> Path:
    """Write (or check) the run's config; from here on the run's log file is
    ``run_dir/logs/run.log`` (`multiagent.logs`)."""
    log_to(run_dir)
    path = run_dir / "config.yaml"
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    if path.exists():
        # Same text, or the same config written by an older version (keys added since take
        # their defaults): the run goes on and its file is left as it was.
        if path.read_text() != text and load_config(path) != config:
            raise ConfigError(
                f"{path} holds another config; start a new run instead of mixing two configs"
            )
        return path
    write_atomic(path, text)
    return path


def load_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no config.yaml)")
    return load_config(path)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_json(path: Path, payload: Any) -> None:
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=float) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it as JSON ({exc})", file=str(path)) from None


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(row, sort_keys=True, default=float) + "\n")
