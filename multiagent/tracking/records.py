"""What a run records: config as flat params, finite metrics, reproducibility tags.

MLflow params are flat strings of at most 6000 characters, keys allow few characters, and
metrics must be finite numbers; these functions shape a config dump and an RLlib result into
that form, so a store never rejects a batch (one rejected batch would turn tracking off).
"""

from __future__ import annotations

import json
import math
import numbers
import platform
import posixpath
import re
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

MAX_PARAM_VALUE = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH (mlflow 3)
MAX_KEY = 250  # MAX_ENTITY_KEY_LENGTH
VERSIONED = ("multiagent", "ray", "torch", "mlflow", "optuna", "numpy", "pandas")
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings as dotted keys, lists and tuples as JSON, every value a string cut to
    MLflow's param limit: the form MLflow params take, so a config compares key by key.

    ``prefix`` goes in front of every key, joined by a dot (``"sweep"`` and ``"sweep."`` give
    the same ``sweep.key``)."""
    flat: dict[str, str] = {}
    for key, value in mapping.items():
        name = _join(prefix, key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name))
            continue
        if isinstance(value, list | tuple | Mapping):
            text = json.dumps(value, default=str, separators=(",", ":"))
        else:
            text = str(value)
        flat[name] = text[:MAX_PARAM_VALUE]
    return flat


def _join(prefix: str, key: object) -> str:
    if not prefix:
        return str(key)
    return f"{prefix}{key}" if prefix.endswith(".") else f"{prefix}.{key}"


def metric_key(key: str) -> str:
    """A key MLflow accepts for params and metrics: allowed characters only, and no path that
    normalizes to another name (``a//b``, ``/a``, ``..``)."""
    key = _BAD_KEY_CHARS.sub("_", key)[:MAX_KEY]
    if posixpath.normpath(key) != key or key.startswith(("/", "..")) or key in ("", "."):
        key = key.replace("/", "_").lstrip(".") or "_"
    return key


def finite_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite real numbers of ``metrics`` (nested mappings as dotted keys): bools, None,
    NaN, infinities and strings are dropped, since MLflow would store or reject them badly."""
    found: dict[str, float] = {}
    for key, value in metrics.items():
        name = _join(prefix, key)
        if isinstance(value, Mapping):
            found.update(finite_metrics(value, name))
        elif (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        ):
            found[metric_key(name)] = float(value)
    return found


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_revision() -> tuple[str, bool | None]:
    """The commit of the checkout this package runs from and whether it has uncommitted
    changes; ``("unknown", None)`` for an installed wheel (a git repository that merely
    contains the virtual environment is not the package's checkout)."""
    package = Path(__file__).resolve().parents[1]
    top = _git(package, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() / package.name != package:
        return "unknown", None
    revision = _git(package, "rev-parse", "HEAD")
    if revision is None:
        return "unknown", None
    status = _git(package, "status", "--porcelain", "--untracked-files=no")
    return revision, None if status is None else bool(status)


def versions() -> dict[str, str]:
    """Python's and the key packages' versions ("missing" when not installed)."""
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def run_tags(
    config_dump: Mapping[str, Any], *, seed: int, data_fingerprint: str | None
) -> dict[str, str]:
    """What a run needs to be reproduced: code revision, data fingerprint, seed, versions.

    ``config_dump`` is accepted so callers pass what they log; its ``preset`` or ``name`` key,
    when present, becomes the ``config`` tag."""
    revision, dirty = git_revision()
    tags = {
        "git_revision": revision,
        "git_dirty": "unknown" if dirty is None else str(dirty).lower(),
        "data_fingerprint": data_fingerprint or "unknown",
        "seed": str(seed),
    }
    if revision != "unknown":
        tags["mlflow.source.git.commit"] = revision  # shown by the MLflow UI
    for name, version in versions().items():
        tags[f"version.{name}"] = version
    for key in ("preset", "name"):
        if isinstance(config_dump.get(key), str):
            tags["config"] = config_dump[key]
            break
    return tags
