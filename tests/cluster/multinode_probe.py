"""Two simulated Ray nodes in one process; where the symbol PPO's env runners land.

Run by `test_multinode.py` in its own process (and session): `ray.cluster_utils.Cluster`
cannot share a Ray that the test process has already started. The head gets 1 CPU and no
custom resource; the worker gets 2 CPUs and ``rollout: 2``. The run's ``resources`` ask for
2 env runners needing ``{rollout: 1}`` each, so RLlib can only place them on the worker. One
PPO iteration (through `SymbolTrainer`, the pipeline's own route) proves they sample there.

Writes one JSON object to ``--out``: node ids (head, worker, driver, each remote runner), what
`multiagent.rllib.resources` resolved for the fixed and the ``auto`` resource sections, the
iteration's metrics row and timings; on failure, the error and its traceback. Set
``RAY_AUTH_MODE=disabled``, ``RAY_USAGE_STATS_ENABLED=0`` and a short private ``RAY_TMPDIR``
before running it (the test does).

    python tests/cluster/multinode_probe.py --out result.json --work /tmp/probe
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))  # for `support.tiny.tiny_config`

HEAD_CPUS = 1
WORKER_CPUS = 2
ROLLOUT = "rollout"


def runner_node_id(runner: Any) -> str:
    """Runs inside each remote env runner."""
    import ray

    return str(ray.get_runtime_context().get_node_id())


def runner_has_env(runner: Any) -> bool:
    return getattr(runner, "env", None) is not None


def probe(args: argparse.Namespace, record: dict[str, Any]) -> None:
    began = time.perf_counter()
    marks: dict[str, float] = {}
    record["seconds"] = marks

    def mark(name: str) -> None:
        marks[name] = round(time.perf_counter() - began, 2)

    import ray
    import ray.tune.trainable.trainable as trainable
    import torch
    from ray.cluster_utils import Cluster
    from ray.rllib.algorithms.ppo import PPOConfig

    from multiagent.config.phases import ResourceConfig
    from multiagent.rllib.resources import apply_resources, cluster_totals, resolve
    from multiagent.rllib.symbols import SymbolTrainer

    # The tests' tiny run config (tests/ is on sys.path above).
    tiny_config = importlib.import_module("support.tiny").tiny_config
    torch.set_num_threads(1)
    work = Path(args.work)
    # A plain build_algo() makes a folder under ~/ray_results otherwise (docs/ray_notes.md).
    trainable.DEFAULT_STORAGE_PATH = str(work / "ray_results")
    mark("imports")

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": HEAD_CPUS, "include_dashboard": False},
    )
    trainer: SymbolTrainer | None = None
    try:
        worker = cluster.add_node(num_cpus=WORKER_CPUS, resources={ROLLOUT: WORKER_CPUS})
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=args.verbose)
        mark("cluster")
        record["head_node_id"] = cluster.head_node.node_id
        record["worker_node_id"] = worker.node_id
        record["driver_node_id"] = ray.get_runtime_context().get_node_id()
        record["cluster_resources"] = {
            k: v for k, v in ray.cluster_resources().items() if not k.startswith("node:")
        }
        totals = cluster_totals()
        record["cluster_totals"] = [totals.get("CPU", 0.0), totals.get("GPU", 0.0)]
        record["auto_resolved"] = resolve(ResourceConfig(num_env_runners="auto"), totals).as_dict()

        config = tiny_config(
            work,
            resources={
                "num_env_runners": 2,
                "num_envs_per_env_runner": args.envs,
                "custom_resources_per_env_runner": {ROLLOUT: 1},
            },
            iterations=1,
            ppo={"train_batch_size": args.batch, "minibatch_size": args.batch // 2},
        )
        _, resolved = apply_resources(PPOConfig(), config.resources)
        record["resolved"] = resolved.as_dict()

        trainer = SymbolTrainer(config, work / "run")
        algo = trainer.algo
        mark("build")
        record["algo_config"] = {
            "num_env_runners": algo.config.num_env_runners,
            "num_envs_per_env_runner": algo.config.num_envs_per_env_runner,
            "custom_resources_per_env_runner": dict(algo.config.custom_resources_per_env_runner),
            "num_cpus_per_env_runner": algo.config.num_cpus_per_env_runner,
        }
        group = algo.env_runner_group
        record["num_remote_env_runners"] = group.num_remote_env_runners()
        record["runner_node_ids"] = group.foreach_env_runner(runner_node_id, local_env_runner=False)
        record["runners_have_env"] = group.foreach_env_runner(
            runner_has_env, local_env_runner=False
        )
        record["local_runner_has_env"] = runner_has_env(algo.env_runner)

        row = trainer.iterate(evaluate=False)
        mark("iteration")
        record["row"] = {k: v for k, v in row.items() if isinstance(v, (int, float, str))}
        # Still there after sampling: none was lost and replaced elsewhere.
        record["runner_node_ids_after"] = group.foreach_env_runner(
            runner_node_id, local_env_runner=False
        )
        record["healthy_remote_env_runners"] = group.num_healthy_remote_env_runners()
    finally:
        if trainer is not None:
            trainer.stop()
        ray.shutdown()
        cluster.shutdown()
        mark("shutdown")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON written here")
    parser.add_argument("--work", type=Path, required=True, help="runs, cache, ray_results")
    parser.add_argument("--envs", type=int, default=1, help="num_envs_per_env_runner")
    parser.add_argument("--batch", type=int, default=400, help="train batch, env steps")
    parser.add_argument("--verbose", action="store_true", help="Ray worker logs to stderr")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"ok": False}
    try:
        probe(args, record)
        record["ok"] = True
    except BaseException as error:  # reported to the test through the JSON, then re-raised
        record["error"] = f"{type(error).__name__}: {error}"
        record["traceback"] = traceback.format_exc()
        raise
    finally:
        args.out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
