"""RLlib throughput of the hierarchical env's agents next to PPO on CartPole-v1.

Same machine, same run: PPO on the new API stack, sampling in the driver process (0 remote env
runners) with ``--envs`` vectorized envs, the same train batch (env steps per iteration),
minibatch and epochs. CartPole runs twice: with these settings and tuned for throughput (64
envs, batch 4000, minibatch 2000, 4 epochs), the yardstick of docs/benchmarks.md. Reported:

- sampling: ``EnvRunner.sample()`` alone, in agent steps/s (CartPole: env steps/s; one agent);
- end to end: ``algo.train()`` (sampling + GAE + PPO updates), agent steps/s;
- where an iteration goes: RLlib's sampling and learner timers, in seconds per iteration;
- the master phase (symbol actors frozen, the master learning): master decisions trained per
  second, each one a transition of the master's PPO;
- the raw torch ceiling of the symbol module: forward + backward + Adam over the same rows,
  minibatch and epochs, with no RLlib around it.

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

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
import ray.tune.trainable.trainable as trainable
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from rich.console import Console
from rich.table import Table

from multiagent.config import RunConfig
from multiagent.encoder.config import EncoderConfig
from multiagent.rllib.algo import build_hierarchy_config, build_ppo_config
from multiagent.rllib.env import SymbolAgentsEnv, market_for

SERIAL_FEATURES: dict[str, Any] = {
    "autocorrelation": {"windows": [60], "lags": [1, 2]},
    "variance_ratio": {"window": 120, "periods": [2, 5]},
    "hurst": {"window": 120, "scales": [1, 2, 4, 8]},
}
"""The serial-dependence families as the mixed learn check turns them on."""


def parse_context(text: str) -> tuple[int, bool]:
    """``"8"`` -> window 8; ``"8+serial"`` -> window 8 plus the serial-dependence features."""
    window, _, extra = text.partition("+")
    if not window.isdigit() or extra not in ("", "serial"):
        raise argparse.ArgumentTypeError(f"a context is WINDOW or WINDOW+serial, got {text!r}")
    return int(window), extra == "serial"


def symbol_config(
    n_symbols: int,
    args: argparse.Namespace,
    *,
    vector_env: bool = True,
    context: tuple[int, bool] = (8, False),
) -> RunConfig:
    """The symbol phase over ``args.envs`` books of ``n_symbols`` slots; through the vector
    env with ``args.batch`` agent steps (rows) per iteration, as many as CartPole's env steps.
    ``context``: the observation window and whether the serial features are on."""
    window, serial = context
    return RunConfig.model_validate(
        {
            "data": {"synthetic": {"n_symbols": n_symbols, "n_bars": 1500, "seed": 0}},
            "features": {"features": SERIAL_FEATURES if serial else {}},
            "episodes": {"length": 250},
            "env": {"n_symbols": n_symbols, "observation": {"window": window}},
            # The dilated stack deep enough to read the whole window (3 layers: 8 bars).
            "encoder": {"layers": max(3, EncoderConfig().layers_to_read(window))},
            "cache_dir": args.cache_dir,
            "resources": {"num_env_runners": 0, "num_envs_per_env_runner": args.envs},
            "symbols": {
                "vector_env": vector_env,
                "policy": {"encoder": "scratch"},
                "ppo": {
                    # The multi-agent env counts bars (RLlib checks minibatch <= them): the
                    # earlier tables' setting, N times the rows.
                    "train_batch_size": max(args.batch // n_symbols, 1)
                    if vector_env
                    else args.batch,
                    "minibatch_size": args.minibatch,
                    "num_epochs": args.epochs,
                },
            },
        }
    )


TUNED = {"envs": 64, "batch": 4000, "minibatch": 2000, "epochs": 4}
"""RLlib's CartPole PPO tuned for throughput on this machine (docs/benchmarks.md)."""


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


