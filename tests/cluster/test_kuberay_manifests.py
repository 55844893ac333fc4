"""The KubeRay manifests in `cluster/kuberay/` hold together, checked offline.

Neither the `kubernetes` client nor KubeRay's CRD schema is installed, so `manifest_problems`
checks by hand what an edit typically breaks: unknown keys (the CRD would prune or reject
them), non-string rayStartParams, replica bounds, missing images or resources, a GPU group
without a GPU, the shared runs volume and its env var, a literal credential. Every check has a
broken variant below that it must reject, so none is vacuous. The RayJob's own cluster must
agree with raycluster.yaml, and its entrypoint must be a job script whose arguments the CLI
parses.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERAY = ROOT / "cluster" / "kuberay"
RUNS_CLAIM = "multiagent-runs"
RUNS_ENV = "MULTIAGENT_RUNS_DIR"

# Fields of KubeRay's ray.io/v1 types (ray-operator/apis/ray/v1, up to v1.4).
CLUSTER_KEYS = {
    "autoscalerOptions", "enableInTreeAutoscaling", "gcsFaultToleranceOptions", "headGroupSpec",
    "headServiceAnnotations", "managedBy", "rayVersion", "suspend", "workerGroupSpecs",
}  # fmt: skip
HEAD_KEYS = {"enableIngress", "headService", "rayStartParams", "serviceType", "template"}
WORKER_KEYS = {
    "groupName", "idleTimeoutSeconds", "maxReplicas", "minReplicas", "numOfHosts",
    "rayStartParams", "replicas", "scaleStrategy", "suspend", "template",
}  # fmt: skip
JOB_KEYS = {
    "activeDeadlineSeconds", "backoffLimit", "clusterSelector", "deletionStrategy", "entrypoint",
    "entrypointNumCpus", "entrypointNumGpus", "entrypointResources", "jobId", "managedBy",
    "metadata", "rayClusterSpec", "runtimeEnvYAML", "schedule", "shutdownAfterJobFinishes",
    "submissionMode", "submitterConfig", "submitterPodTemplate", "suspend",
    "ttlSecondsAfterFinished",
}  # fmt: skip
SUBMISSION_MODES = {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SECRET_NAME = re.compile(
    r"(password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential)", re.I
)

# Kubernetes resource quantities: "500m", "8", "16Gi", "1e3", "2.5G".
QUANTITY = re.compile(
    r"^((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
)
SUFFIX = {
    None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip


def quantity(value: object) -> float:
    """A Kubernetes quantity as a number (cores, bytes, devices); ValueError when it is none."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = QUANTITY.match(str(value))
    if match is None:
        raise ValueError(f"not a quantity: {value!r}")
    return float(match.group(1)) * SUFFIX[match.group(2)]


def _unknown(where: str, mapping: dict[str, Any], known: set[str]) -> list[str]:
    return [f"{where}: unknown key {key!r}" for key in sorted(set(mapping) - known)]


def _secrets(where: str, node: Any) -> Iterator[str]:
    """Literal values under credential-like names (a secretKeyRef holds a reference: fine)."""
    if isinstance(node, dict):
        named = node.get("name")
        if isinstance(named, str) and SECRET_NAME.search(named) and node.get("value"):
            yield f"{where}: {named} has a literal value; use valueFrom.secretKeyRef"
        for key, value in node.items():
            if SECRET_NAME.search(str(key)) and isinstance(value, str | int) and value != "":
                yield f"{where}.{key}: literal secret-like value"
            yield from _secrets(f"{where}.{key}", value)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _secrets(f"{where}[{i}]", item)


def _container_problems(where: str, container: dict[str, Any], gpu: bool) -> list[str]:
    problems: list[str] = []
    image = container.get("image")
    if not isinstance(image, str) or not image:
        return [f"{where}: no image"]
    if image.startswith("rayproject/ray:") and not image.split(":", 1)[1].startswith(
        ray.__version__ + "-"
    ):
        problems.append(f"{where}: image {image} is not Ray {ray.__version__}")
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    for name in ("cpu", "memory"):
        if name not in requests or name not in limits:
            problems.append(f"{where}: {name} needs both a request and a limit")
            continue
        try:
            if quantity(requests[name]) > quantity(limits[name]):
                problems.append(f"{where}: {name} request above its limit")
        except ValueError as error:
            problems.append(f"{where}: {name}: {error}")
    if gpu and quantity(limits.get("nvidia.com/gpu", 0)) < 1:
        problems.append(f"{where}: a GPU group needs an nvidia.com/gpu limit")
    return problems


