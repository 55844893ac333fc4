"""A tiny symbol policy exported the way training does, for the tracking tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

W, F, EXTRA, A = 4, 5, 15, 3
OBS_DIM = W * F + EXTRA


def export_policy(path: Path, recurrent: str = "none") -> Path:
    """A tiny symbol policy exported the way training does (`export_torchscript`)."""
    import gymnasium as gym
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from multiagent.rllib.modules import SymbolRLModule
    from multiagent.rllib.policy import export_torchscript

    torch.manual_seed(0)
    space = gym.spaces.Dict(
        {
            "observations": gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32),
            "action_mask": gym.spaces.Box(0, 1, (A,), np.int8),
        }
    )
    module = RLModuleSpec(
        module_class=SymbolRLModule,
        observation_space=space,
        action_space=gym.spaces.Discrete(A),
        model_config={
            "window": W,
            "n_features": F,
            "encoder": {"hidden": 8, "embedding": 6, "layers": 2},
            "hidden": [16],
            "recurrent": recurrent,
            "recurrent_size": 7,
        },
    ).build()
    example = np.random.default_rng(0).standard_normal((6, OBS_DIM)).astype(np.float32)
    return export_torchscript(module, path, example)
