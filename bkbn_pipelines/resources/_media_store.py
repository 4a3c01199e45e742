"""The Dagster resource that gives assets a :class:`~bkbn_pipelines.storage.MediaStore`.

Credentials come in through ``dagster.EnvVar`` in the definitions; they are passed to
s3fs and never appear in the resource's repr or in metadata.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from ..storage import MediaStore

__all__ = ["DEFAULT_STORAGE_ROOT", "STORAGE_ROOT_ENV", "MediaStoreResource"]

STORAGE_ROOT_ENV = "BKBN_STORAGE_ROOT"
DEFAULT_STORAGE_ROOT = "./.bkbn_media"


class MediaStoreResource(ConfigurableResource):
    """Where listing photos, renders and manifests are stored.

    ``root`` is a local folder or ``s3://bucket/prefix``; unset, it is read from
    ``BKBN_STORAGE_ROOT`` when the store is first used, else ``./.bkbn_media``.
    """

    root: str | None = Field(
        default=None,
        description=(
            "Local folder or s3://bucket/prefix of the media store. "
            f"Default: ${STORAGE_ROOT_ENV}, else {DEFAULT_STORAGE_ROOT}."
        ),
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint for S3-compatible services (MinIO, moto)."
    )
    aws_access_key_id: str | None = Field(
        default=None, description="S3 access key id; give it with EnvVar.", repr=False
    )
    aws_secret_access_key: str | None = Field(
        default=None, description="S3 secret access key; give it with EnvVar.", repr=False
    )

    _store: MediaStore | None = PrivateAttr(default=None)

    def resolved_root(self) -> str:
        """The root in use: the field, else ``$BKBN_STORAGE_ROOT``, else the default."""
        return self.root or os.environ.get(STORAGE_ROOT_ENV) or DEFAULT_STORAGE_ROOT

    def storage_options(self) -> dict[str, Any]:
        """The fsspec options built from the fields (contains secrets: do not log)."""
        options: dict[str, Any] = {}
        if self.s3_endpoint_url:
            options["endpoint_url"] = self.s3_endpoint_url
        if self.aws_access_key_id:
            options["key"] = self.aws_access_key_id
        if self.aws_secret_access_key:
            options["secret"] = self.aws_secret_access_key
        return options

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._store = self._make_store()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self._store = None

    def store(self) -> MediaStore:
        """The store of this execution, created once."""
        if self._store is None:
            self._store = self._make_store()
        return self._store

    def _make_store(self) -> MediaStore:
        root = self.resolved_root()
        options = self.storage_options() if "://" in root else {}
        return MediaStore(root, storage_options=options)

    def __repr__(self) -> str:
        return (
            f"MediaStoreResource(root={self.root!r}, s3_endpoint_url={self.s3_endpoint_url!r}, "
            f"aws_access_key_id={_mask(self.aws_access_key_id)}, "
            f"aws_secret_access_key={_mask(self.aws_secret_access_key)})"
        )

    __str__ = __repr__


def _mask(value: str | None) -> str:
    return "None" if value is None else "'[redacted]'"
