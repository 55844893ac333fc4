"""Loading run configs: files (data paths resolved against the file), presets and the
curriculum files a config names."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from multiagent.config.run import RunConfig
from multiagent.errors import ConfigError
from multiagent.schema import Model, load_yaml, merged, validate_mapping


def load_config(path: str | Path, model: type[Model] = RunConfig) -> Model:  # type: ignore[assignment]
    """Load a YAML config; relative data paths are resolved against the file's folder."""
    path = Path(path)
    data = load_yaml(path)
    if model is RunConfig and isinstance(data, dict) and isinstance(data.get("curriculum"), str):
        data = {**data, "curriculum": _curriculum_file(path.parent / data["curriculum"])}
    config = validate_mapping(model, data, file=str(path))
    if isinstance(config, RunConfig) and config.data.paths:
        resolved = tuple(str((path.parent / p).resolve()) for p in config.data.paths)
        config = config.model_copy(
            update={"data": config.data.model_copy(update={"paths": resolved})}
        )
    return config


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


PRESETS = ("default", "quick", "cluster", "portfolio", "regimes", "sessions")


def _preset_mapping(name: str) -> dict[str, Any]:
    """A preset's keys; ``extends: OTHER`` starts from OTHER's and overrides section by
    section (the cluster preset is the default run with cluster resources)."""
    resource = resources.files("multiagent") / "presets" / f"{name}.yaml"
    data = dict(yaml.safe_load(resource.read_text()) or {})
    base = data.pop("extends", None)
    return merged(_preset_mapping(base), data) if base else data


def load_preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise ConfigError(f"no preset {name!r}; choose one of {', '.join(PRESETS)}")
    return validate_mapping(RunConfig, _preset_mapping(name), file=f"preset:{name}")
