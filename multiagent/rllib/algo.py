"""Typed run config -> RLlib `PPOConfig` of each training phase (the only translation)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from multiagent.config import RunConfig
from multiagent.config.phases import HierarchyPhase, PPOSettings
from multiagent.curriculum.config import Phase
from multiagent.envs.hierarchical_env import MASTER
from multiagent.envs.master import neutral_master_action
from multiagent.logs import adopt
from multiagent.rllib.callbacks import TelemetryCallbacks
from multiagent.rllib.checkpoints import MASTER_MODULE, SYMBOL_MODULE
from multiagent.rllib.env import ENV_NAME, VECTOR_ENV_NAME, register
from multiagent.rllib.learner import SharedEncoderPPOLearner
from multiagent.rllib.module_config import MasterModuleSettings, SymbolModuleSettings
from multiagent.rllib.modules import MasterRLModule, SharedEncoderMultiRLModule, SymbolRLModule
from multiagent.rllib.ray_session import RAY_LOGGERS
from multiagent.rllib.resources import apply_resources

# RLlib gave its logger a handler of its own when imported: its output goes where ours says.
adopt(*RAY_LOGGERS)


def to_symbol_module(agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
    """Every symbol agent maps to the one shared policy: market identity is never an input."""
    return SYMBOL_MODULE


def symbol_model_config(
    config: RunConfig, n_features: int, *, assets: int = 1
) -> SymbolModuleSettings:
    """The symbol RLModule of the run's system: the hierarchy's symbol agents (``symbols``), or
    a single-agent system's policy (``agent``; ``assets`` blocks per observation for regimes)."""
    policy = config.first_policy
    window = config.observation.window
    return SymbolModuleSettings(
        assets=assets,
        window=window,
        n_features=n_features,
        encoder=config.encoder,
        encoder_mode=policy.encoder,
        encoder_lr=policy.encoder_lr,
        hidden=policy.hidden,
        recurrent=policy.recurrent,
        recurrent_size=policy.recurrent_size,
        max_seq_len=policy.max_seq_len,
    )


def ppo_training(
    config: RunConfig,
    ppo: PPOSettings,
    env_config: dict[str, Any],
    phase: Phase,
    env_name: str = ENV_NAME,
) -> PPOConfig:
    """The parts every phase shares: env, runners, learner class, PPO settings, callbacks (the
    curriculum's when the run has one for ``phase``)."""
    from multiagent.rllib.curriculum import with_curriculum

    register()
    entropy: Any = (
        [list(pair) for pair in ppo.entropy_schedule] if ppo.entropy_schedule else ppo.entropy_coeff
    )
    algo_config = (
        PPOConfig()
        .environment(env_name, env_config={"run": config.model_dump(mode="json"), **env_config})
        .framework("torch")
        .learners(learner_class=SharedEncoderPPOLearner)
        .training(
            lr=ppo.lr,
            gamma=ppo.gamma,
            lambda_=ppo.gae_lambda,
            clip_param=ppo.clip_param,
            vf_loss_coeff=ppo.vf_loss_coeff,
            vf_clip_param=ppo.vf_clip_param,
            entropy_coeff=entropy,
            grad_clip=ppo.grad_clip,
            grad_clip_by="global_norm",
            kl_coeff=ppo.kl_coeff,
            train_batch_size_per_learner=ppo.train_batch_size,
            minibatch_size=ppo.minibatch_size,
            num_epochs=ppo.num_epochs,
        )
        .callbacks(TelemetryCallbacks)
        .debugging(seed=config.seed)
        .reporting(metrics_num_episodes_for_smoothing=20)
    )
    algo_config, _ = apply_resources(algo_config, config.resources)
    curriculum = config.curriculum
    source = curriculum.name if curriculum is not None else ""
    return with_curriculum(algo_config, curriculum, phase, source=source)


def build_agent_ppo_config(
    config: RunConfig,
    observation_space: gym.Space[Any],
    action_space: gym.Space[Any],
    n_features: int,
    assets: int,
) -> PPOConfig:
    """The single-agent systems' ``agent`` phase: RLlib's single-agent stack on the system's
    env (`agent_env.AgentEnv`, ``num_envs_per_env_runner`` copies per runner) and the symbol
    RLModule under RLlib's default module id."""
    from multiagent.rllib.agent_env import AGENT_ENV_NAME

    agent = config.agent
    spec = RLModuleSpec(
        module_class=SymbolRLModule,
        observation_space=observation_space,
        action_space=action_space,
        model_config=symbol_model_config(config, n_features, assets=assets).to_rllib(),
    )
    env_config = {"part": "train", "balanced": agent.balanced_sampling}
    return ppo_training(config, agent.ppo, env_config, "agent", AGENT_ENV_NAME).rl_module(
        rl_module_spec=spec
    )


