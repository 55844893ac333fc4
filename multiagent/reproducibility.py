"""What a seed cannot fix from inside Python, and the switches that make training repeatable.

RLlib orders agents through Python sets of their string ids (``MultiAgentEpisode.agent_ids``,
``get_agents_to_act``) when it batches observations and samples actions. String hashes are
salted per process unless ``PYTHONHASHSEED`` is fixed before the interpreter starts, so two runs
with the same seed hand the same random numbers to different agents and drift apart from the
first batch (measured: PPO ``reward_mean`` 10.54 vs 5.04 at iteration 1). No seed set inside
the process can repair that, hence `pin_hash_seed`: the ``multiagent`` command re-executes
itself once with the variable fixed, before anything heavy is imported. Ray workers started
by that process inherit it.

Everything else is seeded from the run's ``seed``: RLlib (``debugging(seed=...)`` seeds Python,
numpy and torch in each env runner and the learner, and each env's episode sampler through its
first reset), the market generator and pretraining. See ``docs/reproducibility.md``.
"""

from __future__ import annotations

import logging
import os
import sys

HASH_SEED_VARIABLE = "PYTHONHASHSEED"
PINNED_HASH_SEED = "0"

logger = logging.getLogger(__name__)
_warned = False


def hash_seed_fixed() -> bool:
    """Whether this process was started with a fixed string-hash seed (not ``random``)."""
    value = os.environ.get(HASH_SEED_VARIABLE, "")
    return value.isdigit()


def pin_hash_seed() -> None:
    """Re-execute this process, with its exact command line, under ``PYTHONHASHSEED=0`` unless
    the variable is already set (a user's own value, ``random`` included, is kept)."""
    if os.environ.get(HASH_SEED_VARIABLE) is not None:
        return
    os.environ[HASH_SEED_VARIABLE] = PINNED_HASH_SEED
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def warn_if_unpinned() -> None:
    """Say once per process that two trainings with the same seed will differ."""
    global _warned
    if _warned or hash_seed_fixed():
        return
    _warned = True
    logger.warning(
        "%s is not set to a number in this process: RLlib batches agents in set order, so two "
        "trainings with the same seed will differ. The `multiagent` command sets it; from "
        "Python, start the interpreter with %s=0 to make runs repeatable.",
        HASH_SEED_VARIABLE,
        HASH_SEED_VARIABLE,
    )


def deterministic_torch() -> None:
    """Torch's deterministic kernels (free on CPU: its CPU kernels already are, given the same
    thread count; on GPU a few ops get slower). ``warn_only``: an op without a deterministic
    kernel warns instead of stopping a training run."""
    import torch

    torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
