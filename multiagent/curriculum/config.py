"""Typed curriculum files (``curricula/*.yaml``): an ordered list of stages, each a task.

A stage narrows the training views (a symbol universe, quantile ranges of volatility and of the
difficulty score), sets the cost level and how views are weighted, and says when it ends: after a
fixed number of iterations, or when the promotion metric reaches a threshold. A stage may fall
back to the one before when the metric collapses. The last stage never ends.

```yaml
name: liquid-to-all
phases: [symbols]            # training phases it applies to
metric: val_sharpe           # a key of the trainer's per-iteration metrics row
stages:
  - name: liquid-10
    symbols: {top_liquid: 10}          # or [AAPL, MSFT, ...] or all
    volatility: [0.0, 0.5]             # quantile range among the stage's views
    difficulty: [0.0, 0.33]            # quantile range of the difficulty score
    cost_multiplier: 0.25              # x the configured costs
    sampling: uniform                  # uniform | balanced | worst
    promote: {at_least: 0.5, min_iterations: 2, max_iterations: 20}
  - name: all
    fall_back: {below: -1.0}
```

`load_curriculum` reports every problem of a file in one `ConfigError` naming the file, the
dotted key (``stages.1.promote.at_least``) and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from multiagent.errors import ConfigError
from multiagent.schema import Settings

Phase = Literal["symbols", "master", "joint", "agent"]
SamplingMode = Literal["uniform", "balanced", "worst"]


class KeyedError(ValueError):
    """A validation problem of a sub-key (``key``, dotted, relative to the validated field);
    pydantic only knows the field a validator runs on."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


class TopLiquid(Settings):
    """The ``n`` most liquid symbols of the training split (see `scoring.liquidity_ranking`)."""

    top_liquid: int = Field(ge=1, description="How many symbols, most liquid first.")


SymbolSelection = Literal["all"] | tuple[str, ...] | TopLiquid
SYMBOLS_EXPECTED = "expected `all`, a list of symbol names or {top_liquid: N} with N >= 1"


class Promotion(Settings):
    """Advance when ``metric >= at_least`` after ``min_iterations`` in the stage; forced at
    ``max_iterations``."""

    at_least: float = Field(description="Threshold on the curriculum's metric.")
    min_iterations: int = Field(
        1,
        ge=1,
        description="Iterations trained in the stage before the metric counts (>= 1: a metric "
        "measured on the stage's first iteration belongs to the stage before).",
    )
    max_iterations: int | None = Field(
        None, ge=1, description="Advance anyway after this many iterations; null = never."
    )

    @model_validator(mode="after")
    def _check(self) -> Promotion:
        if self.max_iterations is not None and self.max_iterations < self.min_iterations:
            raise KeyedError(
                "max_iterations",
                f"must be >= min_iterations ({self.min_iterations}), got {self.max_iterations}",
            )
        return self


class FallBack(Settings):
    """Return to the stage before when the metric drops below ``below``."""

    below: float = Field(description="Threshold on the curriculum's metric.")
    max_times: int | None = Field(
        None, ge=1, description="Fall back from this stage at most this often; null = always."
    )