def build_ppo_config(
    config: RunConfig,
    observation_space: gym.Space[Any],
    action_space: gym.Space[Any],
    n_features: int,
) -> PPOConfig:
    """Phase 2: the shared symbol policy alone (the master's seat keeps equal budgets).

    With ``symbols.vector_env`` (the default) the symbol slots are one native vector env for
    RLlib's single-agent runner (`vector_env.SymbolSlotsVectorEnv`: ``num_envs_per_env_runner``
    books of ``env.n_symbols`` slots each), and the module is RLlib's default one
    (``SYMBOL_VECTOR_MODULE``); otherwise every slot is an agent of the multi-agent env."""
    train = config.symbols
    env_config = {"part": "train", "balanced": train.balanced_sampling}
    spec = RLModuleSpec(
        module_class=SymbolRLModule,
        observation_space=observation_space,
        action_space=action_space,
        model_config=symbol_model_config(config, n_features).to_rllib(),
    )
    if train.vector_env:
        algo_config = ppo_training(config, train.ppo, env_config, "symbols", VECTOR_ENV_NAME)
        books = int(algo_config.num_envs_per_env_runner)
        slots = config.env.n_symbols
        # RLlib counts a slot's step as an env step here: the same bars per iteration as the
        # multi-agent env (train_batch_size counts bars of every slot) are N times as many.
        return (
            algo_config.env_runners(
                gym_env_vectorize_mode=gym.VectorizeMode.VECTOR_ENTRY_POINT.value,
                num_envs_per_env_runner=books * slots,
            )
            .training(train_batch_size_per_learner=train.ppo.train_batch_size * slots)
            .rl_module(rl_module_spec=spec)
        )
    return (
        ppo_training(config, train.ppo, env_config, "symbols")
        .multi_agent(
            policies={SYMBOL_MODULE},
            policy_mapping_fn=to_symbol_module,
            policies_to_train=[SYMBOL_MODULE],
        )
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(
                multi_rl_module_class=SharedEncoderMultiRLModule,
                rl_module_specs={SYMBOL_MODULE: spec},
            )
        )
    )


def to_module(agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
    """The master to its module, every symbol agent to the one shared symbol policy."""
    return MASTER_MODULE if agent_id == MASTER else SYMBOL_MODULE


def hierarchy_model_configs(
    config: RunConfig, phase: HierarchyPhase, n_features: int
) -> tuple[SymbolModuleSettings, MasterModuleSettings]:
    """(symbol, master) module settings of phase 3 or 4: what is frozen, what learns how fast.

    Phase 3 freezes the symbol actor (its core and actor head) and the shared encoder (it feeds
    the symbol actor); the symbol value head adapts when ``master.symbol_value_heads_adapt``.
    Phase 4 unfreezes the symbol actor and the encoder at ``joint.symbol_actor_lr`` /
    ``joint.encoder_lr``; everything else learns at ``joint.ppo.lr``."""
    symbol = symbol_model_config(config, n_features)
    master = MasterModuleSettings(
        window=symbol.window,
        n_features=n_features,
        encoder=symbol.encoder,
        n_slots=config.env.n_symbols,
        hidden=config.master.policy.hidden,
        critic_hidden=config.master.policy.critic_hidden,
        neutral_prior=config.master.policy.neutral_prior,
        neutral_level=int(neutral_master_action(1, config.env.budget_levels)[0]),
    )
    if phase == "master":
        symbol = symbol.model_copy(update={"encoder_mode": "frozen", "frozen": ("core", "pi")})
        master = master.model_copy(update={"encoder_mode": "frozen"})
    else:
        joint = config.joint
        symbol = symbol.model_copy(
            update={
                "encoder_mode": "finetune",
                "encoder_lr": joint.encoder_lr,
                "centralized_critic": joint.centralized_critic,
                "part_lrs": {"core": joint.symbol_actor_lr, "pi": joint.symbol_actor_lr},
            }
        )
        master = master.model_copy(
            update={"encoder_mode": "finetune", "encoder_lr": joint.encoder_lr}
        )
    return symbol, master


def build_hierarchy_config(
    config: RunConfig,
    phase: HierarchyPhase,
    spaces: dict[str, tuple[gym.Space[Any], gym.Space[Any]]],
    n_features: int,
) -> PPOConfig:
    """Phases 3 (master MAPPO, symbol actors frozen) and 4 (joint fine-tuning)."""
    settings = config.master if phase == "master" else config.joint
    symbol_config, master_config = hierarchy_model_configs(config, phase, n_features)
    trained = [MASTER_MODULE]
    if phase == "joint" or config.master.symbol_value_heads_adapt:
        trained.append(SYMBOL_MODULE)
    env_config = {
        "part": "train",
        "balanced": config.symbols.balanced_sampling,
        "master": True,
        "symbol_state": phase == "joint" and config.joint.centralized_critic,
    }
    specs = {
        SYMBOL_MODULE: RLModuleSpec(
            module_class=SymbolRLModule,
            observation_space=spaces[SYMBOL_MODULE][0],
            action_space=spaces[SYMBOL_MODULE][1],
            model_config=symbol_config.to_rllib(),
        ),
        MASTER_MODULE: RLModuleSpec(
            module_class=MasterRLModule,
            observation_space=spaces[MASTER_MODULE][0],
            action_space=spaces[MASTER_MODULE][1],
            model_config=master_config.to_rllib(),
        ),
    }
    return (
        ppo_training(config, settings.ppo, env_config, phase)
        .multi_agent(
            policies={SYMBOL_MODULE, MASTER_MODULE},
            policy_mapping_fn=to_module,
            policies_to_train=trained,
        )
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(
                multi_rl_module_class=SharedEncoderMultiRLModule, rl_module_specs=specs
            )
        )
    )
