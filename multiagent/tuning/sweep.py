"""`multiagent tune`: a Ray Tune sweep over one training phase, PBT or Optuna, then the verdict.

Sweep folder (``RUNS/sweeps/NAME`` unless ``--out``)::

    sweep.yaml            the sweep file as given          sweep.json   state (MLflow parent run)
    base/                 the phases before the target, trained once, sealed (unless init_from)
    tune/                 Tune's experiment (results, checkpoints; what --resume restores)
    trials/TRIAL/fold_K/  each trial's training logs (metrics.jsonl, config.yaml)
    optuna.db             the Optuna study (search: optuna, default storage)
    pbt/                  PBT's perturbation log (pbt_global.txt, perturbations.jsonl)
    trials/TRIAL/validation_returns.npy   the per-bar validation returns behind its objective
    trials.json           every trial: sampled values, objective, status
    best.yaml             the chosen config (also exported to configs/best/NAME-DATE.yaml),
                          with the search it came from (`selection`: trials, Sharpe variance)
    final_test.json       the chosen config's one evaluation on the test split
    pbo.json, pbo.png     the probability of backtest overfitting over the trials (CSCV)
    summary.json, .md     the choice, PBO, DSR, and the validation best next to its test figure

The objective is computed on validation (walk-forward folds inside train + validation, see
`folds`); every trial's config is sealed, so trials cannot read the test period. The test split
is opened once, here, after the search has chosen, to evaluate the chosen trial's checkpoint.
What the choice is worth (PBO, the DSR of the choice, the search's N and V) is `selection`'s.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from multiagent.config import RunConfig
from multiagent.errors import ConfigError, MultiagentError
from multiagent.runs.folders import read_json, run_path, write_json
from multiagent.tracking import OFF, Tracker, end_status, flatten, resolve_tracking_uri, run_tags
from multiagent.tuning.config import SweepConfig, load_sweep, trial_settings
from multiagent.tuning.outcome import export_best, final_evaluation, log_outcome
from multiagent.tuning.selection import SelectionStatistics, selection_statistics, write_pbo
from multiagent.tuning.space import apply_overrides
from multiagent.tuning.summary import sweep_summary, write_summary

SWEEP_FILE = "sweep.json"


class SweepFailed(MultiagentError):
    """Every trial of a sweep failed: there is nothing to choose."""


PHASES_BEFORE = {"symbols": "pretrain", "master": "symbols", "joint": "master", "agent": "pretrain"}


@dataclass
class SweepResult:
    directory: Path
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    best_config: Path | None
    final_test: dict[str, Any] | None


def sweep_dir(sweep: SweepConfig, base: RunConfig, out: Path | None) -> Path:
    return out if out is not None else Path(base.runs_dir) / "sweeps" / sweep.name


def run_sweep(
    sweep_path: Path,
    *,
    out: Path | None = None,
    resume: bool = False,
    tracking_uri: str | None = None,
    best_dir: Path = Path("configs/best"),
    console: Console | None = None,
) -> SweepResult:
    from multiagent.rllib.ray_session import init_ray
    from multiagent.tuning.tuner import pin_trial_resources

    sweep, base = load_sweep(sweep_path)
    base = base.model_copy(update={"resources": pin_trial_resources(base.resources)})
    directory = sweep_dir(sweep, base, out)
    state_path = directory / SWEEP_FILE
    if resume and not state_path.is_file():
        raise ConfigError(f"{directory} holds no sweep to resume (no {SWEEP_FILE})")
    if not resume and directory.exists() and any(directory.iterdir()):
        raise ConfigError(
            f"{directory} already holds a sweep: continue it with --resume, or choose another "
            "folder with --out (nothing is overwritten)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = read_json(state_path) if resume else {"name": sweep.name}
    if resume and state.get("sweep") != sweep.model_dump(mode="json"):
        raise ConfigError(f"{sweep_path} differs from the sweep {directory} was started with")
    state["sweep"] = sweep.model_dump(mode="json")
    shutil.copyfile(sweep_path, directory / "sweep.yaml")
    say = _sayer(console)

    init_ray()
    uri = resolve_tracking_uri(tracking_uri, directory)
    start, n_bars, fingerprint = _prepare_base(sweep, base, directory, say, uri)
    parent = _parent_tracker(sweep, base, uri, directory, state, fingerprint, console)
    state.setdefault("tracking_uri", uri)
    state.setdefault("parent_run_id", None)
    state["status"] = "running"
    write_json(state_path, state)
    parent.log_artifact(directory / "sweep.yaml")

    from multiagent.tuning.tuner import fit

    constants = {
        "name": sweep.name,
        "directory": str(directory.resolve()),
        "base": base.model_dump(mode="json"),
        "target": sweep.target,
        "phase_settings": trial_settings(sweep, base),
        "metric": sweep.metric,
        "folds": sweep.folds,
        "n_bars": n_bars,
        "start": start,
        "tracking": (
            {
                "uri": uri,
                "experiment": experiment_name(sweep),
                "parent_run_id": parent.run_id,
                "data_fingerprint": fingerprint,
            }
            if parent.run_id
            else None
        ),
    }
    say(f"[sweep] {sweep.search} over {', '.join(sweep.space)}: {sweep.num_samples} trials")
    try:
        results = fit(sweep, constants, directory, resume=resume)
        trials = _trial_table(results, sweep)
        write_json(directory / "trials.json", trials)
        best = _best(trials, sweep)
    except BaseException as error:
        parent.log_artifact(directory / "trials.json")
        parent.finish(end_status(error))
        state["status"] = "failed"
        write_json(state_path, state)
        raise
    best_config = None
    final = None
    stats = selection_statistics(
        trials, best, directory, source=f"sweep {sweep.name} ({dt.date.today().isoformat()})"
    )
    write_pbo(stats, directory)
    say(_statistics_line(stats))
    if best is not None:
        chosen = apply_overrides(base, best["config"], source=f"sweep {sweep.name} best trial")
        # The search travels with the choice: later reports deflate its Sharpe for it.
        chosen = chosen.model_copy(update={"selection": stats.record})
        best_config = export_best(chosen, sweep, best, directory, best_dir)
        say(f"[sweep] best trial {best['trial_id']}: objective {best['objective']:.4f}")
        say(f"[sweep] chosen config written to {best_config}")
        if sweep.final_evaluation and best.get("checkpoint"):
            final = final_evaluation(chosen, sweep, Path(best["checkpoint"]), directory)
            say(
                f"[sweep] test split (opened once): {sweep.metric} "
                f"{final['metrics'].get(sweep.metric, float('nan')):.3f} vs validation "
                f"{best['objective']:.3f} (Sharpe {final['metrics']['sharpe']:.3f})"
            )
    summary = sweep_summary(
        name=sweep.name,
        search=sweep.search,
        target=sweep.target,
        metric=sweep.metric,
        best=best,
        final=final,
        stats=stats,
        total_trials=len(trials),
    )
    write_summary(directory, summary)
    log_outcome(parent, directory, best, final, trials, stats)
    state["status"] = "done"
    write_json(state_path, state)
    return SweepResult(directory, trials, best, best_config, final)


def _statistics_line(stats: SelectionStatistics) -> str:
    pbo = (
        f"PBO {stats.pbo.pbo:.3f}"
        if stats.pbo is not None
        else f"PBO skipped ({stats.pbo_skipped})"
    )
    dsr = f"DSR of the best {stats.dsr:.3f}" if stats.dsr is not None else "no DSR"
    return f"[sweep] {stats.trials} trials: {pbo}; {dsr} (summary.md)"


def experiment_name(sweep: SweepConfig) -> str:
    return f"sweep-{sweep.name}"


def _sayer(console: Console | None) -> Any:
    def say(text: str) -> None:
        if console is not None:
            console.print(text, markup=False, highlight=False)

    return say


def _prepare_base(
    sweep: SweepConfig, base: RunConfig, directory: Path, say: Any, uri: str | None = None
) -> tuple[dict[str, str | None], int, str]:
    """What trials start from (the encoder or the previous phase's best checkpoint), the bar
    count the folds are cut from, and the data fingerprint; trains the phases before the
    target once, sealed, unless ``init_from`` names a run that has them. The base pipeline
    logs to the sweep's store ``uri`` (None: tracking off, as the sweep's own runs)."""
    from multiagent.runs.prepare import prepare
    from multiagent.training.pipeline import PHASE_DIRS, Pipeline

    sealed = base.model_copy(update={"seal_test": True})
    before = PHASES_BEFORE[sweep.target]
    if sweep.init_from is not None:
        run_dir = Path(sweep.init_from)
        phases = (
            read_json(run_dir / "pipeline.json")["phases"]
            if (run_dir / "pipeline.json").is_file()
            else {}
        )
        if phases.get(before, {}).get("status") != "done":
            raise ConfigError(
                f"init_from {run_dir}: no finished {before} phase to start {sweep.target} trials "
                "from (see its pipeline.json)"
            )
    else:
        run_dir = directory / "base"
        needed = ["pretrain", "symbols", "master"][
            : ["pretrain", "symbols", "master"].index(before) + 1
        ]
        if needed == ["pretrain"] and base.first_policy.encoder == "scratch":
            needed = []
        if needed:
            say(f"[sweep] training {', '.join(needed)} once (sealed) into {run_dir}")
            pipeline = Pipeline(sealed, run_dir, console=None, tracking_uri=uri or OFF)
            phases = pipeline.run(needed, resume=True).phases
        else:
            phases = {}
    start: dict[str, str | None] = {"encoder": None, "checkpoint": None}
    if before == "pretrain":
        encoder = run_dir / PHASE_DIRS["pretrain"] / "encoder.pt"
        start["encoder"] = str(encoder.resolve()) if encoder.is_file() else None
    else:
        start["checkpoint"] = str(run_path(run_dir, phases[before]["best_checkpoint"]).resolve())
    prepared = prepare(sealed)
    n_bars = _outer_bars(base)
    return start, n_bars, prepared.panel.fingerprint()


def _outer_bars(base: RunConfig) -> int:
    """Bars of the full panel: the outer split (and so the folds) is drawn on them. Only the
    count leaves this function."""
    from multiagent.runs.prepare import load_data

    if base.data.synthetic is not None:
        from multiagent.data.synthetic import generate_market

        return generate_market(base.data.synthetic).panel.n_bars
    return load_data(base.data).n_bars


def _parent_tracker(
    sweep: SweepConfig,
    base: RunConfig,
    uri: str | None,
    directory: Path,
    state: dict[str, Any],
    fingerprint: str,
    console: Console | None,
) -> Tracker:
    """The sweep's MLflow run, its record in ``sweep.json`` (``tracking_uri``,
    ``parent_run_id``): a resumed sweep continues it; the trials nest under it."""

    def save(record: dict[str, str]) -> None:
        state.update(tracking_uri=record["uri"], parent_run_id=record["run_id"])

    return Tracker.attach_or_start(
        uri,
        experiment_name(sweep),
        sweep.name,
        record={"uri": state.get("tracking_uri"), "run_id": state.get("parent_run_id")},
        save=save,
        run_dir=directory,
        tags=lambda: {
            **run_tags(base.model_dump(mode="json"), seed=base.seed, data_fingerprint=fingerprint),
            "sweep": sweep.name,
            "search": sweep.search,
            "target": sweep.target,
        },
        params=flatten(sweep.model_dump(mode="json"), "sweep."),
        console=console,
    )


def _trial_table(results: Any, sweep: SweepConfig) -> list[dict[str, Any]]:
    trials = []
    for result in results:
        metrics = result.metrics or {}
        config = dict(result.config or {})
        checkpoint = None
        try:
            best = result.get_best_checkpoint("objective", sweep.mode)
        except Exception:  # a trial with no scored checkpoint
            best = None
        best = best or result.checkpoint
        if best is not None:
            checkpoint = best.path
        objective = metrics.get("objective", float("nan"))
        trials.append(
            {
                "trial_id": metrics.get("trial_id"),
                "config": {k: _plain(v) for k, v in config.items()},
                "objective": float(objective) if objective is not None else float("nan"),
                "iterations": metrics.get("training_iteration", 0),
                # PPO iterations behind the final weights (a PBT clone inherits its donor's)
                "trained_iterations": metrics.get("fold_iteration", 0),
                "status": "error" if result.error else "done",
                "error": str(result.error) if result.error else None,
                "checkpoint": checkpoint,
                "path": result.path,
            }
        )
    return trials


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _best(trials: list[dict[str, Any]], sweep: SweepConfig) -> dict[str, Any] | None:
    scored = [t for t in trials if t["status"] == "done" and math.isfinite(t["objective"])]
    if not scored:
        failed = [t for t in trials if t["status"] == "error"]
        if failed:
            raise SweepFailed(
                f"no trial finished: {len(failed)} of {len(trials)} failed; the first error:\n"
                f"{failed[0]['error']}\n(trial folders: {failed[0]['path']})"
            )
        return None
    sign = 1 if sweep.mode == "max" else -1
    return max(scored, key=lambda t: sign * t["objective"])
