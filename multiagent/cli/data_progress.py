"""A progress bar on stderr while a large data file streams in (issue 23): a 500 MB CSV takes
seconds, and a silent terminal reads as a hang. Small files load too fast to need one, so the
bar (and any output a test would see) appears only above `LARGE_FILE_BYTES`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from multiagent.data.readers import ProgressHook

LARGE_FILE_BYTES = 50 * 2**20
"""Files above this size (50 MiB) get a progress bar."""


@contextmanager
def read_progress(console: Console | None = None) -> Iterator[ProgressHook]:
    """A `ProgressHook` for `load_panel`; the bar starts with the first large file."""
    progress = Progress(
        TextColumn("reading {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=True,
    )
    started = False

    def hook(file: str, size: int) -> Callable[[int], None] | None:
        nonlocal started
        if size <= LARGE_FILE_BYTES:
            return None
        if not started:
            progress.start()
            started = True
        task = progress.add_task(file, total=size)
        return lambda n: progress.advance(task, n)

    try:
        yield hook
    finally:
        if started:
            progress.stop()