def master_phase(n_symbols: int, args: argparse.Namespace) -> PPOConfig:
    """Phase 3 as the pipeline builds it (the symbol module frozen, the master learning), from
    fresh weights, ``args.batch`` bars per iteration (one master decision every
    ``communication_interval`` of them): throughput does not depend on the weights."""
    from multiagent.rllib.checkpoints import MASTER_MODULE, SYMBOL_MODULE
    from multiagent.rllib.env import TradingAgentsEnv

    config = symbol_config(n_symbols, args)
    ppo = config.symbols.ppo.model_copy(update={"train_batch_size": args.batch})
    config = config.model_copy(update={"master": config.master.model_copy(update={"ppo": ppo})})
    market, prepared = market_for(config)
    env = TradingAgentsEnv(market, prepared.train_views, config.env, master=True)
    spaces = {
        SYMBOL_MODULE: (env.observation_space, env.action_space),
        MASTER_MODULE: (env.observation_spaces["master"], env.action_spaces["master"]),
    }
    return build_hierarchy_config(config, "master", spaces, market.n_features)


def torch_ceiling(n_symbols: int, args: argparse.Namespace) -> dict[str, Any]:
    """Forward + backward + Adam of the symbol module alone over one iteration's rows (batch x
    agents), in minibatches, for the same epochs: the physical limit of the learner."""
    from multiagent.rllib.modules import SymbolRLModule

    config = symbol_config(n_symbols, args)
    market, prepared = market_for(config)
    env = SymbolAgentsEnv(market, prepared.train_views, config.env)
    from multiagent.rllib.algo import symbol_model_config

    module = SymbolRLModule(
        observation_space=env.observation_space,
        action_space=env.action_space,
        model_config=symbol_model_config(config, market.n_features).to_rllib(),
    )
    rows = args.batch
    obs_dim = env.observation_space["observations"].shape[0]
    generator = torch.Generator().manual_seed(0)
    observations = torch.randn(rows, obs_dim, generator=generator)
    masks = torch.ones(rows, env.action_space.n, dtype=torch.bool)
    actions = torch.randint(0, env.action_space.n, (rows,), generator=generator)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    began = time.perf_counter()
    for _ in range(args.epochs):
        for start in range(0, rows, args.minibatch):
            part = slice(start, start + args.minibatch)
            batch = {"obs": {"observations": observations[part], "action_mask": masks[part]}}
            out = module.forward_train(batch)
            logits = out["action_dist_inputs"]
            values = module.compute_values(batch, embeddings=out.get("embeddings"))
            log_p = torch.log_softmax(logits, -1).gather(1, actions[part, None])
            loss = -log_p.mean() + values.pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - began
    return {
        "name": f"torch ceiling {n_symbols}",
        "rows_per_s": rows * args.epochs / seconds,
        "agent_steps_per_s": rows / seconds,
    }


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
        first = algo.train()
        before, master_before = _agent_steps_lifetime(first), _master_steps(first)
        sampling = learning = 0.0
        began = time.perf_counter()
        for _ in range(args.iterations):
            result = algo.train()
            timers = result.get("timers", {})
            sampling += float(timers.get("env_runner_sampling_timer", float("nan")))
            learning += float(timers.get("learner_update_timer", float("nan")))
        seconds = time.perf_counter() - began
        trained = _agent_steps_lifetime(result) - before
        master = _master_steps(result) - master_before
    finally:
        algo.stop()
    return {
        "name": name,
        "sample_agent_steps_per_s": sample_rate,
        "train_agent_steps_per_s": trained / seconds,
        "train_seconds_per_iteration": seconds / args.iterations,
        "sampling_seconds_per_iteration": sampling / args.iterations,
        "learner_seconds_per_iteration": learning / args.iterations,
        "master_decisions_per_s": master / seconds if master else None,
    }


def _agent_steps_lifetime(result: dict[str, Any]) -> float:
    value = result["env_runners"]["num_agent_steps_sampled_lifetime"]
    return float(sum(value.values())) if isinstance(value, dict) else float(value)


