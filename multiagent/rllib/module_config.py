"""The RLModules' settings, typed: built from the run config, handed to RLlib as the plain dict
its `RLModuleSpec.model_config` carries (and its checkpoints store), read back typed by the
module. Every default lives here once, so a module never re-reads a default with ``.get``.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field

from multiagent.encoder.config import EncoderConfig
from multiagent.schema import Settings

EncoderMode = Literal["finetune", "frozen", "scratch"]


class ModuleSettings(Settings):
    """What the symbol and master modules share: the encoder and how each part learns."""

    window: int = Field(ge=1, description="Bars in a feature window (the encoder's input).")
    n_features: int = Field(ge=1, description="Features per bar.")
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    encoder_mode: EncoderMode = Field(
        "finetune", description="finetune / scratch: the encoder learns; frozen: it does not."
    )
    encoder_lr: float | None = Field(
        None, gt=0, description="The encoder's learning rate; None: the phase's PPO lr."
    )
    hidden: tuple[int, ...] = Field((64, 64), min_length=1, description="Actor MLP sizes.")
    frozen: tuple[str, ...] = Field(
        (), description="Parts (`modules.PARTS`) kept fixed in this phase."
    )
    part_lrs: dict[str, float] = Field(
        default_factory=dict, description="Learning rates of parts that differ from the lr."
    )

    def to_rllib(self) -> dict[str, Any]:
        """The dict RLlib carries (and checkpoints): JSON types only."""
        return self.model_dump(mode="json")

    @classmethod
    def from_rllib(cls, model_config: Any) -> Self:
        """The typed settings of a module's ``model_config`` (a checkpoint's included). RLlib
        merges its own defaults into that dict (e.g. ``vf_share_layers``): those are its keys,
        not ours, so only our fields are read (and validated)."""
        ours = {k: v for k, v in dict(model_config or {}).items() if k in cls.model_fields}
        return cls.model_validate(ours)


class SymbolModuleSettings(ModuleSettings):
    recurrent: Literal["none", "gru", "lstm"] = "none"
    recurrent_size: int = Field(64, ge=1)
    max_seq_len: int = Field(
        16, ge=1, description="BPTT length; RLlib's connectors read this key by name."
    )
    centralized_critic: bool = Field(
        False, description='The value head also reads obs["state"] (MAPPO), the actor never.'
    )
    assets: int = Field(
        1,
        ge=1,
        description="Asset blocks in one observation (the regimes system: every asset's "
        "window goes through the one encoder, the embeddings side by side).",
    )


class MasterModuleSettings(ModuleSettings):
    encoder_mode: EncoderMode = "frozen"
    n_slots: int = Field(ge=1, description="Symbol slots the master budgets.")
    critic_hidden: tuple[int, ...] = Field((128, 64), min_length=1)
    neutral_prior: float = Field(
        0.0, ge=0, description="Logit bonus of the neutral level and mode at initialization."
    )
    neutral_level: int = Field(0, ge=0, description="Index of budget level 1.0.")
