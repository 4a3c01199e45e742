"""Jobs, schedule and sensor of the nightly catalogue run, and the ``bkbn nightly`` runner."""

from ._jobs import (
    NIGHTLY_CRON,
    TIMEZONE_ENV,
    build_nightly_schedule,
    listing_media_job,
    listing_partitions_sensor,
    nightly_catalogue_job,
    nightly_schedule,
    nightly_timezone,
)

__all__ = [
    "NIGHTLY_CRON",
    "TIMEZONE_ENV",
    "build_nightly_schedule",
    "listing_media_job",
    "listing_partitions_sensor",
    "nightly_catalogue_job",
    "nightly_schedule",
    "nightly_timezone",
]
