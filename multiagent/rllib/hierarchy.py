"""Phases 3 and 4: the master trained with MAPPO over frozen symbol actors, then joint tuning.

Both phases run the symbol agents and the master in one `TradingAgentsEnv`, one
`SharedEncoderMultiRLModule` ('symbol' shared by every slot, 'master') and stock PPO. MAPPO is
PPO whose value function is a centralized critic: `modules.MasterRLModule` computes its values
from the global state while its actor reads only its own inputs, so PPO's GAE and clipped loss
run unchanged on top of a better baseline.

A phase starts from the best checkpoint (by validation Sharpe) of the phase before it: phase 3
takes phase 2's symbol module, phase 4 takes both modules of phase 3. Only a value head
may start fresh (the symbol value head's input grows once ``joint.centralized_critic`` is on),
recorded in ``RUN/PHASE/init.json``; any other mismatch is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from multiagent.config import RunConfig
from multiagent.config.phases import HierarchyPhase
from multiagent.errors import ConfigError
from multiagent.evaluation.master_policy import MasterNetPolicy
from multiagent.evaluation.sources import MASTER_NAME, PHASE_SYSTEMS
from multiagent.rllib.algo import build_hierarchy_config
from multiagent.rllib.checkpoints import MASTER_MODULE, SYMBOL_MODULE, module_path
from multiagent.rllib.env import TradingAgentsEnv
from multiagent.rllib.policy import MasterInference, export_master_torchscript
from multiagent.rllib.trainer import PhaseTrainer
from multiagent.runs.folders import recorded_path, write_json


def load_matching(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Load every tensor of ``state`` whose name and shape ``module`` has; -> names left as
    initialized."""
    own = module.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    module.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


class HierarchyTrainer(PhaseTrainer):
    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        phase: HierarchyPhase,
        *,
        init_from: Path | None = None,
        console: Console | None = None,
    ) -> None:
        self.phase = phase
        self.system = PHASE_SYSTEMS[phase]
        self.modules = (SYMBOL_MODULE, MASTER_MODULE)
        super().__init__(
            config, run_dir, config.master if phase == "master" else config.joint, console=console
        )
        symbol_state = phase == "joint" and config.joint.centralized_critic
        env = TradingAgentsEnv(
            self.market,
            self.prepared.train_views,
            config.env,
            master=True,
            symbol_state=symbol_state,
        )
        first = env.env.symbol_agents[0]
        spaces = {
            SYMBOL_MODULE: (env.observation_spaces[first], env.action_spaces[first]),
            MASTER_MODULE: (env.observation_spaces["master"], env.action_spaces["master"]),
        }
        self.algo = build_hierarchy_config(
            config, phase, spaces, self.market.n_features
        ).build_algo()
        if init_from is not None:
            self.initialize_from(init_from)

    def initialize_from(self, checkpoint: Path) -> dict[str, list[str]]:
        """Copy the modules of an earlier phase's checkpoint into this phase's modules."""
        from ray.rllib.core.rl_module.rl_module import RLModule

        states: dict[str, dict[str, torch.Tensor]] = {}
        for module_id in self.modules:
            path = module_path(checkpoint, module_id)
            if path.is_dir():
                states[module_id] = RLModule.from_checkpoint(str(path.resolve())).state_dict()
        if SYMBOL_MODULE not in states:
            raise ConfigError(f"{checkpoint}: no symbol module to start phase {self.phase} from")

        def load(learner: Any) -> dict[str, list[str]]:
            return {
                module_id: load_matching(learner.module[module_id], state)
                for module_id, state in states.items()
            }

        results = self.algo.learner_group.foreach_learner(load)
        fresh = next(result.get() for result in results)
        # Only a value head may start fresh (its input grows with joint.centralized_critic);
        # anything else means the checkpoint is from another architecture or env spec.
        wrong = {m: [k for k in keys if not k.startswith("vf.")] for m, keys in fresh.items()}
        wrong = {m: keys for m, keys in wrong.items() if keys}
        if wrong:
            raise ConfigError(
                f"{checkpoint} does not fit phase {self.phase}'s modules (parameters missing or "
                f"of another shape: {wrong}); was it made by an older version or another config?"
            )
        self.algo.env_runner_group.sync_weights(
            from_worker_or_learner_group=self.algo.learner_group, inference_only=True
        )
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(
            self.dir / "init.json",
            {
                "from": recorded_path(self.run_dir, checkpoint),
                "modules": sorted(states),
                "initialized_fresh": fresh,
            },
        )
        return dict(fresh)

    def add_metrics(self, row: dict[str, Any]) -> None:
        """Add the master's policy entropy as a fraction of its maximum (1: uniform over every
        head, the master allocates at random; 0: deterministic)."""
        nvec = self.algo.get_module(MASTER_MODULE).action_space.nvec
        row["master_entropy_fraction"] = row["master_policy_entropy"] / float(np.log(nvec).sum())

    def master_policy(self) -> MasterNetPolicy:
        net = MasterInference(self.algo.get_module(MASTER_MODULE)).eval()
        return MasterNetPolicy(net, net.nvec, f"{self.system}_master")

    def export_best(self) -> Path | None:
        """The best checkpoint's symbol policy (``policy.pt``) and master (``master.pt``)."""
        policy = super().export_best()
        env = self.example_env()
        inputs = env.master_inputs()
        export_master_torchscript(
            self.best_module(MASTER_MODULE),
            self.dir / MASTER_NAME,
            inputs["obs"][None],
            inputs["market"][None],
        )
        return policy

    def status(self, row: dict[str, Any]) -> str:
        return (
            f"master reward {row.get('master_reward_mean', float('nan')):.2f} "
            f"entropy {row.get('master_entropy_fraction', float('nan')):.0%} of max"
        )
