"""Package exports imported on first use (PEP 562).

A package that re-exports names from heavy modules (numba kernels, scipy,
msprime, matplotlib, the web stack) declares where each name lives, and the
module holding it is imported only when the name is first used::

    if typing.TYPE_CHECKING:
        from genofed.report.plots import manhattan_plot
    else:
        __getattr__, __dir__ = _lazy.exports(
            __name__, {"genofed.report.plots": ["manhattan_plot"]}
        )

Type checkers read the imports; at run time the ``else`` branch defines the
module's ``__getattr__`` and ``__dir__``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["exports"]


def exports(
    package: str, names: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a package's ``__getattr__`` and ``__dir__`` for names imported on first use.

    Parameters
    ----------
    package
        The package's ``__name__``.
    names
        Each defining module's full name and the names it exports.

    Returns
    -------
    tuple
        ``__getattr__``, which imports a name's module, stores the name in the
        package and returns it, and ``__dir__``, which lists the names not yet
        imported too.
    """
    where = {name: module for module, exported in names.items() for name in exported}

    def __getattr__(name: str) -> Any:
        try:
            module = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__
