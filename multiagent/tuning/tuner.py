"""The Ray Tune objects of a sweep: search space, PBT or Optuna + ASHA, the Tuner itself.

Traps this module handles (see ``docs/ray_notes.md``): PBT must not prune checkpoints (a donor's
checkpoint would vanish under it), ``synch`` PBT makes exploits happen at the same iteration
for the whole population, and OptunaSearch takes an Optuna storage object, not a URL.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune import CheckpointConfig, FailureConfig, PlacementGroupFactory
from ray.tune import RunConfig as TuneRunConfig

from multiagent.config.phases import ResourceConfig
from multiagent.errors import ConfigError
from multiagent.runs.folders import write_atomic
from multiagent.tuning.config import Distribution, SweepConfig
from multiagent.tuning.state_backup import StateBackup, repair_state
from multiagent.tuning.trainable import PhaseTrainable

EXPERIMENT = "tune"


def domain(distribution: Distribution) -> Any:
    kind = distribution.kind
    if kind == "uniform":
        return tune.uniform(*distribution.uniform)  # type: ignore[misc]
    if kind == "loguniform":
        return tune.loguniform(*distribution.loguniform)  # type: ignore[misc]
    if kind == "randint":
        return tune.randint(*distribution.randint)  # type: ignore[misc]
    return tune.choice([list(c) if isinstance(c, tuple) else c for c in distribution.choice or ()])


class ClipToSpace:
    """PBT's explore multiplies values by 0.8 or 1.2 with no regard for the space: clip each
    perturbed value back into its range (an aggressive-mode multiplier must stay above 1,
    a probability below 1). Integers stay integers."""

    def __init__(self, sweep: SweepConfig) -> None:
        self.bounds = {
            key: getattr(d, d.kind) for key, d in sweep.space.items() if d.kind != "choice"
        }

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        for key, (low, high) in self.bounds.items():
            if key in config:
                config[key] = type(low)(min(max(config[key], low), high))
        return config


def optuna_storage_url(sweep: SweepConfig, directory: Path) -> str:
    return sweep.optuna.storage or f"sqlite:///{(directory / 'optuna.db').resolve()}"


def study_name(sweep: SweepConfig) -> str:
    return sweep.optuna.study_name or sweep.name


def _scheduler_and_search(
    sweep: SweepConfig, directory: Path, max_iterations: int
) -> tuple[Any, Any]:
    """(scheduler, search algorithm); ``max_iterations`` is a trial's length over all folds
    (ASHA's rungs are placed within it)."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    space = {key: domain(d) for key, d in sweep.space.items()}
    if sweep.search == "pbt":
        from ray.tune.schedulers import PopulationBasedTraining

        pbt = PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=sweep.pbt.perturbation_interval,
            quantile_fraction=sweep.pbt.quantile_fraction,
            resample_probability=sweep.pbt.resample_probability,
            hyperparam_mutations=space,
            synch=sweep.pbt.synch,
            custom_explore_fn=ClipToSpace(sweep),
        )
        return pbt, BasicVariantGenerator(random_state=sweep.seed)
    if sweep.search == "random":
        return None, BasicVariantGenerator(random_state=sweep.seed)
    import optuna
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    url = optuna_storage_url(sweep, directory)
    try:
        storage = optuna.storages.RDBStorage(url)
    except Exception as error:  # a bad URL, a missing driver, an unreachable database
        raise ConfigError(f"optuna.storage {url}: cannot open ({error})") from None
    search = OptunaSearch(
        sampler=optuna.samplers.TPESampler(seed=sweep.optuna.seed),
        study_name=study_name(sweep),
        storage=storage,
    )
    asha = sweep.optuna.asha
    scheduler = (
        ASHAScheduler(
            time_attr="training_iteration",
            max_t=max_iterations,
            grace_period=asha.grace_period,
            reduction_factor=asha.reduction_factor,
        )
        if asha is not None
        else None
    )
    return scheduler, search


def trial_resources(sweep: SweepConfig, resources: ResourceConfig) -> PlacementGroupFactory:
    """One bundle for the trial (its driver, which learns itself, with its GPU, when there are
    no remote learners), one per remote learner and one per env runner: everything a trial
    starts is reserved with it instead of competing with other trials (or never being placed).
    ``auto`` values must be resolved before (`pin_trial_resources`)."""
    runners, gpus = resources.num_env_runners, resources.num_gpus_per_learner
    if runners == "auto" or gpus == "auto":
        raise ConfigError("trial resources need fixed num_env_runners and num_gpus_per_learner")
    head: dict[str, float] = {"CPU": sweep.cpus_per_trial}
    learner: dict[str, float] = {"CPU": resources.num_cpus_per_learner}
    if gpus:
        (learner if resources.num_learners else head)["GPU"] = gpus
    runner = {"CPU": resources.num_cpus_per_env_runner, **resources.custom_resources_per_env_runner}
    return PlacementGroupFactory(
        [head]
        + [dict(learner) for _ in range(resources.num_learners)]
        + [dict(runner) for _ in range(runners)]
    )


