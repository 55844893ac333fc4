"""A readable copy of Tune's experiment state, so a driver killed mid-write still resumes.

Tune snapshots the experiment (`experiment_state-<time>.json`, what `Tuner.restore` reads) by
writing the file in place and copying it into the experiment folder. A driver killed by SIGKILL
during that write or copy leaves the newest snapshot empty or cut short; Tune then restores
from nothing and reruns trials from scratch (seen once in CI: a resumed sweep restarted trial
1). `StateBackup` keeps the last snapshot that parsed as JSON next to Tune's (written
atomically, so the copy itself cannot be cut short), and `repair_state` puts it back in place
of a broken newest snapshot before a resume. The backup is at most one controller step older
than the snapshot it replaces, and trials keep their last 3 checkpoints, so the checkpoints it
names still exist.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ray import tune

from multiagent.runs.folders import write_atomic

log = logging.getLogger(__name__)
BACKUP = ".experiment_state_backup.json"


def newest_state(experiment: Path) -> Path | None:
    """The snapshot `Tuner.restore` reads: Tune takes the lexically largest name."""
    found = sorted(experiment.glob("experiment_state-*.json"))
    return found[-1] if found else None


def _readable(path: Path) -> str | None:
    try:
        text = path.read_text()
        json.loads(text)
    except (OSError, ValueError):
        return None
    return text


def backup_state(experiment: Path) -> bool:
    """Copy the newest snapshot to the backup when it parses; -> whether it did."""
    newest = newest_state(experiment)
    text = None if newest is None else _readable(newest)
    if text is None:
        return False
    write_atomic(experiment / BACKUP, text)
    return True


def repair_state(experiment: Path) -> bool:
    """Replace a newest snapshot that does not parse with the backup; -> whether it did."""
    newest = newest_state(experiment)
    if newest is None or _readable(newest) is not None:
        return False
    backup = _readable(experiment / BACKUP)
    if backup is None:
        return False
    log.warning("%s was cut short (a killed driver); resuming from the last good copy", newest)
    write_atomic(newest, backup)
    return True


class StateBackup(tune.Callback):
    """Back up Tune's experiment snapshot after every controller step that changed it (see the
    module)."""

    def __init__(self, experiment: Path) -> None:
        self.experiment = experiment
        self._seen: tuple[str, int, int] | None = None

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        newest = newest_state(self.experiment)
        if newest is None:
            return
        try:
            stat = newest.stat()
        except OSError:
            return
        seen = (newest.name, stat.st_mtime_ns, stat.st_size)
        if seen != self._seen and backup_state(self.experiment):
            self._seen = seen
