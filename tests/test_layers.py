"""The package's one-way layers (docs/architecture.md) hold, and the check would catch a break.

`make test` runs `lint-imports` with the contracts in pyproject.toml; these tests prove that the
contracts are kept today, that a planted upward import breaks them, and the one rule import-linter
cannot state (only the adapter imports ``ray.rllib``; it forbids external packages whole).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "multiagent"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package copy under ``root`` with the project's contracts (the
    copy comes first on the path, so it is the one analysed)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    return subprocess.run(
        [*command, str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy_package(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE, tmp_path / "multiagent", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layers_are_kept(tmp_path: Path) -> None:
    result = lint_imports(copy_package(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward", "contract"),
    [
        ("data/planted.py", "from multiagent.training import pipeline", "One-way layers"),
        ("evaluation/planted.py", "import multiagent.rllib.policy", "One-way layers"),
        ("envs/planted.py", "import ray", "The engine runs without Ray"),
    ],
)
def test_an_upward_import_breaks_the_check(
    tmp_path: Path, module: str, upward: str, contract: str
) -> None:
    root = copy_package(tmp_path)
    (root / "multiagent" / module).write_text(f"{upward}\n", encoding="utf-8")
    result = lint_imports(root)
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout


def test_only_the_adapter_imports_rllib() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "rllib"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno} {name}"
                for name in names
                if name == "ray.rllib" or name.startswith("ray.rllib.")
            ]
    assert offenders == [], offenders
