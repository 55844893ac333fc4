"""The training commands: `multiagent pretrain`, `multiagent train ...`, and the main job's
training phases. Ray is imported inside the commands only, so `multiagent data ...` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from multiagent.cli.common import console, fail, run_config_from
from multiagent.errors import ConfigError, MultiagentError

if TYPE_CHECKING:
    from multiagent.config import RunConfig
    from multiagent.runs.prepare import PreparedData

train_app = typer.Typer(help="Train agents on Ray (RLlib PPO).", no_args_is_help=True)


def _encoder_in(run_dir: Path) -> Path | None:
    path = run_dir / "encoder" / "encoder.pt"
    return path if path.is_file() else None


def _print_pretrain(output: Any) -> None:
    result = output.result
    last = result.history[result.best_epoch - 1]
    console.print(
        f"encoder: {output.path} (best epoch {result.best_epoch}/{len(result.history)}, "
        f"val loss {last['val_loss']:.4f}, next-return loss {last['val_next_return']:.3f} "
        f"vs {last['val_next_return_no_skill']:.3f} predicting 0, "
        f"{result.n_fit_windows:,} fit windows, {result.seconds:.1f}s)",
        highlight=False,
    )


def _print_training(result: Any) -> None:
    table = Table(title="Symbol policy checkpoints, ranked by validation Sharpe")
    for column in ("rank", "iteration", "val Sharpe", "checkpoint"):
        table.add_column(column)
    for rank, entry in enumerate(r for r in result.ranking if not r.get("deleted")):
        table.add_row(
            str(rank + 1),
            str(entry["iteration"]),
            f"{entry['val_sharpe']:.2f}",
            entry["checkpoint"],
        )
    console.print(table)
    val = result.validation
    if val:
        console.print(
            f"best checkpoint on validation (backtest, greedy, master neutral): Sharpe "
            f"{val['sharpe']:.2f}, mean episode return {val['mean_episode_return']:+.2%}, "
            f"max DD {val['max_drawdown']:.1%}, turnover {val['turnover']:.2%} of equity per "
            f"bar, in position {val['exposure']:.0%} of slot-bars",
            highlight=False,
        )
    console.print(f"exported policy: {result.policy_path}", highlight=False)


def pretrain(
    config: Annotated[Path | None, typer.Option(help="Run config YAML.")] = None,
    preset: Annotated[str, typer.Option(help="Embedded preset when no --config.")] = "default",
    run_dir: Annotated[
        Path | None, typer.Option(help="Run folder (default: a new one under runs_dir).")
    ] = None,
) -> None:
    """Pretrain the shared encoder (masked next-step prediction, training split only)."""
    from multiagent.runs.folders import new_run_dir, save_run_config
    from multiagent.runs.prepare import prepare
    from multiagent.training.pretrain_phase import run_pretrain

    try:
        run_config, name = run_config_from(config, preset)
        with console.status("loading data and building features..."):
            prepared = prepare(run_config)
        folder = run_dir or new_run_dir(run_config.runs_dir, name)
        folder.mkdir(parents=True, exist_ok=True)
        save_run_config(run_config, folder)
        output = run_pretrain(run_config, prepared, folder / "encoder", console=console)
    except (MultiagentError, ValueError) as error:
        fail(error)
        return
    _print_pretrain(output)


@train_app.command("symbols")
def train_symbols_command(
    config: Annotated[Path | None, typer.Option(help="Run config YAML.")] = None,
    preset: Annotated[str, typer.Option(help="Embedded preset when no --config.")] = "default",
    run_dir: Annotated[
        Path | None,
        typer.Option(help="Run folder (e.g. the one `pretrain` wrote); default: a new one."),
    ] = None,
    encoder: Annotated[
        Path | None, typer.Option(help="Pretrained encoder (default: RUN/encoder/encoder.pt).")
    ] = None,
    iterations: Annotated[int | None, typer.Option(min=1, help="PPO iterations.")] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(min=1, help="Save a checkpoint every K iterations (symbols.checkpoint_every)"),
    ] = None,
    eval_every: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Score the policy on the validation split every K iterations, besides every "
            "checkpoint (symbols.eval_every).",
        ),
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Checkpoint folder (RUN/symbols/checkpoints/iter_N).")
    ] = None,
    curriculum: Annotated[
        Path | None, typer.Option(help="Curriculum file (curricula/*.yaml) for a new run.")
    ] = None,
) -> None:
    """Train the shared symbol policy with RLlib PPO on the training split."""
    from multiagent.config import with_curriculum_file
    from multiagent.rllib.symbols import train_symbols
    from multiagent.runs.folders import new_run_dir

    try:
        if resume is not None:
            folder = resume.resolve().parents[2]
            run_config = None
        else:
            run_config, name = run_config_from(config, preset)
            if curriculum is not None:
                run_config = with_curriculum_file(run_config, curriculum)
            folder = run_dir or new_run_dir(run_config.runs_dir, name)
        result = train_symbols(
            run_config,
            folder,
            encoder_path=encoder or _encoder_in(folder),
            resume=resume,
            iterations=iterations,
            checkpoint_every=checkpoint_every,
            eval_every=eval_every,
            console=console,
        )
    except (MultiagentError, ValueError) as error:
        fail(error)
        return
    _print_training(result)


def _checked_new_run(
    run_config: RunConfig, run_dir: Path | None, *, to_phase: str | None, overwrite: bool
) -> PreparedData:
    """A new run's checks, before its folder is made: the folder asked for is free, the phases
    exist, the data loads and the envs fit it (`training.preflight`). A mistake costs neither
    Ray's start nor a pretraining, and ``--overwrite`` deletes nothing for a run that fails."""
    from multiagent.runs.folders import check_run_dir_free
    from multiagent.training.preflight import check_run
    from multiagent.training.run_state import phase_range

    if run_dir is not None:
        check_run_dir_free(run_dir, overwrite=overwrite)
    phases = phase_range(None, to_phase, run_config.phases)
    with console.status("loading data, building features, checking the envs..."):
        return check_run(run_config, phases)


