"""Backends: the ``api`` backend (HTTP client) and the ``local`` backend (runtime)."""

from __future__ import annotations

from ._base import Backend, GraphRequest, InputFile

__all__ = ["Backend", "GraphRequest", "InputFile"]
