"""Learning check of the single-agent presets portfolio and regimes on markets with a planted
signal and a known oracle (sessions has none yet: see docs/presets/sessions.md).

For each seed: generate a market with a planted signal, pretrain the encoder on the training
part, train the preset's agent with PPO (the pipeline's ``agent`` phase:
`multiagent.rllib.agent.AgentTrainer`), keep the checkpoint with the best validation Sharpe, and
score it on the held-out part. The yardstick acts through the same env on the same evaluation
episodes:

Next-bar returns follow the sign of the last bar's return (synthetic ``signal: momentum``); the
sign oracle (`multiagent.evaluation.episodes.SignOracle`) buys where the last return was up and
sells where it was down; regimes: all in the asset that went up most, cash when none did.

The markets are frictionless, so the oracle is the rule the planted signal rewards; the check
passes when, on every seed, the agent's test Sharpe is >= ``--ratio`` (0.7) of the oracle's.

    python scripts/learn_check_presets.py --preset portfolio --as-test
    python scripts/learn_check_presets.py --preset regimes --seeds 0 --iterations 10 --json out.json
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

import numpy as np
from learn_check_symbols import CONFIG as SYMBOLS_CHECK  # scripts/ is on sys.path
from rich.console import Console
from rich.table import Table

from multiagent.config import RunConfig

FEATURES: dict[str, Any] = SYMBOLS_CHECK["features"]
"""The symbol learn check's features (returns, volatility, momentum, RSI, z-score)."""
MOMENTUM_MARKET: dict[str, Any] = {
    key: value for key, value in SYMBOLS_CHECK["data"]["synthetic"].items() if key != "n_symbols"
}
"""The symbol learn check's market: next-bar returns follow the last one's sign (R2 0.05), one
driftless regime, 3,000 bars."""
PPO: dict[str, Any] = {
    "train_batch_size": 2000,
    "minibatch_size": 1000,
    "num_epochs": 4,
    # The planted edge pays one bar ahead: a short horizon cuts the advantages' variance.
    "gamma": 0.9,
    "gae_lambda": 0.9,
}
FRICTIONLESS = {"cost_multiplier": 0.0}

PRESETS: dict[str, dict[str, Any]] = {
    "portfolio": {
        "system": "portfolio",
        "data": {"synthetic": {**MOMENTUM_MARKET, "n_symbols": 6}},
        "split": {"train": 0.6, "validation": 0.2, "purge": 10},
        "episodes": {"length": 250, "min_length": 100},
        "agent": {
            "env": {
                "max_open_positions": 3,
                "scheme": {"kind": "discrete3", "short_on_sell": True},
                "execution": {"allow_short": True},
                "costs": FRICTIONLESS,
            },
            "evaluation": {"episodes": 20},
        },
    },
    "regimes": {
        "system": "regimes",
        "data": {"synthetic": {**MOMENTUM_MARKET, "n_symbols": 2}},
        "split": {"train": 0.6, "validation": 0.2, "purge": 10},
        "episodes": {"length": 250, "min_length": 100},
        "agent": {
            "env": {"scheme": {"kind": "regimes", "regime_step": 0.25}, "costs": FRICTIONLESS},
            # The preset's GRU policy.
            "policy": {"recurrent": "gru", "recurrent_size": 120, "max_seq_len": 20},
            "evaluation": {"episodes": 20},
        },
    },
}


def run_config(preset: str, seed: int, iterations: int, runs_dir: str) -> RunConfig:
    payload = json.loads(json.dumps(PRESETS[preset]))
    payload["seed"] = seed
    payload["data"]["synthetic"]["seed"] = seed
    payload["features"] = FEATURES
    payload["pretrain"] = {"epochs": 10, "windows_per_epoch": 10000, "patience": 3}
    agent = payload["agent"]
    agent.update(iterations=iterations, checkpoint_every=4, eval_every=2, keep_best=2)
    agent["ppo"] = PPO
    agent.setdefault("policy", {})["encoder"] = "finetune"
    payload["runs_dir"] = runs_dir
    return RunConfig.model_validate(payload)


def yardstick(config: RunConfig) -> Any:
    """The oracle of the preset's planted signal (see the module docstring)."""
    from multiagent.evaluation.episodes import SignOracle
    from multiagent.rllib.env import market_for

    _, prepared = market_for(config)
    assert prepared.synthetic is not None
    return SignOracle(np.asarray(prepared.synthetic.signal))


