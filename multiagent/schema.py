"""How a YAML file becomes a typed, validated model: the base every settings section extends,
and the one error format (file, dotted key, what was expected) every loader raises.

This is a foundation: it imports nothing of the package but its errors, so every layer above
(data, envs, the run config, the sweep config) validates its files the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from multiagent.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


class Settings(BaseModel):
    """A frozen settings section: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def describe_error(error: dict[str, Any]) -> str:
    """One line for one pydantic error: the dotted key, then what was wrong."""
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"`{key}`: unknown key"
    if kind == "missing":
        return f"`{key}`: required key is missing"
    value = error.get("input")
    shown = repr(value) if not isinstance(value, dict) else "a mapping"
    return f"`{key}`: {error['msg']} (got {shown})"


def validate_mapping(model: type[Model], data: object, *, file: str) -> Model:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of keys at the top level", file=file)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"  - {describe_error(dict(e))}" for e in exc.errors()]
        allowed = ", ".join(model.model_fields)
        raise ConfigError(
            f"{file}: invalid {model.__name__} ({len(lines)} problem"
            f"{'s' if len(lines) > 1 else ''}; top-level keys: {allowed})\n" + "\n".join(lines),
            file=file,
        ) from None


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the
    last silently, so a typo'd second ``lr:`` would win unseen)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key `{key}` appears twice (lines {seen[key]} and {line})",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: loader.construct_mapping(node),  # type: ignore[arg-type]
)


def load_yaml_text(text: str, origin: str) -> object:
    """Parse YAML text; errors name ``origin``, the line and column, and the problem."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{origin}:{where} not valid YAML ({problem})", file=origin) from None


def load_yaml(path: Path) -> object:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})", file=str(path)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); a config is "
            "a UTF-8 YAML file (is this the right file?)",
            file=str(path),
        ) from None
    return load_yaml_text(text, str(path))


def merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, mapping by mapping: a section names only the keys it changes."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out
