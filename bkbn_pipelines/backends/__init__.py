"""Backends: the ``api`` backend (HTTP client) and the ``local`` backend (runtime)."""

from __future__ import annotations

from ._api import ApiBackend
from ._base import Backend, GraphRequest, InputFile
from ._factory import BACKENDS, make_backend

__all__ = ["BACKENDS", "ApiBackend", "Backend", "GraphRequest", "InputFile", "make_backend"]
