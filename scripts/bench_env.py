"""Environment throughput on one core: the hierarchical env through the PettingZoo API and the
batched core. Not a test: it reports numbers for docs/benchmarks.md.

    python scripts/bench_env.py               # full run (about a minute)
    python scripts/bench_env.py --quick       # smaller, for a smoke check
    python scripts/bench_env.py --json out.json

Targets (issue 3): >= 250k symbol-agent steps/s for 30 symbols + master through the PettingZoo
API, step cost flat in history length (250 vs 4000 bars), >= 10M symbol-steps/s for the batched
core with B=1024 x 30.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
from rich.console import Console
from rich.table import Table

from multiagent.data import SyntheticMarketConfig, generate_market
from multiagent.data.featurize import compute_features
from multiagent.envs import (
    MASTER,
    BatchedTradingCore,
    EnvMarket,
    HierarchicalEnvConfig,
    HierarchicalTradingEnv,
    SymbolEnvConfig,
    build_market,
)
from multiagent.envs.sampling import EpisodeSampler, whole_market_views
from multiagent.envs.schemes import slot_state

N_SYMBOLS = 30


def synthetic_market(n_symbols: int, n_bars: int) -> EnvMarket:
    market = generate_market(SyntheticMarketConfig(n_symbols=n_symbols, n_bars=n_bars, seed=0))
    return build_market(market.panel, compute_features(market.panel))


def bench_hierarchical(market: EnvMarket, episode_bars: int, steps: int) -> dict[str, Any]:
    config = HierarchicalEnvConfig(n_symbols=N_SYMBOLS, max_episode_bars=episode_bars)
    env = HierarchicalTradingEnv(market, config=config)
    rng = np.random.default_rng(0)
    n_actions = env.action_space("symbol_0").n
    nvec = env.action_space(MASTER).nvec
    plans = [
        {
            **{agent: int(rng.integers(n_actions)) for agent in env.symbol_agents},
            MASTER: rng.integers(nvec),
        }
        for _ in range(64)
    ]
    env.reset(seed=0)
    done_steps, episodes = 0, 0
    began = time.perf_counter()
    while done_steps < steps:
        env.step(plans[done_steps % 64])
        done_steps += 1
        if not env.agents:
            env.reset()
            episodes += 1
    elapsed = time.perf_counter() - began
    return {
        "episode_bars": episode_bars,
        "steps": done_steps,
        "episodes": episodes,
        "env_steps_per_s": done_steps / elapsed,
        "symbol_agent_steps_per_s": done_steps * N_SYMBOLS / elapsed,
        "us_per_step": elapsed / done_steps * 1e6,
    }


def bench_batched(market: EnvMarket, n_envs: int, steps: int, observe: bool) -> dict[str, Any]:
    sampler = EpisodeSampler(market, whole_market_views(market), N_SYMBOLS, max_bars=250)
    core = BatchedTradingCore(market, SymbolEnvConfig(), sampler, n_envs, seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, core.scheme.n_actions, (16, n_envs, N_SYMBOLS))
    began = time.perf_counter()
    for i in range(steps):
        if observe:
            core.observe()
        core.masks()
        core.step_auto(actions[i % 16])
    elapsed = time.perf_counter() - began
    return {
        "n_envs": n_envs,
        "observations": observe,
        "steps": steps,
        "symbol_steps_per_s": steps * n_envs * N_SYMBOLS / elapsed,
        "ms_per_step": elapsed / steps * 1e3,
    }


def bench_simulator(market: EnvMarket, n_envs: int, steps: int) -> dict[str, Any]:
    """The simulator alone: fills, costs, limits and accounting for pre-built orders."""
    sampler = EpisodeSampler(market, whole_market_views(market), N_SYMBOLS)
    rng = np.random.default_rng(0)
    core = BatchedTradingCore(market, SymbolEnvConfig(), sampler, n_envs, seed=0)
    orders = []
    for _ in range(8):
        actions = rng.integers(0, core.scheme.n_actions, (n_envs, N_SYMBOLS))
        state = slot_state(core.sim, core.budget, need_spread=False)
        orders.append(core.scheme.orders(actions, state)[0])
    sim = core.sim
    began = time.perf_counter()
    for i in range(steps):
        sim.step(orders[i % 8])
    elapsed = time.perf_counter() - began
    return {
        "n_envs": n_envs,
        "steps": steps,
        "symbol_steps_per_s": steps * n_envs * N_SYMBOLS / elapsed,
        "ms_per_step": elapsed / steps * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    console = Console()
    steps = 2000 if args.quick else 20000
    batched_steps = 20 if args.quick else 200
    market = synthetic_market(40, 6000)
    results: dict[str, Any] = {"hierarchical": [], "batched": []}
    for bars in (250, 4000):
        results["hierarchical"].append(bench_hierarchical(market, bars, steps))
    for observe in (False, True):
        results["batched"].append(bench_batched(market, 1024, batched_steps, observe))
    results["simulator"] = bench_simulator(market, 1024, min(batched_steps, 1000))
    results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    table = Table(title=f"Hierarchical env, {N_SYMBOLS} symbols + master (PettingZoo API)")
    for column in ("episode bars", "env steps/s", "symbol-agent steps/s", "us/step"):
        table.add_column(column, justify="right")
    for row in results["hierarchical"]:
        table.add_row(
            str(row["episode_bars"]),
            f"{row['env_steps_per_s']:,.0f}",
            f"{row['symbol_agent_steps_per_s']:,.0f}",
            f"{row['us_per_step']:.1f}",
        )
    console.print(table)
    table = Table(title=f"Batched core, B=1024 x {N_SYMBOLS} symbols (auto-reset, random actions)")
    for column in ("observations built", "symbol-steps/s", "ms/step"):
        table.add_column(column, justify="right")
    for row in results["batched"]:
        table.add_row(
            "yes" if row["observations"] else "no",
            f"{row['symbol_steps_per_s']:,.0f}",
            f"{row['ms_per_step']:.2f}",
        )
    console.print(table)
    sim = results["simulator"]
    console.print(
        f"simulator alone (fills, costs, limits, accounting), B=1024 x {N_SYMBOLS}: "
        f"{sim['symbol_steps_per_s']:,.0f} symbol-steps/s, {sim['ms_per_step']:.2f} ms/step"
    )
    console.print(f"peak RSS: {results['peak_rss_mib']:.0f} MiB")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(results, stream, indent=2)


if __name__ == "__main__":
    main()
