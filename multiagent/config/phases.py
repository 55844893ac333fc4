"""Typed settings of the PPO phases (RLlib-free: the adapter translates them).

Each phase's section has its own defaults, held by its own model: `PPOSettings` (phase 2,
``symbols.ppo``), `MasterPPOSettings` (``master.ppo``) and `JointPPOSettings` (``joint.ppo``)
are the same settings with the defaults of their phase, so a partial YAML section (``master:
{ppo: {lr: 5e-4}}``) changes only the keys it names and the rest keep *that phase's* defaults.
Units are stated per field: an *iteration* is one PPO update on ``train_batch_size`` env steps;
an *env step* is one bar; *reward units* are those of `multiagent.envs.config.RewardConfig`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from multiagent.schema import Settings

# The constraints of the PPO fields a phase gives its own default, stated once: a phase model
# restates the field with its default and why, and keeps the bounds.
Rate = Annotated[float, Field(gt=0)]
Discount = Annotated[float, Field(gt=0, le=1)]
Lambda = Annotated[float, Field(ge=0, le=1)]
ValueClip = Annotated[float, Field(gt=0)]


class PPOSettings(Settings):
    """PPO hyperparameters with the symbol agents' defaults (phase 2, ``symbols.ppo``; the
    seeds' starting point). `MasterPPOSettings` and `JointPPOSettings` are these settings with
    their phase's defaults; code that takes any phase's settings accepts a `PPOSettings`."""

    lr: Rate = Field(
        3e-4,
        description="Adam learning rate of the trained modules (the encoder has its own: "
        "symbols.policy.encoder_lr). 3e-4: PPO's usual starting point.",
    )
    gamma: Discount = Field(
        0.99,
        description="Discount per env step (bar): returns look about 1 / (1 - gamma) bars "
        "ahead. 0.99 (~100 bars) for positions held over many bars.",
    )
    gae_lambda: Lambda = Field(
        0.95,
        description="GAE lambda: 0 = one-step TD advantage (low variance, biased by the "
        "critic), 1 = Monte Carlo returns (unbiased, noisy).",
    )
    clip_param: float = Field(
        0.2,
        gt=0,
        description="PPO's clip of the probability ratio to the sampling policy: how far one "
        "update may move the policy (0.2 = +-20%); larger learns faster, less stably.",
    )
    vf_loss_coeff: float = Field(
        0.5,
        ge=0,
        description="Weight of the value loss next to the policy loss (the heads share the "
        "encoder, trained by the sum).",
    )
    vf_clip_param: ValueClip = Field(
        10.0,
        description="Clip of the squared value error (reward units²): rows past it give no "
        "value gradient. 10 suits the symbol agents' per-bar rewards.",
    )
    entropy_coeff: float = Field(
        0.01,
        ge=0,
        description="Weight of the entropy bonus: higher keeps exploring longer, at the cost "
        "of a noisier policy.",
    )
    entropy_schedule: tuple[tuple[int, float], ...] | None = Field(
        None,
        description="[[agent_steps, coeff], ...] piecewise-linear; first step must be 0. "
        "Overrides entropy_coeff.",
    )
    grad_clip: float = Field(
        0.5, gt=0, description="Global gradient-norm clip over every trained parameter."
    )
    kl_coeff: float = Field(
        0.2,
        ge=0,
        description="Initial weight of the KL penalty to the sampling policy (RLlib adapts "
        "it toward its KL target); 0 = the ratio clip alone.",
    )
    train_batch_size: int = Field(
        2000,
        ge=16,
        description="Env steps (bars) per iteration; in phase 2 each is one step of every "
        "symbol agent (the vector env gives RLlib bars x env.n_symbols rows).",
    )
    minibatch_size: int = Field(
        500,
        ge=8,
        description="Rows of one module per SGD step; at most an iteration's rows (checked "
        "by the run config).",
    )
    num_epochs: int = Field(
        10,
        ge=1,
        description="Passes over an iteration's batch (RLlib counts them on the module with "
        "the most rows: see master.symbol_value_heads_adapt).",
    )

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


class MasterPPOSettings(PPOSettings):
    """``master.ppo``: the PPO settings of phase 3, with the master's defaults."""

    lr: Rate = Field(
        1e-3,
        description="Rate of the master (and of the symbol value heads when they adapt): its "
        "few decisions per run (one per env.communication_interval bars) want a higher rate "
        "than the symbols' 3e-4.",
    )
    gamma: Discount = Field(
        0.5,
        description="Discount per env step (bar). A decision's effect ends when the next one "
        "resets the budgets: a short horizon keeps later decisions' returns out of its "
        "advantage, where they are noise (docs/agents.md).",
    )
    gae_lambda: Lambda = Field(
        0.9, description="GAE lambda (see symbols.ppo.gae_lambda); shorter, as gamma."
    )
    vf_clip_param: ValueClip = Field(
        1000.0,
        description="Clip of the squared value error (reward units²). The master's returns sum "
        "several bars of scaled portfolio returns: a clip of 10 would zero the value gradient "
        "of most rows.",
    )


