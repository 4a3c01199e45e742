"""Dagster resources: the Backbone backend and the media store."""

from __future__ import annotations

from ._backbone import BackboneResource, GraphOutcome
from ._media_store import MediaStoreResource

__all__ = ["BackboneResource", "GraphOutcome", "MediaStoreResource"]
