"""Best-effort MLflow tracking of training runs, sweeps and evaluations; comparing runs.

`stores` decides where a job logs (`resolve_tracking_uri`, the one precedence) and which run
is its own (run records); `Tracker` is the lifecycle every job follows (`attach_or_start`,
`nested`, `finish`) and never fails the work it tracks; `records` shapes configs and results
into what MLflow accepts, and `run_tags` records what a run needs to be reproduced; `compare`
lines runs up side by side (``multiagent compare``); `model` turns an exported policy into an
MLflow model.
"""

from multiagent.tracking.client import reachable
from multiagent.tracking.records import flatten, run_tags
from multiagent.tracking.stores import (
    OFF,
    default_tracking_uri,
    read_run_record,
    recorded_run_id,
    relocated_uri,
    resolve_tracking_uri,
)
from multiagent.tracking.tracker import Tracker, end_status

__all__ = [
    "OFF",
    "Tracker",
    "default_tracking_uri",
    "end_status",
    "flatten",
    "reachable",
    "read_run_record",
    "recorded_run_id",
    "relocated_uri",
    "resolve_tracking_uri",
    "run_tags",
]
