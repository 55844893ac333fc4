"""Loading run configs: files, presets, what each extends, and where every value came from.

A run config file is a list of changes to a base. Unless it says otherwise it extends the
embedded preset of its system (``default`` for the hierarchy, ``portfolio`` for a portfolio
run, ...), so a file holding only ``seed: 1`` is a complete, runnable config. ``extends:`` names
another base: a preset (``extends: quick``), another file relative to this one (``extends:
./base.yaml``, itself free to extend), or ``none`` for the models' bare defaults. Section keys
override one by one; naming a data source (``bundled``, ``paths``, ``synthetic``, ``sessions``)
replaces the base's data section (its source, symbols and dates; its validation options stay)
instead of adding a second source.

`config_layers` returns the chain from the bare defaults to the file, which `config show`
prints as the provenance of every value.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from multiagent.config.run import RunConfig
from multiagent.errors import ConfigError
from multiagent.schema import Model, load_yaml, load_yaml_text, merged, validate_mapping

PRESETS = ("default", "quick", "cluster", "portfolio", "regimes", "sessions")
SOURCES = ("bundled", "paths", "synthetic", "sessions")
"""Keys of `data` that name the market's source."""
KEPT_WITH_NEW_SOURCE = ("validation",)
"""What of the base's `data` survives a layer naming another source: the symbols, dates,
layout and frequency described the base's market, not the new one."""
BARE = "none"
"""``extends: none``: start from the models' defaults, not a preset."""
_MISSING: Any = object()


@dataclass(frozen=True)
class Layer:
    """One step of a config's chain: where its keys come from, and the keys."""

    origin: str
    """``preset:NAME`` or a file path."""
    data: dict[str, Any]


def load_config(path: str | Path, model: type[Model] = RunConfig) -> Model:  # type: ignore[assignment]
    """Load a YAML config. A run config is resolved against what it extends; relative data and
    curriculum paths are resolved against the file that names them."""
    path = Path(path)
    if model is not RunConfig:
        return validate_mapping(model, load_yaml(path), file=str(path))
    return validate_mapping(model, resolve(config_layers(path)), file=str(path))


def config_layers(path: Path) -> list[Layer]:
    """The chain of a run config file: its base's layers, then the file's own keys."""
    return _file_layers(Path(path), ())


def resolve(layers: list[Layer]) -> dict[str, Any]:
    """The layers merged in order, a later data source replacing an earlier one."""
    out: dict[str, Any] = {}
    for layer in layers:
        if names_source(layer.data):
            out = without_data_source(out)
        out = merged(out, layer.data)
    return out


def names_source(data: dict[str, Any]) -> bool:
    """Whether a layer's keys name a market source (which replaces the base's data)."""
    section = data.get("data")
    return isinstance(section, dict) and any(section.get(k) is not None for k in SOURCES)


def without_data_source(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` less what a later layer's data source replaces (`KEPT_WITH_NEW_SOURCE` stays)."""
    section = data.get("data")
    if not isinstance(section, dict):
        return data
    return {**data, "data": {k: v for k, v in section.items() if k in KEPT_WITH_NEW_SOURCE}}


def _file_layers(path: Path, seen: tuple[Path, ...]) -> list[Layer]:
    resolved = path.resolve()
    if resolved in seen:
        chain = " -> ".join(str(p) for p in (*seen, resolved))
        raise ConfigError(f"{path}: `extends` makes a cycle ({chain})", file=str(path))
    data = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level", file=str(path))
    data = _resolve_paths(dict(data), path)
    base = data.pop("extends", _MISSING)
    if base is _MISSING:
        return [*_preset_layers(_system_preset(data, path)), Layer(str(path), data)]
    if base is None or base == BARE:
        return [Layer(str(path), data)]
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(
            f"{path}: `extends` must be a preset ({', '.join(PRESETS)}), a file path or "
            f"{BARE!r}, not {base!r}",
            file=str(path),
        )
    if base in PRESETS:
        return [*_preset_layers(base), Layer(str(path), data)]
    target = path.parent / base
    if not target.is_file():
        raise ConfigError(
            f"{path}: `extends: {base}` is neither a preset ({', '.join(PRESETS)}) nor a file "
            f"({target} does not exist)",
            file=str(path),
        )
    return [*_file_layers(target, (*seen, resolved)), Layer(str(path), data)]


def _system_preset(data: dict[str, Any], path: Path) -> str:
    """The preset a file without ``extends`` builds on: its system's own."""
    system = data.get("system", "hierarchy")
    if system == "hierarchy":
        return "default"
    if system in PRESETS:
        return str(system)
    raise ConfigError(
        f"{path}: `system` must be hierarchy, portfolio, regimes or sessions, not {system!r}",
        file=str(path),
    )


def _resolve_paths(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Data files and a curriculum file named in ``path`` are relative to its folder."""
    source = data.get("data")
    if isinstance(source, dict) and isinstance(source.get("paths"), list | tuple):
        resolved = [str((path.parent / str(p)).resolve()) for p in source["paths"]]
        data["data"] = {**source, "paths": resolved}
    if isinstance(data.get("curriculum"), str):
        data["curriculum"] = _curriculum_file(path.parent / data["curriculum"])
    return data


def _curriculum_file(path: Path) -> dict[str, Any]:
    """A curriculum named by path in a run config, validated as its own file."""
    from multiagent.curriculum.config import load_curriculum

    return load_curriculum(path).model_dump(mode="json")


def with_curriculum_file(config: RunConfig, path: str | Path) -> RunConfig:
    """``config`` running the curriculum of ``path`` (the `--curriculum` option)."""
    curriculum = validate_mapping(
        RunConfig, {"curriculum": _curriculum_file(Path(path))}, file=str(path)
    )
    return config.model_copy(update={"curriculum": curriculum.curriculum})


def _preset_layers(name: str) -> list[Layer]:
    """A preset's chain; ``extends: OTHER`` starts from OTHER's (the cluster preset is the
    default run with cluster resources)."""
    resource = resources.files("multiagent") / "presets" / f"{name}.yaml"
    data = load_yaml_text(resource.read_text(encoding="utf-8"), f"preset:{name}")
    data = dict(data or {})  # type: ignore[call-overload]
    base = data.pop("extends", None)
    own = Layer(f"preset:{name}", data)
    return [*_preset_layers(base), own] if base else [own]


def load_preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise ConfigError(f"no preset {name!r}; choose one of {', '.join(PRESETS)}")
    return validate_mapping(RunConfig, resolve(_preset_layers(name)), file=f"preset:{name}")


def preset_layers(name: str) -> list[Layer]:
    """The chain of an embedded preset (what `config show --preset` prints)."""
    if name not in PRESETS:
        raise ConfigError(f"no preset {name!r}; choose one of {', '.join(PRESETS)}")
    return _preset_layers(name)
