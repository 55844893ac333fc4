"""The hash-seed pin of the `multiagent` command and the run-folder comparison (no Ray)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from multiagent.training.reproducible import run_differences

PROBE = (
    "from multiagent.reproducibility import pin_hash_seed, hash_seed_fixed; pin_hash_seed(); "
    "import os, sys; print(os.environ['PYTHONHASHSEED'], hash_seed_fixed(), hash('symbol_0'), "
    "sys.argv[1:])"
)


def probe(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--flag", "value"],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_command_re_executes_itself_with_a_fixed_hash_seed() -> None:
    first, second = probe(), probe()
    assert first == second  # same string hashes: the set order RLlib batches agents in
    assert first.startswith("0 True ") and first.endswith("['--flag', 'value']")
    # A user's own choice is kept, "random" included (and then reported as not fixed).
    assert probe(PYTHONHASHSEED="7").startswith("7 True ")
    assert probe(PYTHONHASHSEED="random").startswith("random False ")


def write_run(folder: Path, reward: float, weight: float, seconds: float = 1.0) -> None:
    phase = folder / "symbols"
    module = phase / "checkpoints/iter_00001/algo/learner_group/learner/rl_module/symbol"
    module.mkdir(parents=True)
    rows = [
        {"iteration": 1, "seconds": seconds, "reward_mean": reward, "kl": float("nan")},
        {"iteration": 2, "seconds": seconds, "reward_mean": 2.0, "kl": 0.1},
    ]
    (phase / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    state = {"pi.weight": np.full((2, 3), weight, np.float32), "pi.bias": np.zeros(2, np.float32)}
    (module / "module_state.pkl").write_bytes(pickle.dumps(state))
    (folder / "encoder").mkdir()
    torch.save({"inp.weight": torch.ones(4)}, folder / "encoder/encoder.pt")


def test_run_differences_names_each_difference_and_ignores_wall_clock(tmp_path: Path) -> None:
    write_run(tmp_path / "a", reward=1.0, weight=0.5, seconds=1.0)
    write_run(tmp_path / "b", reward=1.0, weight=0.5, seconds=9.0)
    assert run_differences(tmp_path / "a", tmp_path / "b") == []  # NaN == NaN, seconds ignored
    write_run(tmp_path / "c", reward=1.0 + 1e-15, weight=0.5 + 1e-7)
    found = run_differences(tmp_path / "a", tmp_path / "c")
    assert len(found) == 2
    assert found[0].startswith("symbols/metrics.jsonl row 1 reward_mean: 1.0 vs 1.0000000")
    assert found[1] == (
        "symbols/checkpoints/iter_00001/algo/learner_group/learner/rl_module/symbol/"
        "module_state.pkl: /pi.weight differs (max |diff| 1.19e-07)"
    )
    (tmp_path / "c/symbols/metrics.jsonl").unlink()
    assert run_differences(tmp_path / "a", tmp_path / "c")[0].endswith("metrics.jsonl: missing")


def test_library_entry_points_never_re_execute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a process's own entry (`__main__`) may re-execute it: a library call from Python
    (a job runner, a test) must not replace its caller's process."""
    from multiagent import jobs

    def refuse(*args: object) -> None:
        raise AssertionError("os.execv called from a library function")

    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    monkeypatch.setattr(os, "execv", refuse)
    assert jobs.run_job("tune", []) == 1  # a usage error, reported, and no re-execution
