"""One Tune trial: one training phase of one sampled config, fold after fold, sealed.

The trial's run config is the sweep's base with the sampled keys set, the phase's length and
evaluation cadence from the sweep, and ``seal_test`` forced on, whatever the space says: its
data ends with its validation window, so nothing a trial runs can read the test period.

Each Tune step is one PPO iteration. With walk-forward folds the trial trains fold 0 for the
phase's iterations, then fold 1 from the same starting point, and so on; the reported
``objective`` is the mean over folds of each fold's latest validation score (the current fold's
so far), so trials are compared at equal stages. A Tune checkpoint is the RLlib algorithm plus
the trial's state (fold, finished folds' scores, entropy boost); PBT's exploit restores a
donor's checkpoint under the mutated config, whose learning rates are then re-applied.

Beside the objective the trial keeps the per-bar returns of the validation backtests behind
it (each fold's latest evaluation, folds in order) in ``trials/TRIAL/validation_returns.npy``
(`selection.save_trial_returns`); its checkpoints carry them, so a PBT clone keeps its
donor's until it evaluates itself. The sweep's overfitting statistics read them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray import tune

from multiagent.config import RunConfig
from multiagent.errors import ConfigError
from multiagent.rllib.trainer import PhaseTrainer
from multiagent.runs.folders import free_path, read_json, save_run_config, write_json
from multiagent.tracking import Tracker, run_tags
from multiagent.tuning.folds import fold_configs
from multiagent.tuning.selection import save_trial_returns
from multiagent.tuning.space import apply_overrides

STATE_FILE = "trial_state.json"
TRACKING_FILE = "mlflow_run.json"
RETURNS_STATE = "validation_returns.npz"


def trial_config(
    config: dict[str, Any], constants: dict[str, Any]
) -> tuple[RunConfig, dict[str, Any]]:
    """(run config, sampled values) of a trial: its Tune config is the sampled values alone;
    the sweep's constants come through `tune.with_parameters`."""
    sampled = dict(config)
    base = RunConfig.model_validate(constants["base"])
    run = apply_overrides(base, sampled, source=f"sweep {constants['name']} trial")
    target = constants["target"]
    settings = getattr(run, target).model_copy(update=constants["phase_settings"])
    return run.model_copy(update={target: settings, "seal_test": True}), sampled


def build_trainer(
    config: RunConfig, target: str, run_dir: Path, start: dict[str, str | None]
) -> PhaseTrainer:
    """The phase trainer of one fold, initialized like the pipeline would (encoder or the
    previous phase's best checkpoint of the sweep's base run)."""
    if target == "agent":
        from multiagent.rllib.agent import AgentTrainer

        encoder = start["encoder"]
        return AgentTrainer(config, run_dir, encoder_path=Path(encoder) if encoder else None)
    if target == "symbols":
        from multiagent.rllib.symbols import SymbolTrainer

        encoder = start.get("encoder")
        return SymbolTrainer(config, run_dir, encoder_path=Path(encoder) if encoder else None)
    from multiagent.rllib.hierarchy import HierarchyTrainer

    checkpoint = start.get("checkpoint")
    if checkpoint is None:
        raise ConfigError(f"a {target} trial needs the previous phase's checkpoint")
    phase: Any = target
    return HierarchyTrainer(config, run_dir, phase, init_from=Path(checkpoint))


