"""Sampling throughput of the real env with 0, 1 and 2 remote env runners on this machine.

The `quick` preset (bundled S&P 500 data) through the pipeline's own RLlib config
(`build_ppo_config`, as `SymbolTrainer` builds it), with only ``resources.num_env_runners``
and ``num_envs_per_env_runner`` changed. For each runner count, after one warm-up
iteration:

- end to end: ``algo.train()`` (sampling + GAE + PPO updates in the driver), env steps/s from
  the deltas of ``num_env_steps_sampled_lifetime``;
- sampling: ``EnvRunner.sample(num_timesteps=--steps)`` alone (after one untimed call); with
  0 runners on the driver's local runner, otherwise on every remote runner at once
  (``foreach_env_runner``). Env and agent steps are counted from the returned episodes (a
  call returns at least ``--steps`` per runner).

Each figure is the median of ``--repeats`` rounds; ``x`` is the ratio to the table's first
row. Remote runners each take one Ray CPU;
the driver (learner) takes none, so on 2 cores 2 runners share the machine with the learner.

    python scripts/bench_sampling.py                          # 0 1 2 runners, 4 envs each
    python scripts/bench_sampling.py --runners 0 2 --envs 8 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
import ray.tune.trainable.trainable as trainable
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from rich.console import Console
from rich.table import Table

from multiagent.config import RunConfig, load_preset
from multiagent.rllib.algo import build_ppo_config
from multiagent.rllib.env import SymbolAgentsEnv, market_for


def run_config(args: argparse.Namespace, runners: int) -> RunConfig:
    payload = load_preset(args.preset).model_dump(mode="json")
    payload["resources"] = {
        **payload["resources"],
        "num_env_runners": runners,
        "num_envs_per_env_runner": args.envs,
        "num_gpus_per_learner": args.learner_gpus,
    }
    if args.cache_dir is not None:
        payload["cache_dir"] = args.cache_dir
    return RunConfig.model_validate(payload)


def episode_counts(episodes: list[Any]) -> tuple[int, int]:
    """(env steps, agent steps) in the sampled episode chunks."""
    env_steps = sum(int(e.env_steps()) for e in episodes)
    agent_steps = sum(int(e.agent_steps()) for e in episodes)
    return env_steps, agent_steps


def sample_on(runner: Any, steps: int) -> tuple[int, int]:
    """Runs in the env runner: sample, and ship back the counts only."""
    return episode_counts(runner.sample(num_timesteps=steps, explore=True))


def time_sampling(algo: Algorithm, runners: int, steps: int) -> dict[str, float]:
    began = time.perf_counter()
    if runners == 0:
        counts = [sample_on(algo.env_runner, steps)]
    else:
        counts = algo.env_runner_group.foreach_env_runner(
            lambda runner: sample_on(runner, steps), local_env_runner=False
        )
        if len(counts) != runners:
            raise RuntimeError(f"{len(counts)} of {runners} env runners answered")
    seconds = time.perf_counter() - began
    env_steps = sum(c[0] for c in counts)
    agent_steps = sum(c[1] for c in counts)
    return {
        "seconds": seconds,
        "env_steps": env_steps,
        "env_steps_per_s": env_steps / seconds,
        "agent_steps_per_s": agent_steps / seconds,
    }


def lifetime(result: dict[str, Any], key: str) -> float:
    value = result["env_runners"][key]
    return float(sum(value.values())) if isinstance(value, dict) else float(value)


def time_iteration(algo: Algorithm, before: dict[str, Any]) -> tuple[dict[str, float], Any]:
    began = time.perf_counter()
    result = algo.train()
    seconds = time.perf_counter() - began
    env_steps = lifetime(result, "num_env_steps_sampled_lifetime") - lifetime(
        before, "num_env_steps_sampled_lifetime"
    )
    agent_steps = lifetime(result, "num_agent_steps_sampled_lifetime") - lifetime(
        before, "num_agent_steps_sampled_lifetime"
    )
    return {
        "seconds": seconds,
        "env_steps": env_steps,
        "env_steps_per_s": env_steps / seconds,
        "agent_steps_per_s": agent_steps / seconds,
    }, result


def median(rounds: list[dict[str, float]], key: str) -> float:
    return float(statistics.median(r[key] for r in rounds))


def measure(args: argparse.Namespace, runners: int) -> dict[str, Any]:
    config = run_config(args, runners)
    market, prepared = market_for(config)
    env = SymbolAgentsEnv(market, prepared.train_views, config.env)
    ppo = build_ppo_config(config, env.observation_space, env.action_space, market.n_features)
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    algo = ppo.build_algo()
    build_s = time.perf_counter() - began
    try:
        result = algo.train()  # warm-up: module build, connectors, first episodes
        # Iterations first: steps sampled outside train() would count in the next result's
        # lifetime figures.
        training = []
        for _ in range(args.repeats):
            row, result = time_iteration(algo, result)
            training.append(row)
        time_sampling(algo, runners, args.steps)  # warm-up: the first call after train()
        sampling = [time_sampling(algo, runners, args.steps) for _ in range(args.repeats)]
    finally:
        algo.stop()
    return {
        "runners": runners,
        "envs_per_runner": args.envs,
        "symbol_agents": config.env.n_symbols,
        "num_gpus_per_learner": float(ppo.num_gpus_per_learner),
        "build_s": build_s,
        "sample_env_steps_per_s": median(sampling, "env_steps_per_s"),
        "sample_agent_steps_per_s": median(sampling, "agent_steps_per_s"),
        "sample_env_steps_per_call": median(sampling, "env_steps"),
        "train_env_steps_per_s": median(training, "env_steps_per_s"),
        "train_agent_steps_per_s": median(training, "agent_steps_per_s"),
        "train_s_per_iteration": median(training, "seconds"),
        "load_1min_before": load_before,
        "load_1min_after": os.getloadavg()[0],
        "sampling_rounds": sampling,
        "training_rounds": training,
    }


def table(rows: list[dict[str, Any]], args: argparse.Namespace, batch: int) -> Table:
    out = Table(
        title=f"{args.preset} preset, {args.envs} envs per runner, sample() of {args.steps} "
        f"env steps per runner, train batch {batch} env steps, median of {args.repeats}"
    )
    columns = (
        "runners",
        "build s",
        "sample env/s",
        "agent/s",
        "x",
        "train env/s",
        "agent/s",
        "x",
        "s/iter",
    )
    for column in columns:
        out.add_column(column, justify="right")
    base = rows[0]
    for row in rows:
        out.add_row(
            str(row["runners"]),
            f"{row['build_s']:.1f}",
            f"{row['sample_env_steps_per_s']:,.0f}",
            f"{row['sample_agent_steps_per_s']:,.0f}",
            f"{row['sample_env_steps_per_s'] / base['sample_env_steps_per_s']:.2f}",
            f"{row['train_env_steps_per_s']:,.0f}",
            f"{row['train_agent_steps_per_s']:,.0f}",
            f"{row['train_env_steps_per_s'] / base['train_env_steps_per_s']:.2f}",
            f"{row['train_s_per_iteration']:.2f}",
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runners", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--envs", type=int, default=4, help="num_envs_per_env_runner")
    parser.add_argument("--steps", type=int, default=1000, help="env steps per sample() call")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the median is shown")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--cache-dir", default=None, help="feature cache (default: the usual)")
    parser.add_argument(
        "--learner-gpus",
        default="auto",
        type=lambda v: v if v == "auto" else float(v),
        help="num_gpus_per_learner: auto (a GPU when there is one), 0 or 1",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    too_many = [n for n in args.runners if n > args.cpus]
    if too_many:
        parser.error(f"--runners {too_many} need more than --cpus {args.cpus} (1 CPU each)")
    if min(args.runners) < 0 or args.repeats < 1 or args.steps < 1 or args.envs < 1:
        parser.error("--runners must be >= 0; --repeats, --steps and --envs >= 1")

    torch.set_num_threads(1)
    trainable.DEFAULT_STORAGE_PATH = tempfile.mkdtemp(prefix="bench_sampling_")
    from multiagent.rllib.ray_session import start_local_ray

    start_local_ray(args.cpus, log_to_driver=False)
    gpus = ray.cluster_resources().get("GPU", 0.0)
    console = Console(stderr=True)
    rows = []
    try:
        for runners in args.runners:
            with console.status(f"{runners} remote env runners..."):
                rows.append(measure(args, runners))
    finally:
        ray.shutdown()
    batch = load_preset(args.preset).symbols.ppo.train_batch_size
    Console(width=max(Console().width, 120)).print(table(rows, args, batch))
    if args.json:
        machine = {"cpu_count": os.cpu_count(), "ray_cpus": args.cpus, "gpus": gpus}
        settings = vars(args) | {"json": None, "train_batch_size": batch}
        args.json.write_text(
            json.dumps({"settings": settings, "machine": machine, "rows": rows}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
