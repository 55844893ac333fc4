"""Each phase's settings hold that phase's own defaults: a partial section (``master: {ppo:
{lr: ...}}``) changes only the keys it names, in every section of the run config."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from multiagent.config import (
    PRESETS,
    RunConfig,
    load_config,
    load_preset,
    phases,
    validate_mapping,
)
from multiagent.config.phases import (
    JointPPOSettings,
    JointTrainConfig,
    MasterPPOSettings,
    MasterTrainConfig,
    PPOSettings,
    SymbolTrainConfig,
)
from multiagent.errors import ConfigError

PHASE_PPO: dict[str, type[PPOSettings]] = {
    "symbols": PPOSettings,
    "master": MasterPPOSettings,
    "joint": JointPPOSettings,
}
PHASE_MODELS: dict[str, type[BaseModel]] = {
    "symbols": SymbolTrainConfig,
    "master": MasterTrainConfig,
    "joint": JointTrainConfig,
}


def _run(data: dict[str, Any]) -> RunConfig:
    return validate_mapping(RunConfig, data, file="run.yaml")


def test_master_lr_alone_keeps_the_masters_value_clip(tmp_path: Path) -> None:
    """The trap of the issue: naming `lr` alone reset vf_clip_param from 1000 to 10."""
    path = tmp_path / "run.yaml"
    path.write_text("extends: none\nmaster:\n  ppo:\n    lr: 0.0005\n")
    run: RunConfig = load_config(path)
    master = run.master
    assert master.ppo.lr == 5e-4
    assert master.ppo.vf_clip_param == 1000.0
    assert (master.ppo.gamma, master.ppo.gae_lambda) == (0.5, 0.9)
    assert master.ppo == MasterPPOSettings(lr=5e-4)
    assert master == MasterTrainConfig(ppo=MasterPPOSettings(lr=5e-4))


@pytest.mark.parametrize("phase", list(PHASE_PPO))
@pytest.mark.parametrize(("key", "value"), [("lr", 5e-4), ("train_batch_size", 4000)])
def test_a_partial_ppo_section_keeps_the_phases_other_defaults(
    phase: str, key: str, value: float
) -> None:
    ppo = getattr(_run({phase: {"ppo": {key: value}}}), phase).ppo
    defaults = PHASE_PPO[phase]()
    assert type(ppo) is PHASE_PPO[phase]
    assert getattr(ppo, key) == value
    for name in PPOSettings.model_fields:
        if name != key:
            assert getattr(ppo, name) == getattr(defaults, name), (phase, name)


@pytest.mark.parametrize("phase", list(PHASE_MODELS))
def test_a_partial_phase_section_keeps_the_phases_other_defaults(phase: str) -> None:
    section = getattr(_run({phase: {"keep_best": 1}}), phase)
    assert section == PHASE_MODELS[phase](keep_best=1)
    assert section.ppo == PHASE_PPO[phase]()


def test_the_phase_defaults() -> None:
    """What each phase's model holds (and why, in the field descriptions)."""
    master, joint, symbols = MasterPPOSettings(), JointPPOSettings(), PPOSettings()
    assert (master.lr, master.gamma, master.gae_lambda, master.vf_clip_param) == (
        1e-3,
        0.5,
        0.9,
        1000.0,
    )
    assert (joint.lr, joint.gamma, joint.gae_lambda, joint.vf_clip_param) == (
        1e-4,
        0.99,
        0.95,
        1000.0,
    )
    assert (symbols.lr, symbols.gamma, symbols.gae_lambda, symbols.vf_clip_param) == (
        3e-4,
        0.99,
        0.95,
        10.0,
    )
    # Only the keys a phase gives its own default differ from the symbol agents'.
    owned = {"lr", "gamma", "gae_lambda", "vf_clip_param"}
    for model, own in ((master, owned), (joint, {"lr", "vf_clip_param"})):
        fields = PPOSettings.model_fields
        differing = {k for k in fields if getattr(model, k) != getattr(symbols, k)}
        assert differing == own


def test_a_full_run_default_is_the_per_phase_defaults() -> None:
    run = RunConfig()
    assert run.symbols == SymbolTrainConfig() and run.symbols.ppo == PPOSettings()
    assert run.master == MasterTrainConfig() and run.master.ppo == MasterPPOSettings()
    assert run.joint == JointTrainConfig() and run.joint.ppo == JointPPOSettings()
    assert _run({}) == run
    assert _run({"master": {}, "joint": {"ppo": {}}}) == run


