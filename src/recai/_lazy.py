"""Lazy package exports (PEP 562), the one way a recai package names what its modules define.

A package whose names would be costly or circular to import eagerly (``recai``, ``recai.data``, the LLM
pillars) declares which of its modules defines which public name; ``__getattr__`` imports a name's
module on first access, so ``import recai`` and ``recai --help`` load neither pandas nor torch::

    __getattr__, __dir__ = lazy_exports(
        __name__, {".catalog": ["Catalog"], ".splits": ["Split", "leave_one_out"]}
    )

    __all__ = ["Catalog", "Split", "leave_one_out"]  # written out, so that linters see it

    if TYPE_CHECKING:  # the same names, for type checkers
        from recai.data.catalog import Catalog
        from recai.data.splits import Split, leave_one_out

Every name is then the very object at its deep path (``recai.data.Catalog is recai.data.catalog.Catalog``).
"""

from __future__ import annotations

import importlib
import sys

# not ``from typing import TYPE_CHECKING``: ``import recai`` comes here, and typing would double its cost
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping


def lazy_exports(
    package: str, modules: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose public names are defined in
    ``modules`` (module, relative to the package as in ``from .catalog import ...`` -> its names).

    A resolved name is stored in the package's namespace, so later accesses do not come back here.
    """
    where = {name: module for module, names in modules.items() for name in names}
    namespace = sys.modules[package].__dict__

    def get_attribute(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(
                f"module {package!r} has no attribute {name!r}; its public names are listed in "
                f"{package}.__all__, and everything else is imported from the module that defines it"
            )
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def names() -> list[str]:
        return sorted(set(namespace) | set(where))

    return get_attribute, names
