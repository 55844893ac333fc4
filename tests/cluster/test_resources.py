"""The `resources` section: validation, `auto` resolution against a cluster's totals, what
reaches RLlib's config, and the resources each sweep trial reserves."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from multiagent.config import RunConfig, load_config
from multiagent.config.phases import ResourceConfig
from multiagent.errors import ConfigError
from multiagent.rllib.resources import MIN_CPUS_FOR_AUTO_RUNNERS, apply_resources, resolve
from multiagent.tuning.config import SweepConfig
from multiagent.tuning.tuner import pin_trial_resources, trial_resources


def auto(**fields: object) -> ResourceConfig:
    return ResourceConfig.model_validate({"num_env_runners": "auto", **fields})


def test_laptop_defaults_sample_and_learn_in_the_driver() -> None:
    resolved = resolve(ResourceConfig(), {"CPU": 8.0})
    assert resolved.num_env_runners == 0 and resolved.num_learners == 0
    assert resolved.num_gpus_per_learner == 0.0


@pytest.mark.parametrize(
    ("cpus", "expected"),
    [(1.0, 0), (2.0, 0), (MIN_CPUS_FOR_AUTO_RUNNERS - 0.5, 0), (4.0, 3), (10.0, 9), (64.0, 16)],
)
def test_auto_runners_take_the_free_cpus_up_to_the_cap(cpus: float, expected: int) -> None:
    assert resolve(auto(), {"CPU": cpus}).num_env_runners == expected


def test_auto_runners_leave_room_for_learners_and_their_cpus() -> None:
    resolved = resolve(auto(num_learners=2, num_cpus_per_learner=2), {"CPU": 16.0})
    assert resolved.num_env_runners == 16 - 1 - 4
    assert resolve(auto(num_cpus_per_env_runner=2), {"CPU": 16.0}).num_env_runners == 7


def test_auto_runners_fit_the_nodes_that_carry_their_custom_resource() -> None:
    pinned = auto(custom_resources_per_env_runner={"rollout": 1})
    assert resolve(pinned, {"CPU": 10.0, "rollout": 2.0}).num_env_runners == 2
    assert resolve(pinned, {"CPU": 10.0}).num_env_runners == 0  # no rollout node (yet)
    assert resolve(pinned, {"CPU": 10.0, "rollout": 64.0}).num_env_runners == 9


def test_gpu_learner_when_the_cluster_has_a_gpu() -> None:
    assert resolve(ResourceConfig(), {"CPU": 8.0, "GPU": 1.0}).num_gpus_per_learner == 1.0
    assert resolve(ResourceConfig(), {"CPU": 8.0}).num_gpus_per_learner == 0.0
    fixed = ResourceConfig(num_gpus_per_learner=0.5)
    assert resolve(fixed, {"CPU": 8.0}).num_gpus_per_learner == 0.5


def test_rllib_config_gets_runners_learners_and_the_restart_policy() -> None:
    from ray.rllib.algorithms.ppo import PPOConfig

    resources = ResourceConfig(
        num_env_runners=3,
        num_envs_per_env_runner=8,
        custom_resources_per_env_runner={"rollout": 1},
        num_learners=1,
        num_gpus_per_learner=0,
        delay_between_env_runner_restarts_s=2.5,
        max_num_env_runner_restarts=7,
        sample_timeout_s=30,
    )
    config, resolved = apply_resources(PPOConfig(), resources)
    assert (config.num_env_runners, config.num_envs_per_env_runner) == (3, 8)
    assert config.custom_resources_per_env_runner == {"rollout": 1}
    assert (config.num_learners, config.num_gpus_per_learner) == (1, 0)
    assert config.restart_failed_env_runners is True
    assert config.delay_between_env_runner_restarts_s == 2.5
    assert config.max_num_env_runner_restarts == 7
    assert config.sample_timeout_s == 30
    assert resolved.num_env_runners == 3


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"num_env_runners": -1}, "num_env_runners"),
        ({"num_env_runners": "many"}, "num_env_runners"),
        ({"num_gpus_per_learner": -1}, "num_gpus_per_learner"),
        ({"num_envs_per_env_runner": 0}, "num_envs_per_env_runner"),
        ({"delay_between_env_runner_restarts_s": -1}, "delay_between_env_runner_restarts_s"),
        ({"num_env_runner": 2}, "unknown key"),
    ],
)
def test_bad_resources_name_file_and_key(
    tmp_path: Path, resources: dict[str, object], message: str
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"resources": resources}))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_the_old_runner_section_says_where_it_moved(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({"symbols": {"runners": {"num_env_runners": 2}}}))
    with pytest.raises(ConfigError, match=r"symbols\.runners. moved to the top-level .resources"):
        load_config(path)


def test_laptop_presets_and_the_cluster_preset() -> None:
    from multiagent.config import load_preset

    for name in ("default", "quick"):
        assert load_preset(name).resources == ResourceConfig()
    assert RunConfig().resources.num_env_runners == 0
    cluster, default = load_preset("cluster"), load_preset("default")
    assert cluster.resources.num_env_runners == "auto"
    assert cluster.resources.num_gpus_per_learner == "auto"
    # The default run otherwise: same data, features, splits and env.
    for section in ("data", "features", "split", "episodes", "env", "encoder", "master"):
        assert getattr(cluster, section) == getattr(default, section), section
    assert resolve(cluster.resources, {"CPU": 48.0, "GPU": 1.0}).num_env_runners == 32
    assert resolve(cluster.resources, {"CPU": 2.0}).num_env_runners == 0


def test_sweep_trials_reserve_their_runners_and_never_run_auto() -> None:
    sweep = SweepConfig.model_validate(
        {
            "name": "s",
            "base": {"preset": "quick"},
            "space": {"symbols.ppo.lr": {"loguniform": [1e-5, 1e-3]}},
        }
    )
    pinned = pin_trial_resources(auto())
    assert pinned.num_env_runners == 0 and pinned.num_gpus_per_learner == 0
    assert trial_resources(sweep, pinned).bundles == [{"CPU": 1.0}]
    two = ResourceConfig(
        num_env_runners=2, num_gpus_per_learner=1, custom_resources_per_env_runner={"rollout": 1}
    )
    assert trial_resources(sweep, pin_trial_resources(two)).bundles == [
        {"CPU": 1.0, "GPU": 1.0},
        {"CPU": 1.0, "rollout": 1.0},
        {"CPU": 1.0, "rollout": 1.0},
    ]
    # Remote learners get their own bundles (and the GPU, not the trial's driver).
    learners = ResourceConfig(num_learners=2, num_cpus_per_learner=2, num_gpus_per_learner=1)
    assert trial_resources(sweep, learners).bundles == [
        {"CPU": 1.0},
        {"CPU": 2.0, "GPU": 1.0},
        {"CPU": 2.0, "GPU": 1.0},
    ]
    with pytest.raises(ConfigError):
        trial_resources(sweep, auto())
