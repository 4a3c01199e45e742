"""All Dagster definitions of the project, loaded by ``workspace.yaml``.

``dagster dev -w workspace.yaml`` shows the listing assets, their checks, the jobs,
the nightly schedule and the listing sensor.  Settings come from the environment
(see the README's table): ``BKBN_BACKEND``, ``BKBN_BASE_URL``, ``BKBN_API_KEY``,
``BKBN_STORAGE_ROOT``, ``BKBN_TIMEZONE`` and the local runtime's ``BKBN_*`` model
settings.  Secrets go through ``EnvVar`` and never show in the UI.
"""

import os
from typing import Any

from dagster import Definitions, EnvVar

from .assets import listing_catalogue, listing_media, listing_records
from .jobs import (
    listing_media_job,
    listing_partitions_sensor,
    nightly_catalogue_job,
    nightly_schedule,
)
from .jobs._scaleout import with_engine
from .resources import BackboneResource, MediaStoreResource

__all__ = ["BACKEND_ENV", "build_definitions", "default_backbone", "defs"]

BACKEND_ENV = "BKBN_BACKEND"


def default_backbone() -> BackboneResource:
    """The backend resource from the environment: ``BKBN_BACKEND`` (default ``api``)."""
    backend = os.environ.get(BACKEND_ENV, "api").strip() or "api"
    if backend == "local":
        return BackboneResource(backend="local")
    pacing: dict[str, Any] = {}
    if os.environ.get("BKBN_RATELIMIT_REDIS_URL"):
        # one budget for every process using the key (docs/deploy.md)
        pacing["ratelimit_redis_url"] = EnvVar("BKBN_RATELIMIT_REDIS_URL")
        if os.environ.get("BKBN_RATELIMIT_REQUESTS"):
            pacing["ratelimit_requests"] = int(os.environ["BKBN_RATELIMIT_REQUESTS"])
            pacing["ratelimit_window_s"] = float(os.environ.get("BKBN_RATELIMIT_WINDOW_S", 60))
    return BackboneResource(
        backend="api",
        base_url=os.environ.get("BKBN_BASE_URL") or None,
        api_key=EnvVar("BKBN_API_KEY") if os.environ.get("BKBN_API_KEY") else None,
        **pacing,
    )


def build_definitions(
    *, backbone: BackboneResource | None = None, media_store: MediaStoreResource | None = None
) -> Definitions:
    """The project's definitions, with these resources (default: from the environment)."""
    return Definitions(
        assets=[listing_catalogue, listing_records, listing_media],
        jobs=[nightly_catalogue_job, listing_media_job],
        schedules=[nightly_schedule],
        sensors=[listing_partitions_sensor],
        resources={
            "backbone": backbone or default_backbone(),
            "media_store": media_store or MediaStoreResource(),
        },
    )


defs = build_definitions()
# BKBN_EXECUTOR=celery|k8s runs every job on Dagster's Celery or Kubernetes executor
# (docs/deploy.md); unset, the definitions are unchanged.
defs = with_engine(defs)
