"""Tuning job: a Tune sweep (`multiagent tune`) on a Ray cluster.

    ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        --runtime-env scripts/runtime_env.yaml -- python scripts/tune_job.py \\
        --config tune_configs/symbols_pbt.yaml

Arguments are those of `multiagent tune`; the sweep folder and the exported best config go under
$MULTIAGENT_RUNS_DIR (default ~/multiagent/runs) unless --out/--best-dir say otherwise. After a
dead driver, submit the same command with --resume.
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
    sys.exit(run_job("tune", sys.argv[1:]))
