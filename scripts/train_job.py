"""Training job: the whole pipeline (`multiagent train pipeline`) on a Ray cluster.

    ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        --runtime-env scripts/runtime_env.yaml -- python scripts/train_job.py --preset quick

Arguments are those of `multiagent train pipeline` (--config, --preset, --resume, --overwrite,
--tracking-uri, ...). Without --run-dir/--resume/--runs-dir the run is written under
$MULTIAGENT_RUNS_DIR (default ~/multiagent/runs on the node running the driver): the job's
working directory is a temporary copy Ray deletes.
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
    sys.exit(run_job("train", sys.argv[1:]))
