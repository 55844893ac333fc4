"""What each half of the oracle allocator is worth over a run's trained symbol agents.

The oracle allocator (`multiagent.evaluation.oracle_allocator`) sets budget levels by each
symbol's true signal strength and the risk mode by the true regime. This script backtests the
run's independent symbol policy on its test split four ways: equal budgets (the independent
agents), levels only, modes only, both; and prints Sharpe, mean episode max drawdown and
turnover of each. It tells a master's designer where the gain of allocation lies on that market
(synthetic runs only: the truth must be known).

    python scripts/oracle_parts.py RUN [RUN ...]      # e.g. the learn check's seed folders
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from multiagent.envs.config import HierarchicalEnvConfig
from multiagent.envs.market import build_market
from multiagent.errors import ConfigError
from multiagent.evaluation.backtest import Backtester
from multiagent.evaluation.metrics import periods_per_year
from multiagent.evaluation.oracle_allocator import OracleAllocator
from multiagent.evaluation.policies import GreedyNetPolicy
from multiagent.evaluation.scoring import policy_metrics
from multiagent.evaluation.sources import POLICY_FILE
from multiagent.runs.folders import load_run_config
from multiagent.runs.prepare import prepare

PARTS = {
    "independent": None,
    "levels only": (True, False),
    "modes only": (False, True),
    "oracle allocator": (True, True),
}


def oracle_parts(run_dir: Path) -> dict[str, dict[str, float]]:
    config = load_run_config(run_dir)
    if not isinstance(config.env, HierarchicalEnvConfig):
        raise ConfigError(f"{run_dir}: not a hierarchical run")
    prepared = prepare(config)
    truth = prepared.synthetic
    if truth is None:
        raise ConfigError(f"{run_dir}: the oracle needs a synthetic market with its test split")
    market = build_market(prepared.panel, prepared.features, config.env.costs)
    policies = []
    for name, part in PARTS.items():
        policy = GreedyNetPolicy.load(str(run_dir / POLICY_FILE), name)
        if part is not None:
            policy.master = OracleAllocator(
                truth,
                config.env.budget_levels,
                config.env.n_symbols,
                levels=part[0],
                modes=part[1],
            )
        policies.append(policy)
    runs = Backtester(market, config.env).run(policies, prepared.split.test)
    periods = periods_per_year(prepared.panel)
    keys = ("sharpe", "mean_episode_max_drawdown", "turnover")
    return {
        name: {
            k: float(policy_metrics(run, periods, episode_bars=config.episodes.length)[k])
            for k in keys
        }
        for name, run in runs.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    print("| run | system | Sharpe | Δ Sharpe | mean episode max DD | DD cut | turnover |")
    print("|---|---|---|---|---|---|---|")
    for run_dir in args.runs:
        try:
            figures = oracle_parts(run_dir)
        except (ConfigError, OSError) as error:
            print(f"{run_dir}: {error}", file=sys.stderr)
            return 1
        base = figures["independent"]
        for name, row in figures.items():
            cut = 1 - row["mean_episode_max_drawdown"] / base["mean_episode_max_drawdown"]
            print(
                f"| {run_dir.name} | {name} | {row['sharpe']:.2f} | "
                f"{row['sharpe'] - base['sharpe']:+.2f} | "
                f"{row['mean_episode_max_drawdown']:.1%} | {cut:+.0%} | {row['turnover']:.2%} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
