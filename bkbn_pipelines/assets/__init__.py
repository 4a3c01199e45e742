"""The Dagster assets: the listing catalogue and the per-listing media assets.

docs/architecture.md explains the layout; docs/operations.md how to run them.
"""

from __future__ import annotations

from ._catalogue import CatalogueConfig, listing_catalogue
from ._listing_media import (
    LISTING_ASSET_KEYS,
    LISTING_DEFAULTS_ENV,
    RETRY_POLICY,
    SHAPING_SETTINGS,
    ListingMediaConfig,
    code_versions,
    listing_media,
)
from ._partitions import LISTINGS, listing_records
from ._work import pdf_page_count, plan_polygon_problems

__all__ = [
    "LISTINGS",
    "LISTING_ASSET_KEYS",
    "LISTING_DEFAULTS_ENV",
    "RETRY_POLICY",
    "SHAPING_SETTINGS",
    "CatalogueConfig",
    "ListingMediaConfig",
    "code_versions",
    "listing_catalogue",
    "listing_media",
    "listing_records",
    "pdf_page_count",
    "plan_polygon_problems",
]
