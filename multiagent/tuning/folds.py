"""Walk-forward folds nested inside train + validation: a sweep's objective never sees test.

With ``k`` folds the validation window is cut into ``k`` consecutive slices; fold ``i`` trains on
everything before slice ``i`` (less the purge gap) and is scored on slice ``i``. Every fold's
config is sealed (`RunConfig.seal_test`), so its data ends with its own validation slice: no
fold can see a later bar, let alone the outer test period.
"""

from __future__ import annotations

from multiagent.config import RunConfig
from multiagent.data.splits import chronological_split
from multiagent.errors import ConfigError

MIN_FOLD_BARS = 20


def fold_configs(config: RunConfig, n_bars: int, folds: int) -> list[RunConfig]:
    """The sealed run config of each fold (one fold: the config itself, sealed)."""
    sealed = config.model_copy(update={"seal_test": True})
    if folds == 1:
        return [sealed]
    outer = chronological_split(n_bars, config.split)
    length = len(outer.validation) // folds
    if length < MIN_FOLD_BARS:
        raise ConfigError(
            f"folds: {folds} folds cut the {len(outer.validation)}-bar validation window into "
            f"slices of {length} bars; each needs at least {MIN_FOLD_BARS} (use fewer folds)"
        )
    out = []
    for fold in range(folds):
        train_stop = outer.train.stop + fold * length
        # Fractions chosen so that int(n_bars * fraction) is exactly the bar count wanted.
        split = config.split.model_copy(
            update={"train": (train_stop + 0.5) / n_bars, "validation": (length + 0.5) / n_bars}
        )
        out.append(sealed.model_copy(update={"split": split}))
    return out
