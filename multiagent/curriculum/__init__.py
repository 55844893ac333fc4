"""Curricula for RL training: stage-based (symbol universes), difficulty-based (quantiles of
volatility and a difficulty score, balanced or worst-first sampling) and cost-level.

`config` is the YAML schema (``curricula/*.yaml``), `scoring` orders the training views and
resolves a stage into views, `schedule.Curriculum` is the stage state machine. No Ray here: the
RLlib callback that drives it lives in `multiagent.rllib.curriculum`.
"""

from multiagent.curriculum.config import CurriculumConfig, StageConfig, load_curriculum
from multiagent.curriculum.schedule import Curriculum, Transition
from multiagent.curriculum.scoring import difficulty_scores, liquidity_ranking, select_stage

__all__ = [
    "Curriculum",
    "CurriculumConfig",
    "StageConfig",
    "Transition",
    "difficulty_scores",
    "liquidity_ranking",
    "load_curriculum",
    "select_stage",
]