def _pod_problems(where: str, template: Any, gpu: bool) -> list[str]:
    spec = (template or {}).get("spec") or {}
    containers = spec.get("containers") or []
    if not containers:
        return [f"{where}: no containers"]
    runs = [
        v["name"]
        for v in spec.get("volumes") or []
        if (v.get("persistentVolumeClaim") or {}).get("claimName") == RUNS_CLAIM
    ]
    problems = [] if runs else [f"{where}: no volume from the {RUNS_CLAIM} claim"]
    for i, container in enumerate(containers):
        at = f"{where}.containers[{i}]"
        problems += _container_problems(at, container, gpu)
        mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") in runs]
        env = {e.get("name"): e.get("value") for e in container.get("env") or []}
        if not mounts:
            problems.append(f"{at}: does not mount the runs volume")
        elif env.get(RUNS_ENV) != mounts[0].get("mountPath"):
            problems.append(f"{at}: {RUNS_ENV} must be the runs volume's mountPath")
    return problems


def _start_params_problems(where: str, group: dict[str, Any]) -> list[str]:
    params = group.get("rayStartParams")
    if not isinstance(params, dict):
        return [f"{where}: rayStartParams is required (a mapping, possibly empty)"]
    return [
        f"{where}: rayStartParams.{key} must be a string (map[string]string)"
        for key, value in params.items()
        if not isinstance(value, str)
    ]


def cluster_spec_problems(where: str, spec: Any) -> list[str]:
    """Problems of a RayCluster spec (a RayCluster's or a RayJob's rayClusterSpec)."""
    if not isinstance(spec, dict):
        return [f"{where}: missing"]
    problems = _unknown(where, spec, CLUSTER_KEYS)
    if spec.get("rayVersion") != ray.__version__:
        problems.append(f"{where}: rayVersion {spec.get('rayVersion')!r} != {ray.__version__}")
    if spec.get("enableInTreeAutoscaling") is not True:
        problems.append(f"{where}: enableInTreeAutoscaling should be true")
    head = spec.get("headGroupSpec") or {}
    problems += _unknown(f"{where}.headGroupSpec", head, HEAD_KEYS)
    problems += _start_params_problems(f"{where}.headGroupSpec", head)
    if head.get("serviceType", "ClusterIP") != "ClusterIP":
        problems.append(f"{where}: the head Service must stay ClusterIP (the job API is open)")
    problems += _pod_problems(f"{where}.headGroupSpec", head.get("template"), gpu=False)
    groups = spec.get("workerGroupSpecs") or []
    if not groups:
        problems.append(f"{where}: no workerGroupSpecs")
    names = [group.get("groupName") for group in groups]
    if len(set(names)) != len(names):
        problems.append(f"{where}: duplicate groupName in {names}")
    for group in groups:
        at = f"{where}.workerGroupSpecs[{group.get('groupName')}]"
        problems += _unknown(at, group, WORKER_KEYS)
        problems += _start_params_problems(at, group)
        if not isinstance(group.get("groupName"), str) or not DNS_LABEL.match(group["groupName"]):
            problems.append(f"{at}: groupName must be a DNS label (a-z, 0-9, -)")
        bounds = [group.get(key) for key in ("minReplicas", "replicas", "maxReplicas")]
        if not all(isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in bounds):
            problems.append(f"{at}: minReplicas, replicas, maxReplicas must be integers >= 0")
        elif not bounds[0] <= bounds[1] <= bounds[2]:
            problems.append(f"{at}: needs minReplicas <= replicas <= maxReplicas, got {bounds}")
        gpu = "gpu" in str(group.get("groupName"))
        problems += _pod_problems(at, group.get("template"), gpu=gpu)
    return problems


