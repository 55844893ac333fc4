"""Learning check of the hierarchy: does the MAPPO master improve on independent symbol agents?

The market is built so that allocation matters and the best achievable gain is known. For each
seed: a synthetic **regime** market (calm / volatile / crash, a Markov chain; the crash hurts
every long book) of 6 symbols with planted momentum whose strength differs between symbols and
changes over time (each symbol's R2 is redrawn from 0.06 .. 0 about every 150 bars, so no fixed
weights win), costs on. The whole pipeline runs on it: pretrain the encoder, train the symbol
policy (PPO), which must pass its own validation gate (else the seed is reported and left out,
so a failed seed is not blamed on the master), then the master over the frozen symbol actors
(MAPPO) and joint fine-tuning. The systems are scored on the unseen test split (2,100 bars) by
the backtester every report uses (``hierarchy/comparison.json``; `evaluation.hierarchy`):

- independent symbol agents (no master, equal budgets);
- hierarchical (phase 3's master over the frozen symbol actors);
- joint (phase 4);
- the oracle allocator (`evaluation.oracle_allocator`): the independent agents under a master
  that knows the regime and each symbol's current signal strength: the ceiling of allocation.

Each seed gets the paired difference to the independent agents on the same bars, with a
stationary block bootstrap interval. Gate (``--as-test`` exits 1 when missed), over the seeds:
the hierarchical system's mean Sharpe at least 0.2 above the independent agents', its mean
episode max drawdown at least 15% lower, and the paired interval of that drawdown change below
0. The script also says whether the test period is long enough to tell a gain of 0.2 (the
half-width of the mean gain's interval), and how much of the oracle's gain each master captures.

    python scripts/learn_check_hierarchy.py --as-test             # 5 seeds, about 25 min
    python scripts/learn_check_hierarchy.py --seeds 0 --json out.json
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

import yaml
from rich.console import Console

from multiagent.config import RunConfig
from multiagent.evaluation.hierarchy import (
    compare_runs,
    pool_markets,
    render_comparison,
    render_multiseed,
)
from multiagent.runs.folders import load_run_config

SIGNAL_R2 = (0.06, 0.04, 0.02, 0.01, 0.0, 0.0)
EXTRA_MARKET_SEED = 1000
"""Fresh test market k of seed s is drawn with seed s + 1000 k."""
EXTRA_BARS = 6000
EXTRA_TRAIN = 0.05
"""Bars of a fresh test market before its test part: the features' warm-up."""
CONFIG: dict[str, Any] = {
    "data": {
        "synthetic": {
            "n_symbols": len(SIGNAL_R2),
            "n_bars": 6000,
            "signal": "momentum",
            "signal_r2": list(SIGNAL_R2),
            "signal_switching": 150,
            # The generator's default regimes: calm (drift up), volatile, crash (drift down).
        }
    },
    "features": {
        "features": {
            "returns": [1, 5, 20],
            "volatility": [20, 60],
            "momentum": [20],
            "rsi": [14],
            "macd": None,
            "zscore": [20],
            "volume": [],
            "range_volatility": [],
            "regime": {"short": 20, "long": 120},
            "cross_sectional": [],
        },
        "normalization": {"method": "expanding", "min_periods": 20, "clip": 5.0},
    },
    # 3,000 training bars, 900 validation bars, 2,100 test bars.
    "split": {"train": 0.5, "validation": 0.15, "purge": 10},
    "episodes": {"length": 200, "min_length": 100},
    "env": {
        "n_symbols": 4,
        "communication_interval": 4,
        "scheme": {"kind": "discrete3", "short_on_sell": True},
        "execution": {"allow_short": True},
        # The defaults (docs/agents.md): mean-variance against the neutral shadow book.
        "master_reward": {"kind": "mean_variance", "baseline": "neutral"},
    },
    "pretrain": {"epochs": 10, "windows_per_epoch": 8000, "patience": 3},
    "symbols": {
        "checkpoint_every": 4,
        "eval_every": 4,
        "keep_best": 2,
        "ppo": {"train_batch_size": 1000, "minibatch_size": 250, "gamma": 0.9, "gae_lambda": 0.9},
    },
    "master": {
        "checkpoint_every": 3,
        "eval_every": 3,
        "keep_best": 2,
        "ppo": {
            "train_batch_size": 2000,
            "minibatch_size": 250,
            # A decision's effect ends with the next decision: a short horizon keeps the
            # returns of later decisions out of its advantage (docs/agents.md).
            "gamma": 0.5,
            "gae_lambda": 0.9,
            "lr": 1e-3,
            "entropy_coeff": 0.002,
            "vf_clip_param": 1000.0,
        },
    },
    "joint": {
        "checkpoint_every": 2,
        "eval_every": 2,
        "keep_best": 2,
        "ppo": {
            "train_batch_size": 2000,
            "minibatch_size": 250,
            "gamma": 0.95,
            "lr": 1e-4,
            "vf_clip_param": 1000.0,
        },
    },
}


