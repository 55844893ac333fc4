"""`multiagent train pipeline`: pretrain -> symbols -> master -> joint, one resumable program.

1. ``pretrain``: the shared encoder, masked next-step prediction (``RUN/encoder``);
2. ``symbols``: PPO on the shared symbol policy, master seat neutral (``RUN/symbols``);
3. ``master``: MAPPO on the master over the frozen symbol actors (``RUN/master``);
4. ``joint``: everything learns, the symbol actors at a low rate (``RUN/joint``).

Each PPO phase starts from the best checkpoint (validation Sharpe) of the one before it.
``RUN/pipeline.json`` records every phase's status, output, best checkpoint and that
checkpoint's own validation figures, and time (paths relative to the run folder, so a run
folder can be moved); it is rewritten after each phase, so a killed pipeline knows where it stood:
``--resume`` skips finished phases and continues a running one from its latest checkpoint.
``--from-phase`` reruns from a phase on an existing run; the outputs it replaces are moved to
``RUN/archive/PHASE-N`` first (never deleted). ``--to-phase`` stops early, so one phase can run
alone. After the joint phase the three systems are compared on the test split by the
backtester every report uses (`evaluation.hierarchy`, ``RUN/hierarchy/comparison.md``).

The entrypoint is Ray-native: it joins ``RAY_ADDRESS`` when set (``ray job submit``), otherwise it
starts a private local Ray. Before that, `checked_pipeline` checks everything it can (the config
against the run folder, ``pipeline.json``, the data and the envs: `training.preflight`), so a
mistake costs neither Ray's start nor a pretraining; ``--resume`` needs the ``pipeline.json``
it continues.

Why one module of ~450 lines: the phases, their archive and their nested MLflow runs all rewrite
the one ``pipeline.json`` record, and keeping its writers together is what makes a killed
pipeline resumable; reading the record lives in `run_state`, each phase's work in the
adapter's trainers.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from multiagent.config import RunConfig
from multiagent.errors import ConfigError
from multiagent.runs.folders import (
    free_path,
    recorded_path,
    run_path,
    save_run_config,
    write_json,
)
from multiagent.runs.prepare import PreparedData, prepare
from multiagent.tracking import Tracker, end_status, resolve_tracking_uri, run_tags
from multiagent.training.run_state import (
    DATA_FILE,
    PIPELINE_FILE,
    latest_checkpoint,
    phase_range,
    read_state,
    run_config_to_use,
)

EXPERIMENT = "multiagent-training"
PHASE_DIRS = {
    "pretrain": "encoder",
    "symbols": "symbols",
    "master": "master",
    "joint": "joint",
    "agent": "agent",
}


@dataclass
class PipelineResult:
    run_dir: Path
    phases: dict[str, dict[str, Any]]
    comparison: dict[str, Any] | None

    @property
    def symbol_policy(self) -> Path | None:
        """The phase-2 symbol policy export (the independent agents), or a single-agent
        system's policy, when trained."""
        path = self.phases.get("symbols", self.phases.get("agent", {})).get("policy")
        return run_path(self.run_dir, path) if path else None


