"""Typed settings of symbol-agent training (RLlib-free: the adapter translates them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PPOSettings(_Frozen):
    """PPO hyperparameters; the defaults are the seeds' starting point."""

    lr: float = Field(3e-4, gt=0)
    gamma: float = Field(0.99, gt=0, le=1)
    gae_lambda: float = Field(0.95, ge=0, le=1)
    clip_param: float = Field(0.2, gt=0)
    vf_loss_coeff: float = Field(0.5, ge=0)
    vf_clip_param: float = Field(10.0, gt=0, description="Clip of the value loss (reward units²).")
    entropy_coeff: float = Field(0.01, ge=0)
    entropy_schedule: tuple[tuple[int, float], ...] | None = Field(
        None,
        description="[[agent_steps, coeff], ...] piecewise-linear; first step must be 0. "
        "Overrides entropy_coeff.",
    )
    grad_clip: float = Field(0.5, gt=0, description="Global gradient-norm clip.")
    kl_coeff: float = Field(0.2, ge=0)
    train_batch_size: int = Field(
        2000, ge=16, description="Env steps per iteration (each is one step of every symbol agent)."
    )
    minibatch_size: int = Field(500, ge=8)
    num_epochs: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _check(self) -> PPOSettings:
        if self.entropy_schedule is not None:
            steps = [s for s, _ in self.entropy_schedule]
            if len(steps) < 2 or steps[0] != 0 or steps != sorted(steps):
                raise ValueError(
                    "entropy_schedule needs >= 2 [step, coeff] pairs, increasing steps, first 0"
                )
            if any(c < 0 for _, c in self.entropy_schedule):
                raise ValueError("entropy_schedule coefficients must be >= 0")
        return self


class PolicyNetConfig(_Frozen):
    """The symbol RLModule: shared encoder -> optional recurrent core -> actor / critic heads."""

    encoder: Literal["finetune", "frozen", "scratch"] = Field(
        "finetune",
        description="finetune: pretrained, trained at encoder_lr; frozen: pretrained, fixed; "
        "scratch: randomly initialized, trained at encoder_lr (no pretraining).",
    )
    encoder_lr: float = Field(1e-4, gt=0)
    hidden: tuple[int, ...] = Field((64, 64), min_length=1)
    recurrent: Literal["none", "gru", "lstm"] = "none"
    recurrent_size: int = Field(64, ge=4)
    max_seq_len: int = Field(16, ge=2, description="BPTT length when recurrent.")


class ResourceConfig(_Frozen):
    """Where sampling and learning run, for every PPO phase; the defaults suit a laptop, the
    `cluster` preset a Ray cluster (see docs/cluster.md). Names follow RLlib's settings."""

    num_env_runners: int | Literal["auto"] = Field(
        0,
        description="Remote sampling actors; 0 = sample in the driver; auto = as many as the "
        "cluster's free CPUs allow when the algorithm is built (0 below 4 CPUs, capped at "
        "max_auto_env_runners).",
    )
    max_auto_env_runners: int = Field(16, ge=1, description="Cap of num_env_runners: auto.")
    num_envs_per_env_runner: int = Field(
        16,
        ge=1,
        description="Vectorized envs per runner (phase 2's vector env: books of env.n_symbols "
        "slots). 16 books sampled 2-3x faster than 4 (docs/benchmarks.md).",
    )
    num_cpus_per_env_runner: float = Field(1.0, gt=0)
    custom_resources_per_env_runner: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources each runner needs, e.g. {rollout: 1} to keep runners "
        "on the rollout node type of cluster/*.yaml.",
    )
    num_learners: int = Field(0, ge=0, description="Remote learners; 0 = learn in the driver.")
    num_cpus_per_learner: float = Field(1.0, gt=0)
    num_gpus_per_learner: float | Literal["auto"] = Field(
        "auto",
        description="auto = 1 when the cluster has a GPU, else 0 (a GPU learner is used when "
        "present, also by the driver's own learner).",
    )
    restart_failed_env_runners: bool = Field(
        True, description="Replace a dead env runner; training goes on meanwhile."
    )
    delay_between_env_runner_restarts_s: float = Field(
        5.0, ge=0, description="Wait before replacing a dead runner (RLlib's default is 60 s)."
    )
    max_num_env_runner_restarts: int = Field(100, ge=0)
    sample_timeout_s: float = Field(
        60.0, gt=0, description="How long one iteration waits for a runner's samples."
    )

    @model_validator(mode="after")
    def _check_gpus(self) -> ResourceConfig:
        gpus = self.num_gpus_per_learner
        if gpus != "auto" and gpus < 0:
            raise ValueError("num_gpus_per_learner must be >= 0 or 'auto'")
        runners = self.num_env_runners
        if runners != "auto" and runners < 0:
            raise ValueError("num_env_runners must be >= 0 or 'auto'")
        return self


