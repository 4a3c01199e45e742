"""The graphs of the local runtime, one module each; importing this package registers them.

Every module in this package is imported, so a new graph only needs a module here
that calls :func:`bkbn_pipelines.runtime.register`.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__: list[str] = []

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
