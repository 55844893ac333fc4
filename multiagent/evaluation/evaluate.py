"""One evaluation: agent(s) and baselines on the evaluated split, walk-forward folds and stress
scenarios, per-book and per-symbol breakdowns, gates -> a report dictionary.

Nothing here depends on the wall clock or on iteration order of unordered containers, so the
same policy, data and config give the same report, byte for byte, once serialized.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from multiagent import __version__
from multiagent.config import RunConfig
from multiagent.config.evaluation import EvaluationConfig
from multiagent.data.splits import Window
from multiagent.envs.config import CommonEnvConfig, HierarchicalEnvConfig
from multiagent.envs.market import EnvMarket, build_market
from multiagent.evaluation.backtest import Backtester, PolicyRun, universe
from multiagent.evaluation.gates import check_gates
from multiagent.evaluation.generalization import generalization_section
from multiagent.evaluation.metrics import (
    clean,
    periods_per_year,
)
from multiagent.evaluation.oracle_allocator import ORACLE_SYSTEM, OracleAllocator
from multiagent.evaluation.paired import paired_difference
from multiagent.evaluation.policies import BacktestPolicy, default_baselines
from multiagent.evaluation.report import confidence_interval
from multiagent.evaluation.robustness import (
    stress_jobs,
    stress_section,
    walk_forward_folds_after_training,
    walk_forward_section,
)
from multiagent.evaluation.scoring import SUMMARY_KEYS, policy_metrics
from multiagent.evaluation.significance import (
    report_figures,
    significance_section,
    statistic_metrics,
)
from multiagent.runs.prepare import PreparedData

SCHEMA = "multiagent.report/1"
BENCHMARK = "equal_weight"
REFERENCE_SYSTEM = "independent"
"""What the hierarchy must beat: the same symbol agents without a master."""
LEAD_ORDER = ("hierarchical", "joint", "independent")


def lead_system(names: Sequence[str]) -> str | None:
    """The system a report leads with: the hierarchy when it is there."""
    for name in LEAD_ORDER:
        if name in names:
            return name
    return names[0] if names else None


@dataclass
class Evaluation:
    report: dict[str, Any]
    runs: dict[str, PolicyRun]
    """The evaluated split's runs (for plots)."""
    timestamps: np.ndarray
    """Fill bars of the evaluated split's steps."""
    symbols: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)


