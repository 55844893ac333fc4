"""The Ray cluster launcher YAMLs in `cluster/` pass Ray's own autoscaler schema, offline.

`prepare_config` merges each provider's defaults (as `ray up` does) and `validate_config`
checks the result against Ray's JSON schema; neither contacts a cloud. A mistyped key is
rejected, so the check is not vacuous. No file holds a credential.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
LAUNCHER = sorted(p.name for p in CLUSTER.glob("*.yaml"))
SECRET = re.compile(
    r"(aws_secret|secret_access_key|private_key\s*:\s*-----|BEGIN .*PRIVATE KEY)", re.I
)


def prepared(name: str) -> dict[str, Any]:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(copy.deepcopy(yaml.safe_load((CLUSTER / name).read_text())))
    validate_config(config)
    return dict(config)


def test_the_three_providers_are_there() -> None:
    assert {"aws.yaml", "gcp.yaml", "local.yaml"} <= set(LAUNCHER)


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_yaml_passes_rays_schema(name: str) -> None:
    config = prepared(name)
    assert config["cluster_name"].startswith("multiagent")
    text = (CLUSTER / name).read_text()
    assert not SECRET.search(text), f"{name} looks like it holds a credential"
    # Every node installs this package from the mounted checkout, CPU torch first.
    setup = " ".join(config["setup_commands"])
    assert "torch==2.13.0" in setup and "pip install -e" in setup
    # `ray up` must not copy the local venv, git history or runs to every node.
    assert {".venv", ".git", "runs"} <= set(config["rsync_exclude"])
    assert ".gitignore" in config["rsync_filter"]
    assert list(config["file_mounts"]) == ["/home/ubuntu/multiagent-src"]
    assert any("--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"])


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_cloud_clusters_autoscale_cpu_rollouts_and_an_optional_gpu_learner(name: str) -> None:
    types = prepared(name)["available_node_types"]
    assert {"head", "cpu_rollout", "gpu_learner"} <= set(types)
    assert types["cpu_rollout"]["min_workers"] < types["cpu_rollout"]["max_workers"]
    assert types["gpu_learner"]["min_workers"] == 0 and types["gpu_learner"]["max_workers"] >= 1


def test_a_mistyped_key_is_rejected() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((CLUSTER / "aws.yaml").read_text())
    config["available_node_types"]["cpu_rollout"]["max_worker"] = 3
    with pytest.raises(Exception, match="max_worker"):
        validate_config(prepare_config(config))
