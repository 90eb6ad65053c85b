"""Lazy package exports (PEP 562): a package names its public API, each name is imported on first use.

A stage package's `__init__` that imported its modules would load torch, transformers or datasets
for anyone importing a light module below it (`import p5rec.ids.config` runs `p5rec/ids/__init__.py`
first). With `lazy_exports` the package costs nothing until a name is used, and then only the
module that defines it is imported.

>>> __getattr__, __dir__, __all__ = lazy_exports(__name__, {"p5rec.ids.index": ("ItemIndex",)})  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`__getattr__`, `__dir__` and the sorted `__all__` of `package`.

    Args:
        package: the package's `__name__`.
        exports: module -> the public names it defines, e.g. ``{"p5rec.ids.index": ("ItemIndex",)}``.
    """
    where = {name: module for module, names in exports.items() for name in names}
    if len(where) != sum(len(names) for names in exports.values()):
        raise ValueError(f"{package}: a name is exported by two modules")

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, sorted(where)
