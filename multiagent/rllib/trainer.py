"""The PPO loop around RLlib that every phase runs: checkpoints, evaluation, keep-best, resume.

`PhaseTrainer` is the loop; `symbols.SymbolTrainer` is phase 2 (`multiagent train symbols`,
with the entropy guard); `hierarchy.HierarchyTrainer` phases 3 and 4. Run folder layout, per phase
(``symbols``, ``master``, ``joint``)::

    RUN/config.yaml                     the run config (resume reads it back)
    RUN/PHASE/metrics.jsonl             one row per iteration (telemetry, losses, eval)
    RUN/PHASE/checkpoints/iter_00010/   algo/ (RLlib checkpoint) + trainer_state.json
    RUN/PHASE/ranking.json              checkpoints ranked by validation Sharpe, with their
                                        validation figures (paths relative to RUN)
    RUN/PHASE/policy.pt (+ .json)       TorchScript export of the best checkpoint's symbol policy
    RUN/PHASE/master.pt (+ .json)       ... and of its master (phases 3 and 4)

Every checkpoint is scored on the validation split by the backtester (`evaluation.scoring.
score_policy`, the engine every report uses: greedy actions, the whole split in books of N
symbols; the master neutral in phase 2, the trained master from phase 3); between checkpoints
``eval_every`` adds evaluations to the log. Only the ``keep_best`` best checkpoints by
validation Sharpe and the latest one (what ``--resume`` continues from) are kept.

Resuming restores the algorithm (weights, optimizer moments, step counters that drive the
schedules) and the loop's own state (iteration, entropy boost, rankings); episodes in flight at
the checkpoint are not stored, so sampling restarts from fresh episodes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from multiagent.config import RunConfig
from multiagent.config.phases import PhaseSettings
from multiagent.envs.hierarchical_env import HierarchicalTradingEnv
from multiagent.errors import ConfigError
from multiagent.evaluation.metrics import periods_per_year
from multiagent.evaluation.policies import GreedyNetPolicy, MasterDecider
from multiagent.evaluation.scoring import backtest_policy, run_metrics
from multiagent.reproducibility import deterministic_torch
from multiagent.rllib.checkpoints import SYMBOL_MODULE, module_path
from multiagent.rllib.env import market_for
from multiagent.rllib.metrics_row import flat_result
from multiagent.rllib.policy import InferencePolicy, export_torchscript
from multiagent.rllib.ranking import (
    PhaseResult,
    RankedCheckpoint,
    best_checkpoint,
    best_validation,
)
from multiagent.rllib.resources import RESOURCES_FILE, resources_record, runner_health
from multiagent.runs.folders import (
    append_jsonl,
    recorded_path,
    run_path,
    save_run_config,
    write_atomic,
    write_json,
)

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm import Algorithm

    from multiagent.rllib.curriculum import CurriculumCallbacks
    from multiagent.tracking import Tracker

STATE_FILE = "trainer_state.json"


class PhaseTrainer:
    """The loop of one PPO phase; subclasses build ``self.algo`` and say how to evaluate."""

    phase = "symbols"
    system = "independent"
    """The system the phase trains (see `evaluation.sources`): what validation scores."""
    modules: tuple[str, ...] = (SYMBOL_MODULE,)
    symbol_id = SYMBOL_MODULE
    """The symbol module's id in ``algo`` (``SYMBOL_VECTOR_MODULE`` in a vector-env phase 2)."""
    algo: Algorithm

    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        settings: PhaseSettings,
        *,
        console: Console | None = None,
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.settings = settings
        self.dir = run_dir / self.phase
        self.console = console
        self.market, self.prepared = market_for(config)
        self.periods = periods_per_year(self.prepared.panel)
        self.iteration = 0
        self.ranking: list[RankedCheckpoint] = []
        self.history: list[dict[str, Any]] = []
        self.latest: Path | None = None
        self.validation: dict[str, float] = {}
        self.validation_returns: np.ndarray | None = None
        """Per-bar returns of the latest validation evaluation (None before the first)."""
        self.tracker: Tracker | None = None
        """MLflow run every iteration's row goes to (best effort; see `tracking`)."""
        deterministic_torch()

    @property
    def curriculum(self) -> CurriculumCallbacks | None:
        """The phase's curriculum callback (None when the run has no curriculum for it)."""
        from multiagent.rllib.curriculum import curriculum_callbacks

        return curriculum_callbacks(self.algo)

    # hooks ---------------------------------------------------------------------------
    def master_policy(self) -> MasterDecider | None:
        """The master evaluations run with (None: equal budgets, neutral mode)."""
        return None

    def greedy_system(self) -> GreedyNetPolicy:
        """The live policies as the backtester runs them: greedy symbol actions + master."""
        net = InferencePolicy(self.algo.get_module(self.symbol_id)).eval()
        return GreedyNetPolicy(net, net.state_size, self.system, master=self.master_policy())

    def evaluate(self, part: str = "validation") -> dict[str, Any]:
        """The current system scored on ``part`` (validation by default) by the backtester
        (`score_policy`); a validation run's per-bar returns are kept in
        ``validation_returns`` (a sweep's overfitting statistics read them)."""
        window = getattr(self.prepared.split, part)
        run = backtest_policy(self.greedy_system(), self.market, self.config, window)
        if part == "validation":
            self.validation_returns = run.returns()
        return run_metrics(run, self.config, self.periods)

    def add_metrics(self, row: dict[str, Any]) -> None:
        """Add figures derived from the iteration's row (the master's entropy fraction)."""

    def after_iteration(self, row: dict[str, Any]) -> None:
        """Adjust the run after an iteration (the symbol phase's entropy guard)."""

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def status(self, row: dict[str, Any]) -> str:
        return f"reward {row['reward_mean']:.2f}"

    # checkpoints ---------------------------------------------------------------------
    def restore(self, checkpoint: Path) -> None:
        state_file = checkpoint / STATE_FILE
        if not state_file.is_file() or not (checkpoint / "algo").is_dir():
            raise ConfigError(
                f"{checkpoint} is not a {self.phase} checkpoint (no {STATE_FILE}/algo)"
            )
        state = json.loads(state_file.read_text())
        self.restore_algo(checkpoint / "algo", state)
        self.ranking = list(state["ranking"])
        self.latest = checkpoint
        self._truncate_log()

    def restore_algo(self, algo_dir: Path, state: dict[str, Any]) -> None:
        """Weights, optimizer moments and step counters from ``algo_dir``, the loop's state from
        ``state``; the learning rates stay this trainer's configured ones."""
        self.algo.restore_from_path(str(algo_dir.resolve()))
        self.algo.learner_group.foreach_learner(lambda learner: learner.apply_learning_rates())
        self.iteration = int(state["iteration"])
        self.load_extra_state(state)
        curriculum = self.curriculum
        if state.get("curriculum") is not None:
            if curriculum is None:
                raise ConfigError(
                    f"{algo_dir.parent} was trained with a curriculum this run does not have"
                )
            curriculum.load_curriculum_state(state["curriculum"], self.algo)

    def _truncate_log(self) -> None:
        """Drop logged rows past the restored iteration (a killed run logged them, then died
        before its next checkpoint): the resumed run logs those iterations again."""
        log = self.dir / "metrics.jsonl"
        if not log.is_file():
            return
        rows = [line for line in log.read_text().splitlines() if line.strip()]
        kept = [line for line in rows if json.loads(line).get("iteration", 0) <= self.iteration]
        if len(kept) != len(rows):
            write_atomic(log, "".join(line + "\n" for line in kept))

    def save(self, validation: dict[str, Any]) -> Path:
        """Checkpoint the algorithm, rank it by validation Sharpe, prune, then record the state.

        The checkpoint is written into a hidden temp folder beside its final name and renamed
        once complete (with its state file): a run killed mid-save leaves only the temp folder,
        which `--resume` neither picks nor trips over."""
        checkpoints = self.dir / "checkpoints"
        path = checkpoints / f"iter_{self.iteration:05d}"
        if path.exists():
            raise ConfigError(f"{path} exists; refusing to overwrite a checkpoint")
        checkpoints.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".partial-{path.name}-", dir=checkpoints))
        try:
            self.algo.save_to_path(str((partial / "algo").resolve()))
            val_sharpe = float(validation["sharpe"])
            entry: RankedCheckpoint = {
                "checkpoint": recorded_path(self.run_dir, path),
                "iteration": self.iteration,
                "val_sharpe": val_sharpe,
                "validation": dict(validation),
            }
            ranking = sorted(
                [*(RankedCheckpoint(**r) for r in self.ranking), entry],
                key=lambda r: (-r["val_sharpe"], -r["iteration"]),
            )
            doomed = self._doomed(ranking, path)
            curriculum = self.curriculum
            write_json(
                partial / STATE_FILE,
                {
                    "iteration": self.iteration,
                    "ranking": ranking,
                    "curriculum": curriculum.curriculum_state() if curriculum is not None else None,
                    **self.extra_state(),
                },
            )
            os.rename(partial, path)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        self.latest = path
        self.ranking = ranking
        for folder in doomed:
            shutil.rmtree(folder, ignore_errors=True)
        write_json(self.dir / "ranking.json", self.ranking)
        return path

    def _doomed(self, ranking: list[RankedCheckpoint], latest: Path) -> list[str]:
        """Mark the checkpoints past ``keep_best`` (never ``latest``) deleted in ``ranking``;
        -> their folders, to delete once the new checkpoint is in place."""
        keep = {r["checkpoint"] for r in ranking[: self.settings.keep_best]}
        keep.add(recorded_path(self.run_dir, latest))
        doomed = []
        for entry in ranking[self.settings.keep_best :]:
            if entry["checkpoint"] not in keep and not entry.get("deleted"):
                entry["deleted"] = True
                doomed.append(str(run_path(self.run_dir, entry["checkpoint"])))
        return doomed

    # loop ----------------------------------------------------------------------------
    def train(
        self,
        iterations: int,
        *,
        checkpoint_every: int | None = None,
        eval_every: int | None = None,
        on_iteration: Callable[[dict[str, Any]], None] | None = None,
    ) -> PhaseResult:
        checkpoint_every = checkpoint_every or self.settings.checkpoint_every
        eval_every = eval_every or self.settings.eval_every
        self.dir.mkdir(parents=True, exist_ok=True)
        save_run_config(self.config, self.run_dir)
        progress = Progress(
            TextColumn(f"train {self.phase}"),
            BarColumn(),
            TextColumn("iter {task.completed:.0f}/{task.total:.0f} {task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=self.console is None,
        )
        with progress:
            task = progress.add_task("train", total=iterations, completed=self.iteration, status="")
            while self.iteration < iterations:
                checkpoint = (self.iteration + 1) % checkpoint_every == 0 or (
                    self.iteration + 1 == iterations
                )
                evaluate = checkpoint or (self.iteration + 1) % eval_every == 0
                row = self.iterate(evaluate=evaluate, checkpoint=checkpoint)
                if on_iteration is not None:
                    on_iteration(row)
                status = self.status(row)
                if "val_sharpe" in row:
                    status += f" val Sharpe {row['val_sharpe']:.2f}"
                progress.update(task, completed=self.iteration, status=status)
        policy_path = self.export_best()
        return PhaseResult(
            self.run_dir,
            self.iteration,
            self.history,
            self.ranking,
            self.latest,
            policy_path,
            best_validation(self.ranking),
        )

    def iterate(self, *, evaluate: bool, checkpoint: bool = False) -> dict[str, Any]:
        """One PPO iteration, then (``evaluate``) a validation evaluation and (``checkpoint``)
        a ranked checkpoint; the row is appended to the log, the history and the tracker."""
        self.dir.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        if not (self.dir / RESOURCES_FILE).is_file():
            write_json(self.dir / RESOURCES_FILE, resources_record(self.algo))
        result = self.algo.train()
        self.iteration += 1
        row = flat_result(result, self.iteration, time.perf_counter() - began, self.modules)
        row.update(runner_health(self.algo))
        self.add_metrics(row)
        self.after_iteration(row)
        if evaluate or checkpoint:
            self.validation = {
                k: float(v) for k, v in self.evaluate().items() if isinstance(v, int | float)
            }
            row.update({f"val_{k}": v for k, v in self.validation.items()})
            curriculum = self.curriculum
            if curriculum is not None and curriculum.curriculum is not None:
                # Promotion and fall-back read the validation metric: the next iteration
                # trains in the stage this decides (``curriculum_next_stage``).
                curriculum.report_validation(self.algo, row)
                row["curriculum_next_stage"] = curriculum.curriculum.stage_index
        if checkpoint:
            self.save(self.validation)
        append_jsonl(self.dir / "metrics.jsonl", row)
        self.history.append(row)
        if self.tracker is not None:
            self.tracker.log_metrics(row, step=self.iteration)
        return row

    def best_module(self, module_id: str) -> Any:
        """``module_id`` of the best-ranked checkpoint (the live one when that is it)."""
        best = best_checkpoint(self.ranking, self.run_dir)
        if best is None or self.latest is None or best.resolve() == self.latest.resolve():
            return self.algo.get_module(module_id)
        from ray.rllib.core.rl_module.rl_module import RLModule

        return RLModule.from_checkpoint(str(module_path(best, module_id).resolve()))

    def export_best(self) -> Path | None:
        """TorchScript of the best-ranked checkpoint's symbol policy."""
        return export_torchscript(
            self.best_module(self.symbol_id), self.dir / "policy.pt", self.example_obs
        )

    def example_env(self) -> HierarchicalTradingEnv:
        """A reset env on the training views: example inputs for the exports' traces."""
        env = HierarchicalTradingEnv(self.market, self.prepared.train_views, self.config.env)
        env.reset(seed=self.config.seed)
        return env

    @property
    def example_obs(self) -> np.ndarray:
        env = self.example_env()
        return env.core.observe()[0]

    def stop(self) -> None:
        self.algo.stop()