class Evaluator:
    """Evaluates policies on one prepared dataset with one run config."""

    def __init__(
        self,
        config: RunConfig,
        prepared: PreparedData,
        settings: EvaluationConfig | None = None,
        *,
        console: Console | None = None,
        trained_symbols: set[str] | None = None,
    ) -> None:
        """``trained_symbols``: the symbols the policy trained on, when the evaluated data is
        not the training data (default: the symbols of ``prepared``'s training episodes)."""
        self.config = config
        self.trained_symbols = trained_symbols
        self.prepared = prepared
        self.settings = settings or config.evaluation
        self.console = console
        self.env: CommonEnvConfig = config.env
        self.market = build_market(prepared.panel, prepared.features, config.env.costs)
        self.periods = periods_per_year(prepared.panel)
        self.episode_bars = config.episodes.length
        self.names = prepared.panel.symbols
        self._progress: Progress | None = None
        self._task: Any = None

    # ------------------------------------------------------------------ public
    def window(self) -> Window:
        window: Window = getattr(self.prepared.split, self.settings.part)
        if len(window) < 2:
            raise ValueError(f"the {self.settings.part} split has fewer than 2 bars to evaluate")
        return window

    def baselines(self) -> list[BacktestPolicy]:
        b = self.settings.baselines
        seed = self.config.seed if b.random_seed is None else b.random_seed
        return default_baselines(seed, b.momentum_lookback, b.rebalance_every)

    def yardsticks(self, agents: Sequence[BacktestPolicy]) -> list[BacktestPolicy]:
        """The oracle allocator over the independent agents, when a trained master is compared
        to them on a synthetic market whose truth is known (see `oracle_allocator`)."""
        truth = self.prepared.synthetic
        independent = next((a for a in agents if a.name == REFERENCE_SYSTEM), None)
        if (
            truth is None
            or independent is None
            or not any(a.master is not None for a in agents)
            or not isinstance(self.env, HierarchicalEnvConfig)
            or any(a.name == ORACLE_SYSTEM for a in agents)
        ):
            return []
        oracle = copy.copy(independent)
        oracle.name = ORACLE_SYSTEM
        oracle.master = OracleAllocator(truth, self.env.budget_levels, self.env.n_symbols)
        return [oracle]

    def evaluate(self, agents: Sequence[BacktestPolicy], source: dict[str, Any]) -> Evaluation:
        agents = [*agents, *self.yardsticks(agents)]
        policies = [*agents, *self.baselines()]
        window = self.window()
        jobs = stress_jobs(self, window)
        folds, skipped = walk_forward_folds_after_training(self)
        windows = [window, *(f.test for f in folds), *(w for _, _, _, ws in jobs for w in ws)]
        total = sum((len(w) - 1) * len(policies) for w in windows)
        self._progress = Progress(
            TextColumn("evaluate {task.fields[what]}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=self.console,
            disable=self.console is None,
        )
        with self._progress:
            self._task = self._progress.add_task("eval", total=total, what="")
            runs = self.run_window(policies, self.market, self.env, window, "split")
            main = self.section(runs)
            generalization = generalization_section(self, runs, agents)
            walk_forward = walk_forward_section(self, policies, folds, skipped)
            stress = stress_section(self, policies, jobs, main["policies"])
        names = [a.name for a in agents]
        statistics = self._statistics(runs, names, main["policies"])
        lead = lead_system(names)
        system_gates = {
            name: check_gates(
                self.settings.gates,
                name,
                main["policies"],
                main["ranking"],
                report_figures(statistics, name),
            )
            for name in names
        }
        panel = self.prepared.panel
        times = pd.DatetimeIndex(panel.timestamps)
        report = {
            "schema": SCHEMA,
            "version": __version__,
            "source": source,
            "seed": self.config.seed,
            "data": {
                "fingerprint": panel.fingerprint(),
                "symbols": list(panel.symbols),
                "bars": panel.n_bars,
                "periods_per_year": self.periods,
            },
            "window": {
                "part": self.settings.part,
                "start_bar": window.start,
                "stop_bar": window.stop,
                "first_fill": str(times[window.start + 1]),
                "last_fill": str(times[window.stop - 1]),
                "steps": len(window) - 1,
                "universe": [
                    self.names[r] for r in universe(self.market, window, self.settings.min_coverage)
                ],
            },
            "env": {
                "costs": self.env.costs.model_dump(mode="json"),
                "execution": self.env.execution.model_dump(mode="json"),
                "limits": self.env.limits.model_dump(mode="json"),
                "scheme": self.env.scheme.kind,
                "slots_per_book": self.config.env.n_symbols,
            },
            "agents": names,
            "lead": lead,
            "systems": {
                a.name: {"master": a.master.name if a.master is not None else None} for a in agents
            },
            "benchmark": BENCHMARK,
            **main,
            "comparison": self._compare(runs, names, walk_forward),
            "generalization": generalization,
            "walk_forward": walk_forward,
            "stress": stress,
            "statistics": statistics,
            "gates": system_gates[lead] if lead is not None else None,
            "system_gates": system_gates,
        }
        steps = np.arange(window.start + 1, window.stop)
        return Evaluation(clean(report), runs, panel.timestamps[steps], self.names)

    # ------------------------------------------------------------------ internals
    def _statistics(
        self, runs: dict[str, PolicyRun], agents: Sequence[str], rows: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The overfitting statistics (`significance`); each agent's metrics gain theirs."""
        settings = self.settings.statistics
        baselines = [n for n, run in runs.items() if run.kind == "baseline"]
        if not settings.enabled or not agents or not baselines:
            return None
        selection = self.config.selection
        section = significance_section(
            {name: run.returns() for name, run in runs.items()},
            agents,
            baselines,
            {name: rows[name]["metrics"]["sharpe"] for name in baselines},
            self.periods,
            seed=self.config.seed,
            replications=settings.replications,
            level=settings.level,
            trials=selection.trials,
            trial_sharpe_variance=selection.sharpe_variance,
            selection_source=selection.source,
        )
        for agent in agents:
            rows[agent]["metrics"].update(statistic_metrics(section, agent))
        return section

    def _compare(
        self,
        runs: dict[str, PolicyRun],
        names: Sequence[str],
        walk_forward: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """Each system against ``independent`` on the same books and bars: paired per-bar
        differences with a stationary block bootstrap interval, and per walk-forward fold."""
        if REFERENCE_SYSTEM not in names or len(names) < 2:
            return None
        reference = runs[REFERENCE_SYSTEM].returns()
        out: dict[str, Any] = {"reference": REFERENCE_SYSTEM, "systems": {}}
        folds = (walk_forward or {}).get("folds") or []
        for name in names:
            if name == REFERENCE_SYSTEM:
                continue
            entry = paired_difference(
                runs[name].returns(),
                reference,
                self.periods,
                seed=self.config.seed,
                replications=self.settings.bootstrap_replications,
            )
            mine = runs[name]
            base = runs[REFERENCE_SYSTEM]
            episodes = {
                "mean_episode_max_drawdown": [
                    policy_metrics(r, self.periods, episode_bars=self.episode_bars)[
                        "mean_episode_max_drawdown"
                    ]
                    for r in (mine, base)
                ]
            }
            a, b = episodes["mean_episode_max_drawdown"]
            entry["metrics"]["mean_episode_max_drawdown"] = {
                "a": a,
                "b": b,
                "difference": a - b,
                "relative": (a - b) / b if b > 1e-12 else None,
            }
            if folds:
                deltas = [
                    f["policies"][name]["sharpe"] - f["policies"][REFERENCE_SYSTEM]["sharpe"]
                    for f in folds
                ]
                entry["walk_forward_sharpe_difference"] = confidence_interval(deltas)
            out["systems"][name] = entry
        return out

    def run_window(
        self,
        policies: Sequence[BacktestPolicy],
        market: EnvMarket,
        env: CommonEnvConfig,
        window: Window,
        what: str,
    ) -> dict[str, PolicyRun]:
        progress, task = self._progress, self._task
        if progress is not None:
            progress.update(task, what=what)

        def advance(n: int) -> None:
            if progress is not None:
                progress.advance(task, n)

        tester = Backtester(
            market, env, n_slots=self.config.env.n_symbols, min_coverage=self.settings.min_coverage
        )
        return tester.run(policies, window, on_step=advance)

    def section(self, runs: dict[str, PolicyRun]) -> dict[str, Any]:
        """Metrics of every policy (buy-and-hold also per symbol, as ALL_<symbol>) + ranking."""
        benchmark = runs[BENCHMARK].returns() if BENCHMARK in runs else None
        rows: dict[str, dict[str, Any]] = {}
        for name, run in runs.items():
            rows[name] = {
                "kind": run.kind,
                "layout": run.layout,
                "metrics": policy_metrics(
                    run, self.periods, benchmark=benchmark, episode_bars=self.episode_bars
                ),
            }
            if run.layout == "single":
                for book, row in enumerate(run.symbols[:, 0]):
                    rows[f"ALL_{self.names[row]}"] = {
                        "kind": "baseline",
                        "layout": "single",
                        "metrics": policy_metrics(
                            run, self.periods, [book], benchmark, episode_bars=self.episode_bars
                        ),
                    }
        ranked = sorted(rows, key=lambda n: (-rows[n]["metrics"]["sharpe"], n))
        ranking = [
            {"rank": i + 1, "policy": name, "kind": rows[name]["kind"]}
            | {k: rows[name]["metrics"][k] for k in SUMMARY_KEYS}
            for i, name in enumerate(ranked)
        ]
        return {"policies": rows, "ranking": ranking}
