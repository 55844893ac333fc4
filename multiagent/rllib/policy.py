"""The trained policies outside RLlib: greedy evaluators and TorchScript exports.

`InferencePolicy` is the inference path of `SymbolRLModule` as a plain ``nn.Module`` with one
tensor signature, ``(observations (B, D), mask (B, A), state (B, S)) -> (logits, state)``, where
S is 0 (feed-forward), the GRU size, or twice the LSTM size (h then c). It traces to
TorchScript, so a deployed policy needs torch only; the export test checks it picks the same
actions as the RLModule.

`MasterInference` does the same for the actor of `MasterRLModule`,
``(obs (B, M), market (B, N*W*F)) -> logits (B, N*L + 3)``; the critic's ``state`` is left out
because the actor never reads it. `evaluation.master_policy.MasterNetPolicy` runs the export
without Ray.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from torch import nn

from multiagent.envs.hierarchical_env import HierarchicalTradingEnv
from multiagent.errors import ConfigError
from multiagent.evaluation.master_policy import MASTER_FORMAT, MasterNetPolicy
from multiagent.evaluation.policies import GreedyNetPolicy
from multiagent.rllib.checkpoints import MASTER_MODULE, SYMBOL_MODULE, module_checkpoint
from multiagent.rllib.modules import MasterRLModule, SymbolRLModule, head_inputs, mask_logits


class InferencePolicy(nn.Module):
    def __init__(self, module: SymbolRLModule) -> None:
        super().__init__()
        self.encoder = module.encoder
        self.core = module.core
        self.pi = module.pi
        self.recurrent = module.recurrent
        self.recurrent_size = module.recurrent_size
        self.assets = module.assets

    @property
    def state_size(self) -> int:
        return {"none": 0, "gru": 1, "lstm": 2}[self.recurrent] * self.recurrent_size

    def forward(
        self, observations: torch.Tensor, mask: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = head_inputs(self.encoder, observations, self.assets)
        if self.core is not None:
            r = self.recurrent_size
            if self.recurrent == "gru":
                out, h = self.core(x.unsqueeze(1), state[:, :r].unsqueeze(0).contiguous())
                state = h.squeeze(0)
            else:
                h0 = state[:, :r].unsqueeze(0).contiguous()
                c0 = state[:, r:].unsqueeze(0).contiguous()
                out, (h, c) = self.core(x.unsqueeze(1), (h0, c0))
                state = torch.cat([h.squeeze(0), c.squeeze(0)], dim=-1)
            x = out.squeeze(1)
        return mask_logits(self.pi(x), mask), state


def export_torchscript(module: SymbolRLModule, path: str | Path, example: np.ndarray) -> Path:
    """Trace the inference path on ``example`` observations (B, D) and save it."""
    policy = InferencePolicy(module).eval()
    obs = torch.as_tensor(example, dtype=torch.float32)
    mask = torch.ones(obs.shape[0], int(module.action_space.n))
    state = torch.zeros(obs.shape[0], policy.state_size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.13 flags torch.jit as deprecated; it works
        traced = torch.jit.trace(policy, (obs, mask, state), check_trace=False)
    return _save_traced(
        traced,
        path,
        {
            "format": "multiagent.policy/1",
            "signature": "(observations (B, D), mask (B, A), state (B, S)) -> (logits, state)",
            "observation_dim": int(obs.shape[1]),
            "n_actions": int(mask.shape[1]),
            "state_size": policy.state_size,
            "recurrent": policy.recurrent,
        },
    )


def _save_traced(traced: torch.jit.ScriptModule, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write a traced module and its ``.json`` sidecar; a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    traced.save(str(partial))
    os.replace(partial, path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


class GreedyPolicy:
    """Acts for the slots of one env (stepping an env by hand, e.g. in tests or a notebook) over
    any ``(obs, mask, state) -> (logits, state)`` net
    (an `InferencePolicy` or a loaded TorchScript file): argmax of the masked logits."""

    def __init__(self, net: nn.Module | torch.jit.ScriptModule, state_size: int) -> None:
        self.net = net
        self.state_size = state_size
        self.state = torch.zeros(0, state_size)

    @classmethod
    def from_module(cls, module: SymbolRLModule) -> GreedyPolicy:
        policy = InferencePolicy(module).eval()
        return cls(policy, policy.state_size)

    @classmethod
    def load(cls, path: str | Path) -> GreedyPolicy:
        """A policy written by `export_torchscript` (its ``.json`` sidecar: the state size)."""
        meta = json.loads(Path(path).with_suffix(".json").read_text())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            net = torch.jit.load(str(path))
        return cls(net, int(meta["state_size"]))

    def reset(self, env: HierarchicalTradingEnv) -> None:
        self.state = torch.zeros(env.n_slots, self.state_size)

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits, self.state = self.net(
                torch.from_numpy(np.ascontiguousarray(observations, np.float32)),
                torch.from_numpy(masks.astype(np.float32)),
                self.state,
            )
        return logits.argmax(dim=-1).numpy()


def load_rllib_policy(path: Path, name: str = "agent") -> GreedyNetPolicy:
    """The greedy policy of the symbol RLModule saved in an RLlib checkpoint folder."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    found = module_checkpoint(path, SYMBOL_MODULE)
    if found is None:
        raise ConfigError(f"{path}: no symbol RLModule checkpoint found under it")
    module = RLModule.from_checkpoint(str(found.resolve()))
    net = InferencePolicy(module).eval()
    space = getattr(module, "observation_space", None)
    inner = space["observations"] if isinstance(space, gym.spaces.Dict) else space
    dim = int(inner.shape[0]) if inner is not None and inner.shape else None
    return GreedyNetPolicy(
        net, net.state_size, name, observation_dim=dim, n_actions=int(module.action_space.n)
    )


