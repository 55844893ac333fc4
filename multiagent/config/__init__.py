"""Typed, validated configuration; YAML files are data for these models.

`load_config` rejects unknown keys and wrong types with one message per problem naming the file,
the dotted key and what was expected.
"""

from multiagent.config.loading import PRESETS, load_config, load_preset, with_curriculum_file
from multiagent.config.run import DataConfig, EpisodeConfig, RunConfig, SelectionRecord
from multiagent.schema import load_yaml, validate_mapping

__all__ = [
    "PRESETS",
    "DataConfig",
    "EpisodeConfig",
    "RunConfig",
    "SelectionRecord",
    "load_config",
    "load_preset",
    "load_yaml",
    "validate_mapping",
    "with_curriculum_file",
]
