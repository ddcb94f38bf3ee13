"""Package ``__init__`` names that load on first use (PEP 562).

A package's public names live in modules that import TensorFlow; its
``params`` module does not, and the config imports it. Lazy names keep
``import tfrs_irns.config`` free of TensorFlow while ``from tfrs_irns.tasks
import IRNSRetrieval`` still works.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any, Callable


class _LazyPackage(types.ModuleType):
    """A package whose public name may also be a submodule's name (``export.recommend``
    is a function in the module ``export/recommend.py``). Loading a submodule sets the
    package attribute of that name to the module; here that attribute is left to
    ``__getattr__``, so the public name keeps meaning what ``__all__`` says, as an
    eager ``from .recommend import recommend`` in ``__init__`` made it mean."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in self.__dict__.get("_lazy_shadowed", ()):
            return
        super().__setattr__(name, value)


def lazy_names(package: str, table: str) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``, whose public names are listed in ``table``:
    one line per defining module, ``module: name name ...`` (the module relative to the package)."""
    module_object = sys.modules[package]
    namespace = module_object.__dict__
    exports = {
        name: f"{package}.{module.strip()}"
        for module, _, names in (line.partition(":") for line in table.strip().splitlines())
        for name in names.split()
    }

    namespace["_lazy_shadowed"] = frozenset(name for name, module in exports.items() if module == f"{package}.{name}")
    module_object.__class__ = _LazyPackage

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__, list(exports)
