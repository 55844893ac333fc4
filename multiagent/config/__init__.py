"""Typed, validated configuration; YAML files are data for these models.

`load_config` rejects unknown keys and wrong types with one message per problem naming the file,
the dotted key and what was expected.
"""

from typing import TYPE_CHECKING

from multiagent.lazy import lazy_exports

if TYPE_CHECKING:
    from multiagent.config.loading import PRESETS, load_config, load_preset, with_curriculum_file
    from multiagent.config.run import DataConfig, EpisodeConfig, RunConfig, SelectionRecord
    from multiagent.schema import load_yaml, validate_mapping

__getattr__ = lazy_exports(
    __name__,
    {
        "PRESETS": "loading",
        "load_config": "loading",
        "load_preset": "loading",
        "with_curriculum_file": "loading",
        "DataConfig": "run",
        "EpisodeConfig": "run",
        "RunConfig": "run",
        "SelectionRecord": "run",
        "load_yaml": "multiagent.schema",
        "validate_mapping": "multiagent.schema",
    },
)

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
