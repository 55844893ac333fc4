"""PPO learner for modules sharing one encoder: one optimizer, one step per shared weight.

RLlib's default registers one optimizer per module, which would step a shared encoder once per
module. Here one Adam holds every trainable parameter exactly once, in two groups: the encoder
at its own learning rate (``encoder_lr`` of the module config; absent when frozen) and the rest
at ``lr``. Gradients are clipped by global norm over all of them.

The entropy coefficient of each module is its configured value or schedule times a boost that
`set_entropy_boost` changes at run time: the entropy guard's lever (see `trainer`).
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.utils.lambda_defaultdict import LambdaDefaultDict

from multiagent.encoder.model import MarketEncoder


class BoostedScheduler:
    """A scheduler's value times a mutable factor."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.boost = 1.0

    def get_current_value(self) -> Any:
        return self.base.get_current_value() * self.boost

    def update(self, timestep: int) -> float:
        return float(self.base.update(timestep)) * self.boost


class SharedEncoderPPOLearner(PPOTorchLearner):
    entropy_coeff_schedulers_per_module: Any

    def build(self) -> None:
        super().build()
        base: Any = self.entropy_coeff_schedulers_per_module
        self.entropy_coeff_schedulers_per_module = LambdaDefaultDict(
            lambda module_id: BoostedScheduler(base[module_id])
        )

    def set_entropy_boost(self, module_id: str, boost: float) -> None:
        self.entropy_coeff_schedulers_per_module[module_id].boost = float(boost)

    def get_entropy_boost(self, module_id: str) -> float:
        return float(self.entropy_coeff_schedulers_per_module[module_id].boost)

    def configure_optimizers(self) -> None:
        seen: set[int] = set()
        encoder_params: list[torch.nn.Parameter] = []
        other_params: list[torch.nn.Parameter] = []
        encoder_lr: float | None = None
        owner: str | None = None
        for module_id in sorted(self.module.keys()):
            module = self.module[module_id]
            if not self.rl_module_is_compatible(module):
                continue
            owner = owner or module_id
            encoder = getattr(module, "encoder", None)
            encoder_ids = (
                {id(p) for p in encoder.parameters()}
                if isinstance(encoder, MarketEncoder)
                else set()
            )
            if encoder_ids and encoder_lr is None:
                encoder_lr = float(module.model_config.get("encoder_lr", self.config.lr))
            for param in module.parameters():
                if id(param) in seen or not param.requires_grad:
                    continue
                seen.add(id(param))
                (encoder_params if id(param) in encoder_ids else other_params).append(param)
        if owner is None:
            return
        groups: list[dict[str, Any]] = [{"params": other_params, "lr": float(self.config.lr)}]
        if encoder_params:
            groups.append({"params": encoder_params, "lr": encoder_lr})
        optimizer = torch.optim.Adam(groups)
        self.register_optimizer(
            module_id=owner, optimizer=optimizer, params=other_params + encoder_params
        )

    def postprocess_gradients(self, gradients_dict: dict[Any, Any]) -> dict[Any, Any]:
        clip = self.config.grad_clip
        grads = [g for g in gradients_dict.values() if g is not None]
        if clip is not None and grads:
            norm = torch.nn.utils.get_total_norm(grads)
            scale = torch.clamp(clip / (norm + 1e-6), max=1.0)
            for grad in grads:
                grad.mul_(scale)
            self.metrics.log_value("gradients_global_norm", float(norm), window=1)
        return gradients_dict
