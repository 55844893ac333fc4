"""Base exceptions: every error a user can cause derives from `MultiagentError`.

The CLI catches `MultiagentError` and prints its message without a traceback; anything else is a
bug in multiagent and keeps its traceback.
"""

from __future__ import annotations


class MultiagentError(Exception):
    """An error caused by the user's input (data, configuration, paths), never by a bug."""


class ConfigError(MultiagentError, ValueError):
    """A configuration file or value is invalid; the message names the file, key and expectation."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None) -> None:
        self.file = file
        self.field = field
        super().__init__(message)


class LeakageError(MultiagentError, RuntimeError):
    """Something asked for data a sealed run must not see (the test period while tuning)."""
