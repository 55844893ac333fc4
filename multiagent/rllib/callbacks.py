"""Episode telemetry as RLlib metrics (logged every iteration by the env runners).

Per finished episode, from the env's telemetry summary:

- ``executed_action_entropy``: entropy (nats) of the histogram of actions the env executed,
  over all symbol agents (a policy that always holds scores 0);
- ``voluntary_trade_rate``: voluntary trades per agent step;
- ``masked_action_rate``: actions the policy chose that the mask forbade, per agent step (0 when
  the module honours the mask; the env ran them as HOLD);
- ``episode_return`` / ``max_drawdown`` / ``turnover``: the portfolio's.

With a master in the episode (phases 3 and 4), its telemetry too (`master_telemetry`):

- ``master_level_share_<k>`` / ``master_mode_share_<m>``: share of the slots' budget choices at
  level k, and of the decisions in risk mode m (defensive 0, neutral 1, aggressive 2);
- ``master_budget_calm`` / ``master_budget_stressed``: mean gross budget (x equity) on calm and
  on stressed bars (`multiagent.envs.telemetry.stressed_bars`), and ``master_exposure_*`` the
  gross exposure the books held there: a master that cuts risk when markets turn shows
  ``*_stressed`` below ``*_calm``;
- ``forced_trim_turnover``: notional its budget cuts forced, / equity, mean per bar.

The policy's own action entropy is the learner's ``entropy`` result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback

if TYPE_CHECKING:
    from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

TELEMETRY = "telemetry"
TELEMETRY_KEYS = (
    "executed_action_entropy",
    "voluntary_trade_rate",
    "masked_action_rate",
    "episode_return",
    "max_drawdown",
    "turnover",
)

MASTER_TELEMETRY_PREFIXES = ("master_", "forced_trim_")


def master_telemetry(master: dict[str, Any]) -> dict[str, float]:
    """The master's figures of one episode (a figure without bars to average is left out)."""
    out = {f"master_level_share_{k}": v for k, v in enumerate(master["level_share"])}
    out.update({f"master_mode_share_{k}": v for k, v in enumerate(master["mode_share"])})
    for key in ("budget_calm", "budget_stressed", "exposure_calm", "exposure_stressed"):
        if master[key] is not None:
            out[f"master_{key}"] = master[key]
    out["master_stressed_share"] = master["stressed_share"]
    out["forced_trim_turnover"] = master["forced_turnover"]
    return {k: float(v) for k, v in out.items()}


def episode_telemetry(summary: dict[str, Any], n_agents: int) -> dict[str, float]:
    counts = np.asarray(list(summary["action_histogram"].values()), dtype=float)
    probs = counts / counts.sum() if counts.sum() > 0 else counts
    nonzero = probs[probs > 0]
    agent_steps = max(summary["steps"] * n_agents, 1)
    return {
        "executed_action_entropy": float(-(nonzero * np.log(nonzero)).sum()),
        "voluntary_trade_rate": summary["voluntary_trades"] / agent_steps,
        "masked_action_rate": summary["sanitized_actions"] / agent_steps,
        "episode_return": float(summary["return"]),
        "max_drawdown": float(summary["max_drawdown"]),
        "turnover": float(summary["turnover"]),
    }


class TelemetryCallbacks(RLlibCallback):
    def on_episode_end(
        self,
        *,
        episode: Any,
        metrics_logger: MetricsLogger | None = None,
        **kwargs: Any,
    ) -> None:
        if metrics_logger is None:
            return
        infos = episode.get_infos(-1)
        if isinstance(infos, dict) and "episode" in infos:
            # A slot of phase 2's vector env: slot 0 of each book carries the book's summary.
            summary, n_agents = infos["episode"], int(infos["episode"]["n_agents"])
        else:
            # Every symbol agent carries the summary on the last step (the master does not).
            summaries = [
                info["episode"]
                for info in (infos or {}).values()
                if isinstance(info, dict) and "episode" in info
            ]
            if not summaries:
                return
            summary, n_agents = summaries[0], len(summaries)
        values = episode_telemetry(summary, n_agents)
        if "master" in summary:
            values.update(master_telemetry(summary["master"]))
        for key, value in values.items():
            metrics_logger.log_value((TELEMETRY, key), value, reduce="mean")
