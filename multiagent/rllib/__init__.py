"""The RLlib adapter: the only package that imports ray.rllib (env wrapper, RLModules,
learners, the AlgorithmConfig builder, callbacks, RLlib checkpoint loading)."""

# Registers our checkpoint folders with evaluation (light: Ray loads only with a policy).
import multiagent.rllib.checkpoints  # noqa: F401
