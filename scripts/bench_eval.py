"""Benchmark the evaluation path on the bundled default data.

1. One backtest of the test split: an untrained greedy network (the shape of the trained
   symbol policy: encoder-sized MLP) + every baseline, batched through one core per layout.
2. The same policies one at a time (one core each), to show what stacking them buys.
3. The whole `Evaluator` (split + walk-forward folds + 6 stress scenarios + breakdowns) with one
   system (the independent agents), then with the three systems a pipeline run trains:
   independent, hierarchical (+ a master network of the trained master's input and output
   shapes, deciding every ``communication_interval`` bars) and joint, plus the paired
   block-bootstrap comparison.
4. What the overfitting statistics cost (`evaluation.significance`: bootstrap intervals, paired
   differences to every baseline, PSR / DSR, SPA + StepM per baseline): the 3-system evaluation
   with `evaluation.statistics` on and off, best of ``--repeats``.
5. One validation score (`score_policy`, what ranks every checkpoint during training).

Usage: python scripts/bench_eval.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from torch import nn

from multiagent.config import load_preset
from multiagent.envs.market import build_market
from multiagent.envs.master import master_observation_dim
from multiagent.envs.observations import ObservationBuilder
from multiagent.evaluation.backtest import Backtester
from multiagent.evaluation.evaluate import Evaluator
from multiagent.evaluation.master_policy import MasterNetPolicy
from multiagent.evaluation.metrics import periods_per_year
from multiagent.evaluation.policies import GreedyNetPolicy, default_baselines
from multiagent.evaluation.scoring import score_policy
from multiagent.runs.prepare import prepare


class TinyNet(nn.Module):
    def __init__(self, dim: int, actions: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, 64), nn.Tanh(), nn.Linear(64, actions))

    def forward(
        self, obs: torch.Tensor, mask: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.body(obs).masked_fill(mask < 0.5, -1e9), state


class TinyMaster(nn.Module):
    """The master's signature: (observation, slot windows) -> N x L + 3 logits."""

    def __init__(self, obs_dim: int, market_dim: int, outputs: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(obs_dim + market_dim, 64), nn.Tanh(), nn.Linear(64, outputs)
        )

    def forward(self, obs: torch.Tensor, market: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([obs, market], dim=-1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    config = load_preset("default")
    prepared = prepare(config)
    market = build_market(prepared.panel, prepared.features, config.env.costs)
    dim = ObservationBuilder(market, config.env.observation).dim
    n_actions = {"discrete3": 3, "discrete7": 7, "limit5": 5}[config.env.scheme.kind]
    net = TinyNet(dim, n_actions).eval()

    def policies() -> list:  # type: ignore[type-arg]
        return [GreedyNetPolicy(net, 0), *default_baselines(config.seed)]

    window = prepared.split.test
    tester = Backtester(market, config.env, n_slots=config.env.n_symbols)
    steps = len(window) - 1
    for label, batched in (
        ("batched (one core per layout)", True),
        ("one policy at a time", False),
    ):
        times = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            if batched:
                runs = tester.run(policies(), window)
            else:
                runs = {}
                for policy in policies():
                    runs.update(tester.run([policy], window))
            times.append(time.perf_counter() - began)
        slot_steps = sum(r.symbols.size for r in runs.values()) * steps
        best = min(times)
        print(
            f"{label}: {len(runs)} policies x {steps} bars: {best:.2f}s best of {args.repeats} "
            f"({slot_steps / best:,.0f} slot-steps/s, {len(runs) * steps / best:,.0f} "
            "policy-bars/s)"
        )
    n = config.env.n_symbols
    observer = ObservationBuilder(market, config.env.observation)
    obs_dim = master_observation_dim(market.n_features, n)
    market_dim = n * observer.feature_dim
    nvec = [len(config.env.budget_levels)] * n + [3]
    masters = [TinyMaster(obs_dim, market_dim, sum(nvec)).eval() for _ in range(2)]

    def systems(count: int) -> list[GreedyNetPolicy]:
        out = [GreedyNetPolicy(net, 0, "independent")]
        for name, master in zip(("hierarchical", "joint"), masters, strict=True):
            out.append(GreedyNetPolicy(net, 0, name, master=MasterNetPolicy(master, nvec)))
        return out[:count]

    for count in (1, 3):
        began = time.perf_counter()
        evaluation = Evaluator(config, prepared).evaluate(systems(count), {"path": "bench"})
        seconds = time.perf_counter() - began
        folds = len(evaluation.report["walk_forward"]["folds"])
        scenarios = len(evaluation.report["stress"]["scenarios"]) - 1
        print(
            f"full evaluation, {count} system(s) (split + {folds} walk-forward folds + "
            f"{scenarios} stress scenarios, {len(evaluation.report['ranking'])} ranked rows"
            f"{', paired comparison' if count > 1 else ''}): {seconds:.2f}s"
        )
    on = config.evaluation
    off = on.model_copy(update={"statistics": on.statistics.model_copy(update={"enabled": False})})
    timed: dict[str, float] = {}
    for label, settings in (("off", off), ("on", on)):
        times = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            Evaluator(config, prepared, settings).evaluate(systems(3), {"path": "bench"})
            times.append(time.perf_counter() - began)
        timed[label] = min(times)
    print(
        f"full evaluation, 3 systems, statistics off / on ({on.statistics.replications} "
        f"resamples): {timed['off']:.2f}s / {timed['on']:.2f}s (+{timed['on'] - timed['off']:.2f}s)"
    )
    periods = periods_per_year(prepared.panel)
    for system in systems(3)[::2]:
        times = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            score_policy(system, market, config, prepared.split.validation, periods)
            times.append(time.perf_counter() - began)
        print(
            f"validation score of {system.name} ({len(prepared.split.validation) - 1} bars): "
            f"{min(times):.2f}s best of {args.repeats}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB; numpy {np.__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
