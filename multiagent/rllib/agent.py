"""The ``agent`` phase of the single-agent systems (portfolio, regimes, sessions): PPO on the
system's one policy, through the loop every phase runs (`trainer.PhaseTrainer`: checkpoints
ranked by validation Sharpe, keep-best, resume, TorchScript export) with phase 2's encoder
loading and entropy guard (`symbols.PolicyTrainer`).

Validation scores the greedy policy on the system's own env over the validation views
(`evaluation.episodes`), the engine the system's report uses on the test views.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from multiagent.config import RunConfig
from multiagent.evaluation.episodes import NetAgent, episode_metrics, run_policies
from multiagent.evaluation.policies import GreedyNetPolicy
from multiagent.rllib.agent_env import AgentEnv
from multiagent.rllib.algo import build_agent_ppo_config
from multiagent.rllib.checkpoints import SYMBOL_VECTOR_MODULE
from multiagent.rllib.policy import InferencePolicy
from multiagent.rllib.symbols import PolicyTrainer


def asset_blocks(config: RunConfig, env: AgentEnv) -> int:
    """Observation blocks the module encodes one by one: the regimes env's assets, else 1."""
    return int(env.env.pool) if config.system == "regimes" else 1


class AgentTrainer(PolicyTrainer):
    """The single-agent phase; ``system`` is the run's (what validation and reports name)."""

    phase = "agent"
    symbol_id = SYMBOL_VECTOR_MODULE
    modules = (SYMBOL_VECTOR_MODULE,)

    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        *,
        encoder_path: Path | None = None,
        console: Console | None = None,
        resuming: bool = False,
    ) -> None:
        super().__init__(config, run_dir, config.agent, console=console)
        self.system = config.system
        env = self.make_env("train")
        self.n_actions = env.n_actions
        self.assets = asset_blocks(config, env)
        self.read_encoder(encoder_path, resuming)
        ppo_config = build_agent_ppo_config(
            config, env.observation_space, env.action_space, self.market.n_features, self.assets
        )
        self.algo = ppo_config.build_algo()
        self.load_encoder()

    def make_env(self, part: str) -> AgentEnv:
        return AgentEnv(self.config, self.market, self.prepared.views(part))

    def greedy_agent(self) -> NetAgent:
        net = InferencePolicy(self.algo.get_module(self.symbol_id)).eval()
        return NetAgent(GreedyNetPolicy(net, net.state_size, self.system))

    def evaluate(self, part: str = "validation") -> dict[str, Any]:
        agent = self.greedy_agent()
        records = run_policies(self.config, self.market, self.prepared.views(part), [agent])
        episodes = records[agent.name]
        if part == "validation":
            self.validation_returns = np.concatenate([r.returns for r in episodes])
        return episode_metrics(episodes, self.periods)

    @property
    def example_obs(self) -> np.ndarray:
        env = self.make_env("train")
        observation, _ = env.reset(seed=self.config.seed)
        return np.asarray(observation["observations"], np.float32)[None]

    def status(self, row: dict[str, Any]) -> str:
        return f"reward {row['reward_mean']:.2f} entropy {row['policy_entropy']:.3f}"