def test_phase_settings_are_ppo_settings() -> None:
    """Code that takes `PPOSettings` (the RLlib adapter) takes every phase's."""
    run = RunConfig()
    for phase in PHASE_PPO:
        assert isinstance(getattr(run, phase).ppo, PPOSettings)


def test_the_schema_shows_each_phases_defaults() -> None:
    defs = RunConfig.model_json_schema()["$defs"]
    master = defs["MasterPPOSettings"]["properties"]
    assert master["vf_clip_param"]["default"] == 1000.0
    assert master["gamma"]["default"] == 0.5
    assert master["lr"]["exclusiveMinimum"] == 0
    assert defs["JointPPOSettings"]["properties"]["lr"]["default"] == 1e-4
    assert defs["PPOSettings"]["properties"]["vf_clip_param"]["default"] == 10.0


@pytest.mark.parametrize("phase", list(PHASE_PPO))
def test_phase_settings_keep_the_bounds(phase: str) -> None:
    with pytest.raises(ConfigError, match=f"`{phase}.ppo.gamma`"):
        _run({phase: {"ppo": {"gamma": 1.5}}})
    with pytest.raises(ConfigError, match=f"`{phase}.ppo.lr`"):
        _run({phase: {"ppo": {"lr": 0}}})
    with pytest.raises(ConfigError, match="entropy_schedule"):
        _run({phase: {"ppo": {"entropy_schedule": [[5, 0.1], [10, 0.0]]}}})


@pytest.mark.parametrize("phase", list(PHASE_PPO))
def test_unknown_phase_keys_are_named_with_the_file(phase: str, tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(f"{phase}:\n  ppo:\n    lr: 0.0005\n    lrr: 0.1\n  colour: red\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and caught.value.file == str(path)
    assert f"`{phase}.ppo.lrr`: unknown key" in message
    assert f"`{phase}.colour`: unknown key" in message


def _section_models(annotation: Any) -> list[type[BaseModel]]:
    found = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for argument in typing.get_args(annotation):
        found += _section_models(argument)
    return found


def _sections(model: type[BaseModel], path: str, seen: set[type[BaseModel]]) -> list[Any]:
    """(dotted key, parent default, the section model) of every nested section."""
    out: list[Any] = []
    if model in seen:
        return out
    seen.add(model)
    for name, field in model.model_fields.items():
        for child in _section_models(field.annotation):
            default = field.get_default(call_default_factory=True)
            if isinstance(default, child):
                out.append((f"{path}{name}", default, child))
            out += _sections(child, f"{path}{name}.", seen)
    return out


def test_no_section_default_differs_from_its_models_own() -> None:
    """A parent that built its section's default with other values than the section model's
    own defaults is the trap: a partial section would fall back to the model's, not to the
    parent's. Every section default is the model's own (a phase gets its own model)."""
    sections = _sections(RunConfig, "", set())
    assert {"master.ppo", "joint.ppo", "symbols.ppo", "env", "evaluation"} <= {
        key for key, _, _ in sections
    }
    for key, default, model in sections:
        assert default == type(default)(), key
        assert type(default) is model, key


PHASE_FIELD_MODELS = [
    phases.PPOSettings,
    phases.MasterPPOSettings,
    phases.JointPPOSettings,
    phases.PolicyNetConfig,
    phases.ResourceConfig,
    phases.EntropyGuardConfig,
    phases.PhaseSettings,
    phases.SymbolTrainConfig,
    phases.MasterNetConfig,
    phases.MasterTrainConfig,
    phases.JointTrainConfig,
]


@pytest.mark.parametrize("model", PHASE_FIELD_MODELS, ids=lambda m: m.__name__)
def test_every_phase_field_is_described(model: type[BaseModel]) -> None:
    missing = [name for name, field in model.model_fields.items() if not field.description]
    assert not missing


@pytest.mark.parametrize("name", PRESETS)
def test_presets_keep_the_phase_defaults(name: str) -> None:
    preset = load_preset(name)
    assert preset.master.ppo.vf_clip_param == preset.joint.ppo.vf_clip_param == 1000.0
    assert (preset.master.ppo.gamma, preset.master.ppo.lr) == (0.5, 1e-3)
    assert preset.joint.ppo.lr == 1e-4
