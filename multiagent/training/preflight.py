"""What a training run is checked for before any expensive work (issue 23).

Ray's start (seconds), the encoder's pretraining (tens of seconds) and a run folder are all
spent before the first PPO iteration builds its env: a data/env mismatch found there costs all
three. So `check_run` does, on the prepared data, what the phases will do first, and fails with
one line naming the field and what it expected:

1. the encoder's training windows exist (when a phase pretrains it);
2. the env's slots fit the data: ``env.n_symbols`` (hierarchy) or ``agent.env.pool_size``
   (portfolio, regimes) at most the symbols loaded;
3. the training split has episodes, and the system's env builds and resets on the training
   and the validation episodes (what the trainers sample and score on).

Loading the data and building the features (`runs.prepare`) is the first check: its own
errors name the file, symbol and rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from weakref import WeakKeyDictionary

from multiagent.config import RunConfig
from multiagent.data.episodes import EpisodeView
from multiagent.envs import HierarchicalTradingEnv, build_market
from multiagent.envs.market import EnvMarket
from multiagent.errors import ConfigError
from multiagent.runs.prepare import PreparedData, prepare


def check_run(
    config: RunConfig, phases: Sequence[str], prepared: PreparedData | None = None
) -> PreparedData:
    """The run's data, prepared (loaded, validated, featurized, split), once every check above
    passed; ``prepared`` when the caller has it already. The same config and phases on the
    same data are checked once: the CLI checks a new run before making its folder, and the
    pipeline it then starts would otherwise build the pretraining windows and envs again."""
    prepared = prepared if prepared is not None else prepare(config)
    key = (config.model_dump_json(), tuple(phases))
    passed = _PASSED.setdefault(prepared, set())
    if key in passed:
        return prepared
    if "pretrain" in phases and config.first_policy.encoder != "scratch":
        from multiagent.training.pretrain_phase import pretrain_data

        pretrain_data(config, prepared)
    check_slots(config, prepared)
    check_envs(config, prepared)
    passed.add(key)
    return prepared


_PASSED: WeakKeyDictionary[PreparedData, set[tuple[str, tuple[str, ...]]]] = WeakKeyDictionary()
"""The (config, phases) each prepared data has passed, forgotten with the data."""


def check_slots(config: RunConfig, prepared: PreparedData) -> None:
    """Slots per episode against the symbols loaded (the envs would refuse it later)."""
    panel = prepared.panel
    if config.system == "hierarchy":
        key, wanted = "env.n_symbols", config.env.n_symbols
    elif config.system in ("portfolio", "regimes") and config.agent.env.pool_size is not None:
        key, wanted = "agent.env.pool_size", config.agent.env.pool_size
    else:
        return
    if wanted > panel.n_symbols:
        raise ConfigError(
            f"`{key}` is {wanted} but the data{_source(prepared)} has {panel.n_symbols} "
            f"symbols: set `{key}` to {panel.n_symbols} or fewer, or load more symbols",
            field=key,
        )


def check_envs(config: RunConfig, prepared: PreparedData) -> None:
    """Build the system's env on the training and validation episodes and reset it once."""
    if not prepared.train_views:
        raise ConfigError(
            f"the training split{_source(prepared)} has no episode of `episodes.min_length` "
            f"({config.episodes.min_length}) observed bars: use more data, a longer `split` "
            "train part or a smaller `episodes.min_length`",
            field="episodes.min_length",
        )
    hierarchy = config.system == "hierarchy"
    costs = config.env.costs if hierarchy else config.agent.env.costs
    market = build_market(prepared.panel, prepared.features, costs)
    for part in ("train", "validation"):
        views = prepared.views(part)
        if not views:
            continue
        try:
            _reset_env(config, market, views)
        except ValueError as error:
            section = "env" if hierarchy else "agent.env"
            raise ConfigError(
                f"the {config.system} env (`{section}`) cannot start on the {part} split: {error}",
                field=section,
            ) from None


def _reset_env(config: RunConfig, market: EnvMarket, views: list[EpisodeView]) -> None:
    if config.system == "hierarchy":
        HierarchicalTradingEnv(market, views, config.env).reset(seed=config.seed)
        return
    from multiagent.evaluation.episodes import agent_env

    agent_env(config, market, views).reset(seed=config.seed)


def _source(prepared: PreparedData) -> str:
    return f" ({prepared.panel.source})" if prepared.panel.source else ""