class MasterInference(nn.Module):
    """The master's actor as one tensor signature, so it traces: the RLModule's own
    ``embed`` and ``actor_logits`` (one code path, no copy that could drift from training)."""

    def __init__(self, module: MasterRLModule) -> None:
        super().__init__()
        self.module = module
        self.n_slots = module.n_slots
        self.nvec = [int(n) for n in module.action_space.nvec]

    def forward(self, obs: torch.Tensor, market: torch.Tensor) -> torch.Tensor:
        batch = {Columns.OBS: {"obs": obs, "market": market}}
        return self.module.actor_logits(batch, self.module.embed(batch))


def export_master_torchscript(
    module: MasterRLModule,
    path: str | Path,
    example_obs: np.ndarray,
    example_market: np.ndarray,
) -> Path:
    """Trace the master's actor on example inputs (B, M) and (B, N*W*F) and save it with its
    ``.json`` sidecar (the shapes `MasterNetPolicy.check` holds an env to)."""
    net = MasterInference(module).eval()
    obs = torch.as_tensor(example_obs, dtype=torch.float32)
    market = torch.as_tensor(example_market, dtype=torch.float32)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.13 flags torch.jit as deprecated; it works
        traced = torch.jit.trace(net, (obs, market), check_trace=False)
    return _save_traced(
        traced,
        path,
        {
            "format": MASTER_FORMAT,
            "signature": "(obs (B, M), market (B, N*W*F)) -> logits (B, N*L + 3)",
            "observation_dim": int(obs.shape[1]),
            "market_dim": int(market.shape[1]),
            "n_slots": net.n_slots,
            "nvec": net.nvec,
        },
    )


def load_rllib_master(path: Path, name: str = "master") -> MasterNetPolicy:
    """The greedy master of the master RLModule saved in an RLlib checkpoint folder."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    no_master = ConfigError(
        f"{path} has no master RLModule: it is a phase-2 (symbols) checkpoint; evaluate it as "
        "the independent system"
    )
    found = module_checkpoint(path, MASTER_MODULE)
    if found is None:
        raise no_master
    # ``path`` may itself be a module folder, and then it may be the symbol module's.
    module = RLModule.from_checkpoint(str(found.resolve()))
    if not isinstance(module, MasterRLModule):
        raise no_master
    net = MasterInference(module).eval()
    space = module.observation_space
    return MasterNetPolicy(
        net,
        net.nvec,
        name,
        observation_dim=int(space["obs"].shape[0]),
        market_dim=int(space["market"].shape[0]),
    )


class GreedyMasterPolicy:
    """One env's `master_inputs` -> its action, straight from a `MasterRLModule` (the reference
    the master export is tested against): the most likely budget level
    of every slot and the most likely risk mode (each categorical head's argmax)."""

    def __init__(self, module: MasterRLModule) -> None:
        self.module = module.eval()
        self.sizes = [int(n) for n in module.action_space.nvec]

    def act(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        batch = {
            Columns.OBS: {
                key: torch.from_numpy(np.ascontiguousarray(value, np.float32)[None])
                for key, value in inputs.items()
            }
        }
        with torch.no_grad():
            logits = self.module.actor_logits(batch, self.module.embed(batch))[0]
        return np.array([int(head.argmax()) for head in torch.split(logits, self.sizes)])
