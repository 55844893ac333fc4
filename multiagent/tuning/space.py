"""Dotted-path overrides of a run config: how a trial's sampled values become its config.

Overrides are applied to the *resolved* config (every default filled in), so ``master.ppo.lr``
changes that one value and keeps the rest of the master's PPO settings; a preset's partial
section can never reset its siblings to the generic defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from multiagent.config import RunConfig, validate_mapping
from multiagent.errors import ConfigError


def _set(tree: Any, path: list[str], value: Any, key: str) -> None:
    node = tree
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, dict):
            if part not in node:
                where = ".".join(path[:depth]) or "the run config"
                options = ", ".join(sorted(node)) if node else "none"
                raise ConfigError(f"`{key}`: {where} has no key {part!r} (keys: {options})")
            if last:
                node[part] = value
            else:
                node = node[part]
        elif isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"`{key}`: {part!r} is not an index of a {len(node)}-item list")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        else:
            raise ConfigError(f"`{key}`: {'.'.join(path[:depth])} is a value, not a section")


def apply_overrides(
    config: RunConfig, overrides: Mapping[str, Any], *, source: str = "overrides"
) -> RunConfig:
    """``config`` with each dotted key set; a key the config lacks or a value it rejects is a
    `ConfigError` naming the key."""
    tree = config.model_dump(mode="json")
    for key, value in overrides.items():
        _set(tree, key.split("."), _plain(value), key)
    return validate_mapping(RunConfig, tree, file=source)


def _plain(value: Any) -> Any:
    """Numpy scalars (what samplers hand back) as Python numbers, tuples as lists."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