def _master_steps(result: dict[str, Any]) -> float:
    value = result["env_runners"]["num_agent_steps_sampled_lifetime"]
    return float(value.get("master", 0.0)) if isinstance(value, dict) else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[8, 30])
    parser.add_argument("--envs", type=int, default=8, help="vectorized envs per runner")
    parser.add_argument("--batch", type=int, default=1000, help="env steps per iteration")
    parser.add_argument("--minibatch", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--sample-rounds", type=int, default=3)
    parser.add_argument("--no-master", action="store_true", help="skip the master phase rows")
    parser.add_argument(
        "--agents",
        action="store_true",
        help="also the symbol phase through the multi-agent env (one agent per slot)",
    )
    parser.add_argument(
        "--contexts",
        type=parse_context,
        nargs="+",
        default=[],
        help="also the tuned symbol rows with these observations: WINDOW or WINDOW+serial "
        "(e.g. 8+serial 32 64), the cost of a longer context",
    )
    parser.add_argument("--quick", action="store_true", help="1 iteration, 1 sample round")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the driver")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.sample_rounds = 1, 1
    torch.set_num_threads(args.threads)
    trainable.DEFAULT_STORAGE_PATH = tempfile.mkdtemp(prefix="bench_rllib_")
    from multiagent.rllib.ray_session import start_local_ray

    start_local_ray(2, log_to_driver=False)
    console = Console(stderr=True)
    rows = []
    tuned = argparse.Namespace(**{**vars(args), **TUNED})
    with console.status("CartPole-v1..."):
        rows.append(measure("CartPole-v1", cartpole(args), args))
        rows.append(measure("CartPole-v1, tuned", cartpole(tuned), tuned))
    ceilings = []
    for n in args.symbols:
        # Tuned: about 256 slots per runner (CartPole's 64 envs x 4), whole books of n slots.
        books = argparse.Namespace(**{**vars(tuned), "envs": max(1, 4 * TUNED["envs"] // n)})
        runs = [("vector env", args, True), ("vector env, tuned", books, True)]
        if args.agents:
            runs.append(("one agent per slot", args, False))
        contexts: list[tuple[int, bool]] = [(8, False)] * len(runs)
        for window, serial in args.contexts:
            runs.append((f"tuned, window {window}{' + serial' if serial else ''}", books, True))
            contexts.append((window, serial))
        for (label, settings, vector), context in zip(runs, contexts, strict=True):
            config = symbol_config(n, settings, vector_env=vector, context=context)
            market, prepared = market_for(config)
            env = SymbolAgentsEnv(market, prepared.train_views, config.env)
            ppo = build_ppo_config(
                config, env.observation_space, env.action_space, market.n_features
            )
            with console.status(f"{n} symbol agents, {label}..."):
                rows.append(measure(f"symbols {n}, {label}", ppo, settings))
        if not args.no_master:
            with console.status(f"master phase, {n} symbols..."):
                rows.append(measure(f"master {n}", master_phase(n, args), args))
        ceilings.append(torch_ceiling(n, args))
        ceilings.append(torch_ceiling(n, tuned) | {"name": f"torch ceiling {n}, tuned"})
    ray.shutdown()
    base, fast = rows[0], rows[1]
    table = Table(
        title=f"RLlib PPO, {args.envs} envs in the driver, batch {args.batch} env steps, "
        f"minibatch {args.minibatch}, {args.epochs} epochs, {args.threads} torch thread(s)"
    )
    for column in (
        "env",
        "sample steps/s",
        "train steps/s",
        "vs CartPole",
        "vs tuned",
        "s/iter",
        "sampling s",
        "learner s",
        "master dec./s",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        row["sample_ratio"] = row["sample_agent_steps_per_s"] / base["sample_agent_steps_per_s"]
        row["train_ratio"] = row["train_agent_steps_per_s"] / base["train_agent_steps_per_s"]
        row["train_ratio_tuned"] = row["train_agent_steps_per_s"] / fast["train_agent_steps_per_s"]
        master = row["master_decisions_per_s"]
        table.add_row(
            row["name"],
            f"{row['sample_agent_steps_per_s']:,.0f}",
            f"{row['train_agent_steps_per_s']:,.0f}",
            f"{row['train_ratio']:.2f}",
            f"{row['train_ratio_tuned']:.2f}",
            f"{row['train_seconds_per_iteration']:.1f}",
            f"{row['sampling_seconds_per_iteration']:.1f}",
            f"{row['learner_seconds_per_iteration']:.1f}",
            "-" if master is None else f"{master:,.0f}",
        )
    for ceiling in ceilings:
        table.add_row(
            ceiling["name"], "-", f"{ceiling['agent_steps_per_s']:,.0f}", "", "", "", "", "", ""
        )
    Console(width=150).print(table)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"settings": vars(args) | {"json": None}, "rows": rows, "ceilings": ceilings},
                indent=2,
                default=str,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    from multiagent.reproducibility import pin_hash_seed

    pin_hash_seed()  # re-executes this script once: repeatable training (docs/reproducibility.md)
    sys.exit(main())