def _runtime_env_problems(where: str, text: Any) -> list[str]:
    from ray.runtime_env import RuntimeEnv

    try:
        data = yaml.safe_load(text) if text else {}
        RuntimeEnv(**data)
    except Exception as error:  # whatever Ray rejects it with
        return [f"{where}: {type(error).__name__}: {error}"]
    unknown = set(data) - RuntimeEnv.known_fields  # Ray accepts unknown keys silently
    return [f"{where}: unknown runtime env key {key!r}" for key in sorted(unknown)]


def manifest_problems(doc: dict[str, Any]) -> list[str]:
    """What is wrong with one KubeRay document (RayCluster or RayJob); [] when nothing."""
    kind = doc.get("kind")
    problems = [f"{kind}: literal credential at {s}" for s in _secrets("", doc)]
    if doc.get("apiVersion") != "ray.io/v1":
        problems.append(f"{kind}: apiVersion must be ray.io/v1, got {doc.get('apiVersion')!r}")
    if not (doc.get("metadata") or {}).get("name"):
        problems.append(f"{kind}: metadata.name is required")
    spec = doc.get("spec") or {}
    if kind == "RayCluster":
        return problems + cluster_spec_problems("spec", spec)
    if kind != "RayJob":
        return [*problems, f"not a KubeRay kind: {kind!r}"]
    problems += _unknown("spec", spec, JOB_KEYS)
    if not isinstance(spec.get("entrypoint"), str) or not spec["entrypoint"].strip():
        problems.append("spec.entrypoint: a command is required")
    if spec.get("submissionMode", "K8sJobMode") not in SUBMISSION_MODES:
        problems.append(f"spec.submissionMode {spec.get('submissionMode')!r} is not a mode")
    for key in ("ttlSecondsAfterFinished", "backoffLimit"):
        value = spec.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.append(f"spec.{key} must be an integer >= 0")
    if not isinstance(spec.get("shutdownAfterJobFinishes", False), bool):
        problems.append("spec.shutdownAfterJobFinishes must be a boolean")
    problems += _runtime_env_problems("spec.runtimeEnvYAML", spec.get("runtimeEnvYAML"))
    return problems + cluster_spec_problems("spec.rayClusterSpec", spec.get("rayClusterSpec"))


def documents(name: str) -> dict[str, dict[str, Any]]:
    """The file's documents by kind (each file holds a PVC and one KubeRay object)."""
    docs = [d for d in yaml.safe_load_all((KUBERAY / name).read_text()) if d]
    kinds = [d["kind"] for d in docs]
    assert len(set(kinds)) == len(kinds), f"{name}: one document per kind, got {kinds}"
    return {d["kind"]: d for d in docs}


def cluster() -> dict[str, Any]:
    return documents("raycluster.yaml")["RayCluster"]


def job() -> dict[str, Any]:
    return documents("rayjob.yaml")["RayJob"]