class StageConfig(Settings):
    """One task of the curriculum and when it ends."""

    name: str = Field(min_length=1, description="Shown in logs and the metrics row's history.")
    symbols: SymbolSelection = Field(
        "all", description="Symbol universe of every slot: all, a list, or {top_liquid: N}."
    )
    volatility: tuple[float, float] | None = Field(
        None, description="[lo, hi] quantile range (0..1) of the views' volatility."
    )
    difficulty: tuple[float, float] | None = Field(
        None, description="[lo, hi] quantile range (0..1) of the views' difficulty score."
    )
    cost_multiplier: float = Field(
        1.0, ge=0, description="Scales every cost part; 1 = the configured costs."
    )
    sampling: SamplingMode = Field(
        "uniform",
        description="uniform: the env's own weighting; balanced: 1 / (1 + episodes seen) per "
        "view; worst: extra weight on the views with the worst mean episode return.",
    )
    worst_boost: float = Field(
        3.0, gt=0, description="sampling: worst - extra weight of a worst-quartile view (x1)."
    )
    iterations: int | None = Field(None, ge=1, description="Fixed length of the stage.")
    promote: Promotion | None = Field(None, description="Metric-based end of the stage.")
    fall_back: FallBack | None = Field(None, description="Return to the stage before.")

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbols(cls, value: Any) -> Any:
        # Checked by hand: a failed union reports one error per member, three for one mistake.
        if value == "all":
            return value
        if isinstance(value, dict):
            n = value.get("top_liquid")
            if set(value) != {"top_liquid"} or isinstance(n, bool) or not isinstance(n, int):
                raise ValueError(f"{SYMBOLS_EXPECTED} (got {value!r})")
            if n < 1:
                raise KeyedError("top_liquid", f"must be >= 1, got {n}")
            return TopLiquid(top_liquid=n)
        if isinstance(value, (list, tuple)) and value and all(isinstance(s, str) for s in value):
            duplicates = sorted({s for s in value if list(value).count(s) > 1})
            if duplicates:
                raise ValueError(f"symbols listed twice: {duplicates}")
            return tuple(value)
        raise ValueError(f"{SYMBOLS_EXPECTED} (got {value!r})")

    @field_validator("volatility", "difficulty")
    @classmethod
    def _quantiles(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0.0 <= value[0] < value[1] <= 1.0:
            raise ValueError(
                f"expected a quantile range [lo, hi] with 0 <= lo < hi <= 1, got {list(value)}"
            )
        return value

    @model_validator(mode="after")
    def _one_end(self) -> StageConfig:
        if self.iterations is not None and self.promote is not None:
            raise KeyedError("promote", "set either `iterations` or `promote`, not both")
        return self

    @property
    def ends(self) -> bool:
        return self.iterations is not None or self.promote is not None


class CurriculumConfig(Settings):
    """A curriculum: stages in order, the phases it applies to and its promotion metric."""

    name: str = Field(min_length=1)
    phases: tuple[Phase, ...] = Field(("symbols",), description="Training phases it applies to.")
    metric: str = Field(
        "val_sharpe",
        min_length=1,
        description="Promotion / fall-back metric: a key of the trainer's metrics row "
        "(val_* after a validation; reward_mean and the telemetry keys every iteration).",
    )
    stages: tuple[StageConfig, ...] = Field(description="In order; the last never ends.")

    @field_validator("phases")
    @classmethod
    def _unique_phases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Emptiness is checked here, not with min_length: pydantic would also report a length
        # error whenever one item is invalid (it counts the valid items).
        if not value:
            raise ValueError("list at least one phase (symbols, master, joint)")
        if len(set(value)) != len(value):
            raise ValueError(f"phases listed twice: {list(value)}")
        return value

    @field_validator("stages")
    @classmethod
    def _stages(cls, stages: tuple[StageConfig, ...]) -> tuple[StageConfig, ...]:
        if not stages:
            raise ValueError("list at least one stage")
        seen: set[str] = set()
        last = len(stages) - 1
        for i, stage in enumerate(stages):
            if stage.name in seen:
                raise KeyedError(f"{i}.name", f"stage name {stage.name!r} is used twice")
            seen.add(stage.name)
            if i < last and not stage.ends:
                raise KeyedError(
                    str(i),
                    f"stage `{stage.name}` never ends: set `iterations` or `promote` "
                    "(only the last stage may have neither)",
                )
            if i == last and stage.ends:
                key = "iterations" if stage.iterations is not None else "promote"
                raise KeyedError(
                    f"{i}.{key}",
                    f"the last stage (`{stage.name}`) never ends; remove `{key}` or add a "
                    "stage after it",
                )
            if i == 0 and stage.fall_back is not None:
                raise KeyedError("0.fall_back", "the first stage has no stage to fall back to")
        return stages


def _describe(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    cause = (error.get("ctx") or {}).get("error")
    kind = error["type"]
    if isinstance(cause, KeyedError):
        return f"`{'.'.join([*loc, cause.key])}`: {cause}"
    key = ".".join(loc) or "(top level)"
    if kind == "extra_forbidden":
        return f"`{key}`: unknown key"
    if kind == "missing" and error["loc"] and isinstance(error["loc"][-1], int):
        return f"`{'.'.join(loc[:-1])}`: too few items (item {error['loc'][-1]} is missing)"
    if kind == "missing":
        return f"`{key}`: required key is missing"
    if isinstance(cause, ValueError):  # our own validators say what they got
        return f"`{key}`: {cause}"
    value = error.get("input")
    shown = "a mapping" if isinstance(value, dict) else repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"`{key}`: {error['msg']} (got {shown})"


def validate_curriculum(data: object, *, file: str) -> CurriculumConfig:
    """Validate a parsed curriculum mapping; every problem in one `ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of keys at the top level", file=file)
    try:
        return CurriculumConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(dict(e)) for e in exc.errors()]
        plural = "s" if len(lines) > 1 else ""
        raise ConfigError(
            f"{file}: invalid curriculum ({len(lines)} problem{plural}; top-level keys: "
            f"{', '.join(CurriculumConfig.model_fields)})\n"
            + "\n".join(f"  - {line}" for line in lines),
            file=file,
            field=lines[0].split("`")[1] if lines[0].startswith("`") else None,
        ) from None


def load_curriculum(path: str | Path) -> CurriculumConfig:
    """Load ``curricula/NAME.yaml``."""
    from multiagent.schema import load_yaml

    path = Path(path)
    return validate_curriculum(load_yaml(path), file=str(path))
