"""The resolved run config as YAML, each value annotated with the layer that set it.

What `multiagent config show` prints: a user who wrote three keys sees the hundreds the run will
use, and for each one whether it is the file's, a preset's or the models' default.
"""

from __future__ import annotations

import json
from typing import Any

from multiagent.config.loading import Layer, names_source, resolve, without_data_source
from multiagent.config.run import RunConfig
from multiagent.schema import validate_mapping

DEFAULT_ORIGIN = "built-in"
"""A value no layer names: the model's own default."""


def show_config(layers: list[Layer]) -> str:
    """The validated config of ``layers`` as YAML with a ``# origin`` comment on every value."""
    origin = layers[-1].origin if layers else "defaults"
    config = validate_mapping(RunConfig, resolve(layers), file=origin)
    chain = " <- ".join(layer.origin for layer in layers) or "the models' defaults"
    lines = [f"# resolved: {DEFAULT_ORIGIN} <- {chain}"]
    _emit(config.model_dump(mode="json"), (), _effective(layers), lines, 0)
    return "\n".join(lines) + "\n"


def _effective(layers: list[Layer]) -> list[Layer]:
    """``layers`` without the data sources a later layer replaced (they set nothing)."""
    return [
        Layer(layer.origin, without_data_source(layer.data))
        if any(names_source(later.data) for later in layers[i + 1 :])
        else layer
        for i, layer in enumerate(layers)
    ]


def origin_of(path: tuple[str, ...], layers: list[Layer]) -> str:
    """The last layer naming the dotted ``path``, or the model default."""
    for layer in reversed(layers):
        node: Any = layer.data
        for key in path:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            return layer.origin
    return DEFAULT_ORIGIN


def _emit(
    node: dict[str, Any], path: tuple[str, ...], layers: list[Layer], out: list[str], depth: int
) -> None:
    indent = "  " * depth
    for key, value in node.items():
        here = (*path, key)
        if isinstance(value, dict) and value:
            out.append(f"{indent}{key}:")
            _emit(value, here, layers, out, depth + 1)
        else:
            out.append(f"{indent}{key}: {json.dumps(value)}  # {origin_of(here, layers)}")
