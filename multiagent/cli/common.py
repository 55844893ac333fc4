"""What every `multiagent` command shares: the consoles, error printing, config choice."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from multiagent.config import RunConfig, load_config, load_preset
from multiagent.data.errors import DataValidationError

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def fail(error: Exception) -> None:
    if isinstance(error, DataValidationError):
        errors.print(f"[bold red]{len(error.problems)} problem(s) in market data:[/]")
        for problem in error.problems:
            errors.print(f"  [red]-[/] {escape(str(problem))}", highlight=False)
    else:
        errors.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
    raise typer.Exit(code=1)


def run_config_from(config: Path | None, preset: str) -> tuple[RunConfig, str]:
    """The config file if given, else the embedded preset; plus the run's default name."""
    if config is not None:
        return load_config(config), config.stem
    return load_preset(preset), preset
