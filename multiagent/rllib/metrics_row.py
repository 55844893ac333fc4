"""One ``metrics.jsonl`` row per training iteration, flattened from RLlib's nested result."""

from __future__ import annotations

from typing import Any

import numpy as np

from multiagent.rllib.callbacks import MASTER_TELEMETRY_PREFIXES, TELEMETRY, TELEMETRY_KEYS
from multiagent.rllib.checkpoints import SYMBOL_MODULE, SYMBOL_VECTOR_MODULE
from multiagent.rllib.curriculum import RESULT_KEYS as CURRICULUM_KEYS

LEARNER_KEYS = {
    "policy_entropy": "entropy",
    "entropy_coeff": "curr_entropy_coeff",
    "policy_loss": "policy_loss",
    "vf_loss": "vf_loss",
    "vf_explained_var": "vf_explained_var",
    "kl": "mean_kl_loss",
}


def flat_result(
    result: dict[str, Any], iteration: int, seconds: float, modules: tuple[str, ...]
) -> dict[str, Any]:
    """One metrics row: the symbol module's learner figures unprefixed, others' prefixed."""
    runners = result.get("env_runners", {})
    row: dict[str, Any] = {
        "iteration": iteration,
        "seconds": seconds,
        "env_steps": runners.get("num_env_steps_sampled_lifetime", 0),
        "agent_steps": runners.get("num_agent_steps_sampled_lifetime", {}),
        "episodes": runners.get("num_episodes_lifetime", 0),
        "reward_mean": runners.get("episode_return_mean", float("nan")),
    }
    for module_id in modules:
        learner = result.get("learners", {}).get(module_id, {})
        prefix = "" if module_id in (SYMBOL_MODULE, SYMBOL_VECTOR_MODULE) else f"{module_id}_"
        for key, source in LEARNER_KEYS.items():
            row[prefix + key] = learner.get(source, float("nan"))
    module_returns = runners.get("module_episode_returns_mean", {})
    for module_id in modules:
        if module_id not in (SYMBOL_MODULE, SYMBOL_VECTOR_MODULE) and module_id in module_returns:
            row[f"{module_id}_reward_mean"] = module_returns[module_id]
    for key in CURRICULUM_KEYS:
        if key in result:
            row[key] = result[key]
    telemetry = runners.get(TELEMETRY, {})
    for key in TELEMETRY_KEYS:  # NaN when no episode ended during the iteration
        row[key] = telemetry.get(key, float("nan"))
    for key in sorted(telemetry):  # the master's (phases 3 and 4)
        if key.startswith(MASTER_TELEMETRY_PREFIXES):
            row[key] = telemetry[key]
    if isinstance(row["agent_steps"], dict):
        row["agent_steps"] = float(sum(row["agent_steps"].values()))
    return {
        k: (float(v) if isinstance(v, (np.floating, np.integer)) else v) for k, v in row.items()
    }