class EntropyGuardConfig(_Frozen):
    """Raise the entropy coefficient when the policy collapses (after warm-up)."""

    enabled: bool = True
    warmup_iterations: int = Field(5, ge=0)
    min_entropy: float = Field(
        0.15, ge=0, le=1, description="Threshold, as a fraction of the maximum entropy log(A)."
    )
    boost: float = Field(1.5, gt=1, description="Factor applied per iteration below threshold.")
    max_boost: float = Field(10.0, ge=1, description="Cap on the cumulative factor.")
    decay: float = Field(
        0.9, gt=0, le=1, description="Factor pulling the boost back to 1 while entropy is healthy."
    )


class PhaseSettings(_Frozen):
    """What every PPO phase has: its length, checkpoint and evaluation cadence, PPO settings."""

    iterations: int = Field(20, ge=1)
    checkpoint_every: int = Field(5, ge=1)
    eval_every: int = Field(5, ge=1)
    keep_best: int = Field(3, ge=1, description="Best checkpoints kept, by validation Sharpe.")
    ppo: PPOSettings = Field(default_factory=PPOSettings)


class SymbolTrainConfig(PhaseSettings):
    """`multiagent train symbols` (phase 2): PPO on the shared 'symbol' policy."""

    balanced_sampling: bool = Field(
        True, description="Draw episode views so every symbol is equally likely to lead one."
    )
    vector_env: bool = Field(
        True,
        description="Sample the symbol slots as one native vector env through RLlib's "
        "single-agent runner (resources.num_envs_per_env_runner = books of env.n_symbols "
        "slots per runner): the same transitions as one agent per slot, several times faster "
        "(docs/benchmarks.md). false: one agent per slot in the multi-agent env, as phases 3-4.",
    )
    policy: PolicyNetConfig = Field(default_factory=PolicyNetConfig)
    entropy_guard: EntropyGuardConfig = Field(default_factory=EntropyGuardConfig)


HierarchyPhase = Literal["master", "joint"]
PHASES = ("pretrain", "symbols", "master", "joint")
"""The pipeline's phases, in order."""


class MasterNetConfig(_Frozen):
    """The master RLModule: actor over its observation and the pooled slot embeddings; critic
    over the global state."""

    hidden: tuple[int, ...] = Field((64, 64), min_length=1, description="Actor MLP.")
    critic_hidden: tuple[int, ...] = Field((128, 64), min_length=1, description="Critic MLP.")
    neutral_prior: float = Field(
        2.0,
        ge=0,
        description="Logit bonus the untrained master gives the neutral choice (budget level "
        "1.0, neutral mode): it starts near the equal budgets of the independent agents and "
        "learns where to depart from them, instead of reallocating at random (each random cut "
        "forces a trim that costs turnover). 0: uniform start.",
    )


def _master_ppo() -> PPOSettings:
    # The master's returns sum several bars of scaled portfolio returns: a value clip of 10
    # (reward units squared) would zero the value gradient of most rows. A decision's effect
    # ends with the next decision, so a short horizon (gamma 0.5) keeps later decisions'
    # returns out of its advantage; its few decisions per run want a higher rate.
    return PPOSettings(vf_clip_param=1000.0, gamma=0.5, gae_lambda=0.9, lr=1e-3)


class MasterTrainConfig(PhaseSettings):
    """Phase 3: MAPPO on the master; the symbol actors and the shared encoder stay frozen."""

    iterations: int = Field(20, ge=1)
    ppo: PPOSettings = Field(default_factory=_master_ppo)
    symbol_value_heads_adapt: bool = Field(
        False,
        description="Train the symbol value heads alongside (their actors stay frozen). Off "
        "by default: RLlib cycles every module's rows until the largest batch has done "
        "num_epochs, so with the symbol rows (N per bar) in the update the master's few "
        "decisions (1 per communication_interval bars) were replayed about 4N times more "
        "epochs than set, at 20x the learner time (docs/benchmarks.md).",
    )
    policy: MasterNetConfig = Field(default_factory=MasterNetConfig)


def _joint_ppo() -> PPOSettings:
    return PPOSettings(lr=1e-4, vf_clip_param=1000.0)


class JointTrainConfig(PhaseSettings):
    """Phase 4: joint fine-tuning; the symbol actors learn again, slowly."""

    iterations: int = Field(10, ge=1)
    ppo: PPOSettings = Field(
        default_factory=_joint_ppo,
        description="PPO settings; ppo.lr is the master's and the value heads' rate.",
    )
    symbol_actor_lr: float = Field(1e-5, gt=0, description="Symbol actor (and core) rate.")
    encoder_lr: float = Field(1e-5, gt=0, description="Shared encoder rate.")
    centralized_critic: bool = Field(
        False,
        description="Symbol value heads also read the global state (a new value head: the "
        "phase-2 one has another input size).",
    )
