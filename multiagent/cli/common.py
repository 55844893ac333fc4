"""What every `multiagent` command shares: the consoles, error printing, config choice."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from multiagent.data.errors import DataValidationError
from multiagent.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from multiagent.config import RunConfig

PIPED_WIDTH = 200
"""Columns when the output is not a terminal (a pipe, a log file, CI): rich would assume 80 and
cut table headers and progress labels ("val_max_dr…"); a terminal keeps its own width."""


def _console(stderr: bool = False) -> Console:
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal or os.environ.get("COLUMNS") else PIPED_WIDTH
    return Console(stderr=stderr, soft_wrap=True, width=width)


console = _console()
errors = _console(stderr=True)


def fail(error: Exception) -> None:
    """Print ``error`` as the one message a user reads (no traceback), exit 1."""
    from pydantic import ValidationError

    from multiagent.schema import describe_error

    if isinstance(error, ValidationError):
        problems = "; ".join(describe_error(dict(e)) for e in error.errors())
        errors.print(f"[bold red]error:[/] {escape(error.title)}: {escape(problems)}")
        raise typer.Exit(code=1)
    if isinstance(error, DataValidationError):
        errors.print(f"[bold red]{len(error.problems)} problem(s) in market data:[/]")
        for problem in error.problems:
            errors.print(f"  [red]-[/] {escape(str(problem))}", highlight=False)
    else:
        errors.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
    raise typer.Exit(code=1)


def options_error(
    error: ValidationError, command: str, renamed: dict[str, str] | None = None
) -> ConfigError:
    """A settings model's validation error, told in the command's option names (``renamed``:
    model field -> option where they differ)."""
    problems = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        key = ".".join(str(part) for part in item["loc"])
        if not key:  # a rule across options: its message names them
            problems.append(message)
            continue
        option = "--" + (renamed or {}).get(key, key).replace("_", "-")
        problems.append(f"{option}: {message} (got {item.get('input')!r})")
    return ConfigError(f"{command}: " + "; ".join(problems))


def run_config_from(config: Path | None, preset: str) -> tuple[RunConfig, str]:
    """The config file if given, else the embedded preset; plus the run's default name."""
    from multiagent.config import load_config, load_preset

    if config is not None:
        return load_config(config), config.stem
    return load_preset(preset), preset