def pin_trial_resources(resources: ResourceConfig) -> ResourceConfig:
    """A sweep runs many trials at once: ``auto`` (the whole cluster for one run) becomes no
    remote runners and no GPU per trial; set numbers in the base config to give trials more."""
    update: dict[str, Any] = {}
    if resources.num_env_runners == "auto":
        update["num_env_runners"] = 0
    if resources.num_gpus_per_learner == "auto":
        update["num_gpus_per_learner"] = 0.0
    return resources.model_copy(update=update)


def fit(sweep: SweepConfig, constants: dict[str, Any], directory: Path, *, resume: bool) -> Any:
    """Run (or resume) the Tune experiment; -> its `ResultGrid`."""
    resources = ResourceConfig.model_validate(constants["base"]["resources"])
    trainable = tune.with_resources(
        tune.with_parameters(PhaseTrainable, constants=constants),
        trial_resources(sweep, resources),
    )
    length = int(constants["phase_settings"]["iterations"]) * sweep.folds
    scheduler, search = _scheduler_and_search(sweep, directory, length)
    space: dict[str, Any] = {key: domain(d) for key, d in sweep.space.items()}
    experiment = directory / EXPERIMENT
    # Tune prunes a trial's old checkpoints at once, but snapshots the experiment (what
    # `Tuner.restore` reads after a dead driver) only every 10 s or more by default: a
    # SIGKILL in between left a snapshot naming a pruned checkpoint, and the resumed trial
    # failed for good. A snapshot every controller step, and a third kept checkpoint, close
    # that window (set TUNE_GLOBAL_CHECKPOINT_S to override).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
    if resume and tune.Tuner.can_restore(str(experiment.resolve())):
        repair_state(experiment)
        tuner = tune.Tuner.restore(
            str(experiment.resolve()),
            trainable=trainable,
            param_space=space,
            resume_unfinished=True,
            resume_errored=True,
        )
    else:
        pbt = sweep.search == "pbt"
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(
                metric="objective",
                mode=sweep.mode,
                num_samples=sweep.num_samples,
                scheduler=scheduler,
                search_alg=search,
                max_concurrent_trials=sweep.max_concurrent,
                reuse_actors=False,
            ),
            run_config=TuneRunConfig(
                name=EXPERIMENT,
                storage_path=str(directory.resolve()),
                failure_config=FailureConfig(max_failures=sweep.max_failures),
                callbacks=[StateBackup(experiment)],
                checkpoint_config=CheckpointConfig(
                    checkpoint_frequency=1,
                    checkpoint_at_end=True,
                    # PBT clones donors' checkpoints: pruning could delete one under it.
                    num_to_keep=None if pbt else 3,
                    checkpoint_score_attribute=None if pbt else "objective",
                    checkpoint_score_order=sweep.mode,
                ),
                verbose=1,
            ),
        )
    results = tuner.fit()
    if sweep.search == "pbt":
        keep_pbt_log(experiment, directory / "pbt")
    return results


def keep_pbt_log(experiment: Path, out: Path) -> list[dict[str, Any]]:
    """Copy Tune's PBT logs next to the sweep and write them as readable JSON lines: one row
    per exploit (which trial cloned which, at which iteration, old and new config)."""
    out.mkdir(parents=True, exist_ok=True)
    for path in experiment.glob("pbt_*.txt"):
        shutil.copyfile(path, out / path.name)
    rows: list[dict[str, Any]] = []
    source = experiment / "pbt_global.txt"
    if source.is_file():
        for line in source.read_text().splitlines():
            if not line.strip():
                continue
            # [trial tag, donor tag, trial iteration, donor iteration, donor config, new config]
            trial, donor, step, donor_step, old, new = json.loads(line)
            rows.append(
                {
                    "trial": trial,
                    "cloned_from": donor,
                    "iteration": step,
                    "donor_iteration": donor_step,
                    "donor_config": old,
                    "new_config": new,
                }
            )
    write_atomic(out / "perturbations.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return rows