class JointPPOSettings(PPOSettings):
    """``joint.ppo``: the PPO settings of phase 4, with the joint phase's defaults."""

    lr: Rate = Field(
        1e-4,
        description="Rate of the master and of the value heads (the symbol actors and the "
        "encoder learn at joint.symbol_actor_lr / joint.encoder_lr): fine-tuning what phase 3 "
        "trained at 1e-3.",
    )
    vf_clip_param: ValueClip = Field(
        1000.0,
        description="Clip of the squared value error (reward units²): the master's critic "
        "learns here too, so master.ppo's 1000 (10 would zero most of its value gradient).",
    )


class PolicyNetConfig(Settings):
    """The symbol RLModule: shared encoder -> optional recurrent core -> actor / critic heads."""

    encoder: Literal["finetune", "frozen", "scratch"] = Field(
        "finetune",
        description="finetune: pretrained, trained at encoder_lr; frozen: pretrained, fixed; "
        "scratch: randomly initialized, trained at encoder_lr (no pretraining).",
    )
    encoder_lr: float = Field(
        1e-4,
        gt=0,
        description="Rate of the shared encoder in phase 2 (finetune, scratch): below "
        "ppo.lr, so the actor and critic heads adapt faster than the pretrained features move.",
    )
    hidden: tuple[int, ...] = Field(
        (64, 64), min_length=1, description="Widths of the actor's and the critic's MLP layers."
    )
    recurrent: Literal["none", "gru", "lstm"] = Field(
        "none",
        description="Recurrent core between the encoder and the heads: memory beyond the "
        "encoder's window, at the cost of slower, sequence-wise training.",
    )
    recurrent_size: int = Field(64, ge=4, description="Hidden state size of the recurrent core.")
    max_seq_len: int = Field(
        16, ge=2, description="BPTT length when recurrent (env steps the gradient flows back)."
    )


class ResourceConfig(Settings):
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
    num_cpus_per_env_runner: float = Field(
        1.0, gt=0, description="CPUs reserved per env runner (also what auto divides by)."
    )
    custom_resources_per_env_runner: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources each runner needs, e.g. {rollout: 1} to keep runners "
        "on the rollout node type of cluster/*.yaml.",
    )
    num_learners: int = Field(0, ge=0, description="Remote learners; 0 = learn in the driver.")
    num_cpus_per_learner: float = Field(1.0, gt=0, description="CPUs reserved per learner.")
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
    max_num_env_runner_restarts: int = Field(
        100, ge=0, description="Runner restarts allowed over a run before training fails."
    )
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


