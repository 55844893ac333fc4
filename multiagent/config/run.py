"""The run config: one typed model assembled from the sections each engine package owns
(data, features, envs, encoder, curriculum) and the phase and evaluation settings beside it.

The same `RunConfig` drives the CLI, Python callers and job entrypoints.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from multiagent.config.agent import AGENT_PHASES, AgentTrainConfig, System
from multiagent.config.evaluation import EvaluationConfig
from multiagent.config.phases import (
    PHASES,
    JointTrainConfig,
    MasterTrainConfig,
    PolicyNetConfig,
    ResourceConfig,
    SymbolTrainConfig,
)
from multiagent.curriculum.config import CurriculumConfig
from multiagent.data.featurize import FeaturePipelineConfig
from multiagent.data.loaders import Layout
from multiagent.data.splits import SplitConfig
from multiagent.data.synthetic import SessionConfig, SyntheticMarketConfig
from multiagent.data.validation_options import ValidationOptions
from multiagent.encoder.config import EncoderConfig, PretrainConfig
from multiagent.envs.config import HierarchicalEnvConfig, ObservationConfig
from multiagent.schema import Settings


class DataConfig(Settings):
    """Where the market data comes from: a bundled dataset, the user's files or a seeded
    synthetic market (``paths`` or ``synthetic`` switch the bundled default off)."""

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
    sessions: SessionConfig | None = Field(
        None,
        description="Generate seeded synthetic prediction-market sessions (one symbol each) "
        "instead of loading data.",
    )
    validation: ValidationOptions = Field(default_factory=ValidationOptions)

    @model_validator(mode="before")
    @classmethod
    def _other_source_replaces_default(cls, data: Any) -> Any:
        other = isinstance(data, dict) and (
            data.get("paths")
            or data.get("synthetic") is not None
            or data.get("sessions") is not None
        )
        if other and "bundled" not in data:
            return {**data, "bundled": None}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        sources = [
            self.bundled is not None,
            bool(self.paths),
            self.synthetic is not None,
            self.sessions is not None,
        ]
        if sum(sources) != 1:
            raise ValueError("set exactly one of `bundled`, `paths`, `synthetic` and `sessions`")
        return self


class EpisodeConfig(Settings):
    """How the splits are cut into the episode views training samples."""

    length: int | None = Field(250, ge=2, description="Bars per view; null = whole span.")
    stride: int | None = Field(None, ge=1, description="Bars between views; default = length.")
    min_length: int = Field(50, ge=1, description="Views with fewer observed bars are dropped.")


class SelectionRecord(Settings):
    """How this config was chosen: the search behind it, so the report can deflate its Sharpe
    ratio for the choice (`evaluation.sharpe_stats`). `multiagent tune` writes it into the
    config it exports; a hand-written config is one trial."""

    trials: int = Field(1, ge=1, description="Configs the search tried (1: no search).")
    sharpe_variance: float = Field(
        0.0,
        ge=0.0,
        description="Variance of the trials' annualized validation Sharpe ratios (the DSR's V).",
    )
    source: str | None = Field(None, description="The sweep that chose it (name, date).")


class RunConfig(Settings):
    """The main job's configuration (grows with the training issues)."""

    seed: int = Field(0, description="Seed of every random draw of the run.")
    system: System = Field(
        "hierarchy",
        description="What the run trains: hierarchy (symbol agents + master, the pipeline's "
        "four phases) or one of the single-agent seed systems portfolio, regimes, sessions "
        "(pretrain + one `agent` phase; see docs/presets/).",
    )
    # Every section's default is its model's own defaults (no parent restates one), so a
    # partial section in a YAML file changes only the keys it names.
    data: DataConfig = Field(default_factory=DataConfig, description="The market data.")
    features: FeaturePipelineConfig = Field(
        default_factory=FeaturePipelineConfig, description="Features and their normalization."
    )
    split: SplitConfig = Field(
        default_factory=SplitConfig, description="Train / validation / test split of the bars."
    )
    episodes: EpisodeConfig = Field(
        default_factory=EpisodeConfig, description="Episode views of the splits."
    )
    env: HierarchicalEnvConfig = Field(
        default_factory=HierarchicalEnvConfig, description="The trading environment."
    )
    encoder: EncoderConfig = Field(
        default_factory=EncoderConfig, description="The shared market encoder."
    )
    pretrain: PretrainConfig = Field(
        default_factory=PretrainConfig, description="Phase 1: encoder pretraining."
    )
    symbols: SymbolTrainConfig = Field(
        default_factory=SymbolTrainConfig, description="Phase 2: the symbol agents' PPO."
    )
    master: MasterTrainConfig = Field(
        default_factory=MasterTrainConfig,
        description="Phase 3: the master's MAPPO (master.ppo has the master's own defaults).",
    )
    joint: JointTrainConfig = Field(
        default_factory=JointTrainConfig,
        description="Phase 4: joint fine-tuning (joint.ppo has the joint phase's own defaults).",
    )
    agent: AgentTrainConfig = Field(
        default_factory=AgentTrainConfig,
        description="The single-agent systems' phase and env (read when system is not "
        "hierarchy; the hierarchy reads env, symbols, master and joint).",
    )
    evaluation: EvaluationConfig = Field(
        default_factory=EvaluationConfig,
        description="The evaluation report: split, baselines, walk-forward, stress, gates.",
    )
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
    selection: SelectionRecord = Field(
        default_factory=SelectionRecord,
        description="The search that chose this config (written by `multiagent tune`); the "
        "report's deflated Sharpe ratio counts its trials.",
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

    @property
    def phases(self) -> tuple[str, ...]:
        """The pipeline's phases of this run's system, in order."""
        return PHASES if self.system == "hierarchy" else AGENT_PHASES

    @property
    def observation(self) -> ObservationConfig:
        """The observation settings of the system's env (window: the encoder's input)."""
        return self.env.observation if self.system == "hierarchy" else self.agent.env.observation

    @property
    def first_policy(self) -> PolicyNetConfig:
        """The policy the pretrained encoder feeds (its ``encoder`` mode decides pretraining)."""
        return self.symbols.policy if self.system == "hierarchy" else self.agent.policy

    @model_validator(mode="after")
    def _system_fits(self) -> RunConfig:
        if self.system == "hierarchy":
            if self.data.sessions is not None:
                raise ValueError(
                    "data.sessions makes one-symbol session episodes: use system: sessions"
                )
            return self
        kind = self.agent.env.scheme.kind
        if self.system == "regimes" and kind != "regimes":
            raise ValueError(
                f"system regimes trades target-weight regimes: set agent.env.scheme.kind: "
                f"regimes (it is {kind})"
            )
        if self.system != "regimes" and kind == "regimes":
            raise ValueError(
                f"agent.env.scheme.kind regimes is for system regimes, not {self.system}"
            )
        for phase in ("symbols", "master", "joint", "env"):
            if getattr(self, phase) != type(getattr(self, phase))():
                section = "agent.env" if phase == "env" else "agent"
                raise ValueError(
                    f"`{phase}` configures the hierarchy; system {self.system} reads `{section}` "
                    "instead: move its keys there"
                )
        if self.system == "sessions" and self.features.normalization.method == "train":
            raise ValueError(
                "features.normalization.method train pools statistics over every session up "
                "to a date, held-out ones included: use expanding (per session) for sessions"
            )
        return self

    @model_validator(mode="after")
    def _encoder_reads_the_window(self) -> RunConfig:
        """The policy sees the encoder's embedding of a window's last bar, which reads the last
        ``receptive_field`` bars only: bars before them would be carried and never read."""
        window, reach = self.observation.window, self.encoder.receptive_field
        if window > reach:
            layers = self.encoder.layers_to_read(window)
            section = "env" if self.system == "hierarchy" else "agent.env"
            raise ValueError(
                f"{section}.observation.window is {window} bars but the encoder reads the last "
                f"{reach} "
                f"(kernel {self.encoder.kernel}, {self.encoder.layers} layers): set "
                f"encoder.layers: {layers} or a window of {reach} or fewer"
            )
        return self

    @model_validator(mode="after")
    def _minibatches_fit(self) -> RunConfig:
        """A minibatch is rows of one module; an iteration holds ``train_batch_size`` bars, so
        phase 2's vector env gives its one module N rows a bar (RLlib refuses a minibatch
        larger than the rows it counts, and the multi-agent phases count bars)."""
        for phase in ("symbols", "master", "joint", "agent"):
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