def run_config(
    seed: int,
    iterations: tuple[int, int, int],
    runs_dir: str,
    overrides: list[str] | None = None,
) -> RunConfig:
    payload = json.loads(json.dumps(CONFIG))
    for item in overrides or []:
        key, _, text = item.partition("=")
        *parents, leaf = key.split(".")
        node = payload
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(text)
    payload["seed"] = seed
    payload["data"]["synthetic"]["seed"] = seed
    for phase, n in zip(("symbols", "master", "joint"), iterations, strict=True):
        payload[phase]["iterations"] = n
    payload["runs_dir"] = runs_dir
    return RunConfig.model_validate(payload)


def fresh_market(config: RunConfig, market_seed: int) -> RunConfig:
    """``config`` on a market of the same dynamics drawn with another seed, all of it test but
    a feature warm-up: one such market adds thousands of out-of-sample bars."""
    payload = config.model_dump(mode="json")
    payload["data"]["synthetic"].update(seed=market_seed, n_bars=EXTRA_BARS)
    payload["split"] = {"train": EXTRA_TRAIN, "validation": 0.0, "purge": 0}
    return RunConfig.model_validate(payload)


def score(config: RunConfig, run_dir: Path) -> dict[str, Any]:
    """The run's systems (and the oracle allocator) on ``config``'s test split, as the
    pipeline's own comparison scores them."""
    from multiagent.evaluation.hierarchy import comparison_from_report, write_comparison
    from multiagent.evaluation.run import evaluate_systems
    from multiagent.evaluation.sources import resolve

    settings = config.evaluation.system_comparison()
    evaluation = evaluate_systems(resolve(run_dir), config, settings=settings, shown_path=".")
    comparison = comparison_from_report(evaluation.report)
    if config.data.synthetic is not None:
        write_comparison(comparison, run_dir / "hierarchy" / f"market{config.data.synthetic.seed}")
    return comparison


