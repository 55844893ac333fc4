"""An algorithm's learner, read through RLlib's public API."""

from __future__ import annotations

from typing import Any


def local_learner(algo: Any) -> Any:
    """The in-process Learner of ``algo`` (``num_learners=0``, as in the tiny runs).

    `LearnerGroup.foreach_learner` calls a local learner's function in this process and
    returns its result, so the identity function hands back the live Learner: its modules,
    optimizers (`get_optimizers_for_module`) and config, the objects training updates."""
    group = algo.learner_group
    assert group.is_local, "a remote learner lives in another process: use foreach_learner"
    (result,) = group.foreach_learner(lambda learner: learner)
    return result.get()
