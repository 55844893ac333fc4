"""The master outside RLlib: the TorchScript export and `MasterNetPolicy` choose what the
RLModule chooses, a checkpoint folder loads into the same policy, and the evaluation side
never imports Ray."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hierarchy_configs import hierarchy_config
from support.hierarchy_modules import build_master, build_symbol, random_episode

from multiagent.envs.hierarchical_env import MASTER
from multiagent.errors import ConfigError
from multiagent.evaluation.master_policy import MasterNetPolicy
from multiagent.rllib.env import TradingAgentsEnv, market_for
from multiagent.rllib.modules import MasterRLModule
from multiagent.rllib.policy import (
    GreedyMasterPolicy,
    MasterInference,
    export_master_torchscript,
    load_rllib_master,
)

Setup = tuple[TradingAgentsEnv, MasterRLModule, dict[str, np.ndarray]]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """(env, an untrained master, its real inputs stacked) over 6 random episodes. The master
    starts uniform (no neutral prior), so its choices vary with the inputs."""
    config = hierarchy_config(
        tmp_path_factory.mktemp("master_export"), master={"policy": {"neutral_prior": 0.0}}
    )
    market, prepared = market_for(config)
    env = TradingAgentsEnv(market, prepared.train_views, config.env, master=True)
    rows = [
        observations[MASTER]
        for seed in range(6)
        for observations, *_ in random_episode(env, seed)
        if MASTER in observations
    ]
    inputs = {key: np.stack([row[key] for row in rows]) for key in ("obs", "market")}
    return env, build_master(config, env), inputs


def perturbed(inputs: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """Off the data's manifold: noise of the inputs' own scale on every value."""
    rng = np.random.default_rng(seed)
    return {
        key: (value + rng.normal(0.0, 1.0, value.shape) * (value.std() + 1e-3)).astype(np.float32)
        for key, value in inputs.items()
    }


def reference_actions(module: MasterRLModule, inputs: dict[str, np.ndarray]) -> np.ndarray:
    greedy = GreedyMasterPolicy(module)
    return np.stack(
        [
            greedy.act({"obs": obs, "market": market})
            for obs, market in zip(inputs["obs"], inputs["market"], strict=True)
        ]
    )


def module_logits(module: MasterRLModule, inputs: dict[str, np.ndarray]) -> torch.Tensor:
    with torch.no_grad():
        return MasterInference(module).eval()(
            torch.from_numpy(inputs["obs"]), torch.from_numpy(inputs["market"])
        )


def export(module: MasterRLModule, inputs: dict[str, np.ndarray], path: Path) -> Path:
    # A small example batch: the trace must not fix the batch size.
    return export_master_torchscript(module, path, inputs["obs"][:4], inputs["market"][:4])


@pytest.mark.slow
def test_export_chooses_the_rl_modules_actions(tmp_path: Path, setup: Setup) -> None:
    env, module, inputs = setup
    n = env.env.n_slots
    assert len(inputs["obs"]) >= 100
    path = export(module, inputs, tmp_path / "master" / "policy.pt")
    meta = json.loads(path.with_suffix(".json").read_text())
    space = env.action_spaces[MASTER]
    assert meta == {
        "format": "multiagent.master/1",
        "signature": "(obs (B, M), market (B, N*W*F)) -> logits (B, N*L + 3)",
        "observation_dim": inputs["obs"].shape[1],
        "market_dim": inputs["market"].shape[1],
        "n_slots": n,
        "nvec": [int(k) for k in space.nvec],
    }
    assert not list(path.parent.glob(".*partial"))

    policy = MasterNetPolicy.load(path)
    policy.check(inputs["obs"].shape[1], inputs["market"].shape[1], space.nvec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates torch.jit
        traced = torch.jit.load(str(path))
    for batch in (inputs, perturbed(inputs, 0), perturbed(inputs, 1)):
        expected = reference_actions(module, batch)
        actions = policy.decide(batch["obs"], batch["market"])
        assert actions.dtype == np.int64 and actions.shape == (len(batch["obs"]), n + 1)
        np.testing.assert_array_equal(actions, expected)
        assert all(space.contains(a) for a in actions)
        assert len({tuple(a) for a in actions}) > 1  # the inputs do move the choice
        with torch.no_grad():
            logits = traced(torch.from_numpy(batch["obs"]), torch.from_numpy(batch["market"]))
        torch.testing.assert_close(logits, module_logits(module, batch), rtol=0, atol=1e-5)
        # One row at a time (the rollout's protocol) agrees with the batch.
        np.testing.assert_array_equal(
            policy.act({"obs": batch["obs"][7], "market": batch["market"][7]}), expected[7]
        )


@pytest.mark.slow
def test_rllib_checkpoint_loads_into_the_same_policy(tmp_path: Path, setup: Setup) -> None:
    _, module, inputs = setup
    folder = tmp_path / "checkpoint"
    module.save_to_path(str(folder / "learner_group" / "learner" / "rl_module" / "master"))
    expected = reference_actions(module, inputs)
    for path in (folder, folder / "learner_group" / "learner" / "rl_module" / "master"):
        policy = load_rllib_master(path)
        assert policy.observation_dim == inputs["obs"].shape[1]
        assert policy.market_dim == inputs["market"].shape[1]
        np.testing.assert_array_equal(policy.decide(inputs["obs"], inputs["market"]), expected)


@pytest.mark.slow
def test_a_symbols_checkpoint_has_no_master(tmp_path: Path, setup: Setup) -> None:
    env, _, _ = setup
    folder = tmp_path / "symbols"
    symbol = folder / "learner_group" / "learner" / "rl_module" / "symbol"
    build_symbol(hierarchy_config(tmp_path), env).save_to_path(str(symbol))
    for path in (folder, symbol):
        with pytest.raises(ConfigError, match="has no master RLModule: it is a phase-2") as error:
            load_rllib_master(path)
        assert str(path) in str(error.value)


@pytest.mark.slow
def test_the_loaded_master_runs_without_ray(tmp_path: Path, setup: Setup) -> None:
    _, module, inputs = setup
    path = export(module, inputs, tmp_path / "policy.pt")
    np.savez(tmp_path / "inputs.npz", obs=inputs["obs"], market=inputs["market"])
    script = (
        "import sys, json, numpy as np\n"
        "from multiagent.evaluation.master_policy import MasterNetPolicy\n"
        "policy = MasterNetPolicy.load(sys.argv[1])\n"
        "data = np.load(sys.argv[2])\n"
        "print(json.dumps(policy.decide(data['obs'], data['market']).tolist()))\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
        "assert not any(m.startswith('multiagent.rllib') for m in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "inputs.npz")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    actions = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_array_equal(actions, reference_actions(module, inputs))


# without RLlib -------------------------------------------------------------------------------


def write_sidecar(path: Path, **changes: Any) -> None:
    meta: dict[str, Any] = {
        "format": "multiagent.master/1",
        "observation_dim": 12,
        "market_dim": 24,
        "n_slots": 2,
        "nvec": [4, 4, 3],
        **changes,
    }
    path.with_suffix(".json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "sidecar",
    [None, "{not json", '["a list"]', '{"format": "multiagent.policy/1"}', "nvec"],
)
def test_load_rejects_a_missing_or_broken_sidecar(tmp_path: Path, sidecar: str | None) -> None:
    path = tmp_path / "policy.pt"
    path.write_bytes(b"whatever")
    if sidecar == "nvec":
        write_sidecar(path, nvec="four")
    elif sidecar is not None:
        path.with_suffix(".json").write_text(sidecar)
    with pytest.raises(ConfigError, match="not a master sidecar") as error:
        MasterNetPolicy.load(path)
    assert str(path.with_suffix(".json")) in str(error.value)


@pytest.mark.parametrize("content", [b"not a zip archive", None])
def test_load_rejects_a_file_that_is_not_torchscript(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "policy.pt"
    if content is not None:
        path.write_bytes(content)
    write_sidecar(path)
    with pytest.raises(ConfigError, match="not a TorchScript master") as error:
        MasterNetPolicy.load(path)
    assert str(path) in str(error.value)


def test_check_names_every_mismatch() -> None:
    policy = MasterNetPolicy(None, [4, 4, 3], observation_dim=12, market_dim=24)
    policy.check(12, 24, [4, 4, 3])
    with pytest.raises(ConfigError) as error:
        policy.check(13, 30, [4, 4, 4, 3])
    message = str(error.value)
    for shown in ("12", "13", "24", "30", "[4, 4, 3]", "[4, 4, 4, 3]"):
        assert shown in message
    assert message.endswith("(evaluate with the config the master was trained with)")
    with pytest.raises(ConfigError, match="market windows of 24 values, the env gives 20"):
        policy.check(12, 20, [4, 4, 3])


def test_an_untrained_master_starts_near_the_neutral_allocation(
    tmp_path: Path, setup: Setup
) -> None:
    """`master.policy.neutral_prior`: before any training the master keeps the equal budgets
    and the neutral mode most of the time, so phase 3 starts from the independent agents."""
    env, _, inputs = setup
    config = hierarchy_config(tmp_path)  # the default prior
    module = build_master(config, env)
    logits = module_logits(module, inputs)
    nvec = [int(n) for n in env.action_spaces[MASTER].nvec]
    heads = torch.split(logits, nvec, dim=-1)
    neutral = [2] * (len(nvec) - 1) + [1]  # level 1.0 of (0, 0.5, 1, 1.5, 2); neutral mode
    for head, choice in zip(heads, neutral, strict=True):
        probability = torch.softmax(head, dim=-1)[:, choice]
        assert probability.mean() > 0.5  # about e^2 / (e^2 + n - 1): 0.65 (levels), 0.79 (mode)
    greedy = reference_actions(module, inputs)
    assert (greedy == np.array(neutral)).all(axis=1).mean() > 0.9
