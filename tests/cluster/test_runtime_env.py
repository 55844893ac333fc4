"""The job runtime envs (`scripts/runtime_env*.yaml`) and the job entrypoints' arguments.

Ray's own `RuntimeEnv` validates the files (it parses and checks fields without starting Ray)
and Ray's own exclude matcher decides what `--working-dir .` would upload. The pip variant must
list exactly pyproject's dependencies, or a fresh cluster runs another environment than CI.
The `multiagent.jobs` builders must add the runs root only where the arguments name no output.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from multiagent import jobs
from multiagent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
RUNTIME_ENVS = ["runtime_env.yaml", "runtime_env_pip.yaml"]
SWEEP = "tune_configs/symbols_pbt.yaml"  # its name: symbols-pbt
JOB_SCRIPTS = ["train_job.py", "tune_job.py", "evaluate_job.py"]


def runtime_env(name: str) -> dict[str, Any]:
    data = yaml.safe_load((SCRIPTS / name).read_text())
    assert isinstance(data, dict)
    return data


# the runtime envs ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", RUNTIME_ENVS)
def test_ray_accepts_the_runtime_env_without_starting(name: str) -> None:
    import ray
    from ray.runtime_env import RuntimeEnv

    data = runtime_env(name)
    running = ray.is_initialized()  # the session's Ray, when an earlier test started it
    parsed = RuntimeEnv(**data)
    assert ray.is_initialized() == running  # parsing alone never starts Ray
    # RuntimeEnv passes unknown keys through silently: a typo ("exclude") would be lost.
    assert set(data) <= RuntimeEnv.known_fields
    assert "working_dir" not in data  # `ray job submit --working-dir .` gives it
    assert parsed["env_vars"]["RAY_USAGE_STATS_ENABLED"] == "0"
    # The cluster, not the job, says where runs and MLflow live.
    assert not {"MULTIAGENT_RUNS_DIR", "MLFLOW_TRACKING_URI"} & set(parsed["env_vars"])


@pytest.mark.parametrize("name", RUNTIME_ENVS)
def test_excludes_keep_the_venv_git_and_runs_out_of_the_upload(name: str) -> None:
    from ray._private.runtime_env.packaging import _get_excludes

    excludes = runtime_env(name)["excludes"]
    assert {".venv", ".git", "/runs", "/mlruns"} <= set(excludes)
    excluded = _get_excludes(ROOT, excludes)  # the matcher `ray job submit` uses
    for path in [
        ".venv/lib/python3.11/site-packages/torch/__init__.py",
        ".git/HEAD",
        "runs/quick-20240101/run.yaml",
        "mlruns/0/meta.yaml",
        "multiagent.egg-info/PKG-INFO",
        "multiagent/__pycache__/jobs.cpython-311.pyc",
        ".mypy_cache/3.11/cache.db",
        ".hypothesis/examples/x",
    ]:
        assert excluded(ROOT / path), f"{path} would be uploaded"
    for path in [
        "multiagent/jobs.py",
        "multiagent/runs/folders.py",
        "multiagent/presets/quick.yaml",
        "scripts/train_job.py",
        "tune_configs/symbols_pbt.yaml",
        "curricula",
    ]:
        assert not excluded(ROOT / path), f"{path} would be left out"


def test_pip_variant_is_the_plain_one_plus_exactly_pyprojects_dependencies() -> None:
    plain, pip = runtime_env("runtime_env.yaml"), runtime_env("runtime_env_pip.yaml")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pip["pip"]["packages"] == pyproject["project"]["dependencies"]
    assert pip["pip"]["pip_check"] is False
    assert {k: v for k, v in pip.items() if k != "pip"} == plain


def test_job_scripts_and_runtime_envs_named_in_docs_exist() -> None:
    texts = [
        *(SCRIPTS / n for n in [*RUNTIME_ENVS, *JOB_SCRIPTS]),
        *(ROOT / "cluster").rglob("*.md"),
        *(ROOT / "cluster" / "kuberay").glob("*.yaml"),
        *(ROOT / "docs").glob("*.md"),
        ROOT / "README.md",
    ]
    named = {
        ref
        for path in texts
        if path.is_file()
        for ref in re.findall(r"scripts/(?:\w+_job\.py|runtime_env\w*\.yaml)", path.read_text())
    }
    assert {f"scripts/{n}" for n in JOB_SCRIPTS} | {"scripts/runtime_env.yaml"} <= named
    assert [ref for ref in sorted(named) if not (ROOT / ref).is_file()] == []


# the job arguments ---------------------------------------------------------------------------


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(jobs.RUNS_DIR_ENV, str(tmp_path))
    monkeypatch.chdir(ROOT)  # a job runs in its working dir: the repository's copy
    return tmp_path


def test_runs_root_defaults_to_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(jobs.RUNS_DIR_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert jobs.runs_root() == tmp_path / "multiagent" / "runs"


def test_train_writes_under_the_runs_root(runs: Path) -> None:
    argv = jobs.train_arguments(["--preset", "quick"])
    assert argv == ["train", "pipeline", "--preset", "quick", "--runs-dir", str(runs)]


@pytest.mark.parametrize(
    "given",
    [
        ["--run-dir", "/mnt/runs/a"],
        ["--run-dir=/mnt/runs/a"],
        ["--resume", "/mnt/runs/a"],
        ["--runs-dir", "/elsewhere"],
    ],
)
def test_train_adds_nothing_when_the_output_is_named(runs: Path, given: list[str]) -> None:
    assert jobs.train_arguments(["--preset", "quick", *given]) == [
        "train",
        "pipeline",
        "--preset",
        "quick",
        *given,
    ]


@pytest.mark.parametrize("config", [["--config", SWEEP], [f"--config={SWEEP}"]])
def test_tune_puts_the_sweep_and_best_config_under_the_runs_root(
    runs: Path, config: list[str]
) -> None:
    assert jobs.tune_arguments(config) == [
        "tune",
        *config,
        "--out",
        str(runs / "sweeps" / "symbols-pbt"),
        "--best-dir",
        str(runs / "best"),
    ]


def test_tune_keeps_given_outputs(runs: Path) -> None:
    given = ["--config", SWEEP, "--out", "/mnt/x", "--best-dir=/mnt/best"]
    assert jobs.tune_arguments(given) == ["tune", *given]
    with_out = jobs.tune_arguments(["--config", SWEEP, "--out", "/mnt/x"])
    assert with_out[-2:] == ["--best-dir", str(runs / "best")]


def test_tune_without_a_sweep_file_is_a_config_error(runs: Path) -> None:
    with pytest.raises(ConfigError, match="--config"):
        jobs.tune_arguments(["--resume"])
    assert jobs.run_job("tune", []) == 1  # the job reports it and fails, no traceback


def test_evaluate_arguments_pass_through(runs: Path) -> None:
    args = ["--checkpoint", "/mnt/runs/quick", "--out", "/mnt/runs/report"]
    assert jobs.evaluate_arguments(args) == ["evaluate", *args]