def scores(
    config: RunConfig, policies: list[Any], part: str, episodes: int | None = None
) -> dict[str, dict[str, Any]]:
    from multiagent.evaluation.episodes import episode_metrics, run_policies
    from multiagent.evaluation.metrics import periods_per_year
    from multiagent.rllib.env import market_for

    market, prepared = market_for(config)
    records = run_policies(config, market, prepared.views(part), policies, episodes=episodes)
    periods = periods_per_year(prepared.panel)
    return {name: episode_metrics(episodes, periods) for name, episodes in records.items()}


def one_seed(
    config: RunConfig, run_dir: Path, ratio: float, test_episodes: int, console: Console
) -> dict[str, Any]:
    from multiagent.evaluation.episodes import NetAgent
    from multiagent.rllib.agent import AgentTrainer
    from multiagent.rllib.env import market_for
    from multiagent.rllib.ray_session import init_ray
    from multiagent.training.pretrain_phase import run_pretrain

    _, prepared = market_for(config)
    oracle = yardstick(config)
    bounds = {
        "validation": scores(config, [oracle], "validation")["oracle"],
        "test": scores(config, [oracle], "test", test_episodes)["oracle"],
    }
    threshold = ratio * bounds["validation"]["sharpe"]
    encoder = run_pretrain(config, prepared, run_dir / "encoder").path
    init_ray()
    trainer = AgentTrainer(config, run_dir, encoder_path=encoder, console=console)
    reached: dict[str, Any] = {"iteration": None, "agent_steps": None}

    def watch(row: dict[str, Any]) -> None:
        if reached["iteration"] is None and row.get("val_sharpe", -np.inf) >= threshold:
            reached.update(iteration=row["iteration"], agent_steps=row["agent_steps"])

    try:
        began = time.perf_counter()
        result = trainer.train(config.agent.iterations, on_iteration=watch)
        seconds = time.perf_counter() - began
    finally:
        trainer.stop()
    assert result.policy_path is not None
    agent = NetAgent.load(str(result.policy_path), config.system)  # the best checkpoint
    test = scores(config, [agent], "test", test_episodes)[config.system]
    best = next(r for r in result.ranking if not r.get("deleted"))
    return {
        "oracle": {part: figures["sharpe"] for part, figures in bounds.items()},
        "oracle_test": bounds["test"],
        "test_sharpe": test["sharpe"],
        "test": test,
        "ratio": test["sharpe"] / bounds["test"]["sharpe"],
        "best_iteration": best["iteration"],
        "best_val_sharpe": best["val_sharpe"],
        "threshold_val_sharpe": threshold,
        "reached_iteration": reached["iteration"],
        "reached_agent_steps": reached["agent_steps"],
        "train_seconds": seconds,
        "history": [
            {k: row.get(k) for k in ("iteration", "agent_steps", "val_sharpe", "policy_entropy")}
            for row in result.history
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=24)
    parser.add_argument("--ratio", type=float, default=0.7)
    parser.add_argument(
        "--test-episodes",
        type=int,
        default=50,
        help="test episodes the agent and the oracle run (portfolio: random pools; regimes: "
        "capped by the test views); validation keeps agent.evaluation.episodes (20)",
    )
    parser.add_argument("--as-test", action="store_true", help="exit 1 when a seed misses")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--runs-dir", default=None, help="keep run folders here (default: temp)")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    import ray

    from multiagent.runs.folders import new_run_dir

    runs_dir = args.runs_dir or tempfile.mkdtemp(prefix="learn_check_presets_")
    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        config = run_config(args.preset, seed, args.iterations, runs_dir)
        console.rule(f"{args.preset}: seed {seed}")
        row = one_seed(
            config,
            new_run_dir(runs_dir, f"{args.preset}-seed{seed}"),
            args.ratio,
            args.test_episodes,
            console,
        )
        row["seed"] = seed
        row["passed"] = row["ratio"] >= args.ratio
        rows.append(row)
    ray.shutdown()
    table = Table(title=f"{args.preset} learn check: test Sharpe vs the oracle's")
    for column in ("seed", "agent", "oracle", "ratio", "in position", "trades/ep", "verdict"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(row["seed"]),
            f"{row['test_sharpe']:.2f}",
            f"{row['oracle']['test']:.2f}",
            f"{row['ratio']:.2f}",
            f"{row['test']['in_position']:.0%}",
            f"{row['test']['trades_per_episode']:.1f}",
            "PASS" if row["passed"] else "MISS",
        )
    Console().print(table)
    passed = all(row["passed"] for row in rows)
    summary = {
        "preset": args.preset,
        "ratio_required": args.ratio,
        "iterations": args.iterations,
        "test_episodes": args.test_episodes,
        "passed": passed,
        "seeds": rows,
    }
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return 0 if passed or not args.as_test else 1


if __name__ == "__main__":
    sys.exit(main())
