"""Typed sweep files (`tune_configs/*.yaml`): what to tune, over which space, with which search.

A sweep tunes one training phase of a base run config. Its search space names run-config keys
by dotted path (``symbols.ppo.lr``; list items by index, ``env.risk_mode_scales.2``), so every
key the run config has can be searched and nothing else can: the paths are checked against the
base config when the file is loaded, with one error per bad key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from multiagent.config import PRESETS, RunConfig, load_config, load_preset, load_yaml
from multiagent.config import validate_mapping as _validate
from multiagent.errors import ConfigError
from multiagent.schema import Settings
from multiagent.tuning.space import apply_overrides


class Distribution(Settings):
    """One searched key: exactly one of ``uniform``, ``loguniform``, ``randint``, ``choice``."""

    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = Field(None, description="[low, high), integers.")
    choice: tuple[Any, ...] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> Distribution:
        given = [k for k in ("uniform", "loguniform", "randint", "choice") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of uniform, loguniform, randint, choice")
        for kind in ("uniform", "loguniform", "randint"):
            bounds = getattr(self, kind)
            if bounds is not None and not bounds[0] < bounds[1]:
                raise ValueError(f"{kind} needs [low, high] with low < high")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ValueError("loguniform needs low > 0")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("uniform", "loguniform", "randint", "choice") if getattr(self, k))

    def corners(self) -> list[Any]:
        """Values that must all make a valid run config (checked when the sweep is loaded)."""
        if self.choice is not None:
            return list(self.choice)
        low, high = getattr(self, self.kind)
        return [low, high - 1] if self.kind == "randint" else [low, high]


class PBTSettings(Settings):
    """Population-based training: exploit the best trials' checkpoints, explore their config."""

    perturbation_interval: int = Field(2, ge=1, description="Iterations between exploits.")
    quantile_fraction: float = Field(
        0.5, gt=0, le=0.5, description="Bottom fraction cloned from the top fraction."
    )
    resample_probability: float = Field(0.25, ge=0, le=1)
    synch: bool = Field(True, description="Perturb the whole population at once.")


class ASHASettings(Settings):
    """Early stopping of poor Optuna trials (Tune's asynchronous successive halving)."""

    grace_period: int = Field(2, ge=1, description="Iterations every trial runs at least.")
    reduction_factor: float = Field(2.0, gt=1)


class OptunaSettings(Settings):
    storage: str | None = Field(
        None,
        description="Optuna RDB storage URL: sqlite:///path.db or postgresql://user@host/db; "
        "null = SWEEP/optuna.db.",
    )
    study_name: str | None = Field(None, description="null = the sweep's name.")
    seed: int = Field(0, description="Seed of the TPE sampler.")
    asha: ASHASettings | None = Field(
        default_factory=ASHASettings, description="Pruning; null = every trial runs in full."
    )

    @model_validator(mode="after")
    def _url(self) -> OptunaSettings:
        if self.storage is not None and not self.storage.startswith(
            ("sqlite:///", "postgresql://", "postgresql+", "mysql://", "mysql+")
        ):
            raise ValueError("storage must be an RDB URL (sqlite:///..., postgresql://...)")
        return self


class BaseRun(Settings):
    """The run config every trial starts from: a preset or a run-config file."""

    preset: str | None = None
    config: str | None = Field(None, description="Run-config YAML, relative to the sweep file.")

    @model_validator(mode="after")
    def _one(self) -> BaseRun:
        if (self.preset is None) == (self.config is None):
            raise ValueError("give exactly one of preset and config")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"no preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        return self


Target = Literal["symbols", "master", "joint", "agent"]


