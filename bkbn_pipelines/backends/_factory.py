"""``make_backend``: a backend by name, with its settings."""

from __future__ import annotations

from typing import Any, Literal

from .._errors import ConfigError
from ._base import Backend

__all__ = ["BACKENDS", "make_backend"]

BACKENDS = ("api", "local")


def make_backend(name: Literal["api", "local"] | str, **settings: Any) -> Backend:
    """``api``: settings of :class:`~bkbn_pipelines.client.BackboneClient` (or ``client=``).

    ``local``: ``settings=`` a :class:`RuntimeSettings`, ``runtime=`` a runtime, or
    the fields of :class:`RuntimeSettings` (the environment fills the rest).  The
    local backend is imported only when asked for, so the ``api`` backend needs
    neither torch nor diffusers.
    """
    if name == "api":
        from ._api import ApiBackend

        return ApiBackend(**settings)
    if name == "local":
        from ..runtime._settings import RuntimeSettings
        from ._local import LocalBackend

        if "settings" in settings or "runtime" in settings:
            return LocalBackend(**settings)
        return LocalBackend(RuntimeSettings.from_env(**settings))
    raise ConfigError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
