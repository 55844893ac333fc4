"""Evaluation job: walk-forward backtests and reports (`multiagent evaluate`) on a Ray cluster.

    ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        --runtime-env scripts/runtime_env.yaml -- python scripts/evaluate_job.py \\
        --checkpoint ~/multiagent/runs/quick

Arguments are those of `multiagent evaluate`; give absolute run paths (the job's working
directory is a temporary copy).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Submitted with --working-dir, the package travels as source: import it from there when the
# cluster's environment does not have it installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from multiagent.jobs import run_job
from multiagent.reproducibility import pin_hash_seed

if __name__ == "__main__":
    pin_hash_seed()  # first: it re-executes this driver once (multiagent.reproducibility)
    sys.exit(run_job("evaluate", sys.argv[1:]))
