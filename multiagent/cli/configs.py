"""`multiagent config show`: the run config a command would use, and where each value is from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from multiagent.cli.common import console, fail
from multiagent.errors import MultiagentError

config_app = typer.Typer(help="Inspect run configs.", no_args_is_help=True)


@config_app.command("show")
def show(
    config: Annotated[Path | None, typer.Option(help="Run config YAML.")] = None,
    preset: Annotated[str, typer.Option(help="Embedded preset when no --config.")] = "default",
) -> None:
    """Print the resolved run config as YAML: every value with the layer it came from (the
    file, a preset it extends, or the built-in default)."""
    from multiagent.config.loading import config_layers, preset_layers
    from multiagent.config.show import show_config

    try:
        layers = config_layers(config) if config is not None else preset_layers(preset)
        console.print(show_config(layers), markup=False, highlight=False, end="")
    except (MultiagentError, ValueError) as error:
        fail(error)
