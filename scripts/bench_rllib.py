"""RLlib throughput of the hierarchical env's symbol agents next to PPO on CartPole-v1.

Same machine, same run, same settings for every env: PPO on the new API stack, sampling in the
driver process (0 remote env runners) with ``--envs`` vectorized envs, the same train batch
(env steps per iteration), minibatch and epochs. Reported:

- sampling: ``EnvRunner.sample()`` alone, in agent steps/s (CartPole: env steps/s; one agent);
- end to end: ``algo.train()`` (sampling + GAE + PPO updates), agent steps/s;
- ratio: ours / CartPole. 1.0 means a symbol agent costs RLlib what a CartPole step costs.

    python scripts/bench_rllib.py                 # 8 and 30 symbols, CartPole
    python scripts/bench_rllib.py --quick --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
import ray.tune.trainable.trainable as trainable
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from rich.console import Console
from rich.table import Table

from multiagent.config import RunConfig
from multiagent.rllib.algo import build_ppo_config
from multiagent.rllib.env import SymbolAgentsEnv, market_for


def symbol_config(n_symbols: int, args: argparse.Namespace) -> RunConfig:
    return RunConfig.model_validate(
        {
            "data": {"synthetic": {"n_symbols": n_symbols, "n_bars": 1500, "seed": 0}},
            "episodes": {"length": 250},
            "env": {"n_symbols": n_symbols},
            "cache_dir": args.cache_dir,
            "resources": {"num_env_runners": 0, "num_envs_per_env_runner": args.envs},
            "symbols": {
                "policy": {"encoder": "scratch"},
                "ppo": {
                    "train_batch_size": args.batch,
                    "minibatch_size": args.minibatch,
                    "num_epochs": args.epochs,
                },
            },
        }
    )


def cartpole(args: argparse.Namespace) -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=args.envs)
        .training(
            train_batch_size_per_learner=args.batch,
            minibatch_size=args.minibatch,
            num_epochs=args.epochs,
        )
        .debugging(seed=0)
    )


def agent_steps(episodes: list[Any]) -> int:
    total = 0
    for episode in episodes:
        counted = getattr(episode, "agent_steps", None)
        total += int(counted()) if callable(counted) else len(episode)
    return total


def measure(name: str, config: PPOConfig, args: argparse.Namespace) -> dict[str, Any]:
    algo = config.build_algo()
    try:
        algo.train()  # warm-up: module build, connectors, first episodes
        runner = algo.env_runner
        steps, began = 0, time.perf_counter()
        for _ in range(args.sample_rounds):
            steps += agent_steps(runner.sample(num_timesteps=args.batch, explore=True))
        sample_rate = steps / (time.perf_counter() - began)
        before = _agent_steps_lifetime(algo.train())
        began = time.perf_counter()
        for _ in range(args.iterations):
            result = algo.train()
        seconds = time.perf_counter() - began
        trained = _agent_steps_lifetime(result) - before
    finally:
        algo.stop()
    return {
        "name": name,
        "sample_agent_steps_per_s": sample_rate,
        "train_agent_steps_per_s": trained / seconds,
        "train_seconds_per_iteration": seconds / args.iterations,
    }


def _agent_steps_lifetime(result: dict[str, Any]) -> float:
    value = result["env_runners"]["num_agent_steps_sampled_lifetime"]
    return float(sum(value.values())) if isinstance(value, dict) else float(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[8, 30])
    parser.add_argument("--envs", type=int, default=8, help="vectorized envs per runner")
    parser.add_argument("--batch", type=int, default=1000, help="env steps per iteration")
    parser.add_argument("--minibatch", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--sample-rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 iteration, 1 sample round")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.sample_rounds = 1, 1
    torch.set_num_threads(1)
    trainable.DEFAULT_STORAGE_PATH = tempfile.mkdtemp(prefix="bench_rllib_")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    console = Console(stderr=True)
    rows = []
    with console.status("CartPole-v1..."):
        rows.append(measure("CartPole-v1", cartpole(args), args))
    for n in args.symbols:
        config = symbol_config(n, args)
        market, prepared = market_for(config)
        env = SymbolAgentsEnv(market, prepared.train_views, config.env)
        ppo = build_ppo_config(config, env.observation_space, env.action_space, market.n_features)
        with console.status(f"{n} symbol agents..."):
            rows.append(measure(f"hierarchical, {n} symbol agents", ppo, args))
    ray.shutdown()
    base = rows[0]
    table = Table(
        title=f"RLlib PPO, {args.envs} envs in the driver, batch {args.batch} env steps, "
        f"minibatch {args.minibatch}, {args.epochs} epochs"
    )
    for column in ("env", "sample steps/s", "ratio", "train steps/s", "ratio", "s/iter"):
        table.add_column(column, justify="right")
    for row in rows:
        row["sample_ratio"] = row["sample_agent_steps_per_s"] / base["sample_agent_steps_per_s"]
        row["train_ratio"] = row["train_agent_steps_per_s"] / base["train_agent_steps_per_s"]
        table.add_row(
            row["name"],
            f"{row['sample_agent_steps_per_s']:,.0f}",
            f"{row['sample_ratio']:.2f}",
            f"{row['train_agent_steps_per_s']:,.0f}",
            f"{row['train_ratio']:.2f}",
            f"{row['train_seconds_per_iteration']:.1f}",
        )
    Console().print(table)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"settings": vars(args) | {"json": None}, "rows": rows}, indent=2, default=str
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
