"""The trained master outside RLlib: a greedy allocator over an exported TorchScript net.

Evaluation and deployment run the master without Ray: `multiagent.rllib.policy` traces the
actor of `MasterRLModule` (``(obs (B, M), market (B, N*W*F)) -> logits (B, N*L + 3)``) to a
file next to a ``.json`` sidecar, and this module reads both with torch alone. torch is imported
lazily, like `policies.GreedyNetPolicy`, so importing the evaluation package stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from multiagent.errors import ConfigError
from multiagent.evaluation.policies import load_torchscript

MASTER_FORMAT = "multiagent.master/1"


class MasterNetPolicy:
    """The most likely budget level of every slot and the most likely risk mode.

    ``net`` maps ``(obs (R, M), market (R, N*W*F)) -> logits (R, sum(nvec))``: an exported
    TorchScript file or `multiagent.rllib.policy.MasterInference` over an RLModule. Greedy per
    head, so the same inputs always give the same allocation (a fair comparison of systems).
    """

    def __init__(
        self,
        net: object,
        nvec: Sequence[int],
        name: str = "master",
        *,
        observation_dim: int | None = None,
        market_dim: int | None = None,
    ) -> None:
        import torch

        self.torch = torch
        self.net = net
        self.nvec = [int(n) for n in nvec]
        self.name = name
        self.observation_dim = observation_dim
        self.market_dim = market_dim

    def check(self, observation_dim: int, market_dim: int, nvec: Sequence[int]) -> None:
        """Raise `ConfigError` listing every shape the env disagrees on: a master trained on
        another universe, window or budget grid would otherwise fail deep inside torch, or,
        worse, silently read a reshaped market."""
        problems = []
        if self.observation_dim is not None and self.observation_dim != observation_dim:
            problems.append(
                f"observations of {self.observation_dim} values, the env gives {observation_dim}"
            )
        if self.market_dim is not None and self.market_dim != market_dim:
            problems.append(
                f"market windows of {self.market_dim} values, the env gives {market_dim}"
            )
        wanted = [int(n) for n in nvec]
        if self.nvec != wanted:
            problems.append(f"actions {self.nvec}, the env's master action is {wanted}")
        if problems:
            raise ConfigError(
                f"master {self.name!r} does not fit this run config: it expects "
                + " and ".join(problems)
                + " (evaluate with the config the master was trained with)"
            )

    def decide(self, observations: np.ndarray, market: np.ndarray) -> np.ndarray:
        """(R, M) master observations and (R, N*W*F) windows -> (R, N + 1) int64 actions."""
        torch = self.torch
        with torch.no_grad():
            logits = self.net(  # type: ignore[operator]
                torch.from_numpy(np.ascontiguousarray(observations, np.float32)),
                torch.from_numpy(np.ascontiguousarray(market, np.float32)),
            )
        heads = torch.split(logits, self.nvec, dim=-1)
        return torch.stack([head.argmax(dim=-1) for head in heads], dim=-1).numpy().astype(np.int64)

    def act(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """One env's `master_inputs` -> its action (stepping an env by hand)."""
        return self.decide(inputs["obs"][None], inputs["market"][None])[0]

    @classmethod
    def load(cls, path: str | Path, name: str = "master") -> MasterNetPolicy:
        """A master written by `multiagent.rllib.policy.export_master_torchscript` (+ its .json)."""
        import json

        sidecar = Path(path).with_suffix(".json")
        try:
            meta = json.loads(sidecar.read_text())
            if meta.get("format") != MASTER_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {MASTER_FORMAT!r}")
            nvec = [int(n) for n in meta["nvec"]]
            observation_dim = int(meta["observation_dim"])
            market_dim = int(meta["market_dim"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ConfigError(
                f"{sidecar}: not a master sidecar ({type(error).__name__}: {error}); it is "
                "written by the master export next to the .pt file"
            ) from None
        net = load_torchscript(path, "master")
        return cls(net, nvec, name, observation_dim=observation_dim, market_dim=market_dim)