def groups(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Head and worker groups by name ("head" for the head)."""
    found = {"head": spec["headGroupSpec"]}
    found.update({g["groupName"]: g for g in spec["workerGroupSpecs"]})
    return found


# the files as they are ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kind", [("raycluster.yaml", "RayCluster"), ("rayjob.yaml", "RayJob")]
)
def test_manifest_has_no_problems(name: str, kind: str) -> None:
    assert manifest_problems(documents(name)[kind]) == []


def test_head_rollout_and_optional_gpu_groups_mirror_the_launcher_yamls() -> None:
    found = groups(cluster()["spec"])
    assert set(found) == {"head", "cpu-rollout", "gpu-learner"}
    rollout, gpu = found["cpu-rollout"], found["gpu-learner"]
    assert 1 <= rollout["minReplicas"] < rollout["maxReplicas"]
    assert gpu["minReplicas"] == 0 and gpu["maxReplicas"] >= 1
    limits = gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert quantity(limits["nvidia.com/gpu"]) == 1


def test_rollout_resource_matches_the_rollout_pods_cpus() -> None:
    """custom_resources_per_env_runner: {rollout: 1} fills a rollout pod, one runner per CPU."""
    rollout = groups(cluster()["spec"])["cpu-rollout"]
    # KubeRay's format: a JSON string inside a quoted string, hence two decodes.
    resources = json.loads(json.loads(rollout["rayStartParams"]["resources"]))
    cpus = rollout["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"]
    assert resources == {"rollout": quantity(cpus)}


def test_head_dashboard_is_reachable_in_cluster_only() -> None:
    head = cluster()["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"  # the operator submits jobs
    assert head["serviceType"] == "ClusterIP" and not head.get("enableIngress", False)


def test_rayjob_cluster_agrees_with_raycluster_yaml() -> None:
    """Replica counts may differ per job; what runs in the pods may not."""

    def summary(spec: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"rayVersion": spec["rayVersion"]}
        for name, group in groups(spec).items():
            pod = group["template"]["spec"]
            out[name] = {
                "rayStartParams": group["rayStartParams"],
                "volumes": pod.get("volumes"),
                "containers": [
                    {k: c.get(k) for k in ("image", "env", "volumeMounts", "resources")}
                    for c in pod["containers"]
                ],
            }
        return out

    assert summary(job()["spec"]["rayClusterSpec"]) == summary(cluster()["spec"])


def test_both_files_declare_the_same_rwx_runs_claim() -> None:
    claims = [documents(n)["PersistentVolumeClaim"] for n in ("raycluster.yaml", "rayjob.yaml")]
    assert claims[0] == claims[1]
    assert claims[0]["metadata"]["name"] == RUNS_CLAIM
    assert claims[0]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_rayjob_settings() -> None:
    spec = job()["spec"]
    assert spec["submissionMode"] == "K8sJobMode"
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    # The code comes from a zip URL: a local path would be one in the submitter pod.
    assert re.match(r"^(https|s3|gs)://.+\.zip$", runtime_env["working_dir"])
    pods = yaml.safe_load((ROOT / "scripts" / "runtime_env.yaml").read_text())
    assert runtime_env["env_vars"] == pods["env_vars"]


def test_rayjob_entrypoint_is_a_job_script_whose_arguments_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer

    from multiagent import jobs
    from multiagent.cli import app
    from multiagent.config import PRESETS

    python, script, *args = shlex.split(job()["spec"]["entrypoint"])
    assert python == "python" and (ROOT / script).is_file(), script
    builders = {
        "scripts/train_job.py": (jobs.train_arguments, 2),
        "scripts/tune_job.py": (jobs.tune_arguments, 1),
        "scripts/evaluate_job.py": (jobs.evaluate_arguments, 1),
    }
    assert script in builders, f"{script} is not a job entrypoint"
    build, depth = builders[script]
    monkeypatch.setenv(jobs.RUNS_DIR_ENV, str(tmp_path))
    argv = build(args)
    command: Any = typer.main.get_command(app)
    for name in argv[:depth]:
        command = command.commands[name]
    params = command.make_context(" ".join(argv[:depth]), argv[depth:]).params
    if "--preset" in args:
        assert params["preset"] in PRESETS
    if script == "scripts/train_job.py" and "--run-dir" not in args:
        assert params["runs_dir"] == tmp_path  # the job writes on the shared volume


# the checker rejects what it should ----------------------------------------------------------


DELETE = object()
Keys = tuple[str | int, ...]


def _set(path: Keys, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation setting the item at ``path`` to ``value`` (DELETE removes it)."""

    def apply(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        if value is DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return apply


W0: Keys = ("spec", "workerGroupSpecs", 0)
GPU: Keys = ("spec", "workerGroupSpecs", 1)
HEAD: Keys = ("spec", "headGroupSpec")
HEAD_C: Keys = (*HEAD, "template", "spec", "containers", 0)
W0_C: Keys = (*W0, "template", "spec", "containers", 0)
GPU_C: Keys = (*GPU, "template", "spec", "containers", 0)
OTHER_RAY = "rayproject/ray:2.9.0-py311-cpu"
SECRET_ENV = {"name": "AWS_SECRET_ACCESS_KEY", "value": "abc"}
BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "min above max": (_set((*W0, "minReplicas"), 7), "minReplicas <= replicas"),
    "replicas above max": (_set((*W0, "replicas"), 9), "minReplicas <= replicas"),
    "replicas not an int": (_set((*W0, "maxReplicas"), "6"), "integers"),
    "mistyped key": (_set((*W0, "minReplica"), 1), "unknown key 'minReplica'"),
    "group name with _": (_set((*W0, "groupName"), "cpu_rollout"), "DNS label"),
    "duplicate group": (_set((*GPU, "groupName"), "cpu-rollout"), "duplicate groupName"),
    "no image": (_set((*W0_C, "image"), DELETE), "no image"),
    "image of another Ray": (_set((*HEAD_C, "image"), OTHER_RAY), "is not Ray"),
    "no memory limit": (_set((*W0_C, "resources", "limits", "memory"), DELETE), "memory needs"),
    "cpu request above limit": (_set((*HEAD_C, "resources", "requests", "cpu"), "8"), "above"),
    "bad quantity": (_set((*HEAD_C, "resources", "limits", "memory"), "16 GB"), "quantity"),
    "int start param": (_set((*HEAD, "rayStartParams", "num-cpus"), 0), "must be a string"),
    "no start params": (_set((*GPU, "rayStartParams"), DELETE), "rayStartParams is required"),
    "gpu group without gpu": (
        _set((*GPU_C, "resources", "limits", "nvidia.com/gpu"), DELETE),
        "nvidia.com/gpu",
    ),
    "other rayVersion": (_set(("spec", "rayVersion"), "2.9.0"), "rayVersion"),
    "old apiVersion": (_set(("apiVersion",), "ray.io/v1alpha1"), "apiVersion"),
    "public head": (_set((*HEAD, "serviceType"), "LoadBalancer"), "ClusterIP"),
    "runs not mounted": (_set((*W0_C, "volumeMounts"), []), "does not mount"),
    "runs env elsewhere": (_set((*W0_C, "env", 0, "value"), "/tmp/runs"), RUNS_ENV),
    "no runs volume": (_set((*W0, "template", "spec", "volumes"), []), "no volume"),
    "literal secret": (_set((*W0_C, "env", 1), SECRET_ENV), "literal"),
}
BROKEN_JOB: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "no cluster spec": (_set(("spec", "rayClusterSpec"), DELETE), "rayClusterSpec: missing"),
    "bad mode": (_set(("spec", "submissionMode"), "K8sMode"), "submissionMode"),
    "negative ttl": (_set(("spec", "ttlSecondsAfterFinished"), -1), "ttlSecondsAfterFinished"),
    "empty entrypoint": (_set(("spec", "entrypoint"), " "), "entrypoint"),
    "runtime env Ray rejects": (
        _set(("spec", "runtimeEnvYAML"), "env_vars: {A: 1}"),
        "runtimeEnvYAML: TypeError",
    ),
    "runtime env typo": (_set(("spec", "runtimeEnvYAML"), "env_var: {A: '1'}"), "'env_var'"),
    "broken cluster spec": (
        _set(("spec", "rayClusterSpec", "workerGroupSpecs", 0, "minReplicas"), 9),
        "minReplicas <= replicas",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_checker_rejects_a_broken_raycluster(case: str) -> None:
    doc = copy.deepcopy(cluster())
    mutate, expected = BROKEN[case]
    mutate(doc)
    problems = manifest_problems(doc)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("case", sorted(BROKEN_JOB))
def test_checker_rejects_a_broken_rayjob(case: str) -> None:
    doc = copy.deepcopy(job())
    mutate, expected = BROKEN_JOB[case]
    mutate(doc)
    problems = manifest_problems(doc)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "text, value",
    [("500m", 0.5), ("8", 8.0), (4, 4.0), ("16Gi", 16 * 2.0**30), ("2G", 2e9), ("1e3", 1e3)],
)
def test_quantity(text: object, value: float) -> None:
    assert quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["16 GB", "", "Gi", "1.5x", True])
def test_quantity_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        quantity(text)