class Pipeline:
    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        *,
        prepared: PreparedData | None = None,
        console: Console | None = None,
        tracking_uri: str | None = None,
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.console = console
        self.tracking_uri = tracking_uri
        self.tracker: Tracker | None = None
        self._prepared = prepared
        path = run_dir / PIPELINE_FILE
        self.state: dict[str, Any] = read_state(path) if path.is_file() else {"phases": {}}

    @property
    def prepared(self) -> PreparedData:
        if self._prepared is None:
            self._prepared = prepare(self.config)
        return self._prepared

    @property
    def phases(self) -> dict[str, dict[str, Any]]:
        phases: dict[str, dict[str, Any]] = self.state["phases"]
        return phases

    def _write(self) -> None:
        write_json(self.run_dir / PIPELINE_FILE, self.state)

    def _say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False)

    # orchestration -------------------------------------------------------------------
    def run(
        self,
        phases: list[str],
        *,
        resume: bool = False,
        on_phase: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> PipelineResult:
        save_run_config(self.config, self.run_dir)
        self._write_data_record()
        self._check_inputs(phases[0])
        if not resume:
            self._archive(phases)
        self.tracker = self._start_tracking()
        try:
            return self._run(phases, resume, on_phase)
        except BaseException as error:
            self.tracker.finish(end_status(error))
            raise

    def _run(
        self,
        phases: list[str],
        resume: bool,
        on_phase: Callable[[str, dict[str, Any]], None] | None,
    ) -> PipelineResult:
        for phase in phases:
            record = self.phases.get(phase, {})
            if resume and record.get("status") == "done":
                self._say(f"[{phase}] done earlier, skipped")
                continue
            began = time.perf_counter()
            continuing = resume and record.get("status") == "running"
            out = self.run_dir / PHASE_DIRS[phase]
            if continuing and (phase == "pretrain" or latest_checkpoint(out) is None):
                # Nothing to continue from (pretraining keeps no checkpoint): start it over,
                # keeping the partial output in the archive.
                self._archive([phase])
                continuing = False
            self.phases[phase] = {"status": "running", "started_from": record.get("started_from")}
            self._write()
            self._say(f"[{phase}] {'resuming' if continuing else 'starting'}")
            outcome = getattr(self, f"_run_{phase}")(continuing)
            outcome.update(status="done", seconds=round(time.perf_counter() - began, 2))
            self.phases[phase] = outcome
            self._write()
            if on_phase is not None:
                on_phase(phase, outcome)
        order = self.config.phases
        for later in order[order.index(phases[-1]) + 1 :]:
            stale = self.phases.get(later)
            if stale is not None and stale.get("status") == "done" and not resume:
                stale["status"] = "stale"  # built on the outputs this run replaced
                stale["note"] = f"an earlier phase was rerun; rerun from {later}"
        self._write()
        comparison = None
        if phases[-1] == "joint" and not self.config.seal_test:
            comparison = self._compare()
        assert self.tracker is not None
        self.tracker.log_artifact(self.run_dir / PIPELINE_FILE)
        self.tracker.log_artifact(self.run_dir / "hierarchy")
        self.tracker.finish()
        return PipelineResult(self.run_dir, dict(self.phases), comparison)

    def _write_data_record(self) -> None:
        """``RUN/data.json``: the market the run trained on, with every note its loading made
        (auto-fixes, ``--repair``'s bars made missing, row by row), kept beside the config and
        logged with it."""
        panel = self.prepared.panel
        write_json(
            self.run_dir / DATA_FILE,
            {
                "source": panel.source,
                "fingerprint": panel.fingerprint(),
                "symbols": list(panel.symbols),
                "bars": panel.n_bars,
                "notes": list(panel.notes),
            },
        )

    # tracking ------------------------------------------------------------------------
    def _start_tracking(self) -> Tracker:
        """The pipeline's MLflow run (each phase a nested run); a continued pipeline goes on
        in the run it started. ``none`` switches tracking off."""

        def save(record: dict[str, str]) -> None:
            self.state["mlflow"] = record  # a new store's record drops the old phase runs
            self._write()

        return Tracker.attach_or_start(
            resolve_tracking_uri(self.tracking_uri, self.run_dir),
            EXPERIMENT,
            self.run_dir.name,
            record=self.state.get("mlflow"),
            save=save,
            run_dir=self.run_dir,
            tags=self._tags,
            params=self.config.model_dump(mode="json"),
            artifacts=[self.run_dir / "config.yaml", self.run_dir / DATA_FILE],
            console=self.console,
        )

    def _tags(self) -> dict[str, str]:
        return run_tags(
            self.config.model_dump(mode="json"),
            seed=self.config.seed,
            data_fingerprint=self.prepared.panel.fingerprint(),
        )

    def _phase_tracker(self, phase: str, continuing: bool) -> Tracker:
        """A nested run for one phase (continued when the phase is resumed)."""
        if self.tracker is None:
            return Tracker.disabled()
        known = self.state.get("mlflow", {}).get("phases", {}).get(phase)

        def save(record: dict[str, str]) -> None:
            runs = self.state.setdefault("mlflow", {}).setdefault("phases", {})
            runs[phase] = record["run_id"]
            self._write()

        return self.tracker.nested(
            EXPERIMENT,
            f"{self.run_dir.name}/{phase}",
            record={"uri": self.tracker.uri, "run_id": known} if continuing else None,
            save=save,
            tags=lambda: {**self._tags(), "phase": phase},
            params=self.config.model_dump(mode="json"),
        )

    def check(self, phases: list[str], resume: bool) -> None:
        """Everything checkable before Ray starts: the phase before the first one finished, and
        the data and envs of the phases still to run (`preflight.check_run`)."""
        from multiagent.training.preflight import check_run

        self._check_inputs(phases[0])
        todo = [
            p for p in phases if not (resume and self.phases.get(p, {}).get("status") == "done")
        ]
        self._prepared = check_run(self.config, todo, self._prepared)

    def _check_inputs(self, first: str) -> None:
        """A phase needs the phase before it finished (its output is the starting point)."""
        order = self.config.phases
        index = order.index(first)
        if index == 0:
            return
        before = order[index - 1]
        if before == "pretrain" and self.config.first_policy.encoder == "scratch":
            return
        if self.phases.get(before, {}).get("status") != "done":
            raise ConfigError(
                f"phase {first} starts from phase {before}'s output, but {self.run_dir} has no "
                f"finished {before} phase (see {self.run_dir / PIPELINE_FILE})"
            )

    def _archive(self, phases: list[str]) -> None:
        """Move outputs of phases about to run aside: a rerun never overwrites them."""
        for phase in phases:
            out = self.run_dir / PHASE_DIRS[phase]
            if not out.exists():
                continue
            archive = self.run_dir / "archive"
            archive.mkdir(exist_ok=True)
            target = free_path(archive / phase, first=1)
            if target == archive / phase:  # archived phases are always numbered
                target = archive / f"{phase}-1"
            shutil.move(str(out), str(target))
            self._say(f"[{phase}] earlier output moved to {target}")
            self.phases.pop(phase, None)

    # phases --------------------------------------------------------------------------
    def _run_pretrain(self, continuing: bool) -> dict[str, Any]:
        from multiagent.training.pretrain_phase import run_pretrain

        out = self.run_dir / PHASE_DIRS["pretrain"]
        if self.config.first_policy.encoder == "scratch":
            section = "symbols" if self.config.system == "hierarchy" else "agent"
            return {"output": None, "note": f"{section}.policy.encoder is scratch: no pretraining"}
        output = run_pretrain(self.config, self.prepared, out, console=self.console)
        result = output.result
        best = result.history[result.best_epoch - 1]
        with self._phase_tracker("pretrain", continuing) as tracker:
            for epoch, row in enumerate(result.history, start=1):
                tracker.log_metrics(row, step=epoch)
            tracker.log_artifact(out)
        return {
            "output": self._recorded(output.path),
            "best_epoch": result.best_epoch,
            "validation": {"loss": best["val_loss"], "next_return": best["val_next_return"]},
        }

    def _run_symbols(self, continuing: bool) -> dict[str, Any]:
        from multiagent.rllib.symbols import SymbolTrainer

        encoder = self.run_dir / PHASE_DIRS["pretrain"] / "encoder.pt"
        scratch = self.config.symbols.policy.encoder == "scratch"
        trainer = SymbolTrainer(
            self.config,
            self.run_dir,
            encoder_path=None if scratch else encoder,
            console=self.console,
            resuming=continuing,
        )
        return self._train(trainer, "symbols", continuing)

    def _run_agent(self, continuing: bool) -> dict[str, Any]:
        from multiagent.rllib.agent import AgentTrainer

        encoder = self.run_dir / PHASE_DIRS["pretrain"] / "encoder.pt"
        scratch = self.config.first_policy.encoder == "scratch"
        trainer = AgentTrainer(
            self.config,
            self.run_dir,
            encoder_path=None if scratch else encoder,
            console=self.console,
            resuming=continuing,
        )
        return self._train(trainer, "agent", continuing)

    def _run_master(self, continuing: bool) -> dict[str, Any]:
        return self._run_hierarchy("master", "symbols", continuing)

    def _run_joint(self, continuing: bool) -> dict[str, Any]:
        return self._run_hierarchy("joint", "master", continuing)

    def _run_hierarchy(self, phase: str, source: str, continuing: bool) -> dict[str, Any]:
        from multiagent.rllib.hierarchy import HierarchyTrainer

        start = run_path(self.run_dir, self.phases[source]["best_checkpoint"])
        trainer = HierarchyTrainer(
            self.config,
            self.run_dir,
            phase,  # type: ignore[arg-type]
            init_from=None if continuing else start,
            console=self.console,
        )
        outcome = self._train(trainer, phase, continuing)
        outcome["started_from"] = self._recorded(start)
        return outcome

    def _recorded(self, path: Path | None) -> str | None:
        """A path as ``pipeline.json`` holds it: relative to the run folder (movable runs)."""
        return None if path is None else recorded_path(self.run_dir, Path(path))

    def _train(self, trainer: Any, phase: str, continuing: bool) -> dict[str, Any]:
        trainer.tracker = tracker = self._phase_tracker(phase, continuing)
        try:
            if continuing:
                latest = latest_checkpoint(self.run_dir / phase)
                if latest is not None:
                    trainer.restore(latest)
                    self._say(f"[{phase}] resumed at iteration {trainer.iteration} ({latest})")
            result = trainer.train(trainer.settings.iterations)
        except BaseException as error:
            tracker.finish(end_status(error))
            raise
        finally:
            trainer.stop()
        phase_dir = self.run_dir / phase
        for name in ("metrics.jsonl", "ranking.json", "init.json", "policy.json", "resources.json"):
            tracker.log_artifact(phase_dir / name)
        if result.policy_path is not None:
            tracker.log_policy_model(result.policy_path)
        tracker.log_metrics(
            {f"final_val_{k}": v for k, v in result.validation.items()}, result.iteration
        )
        tracker.finish()
        best = result.best_checkpoint
        return {
            "output": phase,
            "iterations": result.iteration,
            "best_checkpoint": self._recorded(best),
            "best_iteration": next(
                (r["iteration"] for r in result.ranking if not r.get("deleted")), None
            ),
            "policy": self._recorded(result.policy_path),
            "validation": result.validation,
        }

    def _compare(self) -> dict[str, Any]:
        """The systems the run trained, on the test split, by the report's engine."""
        import multiagent.rllib  # noqa: F401  (registers RLlib checkpoint folders with evaluation)
        from multiagent.evaluation.hierarchy import comparison_from_report, write_comparison
        from multiagent.evaluation.run import evaluate_systems
        from multiagent.evaluation.sources import resolve

        evaluation = evaluate_systems(
            resolve(self.run_dir),
            self.config,
            settings=self.config.evaluation.system_comparison(),
            shown_path=".",
            prepared=self.prepared,
        )
        comparison = comparison_from_report(evaluation.report)
        write_comparison(comparison, self.run_dir / "hierarchy")
        self.state["comparison"] = comparison
        self._write()
        return comparison


def run_pipeline(
    config: RunConfig | None,
    run_dir: Path,
    *,
    from_phase: str | None = None,
    to_phase: str | None = None,
    resume: bool = False,
    prepared: PreparedData | None = None,
    console: Console | None = None,
    tracking_uri: str | None = None,
) -> PipelineResult:
    """Run the phases ``from_phase..to_phase``; on ``resume`` the config is the run folder's.
    Ray starts only once `checked_pipeline` found nothing wrong."""
    from multiagent.rllib.ray_session import init_ray

    pipeline, phases = checked_pipeline(
        config,
        run_dir,
        from_phase=from_phase,
        to_phase=to_phase,
        resume=resume,
        prepared=prepared,
        console=console,
        tracking_uri=tracking_uri,
    )
    init_ray()
    return pipeline.run(phases, resume=resume)


def checked_pipeline(
    config: RunConfig | None,
    run_dir: Path,
    *,
    from_phase: str | None = None,
    to_phase: str | None = None,
    resume: bool = False,
    prepared: PreparedData | None = None,
    console: Console | None = None,
    tracking_uri: str | None = None,
) -> tuple[Pipeline, list[str]]:
    """The pipeline of ``run_dir`` and the phases to run, every check passed that needs no Ray:
    the config against the run folder's, the phase names, ``pipeline.json`` (which ``resume``
    needs), the data and the envs. Nothing is written."""
    config = run_config_to_use(config, run_dir, continuing=resume or from_phase is not None)
    phases = phase_range(from_phase, to_phase, config.phases)
    if resume and not (run_dir / PIPELINE_FILE).is_file():
        raise ConfigError(
            f"{run_dir} has no {PIPELINE_FILE}, so --resume does not know where it stood: "
            f"start a new run, or redo phases with --run-dir {run_dir} --from-phase PHASE "
            "(earlier outputs are archived)",
            file=str(run_dir / PIPELINE_FILE),
        )
    pipeline = Pipeline(
        config, run_dir, prepared=prepared, console=console, tracking_uri=tracking_uri
    )
    pipeline.check(phases, resume)
    return pipeline, phases