class PhaseTrainable(tune.Trainable):
    """A Tune class trainable around `PhaseTrainer` (see the module docstring)."""

    def setup(self, config: dict[str, Any], constants: dict[str, Any] | None = None) -> None:
        torch.set_num_threads(1)
        if constants is None:
            raise ValueError("PhaseTrainable needs the sweep's constants (tune.with_parameters)")
        self.constants = constants
        self.trial_dir = Path(constants["directory"]) / "trials" / self.trial_id
        self.trial_dir.mkdir(parents=True, exist_ok=True)
        self.run_config, self.sampled = trial_config(config, constants)
        self.metric = self.constants["metric"]
        self.folds = fold_configs(
            self.run_config, int(self.constants["n_bars"]), self.constants["folds"]
        )
        self.fold = 0
        self.fold_scores: list[float] = []
        self.score = float("nan")
        self.fold_returns: list[np.ndarray] = []
        self.returns: np.ndarray | None = None
        """Per-bar returns of the current fold's latest validation (what ``score`` scored)."""
        self.trainer: PhaseTrainer | None = None
        self.tracker = self._tracker()
        self._build(0)

    # folds -------------------------------------------------------------------------------
    @property
    def iterations(self) -> int:
        return int(self.constants["phase_settings"]["iterations"])

    def _build(self, fold: int) -> None:
        if self.trainer is not None:
            self.trainer.stop()
        self.fold = fold
        # A PBT exploit or a failure restarts the trial under a new actor: each incarnation
        # writes its own folder, so the earlier ones' logs stay as they were.
        run_dir = free_path(self.trial_dir / f"fold_{fold}", sep=".")
        save_run_config(self.folds[fold], run_dir)
        self.trainer = build_trainer(
            self.folds[fold], self.constants["target"], run_dir, self.constants["start"]
        )
        self.score = float("nan")
        self.returns = None

    def step(self) -> dict[str, Any]:
        assert self.trainer is not None
        last_fold = self.fold == len(self.folds) - 1
        if self.trainer.iteration >= self.iterations:
            if last_fold:
                # Restored at its very end (a PBT exploit of a finished donor): nothing is
                # left to train; report the donor's standing and stop.
                summary = self._summary(self.trainer)
                self._keep_returns(self.trainer, summary["objective"])
                return {**summary, "done": True}
            self.fold_scores.append(self.score)  # the fold is finished: next one
            if self.returns is not None:
                self.fold_returns.append(self.returns)
            self._build(self.fold + 1)
        trainer = self.trainer
        assert trainer is not None
        evaluate = (trainer.iteration + 1) % trainer.settings.eval_every == 0
        last = trainer.iteration + 1 == self.iterations
        row = trainer.iterate(evaluate=evaluate or last)
        if f"val_{self.metric}" in row:
            self.score = float(row[f"val_{self.metric}"])
            if trainer.validation_returns is not None:
                self.returns = np.array(trainer.validation_returns, dtype=float)
        done = last and self.fold == len(self.folds) - 1
        report = {k: v for k, v in row.items() if isinstance(v, (int, float))}
        report.update(self._summary(trainer))
        if f"val_{self.metric}" in row:
            self._keep_returns(trainer, report["objective"])
        if self.tracker is not None:
            self.tracker.log_metrics(report, step=self.iteration + 1)
        report["done"] = done
        return report

    def _summary(self, trainer: PhaseTrainer) -> dict[str, Any]:
        """The objective (mean over folds of each fold's latest validation score) and where
        the trial stands."""
        scores = [*self.fold_scores, self.score]
        finite = [s for s in scores if math.isfinite(s)]
        return {
            "objective": sum(finite) / len(finite) if finite else float("nan"),
            f"val_{self.metric}": self.score,
            "fold": self.fold,
            "fold_iteration": trainer.iteration,
            **{f"hp/{k}": v for k, v in self.sampled.items() if isinstance(v, (int, float))},
        }

    def _keep_returns(self, trainer: PhaseTrainer, objective: float) -> None:
        """The returns behind ``objective`` into the trial folder (every fold's, once each
        fold has been evaluated)."""
        if self.returns is None or len(self.fold_returns) != self.fold:
            return
        save_trial_returns(
            self.trial_dir,
            [*self.fold_returns, self.returns],
            {
                "trial_id": self.trial_id,
                "periods": trainer.periods,
                "metric": self.metric,
                "objective": objective,
                "fold_scores": [*self.fold_scores, self.score],
                "iteration": trainer.iteration,
            },
        )

    # checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, checkpoint_dir: str) -> None:
        assert self.trainer is not None
        self.trainer.algo.save_to_path(str((Path(checkpoint_dir) / "algo").resolve()))
        kept: dict[str, Any] = {f"fold_{i}": r for i, r in enumerate(self.fold_returns)}
        if self.returns is not None:
            kept["current"] = self.returns
        np.savez(Path(checkpoint_dir) / RETURNS_STATE, **kept)
        state = {
            "fold": self.fold,
            "fold_scores": self.fold_scores,
            "score": self.score,
            "iteration": self.trainer.iteration,
            "target": self.constants["target"],
            **self.trainer.extra_state(),
        }
        write_json(Path(checkpoint_dir) / STATE_FILE, state)

    def load_checkpoint(self, checkpoint: str | None) -> None:
        if checkpoint is None:
            return
        path = Path(checkpoint)
        state = read_json(path / STATE_FILE)
        if int(state["fold"]) != self.fold:
            self._build(int(state["fold"]))
        assert self.trainer is not None
        self.trainer.restore_algo(path / "algo", state)
        self.fold_scores = [float(s) for s in state["fold_scores"]]
        self.score = float(state["score"])
        self.fold_returns, self.returns = [], None
        if (path / RETURNS_STATE).is_file():  # (checkpoints written before it was kept: none)
            with np.load(path / RETURNS_STATE, allow_pickle=False) as kept:
                folds = sorted((k for k in kept.files if k.startswith("fold_")), key=_index)
                self.fold_returns = [np.array(kept[k]) for k in folds]
                self.returns = np.array(kept["current"]) if "current" in kept.files else None

    def cleanup(self) -> None:
        if self.trainer is not None:
            self.trainer.stop()
        if self.tracker is not None:
            self.tracker.finish()

    # tracking ------------------------------------------------------------------------------
    def _tracker(self) -> Tracker | None:
        """This trial's MLflow run, nested under the sweep's; a trial restarted by PBT or after
        a failure continues its own run (its record is kept in the trial folder)."""
        tracking = self.constants.get("tracking")
        if not tracking:
            return None
        return Tracker.attach_or_start(
            tracking["uri"],
            tracking["experiment"],
            self.trial_name,
            record=self.trial_dir / TRACKING_FILE,
            run_dir=Path(self.constants["directory"]),
            parent_run_id=tracking["parent_run_id"],
            tags=lambda: {
                **run_tags(
                    self.run_config.model_dump(mode="json"),
                    seed=self.run_config.seed,
                    data_fingerprint=tracking.get("data_fingerprint"),
                ),
                "trial_id": self.trial_id,
                "sweep": self.constants["name"],
            },
            params={
                **self.run_config.model_dump(mode="json"),
                **{f"sampled.{k}": v for k, v in self.sampled.items()},
            },
        )


def _index(key: str) -> int:
    return int(key.split("_")[1])
