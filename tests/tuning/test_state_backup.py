"""The experiment-state backup: a snapshot cut short by a killed driver is replaced by the last
readable one before a resume (`multiagent.tuning.state_backup`)."""

from __future__ import annotations

import json
from pathlib import Path

from multiagent.tuning.state_backup import (
    BACKUP,
    StateBackup,
    backup_state,
    newest_state,
    repair_state,
)


def snapshot(experiment: Path, stamp: str, payload: object) -> Path:
    path = experiment / f"experiment_state-{stamp}.json"
    path.write_text(json.dumps(payload))
    return path


def test_a_cut_short_snapshot_is_replaced_by_the_last_readable_one(tmp_path: Path) -> None:
    assert newest_state(tmp_path) is None and not backup_state(tmp_path)
    snapshot(tmp_path, "2026-12-06_10-00-00", {"step": 1})
    newest = snapshot(tmp_path, "2026-12-06_10-00-05", {"step": 2})
    assert newest_state(tmp_path) == newest
    StateBackup(tmp_path).on_step_end(iteration=2, trials=[])
    assert json.loads((tmp_path / BACKUP).read_text()) == {"step": 2}
    assert not repair_state(tmp_path)  # a readable snapshot is left alone

    newest.write_text('{"step": 3, "trial_da')  # SIGKILL mid-write
    assert not backup_state(tmp_path)  # the backup keeps the last good one
    assert repair_state(tmp_path)
    assert json.loads(newest.read_text()) == {"step": 2}

    newest.write_text("")  # an empty file, as seen in CI
    assert repair_state(tmp_path)
    assert json.loads(newest.read_text()) == {"step": 2}


def test_without_a_backup_nothing_is_touched(tmp_path: Path) -> None:
    newest = snapshot(tmp_path, "2026-12-06_10-00-00", {"step": 1})
    newest.write_text("")
    assert not repair_state(tmp_path)
    assert newest.read_text() == ""


def test_the_callback_copies_a_snapshot_once_per_change(tmp_path: Path) -> None:
    callback = StateBackup(tmp_path)
    callback.on_step_end(iteration=0, trials=[])  # no snapshot yet
    newest = snapshot(tmp_path, "2026-12-06_10-00-00", {"step": 1})
    callback.on_step_end(iteration=1, trials=[])
    (tmp_path / BACKUP).unlink()
    callback.on_step_end(iteration=2, trials=[])  # unchanged: not copied again
    assert not (tmp_path / BACKUP).exists()
    newest.write_text(json.dumps({"step": 2, "more": "data"}))
    callback.on_step_end(iteration=3, trials=[])
    assert json.loads((tmp_path / BACKUP).read_text())["step"] == 2
