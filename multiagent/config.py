"""Typed, validated configuration; YAML files are data for these models.

`load_config` rejects unknown keys and wrong types with one message per problem naming the file,
the dotted key and what was expected. The same `RunConfig` drives the CLI, Python callers and
job entrypoints.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from multiagent.curriculum.config import CurriculumConfig
from multiagent.data.featurize import FeaturePipelineConfig
from multiagent.data.loaders import Layout
from multiagent.data.splits import SplitConfig
from multiagent.data.synthetic import SyntheticMarketConfig
from multiagent.data.validation import ValidationOptions
from multiagent.encoder.config import EncoderConfig, PretrainConfig
from multiagent.envs.config import HierarchicalEnvConfig
from multiagent.errors import ConfigError
from multiagent.evaluation.config import EvaluationConfig
from multiagent.training.config import (
    JointTrainConfig,
    MasterTrainConfig,
    ResourceConfig,
    SymbolTrainConfig,
)

Model = TypeVar("Model", bound=BaseModel)


class DataConfig(BaseModel):
    """Where the market data comes from: a bundled dataset, the user's files or a seeded
    synthetic market (``paths`` or ``synthetic`` switch the bundled default off)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    bundled: str | None = Field("sp500", description="Bundled dataset name; null to use paths.")
    paths: tuple[str, ...] = Field((), description="Files or folders (relative to the config).")
    layout: Layout = Field("auto", description="auto, per_symbol, long or wide.")
    symbols: tuple[str, ...] | None = Field(None, description="Subset of symbols; null = all.")
    start: str | None = Field(None, description="First timestamp kept (inclusive).")
    end: str | None = Field(None, description="Last timestamp kept (inclusive).")
    frequency: str | None = Field(None, description="Sub-folder of SYMBOL/FREQ/data.* layouts.")
    synthetic: SyntheticMarketConfig | None = Field(
        None, description="Generate a seeded synthetic market instead of loading data."
    )
    validation: ValidationOptions = Field(default_factory=ValidationOptions)

    @model_validator(mode="before")
    @classmethod
    def _other_source_replaces_default(cls, data: Any) -> Any:
        other = isinstance(data, dict) and (data.get("paths") or data.get("synthetic") is not None)
        if other and "bundled" not in data:
            return {**data, "bundled": None}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        sources = [self.bundled is not None, bool(self.paths), self.synthetic is not None]
        if sum(sources) != 1:
            raise ValueError("set exactly one of `bundled`, `paths` and `synthetic`")
        return self


class EpisodeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    length: int | None = Field(250, ge=2, description="Bars per view; null = whole span.")
    stride: int | None = Field(None, ge=1, description="Bars between views; default = length.")
    min_length: int = Field(50, ge=1, description="Views with fewer observed bars are dropped.")


class RunConfig(BaseModel):
    """The main job's configuration (grows with the training issues)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    seed: int = Field(0, description="Seed of every random draw of the run.")
    data: DataConfig = Field(default_factory=DataConfig)
    features: FeaturePipelineConfig = Field(default_factory=FeaturePipelineConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    episodes: EpisodeConfig = Field(default_factory=EpisodeConfig)
    env: HierarchicalEnvConfig = Field(default_factory=HierarchicalEnvConfig)
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    symbols: SymbolTrainConfig = Field(default_factory=SymbolTrainConfig)
    master: MasterTrainConfig = Field(default_factory=MasterTrainConfig)
    joint: JointTrainConfig = Field(default_factory=JointTrainConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    resources: ResourceConfig = Field(
        default_factory=ResourceConfig,
        description="Env runners, learners, CPUs/GPUs and restarts of every PPO phase.",
    )
    curriculum: CurriculumConfig | None = Field(
        None,
        description="A curriculum (curricula/*.yaml; a path relative to this file, or inline) "
        "for the phases it names; null = none.",
    )
    cache_dir: str | None = Field(None, description="Feature cache; null = ~/.cache/multiagent.")
    runs_dir: str = Field("runs", description="Where run folders are created.")
    seal_test: bool = Field(
        False,
        description="Set by `multiagent tune` on every trial: the test bars are cut off before "
        "features are built, and asking for the test split is an error.",
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        symbols = data.get("symbols") if isinstance(data, dict) else None
        if isinstance(symbols, dict) and "runners" in symbols:
            raise ValueError(
                "`symbols.runners` moved to the top-level `resources` section (it applies to "
                "every phase): move its keys there"
            )
        for phase in ("symbols", "master", "joint"):
            section = data.get(phase) if isinstance(data, dict) else None
            if isinstance(section, dict) and "eval_views" in section:
                raise ValueError(
                    f"`{phase}.eval_views` was removed: validation is now a backtest of the "
                    "whole validation split (the engine every report uses); delete the key"
                )
        return data

    @model_validator(mode="after")
    def _minibatches_fit(self) -> RunConfig:
        """A minibatch is rows of one module; an iteration holds ``train_batch_size`` bars, so
        phase 2's vector env gives its one module N rows a bar (RLlib refuses a minibatch
        larger than the rows it counts, and the multi-agent phases count bars)."""
        for phase in ("symbols", "master", "joint"):
            ppo = getattr(self, phase).ppo
            vector = phase == "symbols" and self.symbols.vector_env
            rows = ppo.train_batch_size * (self.env.n_symbols if vector else 1)
            if ppo.minibatch_size > rows:
                counted = "train_batch_size x env.n_symbols" if vector else "train_batch_size"
                raise ValueError(
                    f"{phase}.ppo.minibatch_size ({ppo.minibatch_size}) must not exceed the "
                    f"rows of an iteration ({counted} = {rows})"
                )
        return self


def _describe(error: dict[str, Any]) -> str:
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
        lines = [f"  - {_describe(dict(e))}" for e in exc.errors()]
        allowed = ", ".join(model.model_fields)
        raise ConfigError(
            f"{file}: invalid {model.__name__} ({len(lines)} problem"
            f"{'s' if len(lines) > 1 else ''}; top-level keys: {allowed})\n" + "\n".join(lines),
            file=file,
        ) from None


def load_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})", file=str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{where}: not valid YAML ({problem})", file=str(path)) from None


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


PRESETS = ("default", "quick", "cluster")


def _preset_mapping(name: str) -> dict[str, Any]:
    """A preset's keys; ``extends: OTHER`` starts from OTHER's and overrides section by
    section (the cluster preset is the default run with cluster resources)."""
    resource = resources.files("multiagent") / "presets" / f"{name}.yaml"
    data = dict(yaml.safe_load(resource.read_text()) or {})
    base = data.pop("extends", None)
    return _merged(_preset_mapping(base), data) if base else data


def _merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def load_preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise ConfigError(f"no preset {name!r}; choose one of {', '.join(PRESETS)}")
    return validate_mapping(RunConfig, _preset_mapping(name), file=f"preset:{name}")
