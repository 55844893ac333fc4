"""An exported TorchScript symbol policy as an MLflow pyfunc model.

`multiagent.rllib.policy.export_torchscript` writes ``policy.pt``, a traced
``(observations (B, D), mask (B, A), state (B, S)) -> (logits, state)`` net, and a
``policy.json`` sidecar (state size, dimensions). `TorchScriptPolicyModel` wraps the file so
``mlflow.pyfunc.load_model("runs:/<run>/policy").predict(observations)`` returns greedy actions.

The pyfunc answers one step from a zero recurrent state with every action allowed: the
stateless question a model registry or a served endpoint can ask. Stepping a recurrent policy
through an episode with the env's action masks is `multiagent.rllib.policy.GreedyPolicy`'s job
(the same ``policy.pt`` sits in the model's ``artifacts/`` folder).

The class is pickled by value (cloudpickle), so loading the model needs mlflow, torch and
numpy but not this package (tested with ``multiagent`` unimportable). So ``requirements.txt``
does not list it: `mlflow models serve` and ``env_manager="virtualenv"`` pip-install every line,
and ``multiagent==X`` resolves on no package index, nor does the editable checkout's path
elsewhere. Which multiagent wrote the model is recorded instead, in the ``MLmodel`` file's
``metadata`` (`provenance`).
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import torch
from mlflow.pyfunc import PythonModel

from multiagent import __version__
from multiagent.errors import ConfigError


class TorchScriptPolicyModel(PythonModel):
    """Greedy actions of a TorchScript policy: argmax of its logits, every action allowed."""

    def load_context(self, context: Any) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 flags torch.jit
            self.net = torch.jit.load(context.artifacts["policy"], map_location="cpu")
        meta = json.loads(Path(context.artifacts["meta"]).read_text())
        self.state_size = int(meta["state_size"])

    def predict(
        self, context: Any, model_input: np.ndarray, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Observations (B, D) float32 -> (B,) int64 actions (called directly, without the
        signature's check, a single (D,) row works too).

        The ``np.ndarray`` hint is one MLflow knows not to infer a schema from; ``Any`` would
        make it warn on every save. A DataFrame works too (it converts to an array)."""
        obs = torch.from_numpy(np.ascontiguousarray(np.atleast_2d(model_input), np.float32))
        rows = obs.shape[0]
        # A (B, 1) mask of ones broadcasts over any action count (torch.where in mask_logits).
        with torch.no_grad():
            logits, _ = self.net(obs, torch.ones(rows, 1), torch.zeros(rows, self.state_size))
        return np.asarray(logits.argmax(dim=-1).numpy(), dtype=np.int64)


def policy_meta(policy_pt: Path, net: torch.jit.ScriptModule) -> dict[str, Any]:
    """The export's sidecar, or (without one) the state size read off the recurrent core's
    weights: GRU ``weight_hh_l0`` is (3H, H) and carries H, LSTM (4H, H) carries h and c."""
    sidecar = policy_pt.with_suffix(".json")
    if sidecar.is_file():
        try:
            meta: dict[str, Any] = json.loads(sidecar.read_text())
            int(meta["state_size"])
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"{sidecar}: not a policy sidecar ({error})") from None
        return meta
    weights = net.state_dict()
    hidden = weights.get("core.weight_hh_l0")
    if hidden is None:
        return {"state_size": 0, "recurrent": "none"}
    gates, size = int(hidden.shape[0]) // int(hidden.shape[1]), int(hidden.shape[1])
    lstm = gates == 4
    return {"state_size": size * (2 if lstm else 1), "recurrent": "lstm" if lstm else "gru"}


def requirements() -> list[str]:
    """Pinned, explicit: MLflow's requirement inference would import and trace the model.
    multiagent is not among them: the model loads without it (module docstring)."""
    return [f"{name}=={metadata.version(name)}" for name in ("torch", "numpy", "cloudpickle")]


def provenance() -> dict[str, str]:
    """The ``MLmodel`` metadata naming the multiagent that wrote the model: a record for the
    reader (which version exported it), not a requirement (see the module docstring)."""
    return {"multiagent_version": __version__}


def save_policy_model(policy_pt: Path, folder: Path) -> Path:
    """Write ``policy_pt`` as a pyfunc model folder at ``folder`` (which must not exist)."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            net = torch.jit.load(str(policy_pt), map_location="cpu")
    except (RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ConfigError(f"{policy_pt}: not a TorchScript policy ({first})") from None
    meta = policy_meta(policy_pt, net)
    signature = example = None
    if meta.get("observation_dim"):
        example = np.zeros((1, int(meta["observation_dim"])), np.float32)
        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, int(meta["observation_dim"])))]),
            outputs=Schema([TensorSpec(np.dtype(np.int64), (-1,))]),
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    meta_file = folder.parent / f"{folder.name}-meta.json"
    meta_file.write_text(json.dumps(meta, indent=2) + "\n")
    import cloudpickle  # type: ignore[import-untyped]

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    # MLflow warns on every save that a pickled model runs code when loaded: true of any
    # pickle, and chosen here; the warning would only repeat itself in every training log.
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    level = pyfunc_log.level
    pyfunc_log.setLevel(logging.ERROR)
    try:
        mlflow.pyfunc.save_model(
            str(folder),
            python_model=TorchScriptPolicyModel(),
            artifacts={"policy": str(policy_pt), "meta": str(meta_file)},
            signature=signature,
            input_example=example,
            pip_requirements=requirements(),
            metadata=provenance(),
        )
    finally:
        cloudpickle.unregister_pickle_by_value(module)
        pyfunc_log.setLevel(level)
    return folder