class EntropyGuardConfig(Settings):
    """Raise the entropy coefficient when the policy collapses (after warm-up)."""

    enabled: bool = Field(True, description="Off: the entropy coefficient is never boosted.")
    warmup_iterations: int = Field(
        5, ge=0, description="Iterations before the guard acts (a young policy is not collapsed)."
    )
    min_entropy: float = Field(
        0.15, ge=0, le=1, description="Threshold, as a fraction of the maximum entropy log(A)."
    )
    boost: float = Field(1.5, gt=1, description="Factor applied per iteration below threshold.")
    max_boost: float = Field(10.0, ge=1, description="Cap on the cumulative factor.")
    decay: float = Field(
        0.9, gt=0, le=1, description="Factor pulling the boost back to 1 while entropy is healthy."
    )


class PhaseSettings(Settings):
    """What every PPO phase has: its length, checkpoint and evaluation cadence, PPO settings.

    A phase model restates a field to give it that phase's default (``iterations``, ``ppo``):
    the model is the one source of each default, whatever a YAML section leaves out."""

    iterations: int = Field(20, ge=1, description="PPO iterations (updates) of the phase.")
    checkpoint_every: int = Field(
        5,
        ge=1,
        description="Iterations between checkpoints (the last iteration is always one); each "
        "is scored on the validation split.",
    )
    eval_every: int = Field(
        5,
        ge=1,
        description="Iterations between validation backtests logged to metrics.jsonl "
        "(checkpoints are evaluated anyway).",
    )
    keep_best: int = Field(3, ge=1, description="Best checkpoints kept, by validation Sharpe.")
    ppo: PPOSettings = Field(
        default_factory=PPOSettings,
        description="PPO settings of the phase; keys left out keep the phase's defaults.",
    )


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
    policy: PolicyNetConfig = Field(
        default_factory=PolicyNetConfig, description="The symbol RLModule (every later phase's)."
    )
    entropy_guard: EntropyGuardConfig = Field(
        default_factory=EntropyGuardConfig,
        description="Raise the entropy coefficient when the symbol policy collapses.",
    )


HierarchyPhase = Literal["master", "joint"]
PHASES = ("pretrain", "symbols", "master", "joint")
"""The pipeline's phases, in order."""


class MasterNetConfig(Settings):
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


class MasterTrainConfig(PhaseSettings):
    """Phase 3: MAPPO on the master; the symbol actors and the shared encoder stay frozen."""

    iterations: int = Field(20, ge=1, description="PPO iterations (updates) of the phase.")
    ppo: MasterPPOSettings = Field(
        default_factory=MasterPPOSettings,
        description="PPO settings, with the master's defaults (horizon, rate, value clip); "
        "keys left out keep them.",
    )
    symbol_value_heads_adapt: bool = Field(
        False,
        description="Train the symbol value heads alongside (their actors stay frozen). Off "
        "by default: RLlib cycles every module's rows until the largest batch has done "
        "num_epochs, so with the symbol rows (N per bar) in the update the master's few "
        "decisions (1 per communication_interval bars) were replayed about 4N times more "
        "epochs than set, at 20x the learner time (docs/benchmarks.md).",
    )
    policy: MasterNetConfig = Field(
        default_factory=MasterNetConfig, description="The master RLModule."
    )


class JointTrainConfig(PhaseSettings):
    """Phase 4: joint fine-tuning; the symbol actors learn again, slowly."""

    iterations: int = Field(
        10, ge=1, description="PPO iterations (updates): fewer than phase 3's, a fine-tuning."
    )
    ppo: JointPPOSettings = Field(
        default_factory=JointPPOSettings,
        description="PPO settings, with the joint phase's defaults; ppo.lr is the master's and "
        "the value heads' rate. Keys left out keep these defaults.",
    )
    symbol_actor_lr: float = Field(
        1e-5,
        gt=0,
        description="Rate of the symbol actor (and its recurrent core): slow, phase 2's actors "
        "are fine-tuned next to the master, not relearned.",
    )
    encoder_lr: float = Field(
        1e-5, gt=0, description="Rate of the shared encoder (it feeds every symbol actor)."
    )
    centralized_critic: bool = Field(
        False,
        description="Symbol value heads also read the global state (a new value head: the "
        "phase-2 one has another input size).",
    )
