"""Phase 2: PPO on the shared symbol policy with the master's seat neutral (`SymbolTrainer`),
and `multiagent train symbols` (`train_symbols`, with its MLflow run).

Entropy guard: after ``warmup_iterations``, when the policy's mean action entropy falls below
``min_entropy x log(A)``, the entropy coefficient is multiplied by ``boost`` (up to
``max_boost``); while entropy is healthy the boost decays back toward 1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console

from multiagent.config import RunConfig
from multiagent.encoder import check_features, read_encoder
from multiagent.errors import ConfigError
from multiagent.rllib.algo import build_ppo_config
from multiagent.rllib.checkpoints import SYMBOL_VECTOR_MODULE
from multiagent.rllib.env import SymbolAgentsEnv
from multiagent.rllib.ranking import PhaseResult
from multiagent.rllib.ray_session import init_ray
from multiagent.rllib.trainer import PhaseTrainer
from multiagent.runs.folders import load_run_config

if TYPE_CHECKING:
    from multiagent.tracking import Tracker


class PolicyTrainer(PhaseTrainer):
    """A phase that trains one encoder policy from scratch or a pretrained encoder (phase 2,
    and the single-agent systems' ``agent`` phase): the encoder's loading and the entropy
    guard, read from the phase's ``policy`` and ``entropy_guard`` settings."""

    n_actions: int
    boost = 1.0

    def read_encoder(self, encoder_path: Path | None, resuming: bool) -> None:
        """The pretrained encoder the policy starts from (none for ``scratch`` or a resume)."""
        self.encoder_state: dict[str, torch.Tensor] | None = None
        self.encoder_path = encoder_path
        mode = self.settings.policy.encoder  # type: ignore[attr-defined]
        if mode == "scratch" or resuming:
            return
        if encoder_path is None:
            raise ConfigError(
                f"{self.phase}.policy.encoder is {mode!r}: give a pretrained encoder "
                "(--encoder PATH, or run `multiagent pretrain` first), or set it to 'scratch'"
            )
        self.encoder_state, meta = read_encoder(encoder_path)
        check_features(
            meta,
            self.market.feature_names,
            self.config.observation.window,
            source=str(encoder_path),
        )

    def load_encoder(self) -> None:
        if self.encoder_state is None:
            return
        state = self.encoder_state
        module_id = self.symbol_id  # not self: the function travels to remote learners

        def load(learner: Any) -> None:
            learner.module[module_id].encoder.load_state_dict(state)

        self.algo.learner_group.foreach_learner(load)
        self.algo.env_runner_group.sync_weights(
            from_worker_or_learner_group=self.algo.learner_group, inference_only=True
        )

    def extra_state(self) -> dict[str, Any]:
        return {"entropy_boost": self.boost}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self._set_boost(float(state["entropy_boost"]))

    def _set_boost(self, boost: float) -> None:
        self.boost = boost
        module_id = self.symbol_id
        self.algo.learner_group.foreach_learner(
            lambda learner: learner.set_entropy_boost(module_id, boost)
        )

    def after_iteration(self, row: dict[str, Any]) -> None:
        self._guard(row["policy_entropy"])
        row["entropy_boost"] = self.boost

    def _guard(self, entropy: float) -> None:
        guard = self.settings.entropy_guard  # type: ignore[attr-defined]
        if not guard.enabled or self.iteration <= guard.warmup_iterations or math.isnan(entropy):
            return
        if entropy < guard.min_entropy * math.log(self.n_actions):
            boost = min(self.boost * guard.boost, guard.max_boost)
        else:
            boost = max(1.0, self.boost * guard.decay)
        if boost != self.boost:
            self._set_boost(boost)


class SymbolTrainer(PolicyTrainer):
    """Phase 2: PPO on the shared symbol policy, master neutral, with the entropy guard."""

    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        *,
        encoder_path: Path | None = None,
        console: Console | None = None,
        resuming: bool = False,
    ) -> None:
        super().__init__(config, run_dir, config.symbols, console=console)
        if config.symbols.vector_env:
            self.symbol_id = SYMBOL_VECTOR_MODULE
            self.modules = (SYMBOL_VECTOR_MODULE,)
        env = SymbolAgentsEnv(self.market, self.prepared.train_views, config.env)
        self.n_actions = env.env.core.scheme.n_actions
        self.read_encoder(encoder_path, resuming)
        ppo_config = build_ppo_config(
            config, env.observation_space, env.action_space, self.market.n_features
        )
        self.algo = ppo_config.build_algo()
        self.load_encoder()

    def status(self, row: dict[str, Any]) -> str:
        return (
            f"reward {row['reward_mean']:.2f} entropy {row['policy_entropy']:.3f} "
            f"trades/step {row.get('voluntary_trade_rate', float('nan')):.3f}"
        )


def train_symbols(
    config: RunConfig | None,
    run_dir: Path,
    *,
    encoder_path: Path | None = None,
    resume: Path | None = None,
    iterations: int | None = None,
    checkpoint_every: int | None = None,
    eval_every: int | None = None,
    console: Console | None = None,
) -> PhaseResult:
    """Train (or resume) the symbol policy; ``config`` is read from the run folder on resume."""
    if resume is not None:
        config = load_run_config(run_dir)
    if config is None:
        raise ConfigError("a run config is needed unless resuming")
    init_ray()
    trainer = SymbolTrainer(
        config, run_dir, encoder_path=encoder_path, console=console, resuming=resume is not None
    )
    trainer.tracker = tracker = symbol_run_tracker(config, run_dir, trainer, console)
    try:
        if resume is not None:
            trainer.restore(resume)
        result = trainer.train(
            iterations or config.symbols.iterations,
            checkpoint_every=checkpoint_every,
            eval_every=eval_every,
        )
    except BaseException as error:
        from multiagent.tracking import end_status

        tracker.finish(end_status(error))
        raise
    finally:
        trainer.stop()
    for name in ("metrics.jsonl", "ranking.json"):
        tracker.log_artifact(trainer.dir / name)
    if result.policy_path is not None:
        tracker.log_policy_model(result.policy_path)
    tracker.finish()
    return result


def symbol_run_tracker(
    config: RunConfig, run_dir: Path, trainer: PhaseTrainer, console: Console | None
) -> Tracker:
    """`multiagent train symbols`'s MLflow run: ``MLFLOW_TRACKING_URI`` or a SQLite store in
    the run folder (`resolve_tracking_uri`); a resumed run continues its own MLflow run (kept
    in ``RUN/symbols/mlflow_run.json``)."""
    from multiagent.tracking import Tracker, resolve_tracking_uri, run_tags

    return Tracker.attach_or_start(
        resolve_tracking_uri(None, run_dir),
        "multiagent-training",
        f"{run_dir.name}/symbols",
        record=trainer.dir / "mlflow_run.json",
        run_dir=run_dir,
        tags=lambda: run_tags(
            config.model_dump(mode="json"),
            seed=config.seed,
            data_fingerprint=trainer.prepared.panel.fingerprint(),
        ),
        params=config.model_dump(mode="json"),
        console=console,
    )