def symbol_validation_sharpe(phases: dict[str, Any]) -> float:
    """Phase 2's best checkpoint's validation Sharpe (NaN when the phase recorded none)."""
    value = (phases.get("symbols", {}).get("validation") or {}).get("sharpe")
    return float("nan") if value is None else float(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--min-seeds", type=int, default=5, help="Seeds the gate needs.")
    parser.add_argument(
        "--spare-seeds",
        type=int,
        default=2,
        help="Seeds run in place of seeds whose symbol agents fail their own gate.",
    )
    parser.add_argument("--symbol-iterations", type=int, default=12)
    parser.add_argument("--master-iterations", type=int, default=40)
    parser.add_argument("--joint-iterations", type=int, default=4)
    parser.add_argument(
        "--min-symbol-sharpe",
        type=float,
        default=0.5,
        help="The symbol agents' own gate: validation Sharpe of phase 2's best checkpoint.",
    )
    parser.add_argument(
        "--extra-markets",
        type=int,
        default=1,
        help="Fresh markets of the same dynamics each seed's systems are also tested on "
        f"({EXTRA_BARS - int(EXTRA_BARS * EXTRA_TRAIN)} bars each, never trained on).",
    )
    parser.add_argument("--min-sharpe-gain", type=float, default=0.2)
    parser.add_argument("--min-drawdown-cut", type=float, default=0.15)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Change one setting of the run config (dotted key, YAML value), e.g. "
        "master.ppo.gamma=0.5; repeatable.",
    )
    parser.add_argument("--runs-dir", type=Path, default=None, help="Keep the runs here.")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="Score the finished runs in --runs-dir again (no training): after a change to "
        "the evaluation or the yardsticks.",
    )
    parser.add_argument("--json", type=Path, default=None, help="Write the results here.")
    parser.add_argument("--as-test", action="store_true", help="Exit 1 when the gate is missed.")
    args = parser.parse_args(argv)
    if args.rescore and args.runs_dir is None:
        parser.error("--rescore needs --runs-dir (the finished runs)")

    import ray
    import torch

    from multiagent.training.pipeline import run_pipeline

    torch.set_num_threads(1)
    console = Console()
    iterations = (args.symbol_iterations, args.master_iterations, args.joint_iterations)
    runs_root = args.runs_dir or Path(tempfile.mkdtemp(prefix="learn_check_hierarchy_"))
    comparisons, per_market, used, symbol_failures = [], [], [], {}
    began = time.perf_counter()
    try:
        queue = list(args.seeds)
        spare = max(args.seeds) + 1
        while queue:
            seed = queue.pop(0)
            config = run_config(seed, iterations, str(runs_root), args.overrides)
            run_dir = runs_root / f"seed{seed}"
            console.rule(f"seed {seed}: {run_dir}")
            if args.rescore:
                config = load_run_config(run_dir)
                phases = json.loads((run_dir / "pipeline.json").read_text())["phases"]
            else:
                phases = run_pipeline(config, run_dir, to_phase="symbols", console=console).phases
            validation = symbol_validation_sharpe(phases)
            if not validation >= args.min_symbol_sharpe:
                symbol_failures[seed] = validation
                console.print(
                    f"seed {seed}: the symbol agents did not learn (validation Sharpe "
                    f"{validation:.2f} < {args.min_symbol_sharpe}); left out of the master's gate"
                )
                if len(symbol_failures) <= args.spare_seeds and not args.rescore:
                    queue.append(spare)  # a failed seed is replaced, so the gate sees enough
                    spare += 1
                continue
            own = (
                score(config, run_dir)
                if args.rescore
                else run_pipeline(None, run_dir, from_phase="master", console=console).comparison
            )
            assert own is not None
            console.print(render_comparison(own), highlight=False)
            markets = [own]
            for k in range(1, args.extra_markets + 1):
                extra = score(fresh_market(config, seed + EXTRA_MARKET_SEED * k), run_dir)
                console.print(render_comparison(extra), highlight=False)
                markets.append(extra)
            comparisons.append(pool_markets(markets))
            per_market.append(markets)
            used.append(seed)
    finally:
        ray.shutdown()
    if not comparisons:
        console.print("no seed's symbol agents passed their gate: nothing to compare")
        return 1 if args.as_test else 0
    summary = compare_runs(
        comparisons, min_sharpe_gain=args.min_sharpe_gain, min_drawdown_cut=args.min_drawdown_cut
    )
    enough_seeds = len(used) >= args.min_seeds
    summary["gate"]["enough_seeds"] = enough_seeds
    summary["gate"]["passed"] = bool(summary["gate"]["passed"] and enough_seeds)
    summary.update(
        seeds_run=sorted({*args.seeds, *symbol_failures, *used}),
        seeds_compared=used,
        symbol_gate={"min_validation_sharpe": args.min_symbol_sharpe, "failed": symbol_failures},
        iterations=dict(zip(("symbols", "master", "joint"), iterations, strict=True)),
        overrides=args.overrides,
        signal_r2=list(SIGNAL_R2),
        per_seed=comparisons,
        per_market=per_market,
        minutes=round((time.perf_counter() - began) / 60, 1),
    )
    console.print(render_multiseed(summary), highlight=False)
    if symbol_failures:
        console.print(f"seeds left out (symbol agents below their gate): {symbol_failures}")
    if not enough_seeds:
        console.print(f"only {len(used)} seeds compared; the gate needs {args.min_seeds}")
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2, default=float) + "\n")
    passed = bool(summary["gate"]["passed"])
    console.print(f"gate: {'PASS' if passed else 'FAIL'} ({summary['minutes']} min)")
    return 1 if args.as_test and not passed else 0


if __name__ == "__main__":
    from multiagent.reproducibility import pin_hash_seed

    pin_hash_seed()  # re-executes this script once: repeatable training (docs/reproducibility.md)
    sys.exit(main())
