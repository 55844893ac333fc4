"""Typed run config -> RLlib `PPOConfig` for the shared 'symbol' policy (the only translation)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from multiagent.config import RunConfig
from multiagent.rllib.callbacks import TelemetryCallbacks
from multiagent.rllib.env import ENV_NAME, SYMBOL_MODULE, register
from multiagent.rllib.learner import SharedEncoderPPOLearner
from multiagent.rllib.modules import SharedEncoderMultiRLModule, SymbolRLModule


def to_symbol_module(agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
    """Every symbol agent maps to the one shared policy: market identity is never an input."""
    return SYMBOL_MODULE


def symbol_model_config(config: RunConfig, n_features: int) -> dict[str, Any]:
    policy = config.symbols.policy
    return {
        "window": config.env.observation.window,
        "n_features": n_features,
        "encoder": config.encoder.model_dump(mode="json"),
        "encoder_mode": policy.encoder,
        "encoder_lr": policy.encoder_lr,
        "hidden": list(policy.hidden),
        "recurrent": policy.recurrent,
        "recurrent_size": policy.recurrent_size,
        "max_seq_len": policy.max_seq_len,
    }


def build_ppo_config(
    config: RunConfig,
    observation_space: gym.Space[Any],
    action_space: gym.Space[Any],
    n_features: int,
) -> PPOConfig:
    register()
    train = config.symbols
    ppo, runners = train.ppo, train.runners
    entropy: Any = (
        [list(pair) for pair in ppo.entropy_schedule] if ppo.entropy_schedule else ppo.entropy_coeff
    )
    return (
        PPOConfig()
        .environment(
            ENV_NAME,
            env_config={
                "run": config.model_dump(mode="json"),
                "part": "train",
                "balanced": train.balanced_sampling,
            },
        )
        .framework("torch")
        .env_runners(
            num_env_runners=runners.num_env_runners,
            num_envs_per_env_runner=runners.num_envs_per_env_runner,
            num_cpus_per_env_runner=runners.num_cpus_per_env_runner,
            rollout_fragment_length="auto",
        )
        .learners(num_learners=runners.num_learners, learner_class=SharedEncoderPPOLearner)
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
        .multi_agent(
            policies={SYMBOL_MODULE},
            policy_mapping_fn=to_symbol_module,
            policies_to_train=[SYMBOL_MODULE],
        )
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(
                multi_rl_module_class=SharedEncoderMultiRLModule,
                rl_module_specs={
                    SYMBOL_MODULE: RLModuleSpec(
                        module_class=SymbolRLModule,
                        observation_space=observation_space,
                        action_space=action_space,
                        model_config=symbol_model_config(config, n_features),
                    )
                },
            )
        )
        .callbacks(TelemetryCallbacks)
        .debugging(seed=config.seed)
        .reporting(metrics_num_episodes_for_smoothing=20)
    )