def _new_run_folder(
    run_config: RunConfig, name: str, run_dir: Path | None, *, overwrite: bool
) -> tuple[Path, bool]:
    """The new run's folder, and whether this call created it (only such a folder is removed
    when the run fails to start; a user's own folder never is)."""
    from multiagent.runs.folders import claim_run_dir, new_run_dir

    if run_dir is None:
        return new_run_dir(run_config.runs_dir, name), True
    existed = run_dir.exists()
    return claim_run_dir(run_dir, overwrite=overwrite), not existed


@train_app.command("pipeline")
def train_pipeline_command(
    config: Annotated[Path | None, typer.Option(help="Run config YAML.")] = None,
    preset: Annotated[str, typer.Option(help="Embedded preset when no --config.")] = "default",
    run_dir: Annotated[
        Path | None,
        typer.Option(help="Run folder; an existing one with --from-phase (default: a new one)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Run folder to continue: finished phases are skipped, a running one "
            "goes on from its latest checkpoint."
        ),
    ] = None,
    from_phase: Annotated[
        str | None, typer.Option(help="First phase: pretrain, symbols, master or joint.")
    ] = None,
    to_phase: Annotated[str | None, typer.Option(help="Last phase (default: joint).")] = None,
    curriculum: Annotated[
        Path | None, typer.Option(help="Curriculum file (curricula/*.yaml) for a new run.")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="MLflow tracking URI (http://... or sqlite:///...); default: a SQLite store "
            "in the run folder; 'none' switches tracking off."
        ),
    ] = None,
    runs_dir: Annotated[
        Path | None, typer.Option(help="Where new run folders are made (overrides the config).")
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(help="Delete what --run-dir holds and start a new run there."),
    ] = False,
) -> None:
    """Pretrain the encoder, train the symbol policy (PPO), the master (MAPPO, symbol actors
    frozen), then fine-tune both; each phase checkpointed and resumable."""
    from multiagent.cli.main_job import print_pipeline
    from multiagent.config import with_curriculum_file
    from multiagent.config.phases import PHASES
    from multiagent.training.pipeline import run_pipeline
    from multiagent.training.run_state import discard_unstarted

    prepared, created = None, False
    try:
        for name in (from_phase, to_phase):  # a bad name fails before any folder is made
            if name is not None and name not in (*PHASES, "agent"):
                raise ConfigError(
                    f"no phase {name!r}; the phases are {', '.join(PHASES)} (hierarchy) or "
                    "pretrain, agent (portfolio, regimes, sessions)"
                )
        if resume is not None:
            folder, run_config = resume, None
        elif from_phase is not None:
            if run_dir is None:
                raise ConfigError(
                    "--from-phase continues an existing run: give its folder with --run-dir"
                )
            folder, run_config = run_dir, None
            if config is not None:
                run_config, _ = run_config_from(config, preset)
        else:
            run_config, name = run_config_from(config, preset)
            if curriculum is not None:
                run_config = with_curriculum_file(run_config, curriculum)
            if runs_dir is not None:
                run_config = run_config.model_copy(update={"runs_dir": str(runs_dir)})
            prepared = _checked_new_run(run_config, run_dir, to_phase=to_phase, overwrite=overwrite)
            folder, created = _new_run_folder(run_config, name, run_dir, overwrite=overwrite)
        console.print(f"run folder: {folder}", highlight=False)
        try:
            result = run_pipeline(
                run_config,
                folder,
                from_phase=from_phase,
                to_phase=to_phase,
                resume=resume is not None,
                prepared=prepared,
                console=console,
                tracking_uri=tracking_uri,
            )
        except BaseException:
            if created:  # a start that failed leaves no folder to --overwrite next time
                discard_unstarted(folder)
            raise
    except (MultiagentError, ValueError) as error:
        fail(error)
        return
    print_pipeline(result)
