"""The RLlib internals this project touches, all in one place.

Everything else in the package and its tests goes through RLlib's public API
(`LearnerGroup.foreach_learner`, `Learner.get_optimizers_for_module`,
`EnvRunnerGroup.foreach_env_runner`, ...). What is here has no public equivalent in Ray 2.60;
each function says which private attribute it reads and why. On a Ray upgrade, this module is
the one to check.
"""

from __future__ import annotations

from typing import Any


def run_learner_connector(learner: Any, episodes: list[Any]) -> dict[str, Any]:
    """The train batch ``learner`` builds from ``episodes``: its learner connector pipeline
    (for PPO: the bootstrap slot, GAE's value targets and advantages) run once, without an
    update, keyed by module id.

    Touches ``Learner._learner_connector``: `Learner.update` runs that pipeline and trains on
    its output in one call, and RLlib 2.60 has no public method that returns the batch it
    builds. (``config.build_learner_connector`` builds a new pipeline, not the one the learner
    runs.) The call mirrors ``Learner._make_batch_if_necessary``.
    """
    connector = learner._learner_connector
    if connector is None:
        raise ValueError(f"{learner} has no learner connector (aggregator actors run it)")
    batch: dict[str, Any] = connector(
        rl_module=learner.module,
        batch={},
        episodes=episodes,
        shared_data={},
        metrics=learner.metrics,
    )
    return batch
