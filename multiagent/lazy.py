"""Package exports imported on first use (PEP 562), so that importing one light module of a
package (a settings schema) does not import its heavy siblings (torch, scipy, the simulator).

The command line is the reason: `multiagent --help` and the data commands must not pay for torch
and scipy. A package lists its exports as ``{name: submodule}``; type checkers read the same
names from an ``if TYPE_CHECKING:`` import block. A submodule is relative to the package, or a
full ``multiagent.`` module name for a re-export from elsewhere.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` importing ``package.<submodule>`` when a name is first read."""

    def __getattr__(name: str) -> object:
        submodule = exports.get(name)
        if submodule is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = submodule if submodule.startswith("multiagent.") else f"{package}.{submodule}"
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later reads skip this function
        return value

    return __getattr__
