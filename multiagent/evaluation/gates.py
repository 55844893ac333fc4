"""Go/no-go and regression gates over a report's metrics.

A gate whose metric is undefined (no closed trade gives no win rate) fails: a gate that cannot
be checked is not a pass. An empty gate set gives no verdict (``passed`` is None), never a PASS:
nothing was checked.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from multiagent.config import load_yaml, validate_mapping
from multiagent.config.evaluation import Gate, GateSet

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


NO_GATES = "No gates configured (evaluation.gates is empty): no verdict."
"""What every report and the CLI say instead of PASS or FAIL when there was nothing to check."""


def verdict(gates: Mapping[str, Any]) -> str:
    """``PASS``, ``FAIL`` or ``NO GATES``: a `check_gates` result in one word."""
    if gates["passed"] is None:
        return "NO GATES"
    return "PASS" if gates["passed"] else "FAIL"


def load_gates(path: str | Path) -> GateSet:
    """A gates YAML file (keys ``go`` and ``regression``); one clear error when malformed."""
    path = Path(path)
    return validate_mapping(GateSet, load_yaml(path), file=str(path))


def _baseline_value(
    gate: Gate, policies: dict[str, dict[str, Any]]
) -> tuple[float | None, str | None]:
    baselines = {n: p["metrics"] for n, p in policies.items() if p["kind"] == "baseline"}
    if gate.baseline == "equal_weight":
        candidates = {n: m for n, m in baselines.items() if n == "equal_weight"}
    elif gate.baseline == "best_buy_and_hold":
        # Each symbol held alone; a report without those (the portfolio system's) has its
        # pool's buy-and-hold.
        candidates = {n: m for n, m in baselines.items() if n.startswith("ALL_")} or {
            n: m for n, m in baselines.items() if n == "buy_and_hold"
        }
    else:
        candidates = baselines
    scored = {n: m[gate.metric] for n, m in candidates.items() if m.get(gate.metric) is not None}
    if not scored:
        return None, None
    lower_is_better = gate.op in ("<", "<=")
    best = (min if lower_is_better else max)(sorted(scored), key=lambda n: scored[n])
    return scored[best] + gate.offset, best


def check_gates(
    gates: GateSet,
    agent: str,
    policies: dict[str, dict[str, Any]],
    ranking: list[dict[str, Any]],
    report_figures: dict[str, float] | None = None,
) -> dict[str, Any]:
    """``report_figures``: what the agent is judged on that depends on the whole report rather
    than on its own returns (the SPA p-value over the systems compared), like ``rank_fraction``.
    ``passed`` is None when ``gates`` holds no gate (no verdict; see `verdict`)."""
    metrics = {**policies[agent]["metrics"], **(report_figures or {})}
    # Ranked among itself and the baselines: the other systems of the report do not count.
    field = [
        r["policy"]
        for r in ranking
        if r["policy"] == agent or policies.get(r["policy"], {}).get("kind") == "baseline"
    ]
    metrics["rank_fraction"] = (field.index(agent) + 1) / len(field)
    out: dict[str, Any] = {"agent": agent, "passed": True}
    for group in ("go", "regression"):
        results = []
        for gate in getattr(gates, group):
            threshold, against = (
                (gate.value, None) if gate.baseline is None else _baseline_value(gate, policies)
            )
            value = metrics.get(gate.metric)
            passed = (
                value is not None
                and threshold is not None
                and OPS[gate.op](float(value), float(threshold))
            )
            results.append(
                {
                    "gate": gate.describe(),
                    "value": value,
                    "threshold": threshold,
                    "against": against,
                    "passed": passed,
                }
            )
            out["passed"] = out["passed"] and passed
        out[group] = results
    if not (gates.go or gates.regression):
        out["passed"] = None
    return out