class SweepConfig(Settings):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    base: BaseRun
    target: Target = Field("symbols", description="The training phase every trial runs.")
    init_from: str | None = Field(
        None,
        description="Run folder holding the phases before the target (relative to the sweep "
        "file); null = the sweep trains them once, sealed, into SWEEP/base.",
    )
    search: Literal["pbt", "optuna", "random"] = "optuna"
    num_samples: int = Field(4, ge=1, description="Trials (the population size for PBT).")
    seed: int = Field(
        0,
        description="Seed of the random search's sampler and of PBT's initial draws "
        "(Optuna's TPE sampler has optuna.seed): the same sweep file samples the same trials.",
    )
    max_concurrent: int | None = Field(None, ge=1, description="null = as many as CPUs allow.")
    iterations: int | None = Field(
        None, ge=1, description="PPO iterations per trial and fold; null = the target phase's."
    )
    eval_every: int = Field(1, ge=1, description="Iterations between validation evaluations.")
    folds: int = Field(
        1,
        ge=1,
        description="Walk-forward folds inside train+validation: fold k trains up to the k-th "
        "slice of the validation window and is scored on it; the objective averages the folds.",
    )
    metric: str = Field("sharpe", description="Validation metric maximized (val_<metric>).")
    mode: Literal["max", "min"] = "max"
    space: dict[str, Distribution] = Field(min_length=1)
    pbt: PBTSettings = Field(default_factory=PBTSettings)
    optuna: OptunaSettings = Field(default_factory=OptunaSettings)
    cpus_per_trial: float = Field(1.0, gt=0)
    max_failures: int = Field(
        2, ge=0, description="Restarts of a failed trial from its checkpoint."
    )
    final_evaluation: bool = Field(
        True, description="Evaluate the chosen configuration once on the test split."
    )

    @model_validator(mode="after")
    def _check(self) -> SweepConfig:
        if self.search == "pbt" and self.folds > 1:
            raise ValueError("PBT trains one population through time: use folds: 1 with pbt")
        if self.search == "pbt" and any(d.kind == "randint" for d in self.space.values()):
            raise ValueError("PBT perturbs continuous values or choices; randint is not supported")
        if "seal_test" in self.space:
            raise ValueError("seal_test is not a tunable key")
        return self


def load_sweep(path: str | Path) -> tuple[SweepConfig, RunConfig]:
    """The sweep file and its base run config, every space key checked against the base."""
    path = Path(path)
    sweep = _validate(SweepConfig, load_yaml(path), file=str(path))
    if sweep.base.preset is not None:
        base = load_preset(sweep.base.preset)
    else:
        assert sweep.base.config is not None
        base = load_config(path.parent / sweep.base.config)
    if (sweep.target == "agent") != (base.system != "hierarchy"):
        wanted = "agent" if base.system != "hierarchy" else "symbols, master or joint"
        raise ConfigError(
            f"{path}: target {sweep.target} does not train a {base.system} run; its trials "
            f"train target {wanted}"
        )
    if base.system == "sessions" and sweep.folds > 1:
        raise ConfigError(f"{path}: a sessions run is split by session, not by time: use folds: 1")
    check_space(sweep, base, source=str(path))
    if sweep.init_from is not None:
        init = (path.parent / sweep.init_from).resolve()
        sweep = sweep.model_copy(update={"init_from": str(init)})
    return sweep, base


PHASE_SECTIONS = {"symbols": "symbols", "master": "master", "joint": "joint", "agent": "agent"}


def check_space(sweep: SweepConfig, base: RunConfig, *, source: str) -> None:
    """Every key exists, every corner of every range makes a valid config, and no key belongs
    to a phase the trials do not train (its value would be silently ignored)."""
    problems: list[str] = []
    for key, distribution in sweep.space.items():
        section = key.split(".")[0]
        if section in PHASE_SECTIONS and section != sweep.target:
            problems.append(
                f"`space.{key}`: trials train the {sweep.target} phase; {section}.* is not used"
            )
            continue
        for value in distribution.corners():
            try:
                apply_overrides(base, {key: value}, source=f"{source} space.{key}")
            except ConfigError as error:
                problems.append(str(error))
                break
    if problems:
        raise ConfigError(
            f"{source}: invalid search space\n" + "\n".join(f"  - {p}" for p in problems),
            file=source,
        )


def trial_settings(sweep: SweepConfig, config: RunConfig) -> dict[str, Any]:
    """What the phase settings of a trial override: its length and evaluation cadence."""
    phase = getattr(config, sweep.target)
    iterations = sweep.iterations or phase.iterations
    return {"iterations": iterations, "eval_every": sweep.eval_every}
