"""Curricula for RL training: stage-based (symbol universes), difficulty-based (quantiles of
volatility and a difficulty score, balanced or worst-first sampling) and cost-level.

`config` is the YAML schema (``curricula/*.yaml``), `scoring` orders the training views and
resolves a stage into views, `schedule.Curriculum` is the stage state machine. No Ray here: the
RLlib callback that drives it lives in `multiagent.rllib.curriculum`.
"""

from typing import TYPE_CHECKING

from multiagent.lazy import lazy_exports

if TYPE_CHECKING:
    from multiagent.curriculum.config import CurriculumConfig, StageConfig, load_curriculum
    from multiagent.curriculum.schedule import Curriculum, Transition
    from multiagent.curriculum.scoring import difficulty_scores, liquidity_ranking, select_stage

__getattr__ = lazy_exports(
    __name__,
    {
        "CurriculumConfig": "config",
        "StageConfig": "config",
        "load_curriculum": "config",
        "Curriculum": "schedule",
        "Transition": "schedule",
        "difficulty_scores": "scoring",
        "liquidity_ranking": "scoring",
        "select_stage": "scoring",
    },
)

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
