"""Best-effort MLflow tracking of training runs and sweeps, and the comparison of runs.

`Tracker` logs one run and never fails the training it tracks; `records` shapes configs and
results into what MLflow accepts, and `run_tags` records what a run needs to be reproduced;
`compare` lines runs up side by side (``multiagent compare``); `model` turns an exported
policy into an MLflow model.
"""

from multiagent.tracking.records import flatten, run_tags
from multiagent.tracking.tracker import Tracker, default_tracking_uri, reachable

__all__ = ["Tracker", "default_tracking_uri", "flatten", "reachable", "run_tags"]
