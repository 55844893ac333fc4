"""PPO learner for modules sharing one encoder: one optimizer, one step per shared weight.

RLlib's default registers one optimizer per module, which would step a shared encoder once per
module. Here one Adam holds every trainable parameter exactly once, grouped by learning rate:
the encoder at ``encoder_lr`` of the module config, a part named in ``part_lrs`` (the joint
phase's symbol actor at 1e-5) at its rate, the rest at ``lr``. Frozen parameters
(``requires_grad`` off) are left out. Gradients are clipped by global norm over all of them.

The entropy coefficient of each module is its configured value or schedule times a boost that
`set_entropy_boost` changes at run time: the entropy guard's lever (see `trainer`).
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core import ALL_MODULES
from ray.rllib.utils.lambda_defaultdict import LambdaDefaultDict

from multiagent.rllib.module_config import ModuleSettings
from multiagent.rllib.modules import PARTS


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
        # One group per (module, part), whatever the rates: groups keyed by rate merged when
        # two rates happened to be equal (a PBT mutation clipped to a bound), and a donor's
        # optimizer state then no longer fit the recipient's ("different number of parameter
        # groups").
        groups: dict[tuple[str, str], list[torch.nn.Parameter]] = {}
        rates: dict[tuple[str, str], float] = {}
        seen: set[int] = set()
        owner: str | None = None
        for module_id in sorted(self.module.keys()):
            module = self.module[module_id]
            if not self.rl_module_is_compatible(module):
                continue
            if not self.should_module_be_updated(module_id):
                continue  # not in policies_to_train: its gradients stay None
            owner = owner or module_id
            for param, lr, part in self._param_rates(module):
                if id(param) in seen or not param.requires_grad:
                    continue
                seen.add(id(param))
                groups.setdefault((module_id, part), []).append(param)
                rates[(module_id, part)] = lr
        if owner is None:
            return
        params = [p for group in groups.values() for p in group]
        optimizer = torch.optim.Adam(
            [{"params": group, "lr": rates[key]} for key, group in groups.items()]
        )
        self.register_optimizer(module_id=owner, optimizer=optimizer, params=params)

    def registered_optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimizer registered on this learner, each once (`configure_optimizers`
        registers one, under the first module it trains), by RLlib's public
        `get_optimizers_for_module` over the modules (and ``ALL_MODULES``)."""
        found: dict[int, torch.optim.Optimizer] = {}
        for module_id in [*self.module.keys(), ALL_MODULES]:
            for _name, optimizer in self.get_optimizers_for_module(module_id):
                found.setdefault(id(optimizer), optimizer)
        return list(found.values())

    def apply_learning_rates(self) -> None:
        """Set every optimizer group to the rate its parameters are configured for.

        Restoring a checkpoint restores the optimizer's groups with the rates they were saved
        with; a population-based-training exploit restores a donor's checkpoint under a
        mutated config, whose rates must win."""
        rates: dict[int, float] = {}
        for module_id in self.module.keys():  # noqa: SIM118 (a MultiRLModule, not a dict)
            module = self.module[module_id]
            if self.rl_module_is_compatible(module) and self.should_module_be_updated(module_id):
                for param, lr, _ in self._param_rates(module):
                    rates.setdefault(id(param), lr)
        for optimizer in self.registered_optimizers():
            for group in optimizer.param_groups:
                wanted = {rates[id(p)] for p in group["params"] if id(p) in rates}
                if len(wanted) > 1:
                    raise ValueError(
                        f"learning rates {sorted(wanted)} now apply to parameters that share one "
                        "optimizer group (two rates that were equal at the start no longer are)"
                    )
                if wanted:
                    group["lr"] = wanted.pop()

    def _param_rates(self, module: Any) -> list[tuple[torch.nn.Parameter, float, str]]:
        """(parameter, learning rate, part) of every parameter of ``module``: ``lr`` unless the
        module's ``part_lrs`` names its part (`modules.PARTS`); the encoder at ``encoder_lr``;
        parameters outside the parts are part ``"other"``."""
        settings: ModuleSettings = module.settings
        base = float(self.config.lr)
        rates = dict(settings.part_lrs)
        rates.setdefault("encoder", base if settings.encoder_lr is None else settings.encoder_lr)
        out: list[tuple[torch.nn.Parameter, float, str]] = []
        claimed: set[int] = set()
        for part in PARTS:
            child = getattr(module, part, None)
            if not isinstance(child, torch.nn.Module):
                continue
            for param in child.parameters():
                claimed.add(id(param))
                out.append((param, rates.get(part, base), part))
        out += [(p, base, "other") for p in module.parameters() if id(p) not in claimed]
        return out

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
