"""The single-agent systems: `portfolio`, `regimes` and `sessions` (the seed systems the
hierarchy grew from), trained by one PPO phase, ``agent``, on the same RLModule family, trainer,
checkpoints and report as the hierarchy.

- ``portfolio``: `PortfolioEnv`, a pool of symbols decided in round-robin with at most
  ``max_open_positions`` held; episodes are views of the time split, a random pool each.
- ``regimes``: `RegimePortfolioEnv`, CASH + every asset of the market, one target-weight regime
  per bar; episodes are views of the time split over all assets.
- ``sessions``: `SymbolTradingEnv`, one session (market) per episode and no market identity in
  the observation, HOLD + 4 limit orders; a share of the sessions is held out.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from multiagent.config.phases import EntropyGuardConfig, PhaseSettings, PolicyNetConfig
from multiagent.envs.config import CommonEnvConfig, PortfolioEnvConfig, SymbolEnvConfig
from multiagent.schema import Settings

System = Literal["hierarchy", "portfolio", "regimes", "sessions"]
AGENT_SYSTEMS: tuple[System, ...] = ("portfolio", "regimes", "sessions")
AGENT_PHASES = ("pretrain", "agent")
"""The pipeline's phases for a single-agent system."""


class AgentEvaluation(Settings):
    """How a single-agent system is scored: episodes of its own env, greedy actions."""

    episodes: int = Field(
        20,
        ge=1,
        description="portfolio: episodes drawn (seeded) from the split's views, each a random "
        "pool, as the original CLI's --episodes. regimes and sessions run every view of the "
        "split once, so this is their cap.",
    )


class AgentTrainConfig(PhaseSettings):
    """The ``agent`` phase: PPO on the system's one policy (`multiagent.rllib.agent`)."""

    env: PortfolioEnvConfig = Field(
        default_factory=PortfolioEnvConfig,
        description="The system's env: costs, execution, limits, reward, observation, scheme, "
        "and for portfolio / regimes the pool (`max_open_positions`, `pool_size`). sessions "
        "reads the shared fields (its one-symbol env has no pool).",
    )
    policy: PolicyNetConfig = Field(
        default_factory=PolicyNetConfig,
        description="The RLModule (shared encoder -> optional GRU/LSTM -> heads); regimes "
        "encodes every asset's window with the one encoder.",
    )
    entropy_guard: EntropyGuardConfig = Field(
        default_factory=EntropyGuardConfig,
        description="Raise the entropy coefficient when the policy collapses.",
    )
    balanced_sampling: bool = Field(
        False, description="Draw episode views so every symbol (session) is equally likely."
    )
    holdout: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="sessions: share of the sessions held out as the test set (never trained "
        "or validated on).",
    )
    validation_holdout: float = Field(
        0.15,
        gt=0,
        lt=1,
        description="sessions: share of the remaining sessions that validate checkpoints.",
    )
    evaluation: AgentEvaluation = Field(default_factory=AgentEvaluation)

    @model_validator(mode="after")
    def _check(self) -> AgentTrainConfig:
        if self.holdout + self.validation_holdout >= 0.9:
            raise ValueError("holdout + validation_holdout must leave >= 10% of sessions to train")
        return self


def agent_env_config(system: System, agent: AgentTrainConfig) -> CommonEnvConfig:
    """The env config of ``system``'s env class (`multiagent.envs.presets.env_class`)."""
    env = agent.env
    if system == "sessions":
        shared = env.model_dump(exclude={"max_open_positions", "pool_size"})
        return SymbolEnvConfig.model_validate(shared)
    return env
