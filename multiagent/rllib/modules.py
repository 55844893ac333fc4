"""RLModules: the symbol policy on the shared encoder, and the MultiRLModule that shares it.

`SymbolRLModule` reads ``Dict(observations, action_mask)``: the first W x F values of the
observation are the feature window (the encoder's input), the rest the slot and portfolio blocks
(`multiagent.envs.observations`). Embedding + blocks go through an optional GRU/LSTM core into
separate actor and critic MLPs. Masked actions get a logit of -1e9 (probability 0, finite so
the entropy stays defined); the env's int8 mask is cast to float here.

`SharedEncoderMultiRLModule` gives every sub-module that has an ``encoder`` the same encoder
object (docs/ray_notes.md: a separate encoder module fails under PPO's GAE; one object referenced by
both modules works), and `learner.SharedEncoderPPOLearner` steps it once per update.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchMultiCategorical
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from multiagent.encoder.model import MarketEncoder
from multiagent.envs.master import SLOT_FIELDS
from multiagent.envs.observations import NEUTRAL, PORTFOLIO_FIELDS
from multiagent.rllib.module_config import MasterModuleSettings, SymbolModuleSettings

MASKED_LOGIT = -1e9


def mlp(sizes: list[int], out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.Tanh()]
    layers.append(nn.Linear(sizes[-1], out))
    return nn.Sequential(*layers)


def head_inputs(
    encoder: MarketEncoder, observations: torch.Tensor, assets: int = 1
) -> torch.Tensor:
    """(B, D) observations -> (B, E + D - W*F): the window's embedding next to the other fields.

    With ``assets`` blocks per observation (D = assets x block, each block one asset's layout)
    every block is encoded alike: (B, assets x (E + block - W*F)).

    The one place that knows the observation layout on the policy side (the RLModule and the
    exported policy both call it)."""
    batch = observations.shape[0]
    blocks = observations.reshape(batch * assets, -1)
    feature_dim = encoder.window * encoder.n_features
    windows = blocks[:, :feature_dim].reshape(-1, encoder.window, encoder.n_features)
    encoded = torch.cat([encoder(windows), blocks[:, feature_dim:]], dim=-1)
    return encoded.reshape(batch, -1)


def mask_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask > 0, logits, torch.full_like(logits, MASKED_LOGIT))


PARTS = ("encoder", "core", "context", "pi", "vf")
"""The parameter groups of our modules: the learner's per-part learning rates and the phases'
freezing address them by these names."""


def freeze_parts(module: nn.Module, parts: Sequence[str]) -> None:
    """``requires_grad_(False)`` on the named parts (`PARTS`) a phase keeps fixed."""
    for part in parts:
        if part not in PARTS:
            raise ValueError(f"unknown module part {part!r}; expected one of {PARTS}")
        child = getattr(module, part, None)
        if isinstance(child, nn.Module):
            child.requires_grad_(False)


class SymbolRLModule(TorchRLModule, ValueFunctionAPI):
    """model_config: `module_config.SymbolModuleSettings` as RLlib's dict.

    With ``centralized_critic`` the value head also reads ``obs["state"]`` (the global state
    minus the feature windows, see `env.TradingAgentsEnv`); the actor never does.
    """

    def setup(self) -> None:
        cfg = self.settings = SymbolModuleSettings.from_rllib(self.model_config)
        self.window = cfg.window
        self.n_features = cfg.n_features
        self.feature_dim = self.window * self.n_features
        self.encoder = MarketEncoder(self.n_features, self.window, cfg.encoder)
        self.encoder_mode = cfg.encoder_mode
        if self.encoder_mode == "frozen":
            self.encoder.requires_grad_(False)
        obs_dim = int(self.observation_space["observations"].shape[0])
        n_actions = int(self.action_space.n)
        self.assets = cfg.assets
        if obs_dim % self.assets:
            raise ValueError(f"observations of {obs_dim} values are not {self.assets} blocks")
        block = obs_dim // self.assets
        in_dim = self.assets * (self.encoder.embedding_dim + block - self.feature_dim)
        self.recurrent = cfg.recurrent
        self.recurrent_size = cfg.recurrent_size
        self.core: nn.Module | None = None
        if self.recurrent == "gru":
            self.core = nn.GRU(in_dim, self.recurrent_size, batch_first=True)
        elif self.recurrent == "lstm":
            self.core = nn.LSTM(in_dim, self.recurrent_size, batch_first=True)
        if self.core is not None:
            in_dim = self.recurrent_size
        hidden = list(cfg.hidden)
        self.pi = mlp([in_dim, *hidden], n_actions)
        self.centralized_critic = cfg.centralized_critic
        if self.centralized_critic:
            in_dim += int(self.observation_space["state"].shape[0])
        self.vf = mlp([in_dim, *hidden], 1)
        freeze_parts(self, cfg.frozen)

    # state ---------------------------------------------------------------------------
    def get_initial_state(self) -> dict[str, np.ndarray]:
        zeros = np.zeros(self.recurrent_size, np.float32)
        if self.recurrent == "gru":
            return {"h": zeros}
        if self.recurrent == "lstm":
            return {"h": zeros, "c": zeros.copy()}
        return {}

    # forward -------------------------------------------------------------------------
    def features(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-step input of the heads (and the recurrent state out, when recurrent)."""
        obs = batch[Columns.OBS]["observations"].float()
        lead = obs.shape[:-1]
        x = head_inputs(self.encoder, obs.reshape(-1, obs.shape[-1]), self.assets)
        x = x.reshape(*lead, -1)
        if self.core is None:
            return x, {}
        state = batch[Columns.STATE_IN]
        if self.recurrent == "gru":
            out, h = self.core(x, state["h"].unsqueeze(0))
            return out, {"h": h.squeeze(0)}
        out, (h, c) = self.core(x, (state["h"].unsqueeze(0), state["c"].unsqueeze(0)))
        return out, {"h": h.squeeze(0), "c": c.squeeze(0)}

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        x, state = self.features(batch)
        mask = batch[Columns.OBS]["action_mask"]
        out: dict[str, Any] = {Columns.ACTION_DIST_INPUTS: mask_logits(self.pi(x), mask)}
        if state:
            out[Columns.STATE_OUT] = state
        return out

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        x, state = self.features(batch)
        mask = batch[Columns.OBS]["action_mask"]
        out: dict[str, Any] = {
            Columns.ACTION_DIST_INPUTS: mask_logits(self.pi(x), mask),
            Columns.EMBEDDINGS: x,
        }
        if state:
            out[Columns.STATE_OUT] = state
        return out

    def compute_values(
        self, batch: dict[str, Any], embeddings: torch.Tensor | None = None
    ) -> torch.Tensor:
        if embeddings is None:
            embeddings, _ = self.features(batch)
        if self.centralized_critic:
            embeddings = torch.cat([embeddings, batch[Columns.OBS]["state"].float()], dim=-1)
        return self.vf(embeddings).squeeze(-1)


class MasterRLModule(TorchRLModule, ValueFunctionAPI):
    """The master (portfolio/risk allocator): MAPPO's actor and centralized critic.

    Observation ``Dict(obs, market, state)`` (`env.TradingAgentsEnv`); action
    ``MultiDiscrete([L] * N + [3])``: a budget level per slot and a risk mode.

    Actor (reads ``obs`` and ``market`` only): the slots' windows go through the shared encoder;
    a context vector comes from the master's observation and the embeddings pooled over slots
    (mean and max). One budget head, shared by every slot, scores the L levels of slot i from
    slot i's embedding, its weight, budget, recent P&L and edge, and the context; the risk-mode head
    reads the context. Slots are filled in random order each episode, so a head per slot
    position would learn the same thing N times; the shared head is equivariant to slot order.

    Critic (MAPPO's centralized value): every slot's embedding in slot order, next to the rest of
    the global state (every slot's position block, the portfolio block, the master's
    observation).

    model_config: `module_config.MasterModuleSettings` as RLlib's dict.
    """

    def setup(self) -> None:
        cfg = self.settings = MasterModuleSettings.from_rllib(self.model_config)
        self.window = cfg.window
        self.n_features = cfg.n_features
        self.n_slots = cfg.n_slots
        self.encoder = MarketEncoder(self.n_features, self.window, cfg.encoder)
        self.encoder_mode = cfg.encoder_mode
        if self.encoder_mode == "frozen":
            self.encoder.requires_grad_(False)
        space = self.observation_space
        own = int(space["obs"].shape[0])
        state = int(space["state"].shape[0])
        embedding = self.encoder.embedding_dim
        nvec = [int(n) for n in self.action_space.nvec]
        self.n_levels, self.n_modes = nvec[0], nvec[-1]
        # The master observation's per-slot weights, budgets, recent P&L and edge (N each)
        # start after the mean and max of the features (2F) and the portfolio block (the spec).
        self.slot_fields_at = 2 * self.n_features + len(PORTFOLIO_FIELDS)
        hidden = list(cfg.hidden)
        self.context = mlp([own + 2 * embedding, *hidden[:-1]], hidden[-1])
        self.pi = nn.ModuleDict(
            {
                "budget": mlp([embedding + SLOT_FIELDS + hidden[-1], hidden[-1]], self.n_levels),
                "mode": nn.Linear(hidden[-1], self.n_modes),
            }
        )
        prior = cfg.neutral_prior
        if prior:
            # Start near the neutral allocation (see MasterNetConfig.neutral_prior).
            budget_mlp = self.pi["budget"]
            assert isinstance(budget_mlp, nn.Sequential)
            budget_out, mode_out = budget_mlp[-1], self.pi["mode"]
            assert isinstance(budget_out, nn.Linear) and isinstance(mode_out, nn.Linear)
            with torch.no_grad():
                budget_out.bias[cfg.neutral_level] += prior
                mode_out.bias[NEUTRAL] += prior
        critic = list(cfg.critic_hidden)
        self.vf = mlp([self.n_slots * embedding + state, *critic], 1)
        self.action_dist_cls = TorchMultiCategorical.get_partial_dist_cls(input_lens=nvec)
        freeze_parts(self, cfg.frozen)

    def embed(self, batch: dict[str, Any]) -> torch.Tensor:
        """(B, N, E): the shared encoder's embedding of every slot's window."""
        market = batch[Columns.OBS]["market"].float()
        windows = market.reshape(-1, self.window, self.n_features)
        return self.encoder(windows).reshape(market.shape[0], self.n_slots, -1)

    def actor_logits(self, batch: dict[str, Any], embeddings: torch.Tensor) -> torch.Tensor:
        """(B, N * L + 3): the budget levels of slot 0, 1, ... then the risk modes."""
        own = batch[Columns.OBS]["obs"].float()
        pooled = torch.cat([embeddings.mean(dim=1), embeddings.amax(dim=1)], dim=-1)
        context = torch.tanh(self.context(torch.cat([own, pooled], dim=-1)))
        n, k = self.n_slots, self.slot_fields_at
        slot_fields = own[:, k : k + SLOT_FIELDS * n].reshape(-1, SLOT_FIELDS, n).transpose(1, 2)
        per_slot = torch.cat(
            [embeddings, slot_fields, context.unsqueeze(1).expand(-1, n, -1)], dim=-1
        )
        budget = self.pi["budget"](per_slot).flatten(1)
        return torch.cat([budget, self.pi["mode"](context)], dim=-1)

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.actor_logits(batch, self.embed(batch))}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        embeddings = self.embed(batch)
        return {
            Columns.ACTION_DIST_INPUTS: self.actor_logits(batch, embeddings),
            Columns.EMBEDDINGS: embeddings,
        }

    def compute_values(
        self, batch: dict[str, Any], embeddings: torch.Tensor | None = None
    ) -> torch.Tensor:
        if embeddings is None:
            embeddings = self.embed(batch)
        state = batch[Columns.OBS]["state"].float()
        return self.vf(torch.cat([embeddings.flatten(1), state], dim=-1)).squeeze(-1)


class SharedEncoderMultiRLModule(MultiRLModule):
    """Every sub-module with an ``encoder`` uses the first one's (one set of weights)."""

    def setup(self) -> None:
        super().setup()
        shared: MarketEncoder | None = None
        for module_id in sorted(self.keys()):
            module = self[module_id]
            encoder = getattr(module, "encoder", None)
            if not isinstance(encoder, MarketEncoder):
                continue
            if shared is None:
                shared = encoder
            else:
                module.encoder = shared
        # One object, one rule: frozen when any sharing module's config says so.
        modes = {getattr(m, "encoder_mode", None) for m in self.values()}
        if shared is not None and "frozen" in modes:
            shared.requires_grad_(False)

    @property
    def shared_encoder(self) -> MarketEncoder | None:
        for module_id in sorted(self.keys()):
            encoder = getattr(self[module_id], "encoder", None)
            if isinstance(encoder, MarketEncoder):
                return encoder
        return None
