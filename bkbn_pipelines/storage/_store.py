"""The media store: listing photos, renders and manifests under one root.

The root is a local folder or an ``s3://bucket/prefix`` (any fsspec protocol that
universal_pathlib knows works the same way).  docs/storage.md describes the layout.

Promises:

- Writes are atomic.  Locally the bytes go to a hidden temporary file in the target
  folder, are flushed to disk and then renamed over the target with ``os.replace``.  On
  S3 the whole object is sent in one request (``PutObject``; a multipart upload for
  objects over 100 MiB, which S3 also makes visible only when it completes).  A failed
  write leaves no object and no temporary file behind.
- Keys are validated (:mod:`._keys`), so nothing can be written outside the root.
- Errors from the filesystem, s3fs, botocore and pyarrow become :class:`StorageError`
  here and nowhere else; messages never contain credentials.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from upath import UPath

from .._errors import BkbnError, StorageError
from .._logging import get_logger, redact
from ._keys import key_for, validate_key, validate_segment

__all__ = ["PARQUET_MEDIA_TYPE", "MediaStore", "StoredObject"]

logger = get_logger("storage")

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
TEMP_PREFIX = ".bkbn-tmp-"
_LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
_SECRET_OPTION_WORDS = ("key", "secret", "token", "password", "credential")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    """One object written to the store."""

    key: str
    uri: str
    sha256: str
    size: int
    media_type: str

    def as_row(self) -> dict[str, Any]:
        """The object as a manifest row: key, uri, sha256, size, media_type."""
        return asdict(self)


class MediaStore:
    """Read and write media objects below ``root``.

    ``MediaStore("./.bkbn_media")`` or ``MediaStore("s3://bucket/prefix",
    storage_options={"endpoint_url": ..., "key": ..., "secret": ...})``.  The storage
    options go to fsspec and never show in ``repr``, logs or error messages.
    """

    key_for = staticmethod(key_for)

    def __init__(self, root: str | os.PathLike[str], *, storage_options: Mapping | None = None):
        options = dict(storage_options or {})
        root_text = os.fspath(root)
        if not root_text:
            raise StorageError("the media store root must not be empty")
        self._secrets = tuple(
            str(value)
            for name, value in options.items()
            if value and isinstance(value, str) and _is_secret_option(name)
        )
        with self._translate("open store", None):
            path = UPath(root_text, **options)
        self._manifest_types: dict[str, dict[str, pa.DataType]] = {}
        self._protocol = path.protocol or ""
        self._local = self._protocol in _LOCAL_PROTOCOLS
        if self._local:
            local_root = Path(path.path).expanduser().resolve()
            self._fs = None
            self._local_root: Path | None = local_root
            self._base = str(local_root)
            self._root = str(local_root)
        else:
            with self._translate("open store", None):
                self._fs = path.fs
            self._local_root = None
            self._base = path.path.rstrip("/")
            self._root = f"{self._protocol}://{self._base}"

    # -- description -------------------------------------------------------------------

    @property
    def root(self) -> str:
        """The root as a path (local) or URL (``s3://bucket/prefix``); no credentials."""
        return self._root

    @property
    def is_local(self) -> bool:
        return self._local

    def __repr__(self) -> str:
        return f"MediaStore(root={self._root!r})"

    def uri(self, key: str) -> str:
        """Where ``key`` lives: ``file:///...`` locally, ``s3://bucket/prefix/key`` on S3."""
        validate_key(key)
        if self._local_root is not None:
            return self._local_root.joinpath(*key.split("/")).as_uri()
        return f"{self._protocol}://{self._base}/{key}"

    def local_path(self, key: str) -> Path | None:
        """The file of ``key`` for a local store, ``None`` for a remote one."""
        validate_key(key)
        if self._local_root is None:
            return None
        return self._local_path(key)

    # -- objects -----------------------------------------------------------------------

    def put(self, key: str, data: bytes | BinaryIO, *, media_type: str) -> StoredObject:
        """Write ``data`` at ``key`` atomically, replacing any previous object.

        ``data`` is bytes (or bytearray, memoryview) or a binary file object, read to
        its end.  Either the whole object becomes visible or nothing does.
        """
        validate_key(key)
        with self._translate("write", key):
            if self._local_root is not None:
                digest, size = self._put_local(key, data)
            else:
                payload = _read_all(data)
                digest, size = hashlib.sha256(payload).hexdigest(), len(payload)
                self._put_remote(key, payload, media_type)
        logger.debug("stored %s (%d bytes, %s)", key, size, media_type)
        return StoredObject(key, self.uri(key), digest, size, media_type)

    def put_content(
        self, slug: str, asset: str, data: bytes, *, suffix: str, media_type: str
    ) -> StoredObject:
        """Store under ``listings/{slug}/{asset}/{sha256[:16]}{suffix}``.

        The key follows from the content, so a rerun with the same bytes finds the
        object already there and writes nothing.
        """
        payload = _read_all(data)
        if suffix and not suffix.startswith("."):
            raise StorageError(f"suffix {suffix!r} must start with '.'")
        digest = hashlib.sha256(payload).hexdigest()
        key = key_for(slug, asset, f"{digest[:16]}{suffix}")
        if self._same_size_exists(key, len(payload)):
            logger.debug("content already stored at %s", key)
            return StoredObject(key, self.uri(key), digest, len(payload), media_type)
        return self.put(key, payload, media_type=media_type)

    def get(self, key: str) -> bytes:
        """The bytes at ``key``; ``StorageError`` when there is no such object."""
        validate_key(key)
        with self._translate("read", key):
            if self._local_root is not None:
                return self._local_path(key).read_bytes()
            return self._fs.cat_file(self._remote_path(key))

    def exists(self, key: str) -> bool:
        validate_key(key)
        with self._translate("check", key):
            if self._local_root is not None:
                return self._local_path(key).is_file()
            path = self._remote_path(key)
            self._fs.invalidate_cache(path)
            return bool(self._fs.isfile(path))

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing object is not an error."""
        validate_key(key)
        with self._translate("delete", key):
            if self._local_root is not None:
                self._local_path(key).unlink(missing_ok=True)
                return
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm_file(self._remote_path(key))

    def list(self, prefix: str = "") -> list[str]:
        """Keys of all objects below the folder ``prefix`` ("" for all), sorted.

        Temporary files of writes in progress are never listed.
        """
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        with self._translate("list", prefix or "."):
            keys = (
                self._list_local(prefix)
                if self._local_root is not None
                else (self._list_remote(prefix))
            )
        return sorted(k for k in keys if not k.rsplit("/", 1)[-1].startswith(TEMP_PREFIX))

    def sweep_temporary(self, *, older_than: float = 3600.0) -> list[str]:
        """Remove what writes killed mid-way left behind; return what was removed.

        Locally these are ``.bkbn-tmp-`` files older than ``older_than`` seconds; on S3,
        unfinished multipart uploads below the root started that long ago.  Neither is
        ever visible as an object, so sweeping is housekeeping, not repair.
        """
        cutoff = time.time() - older_than
        with self._translate("sweep temporary files in", None):
            if self._local_root is not None:
                return self._sweep_local(cutoff)
            if self._protocol in {"s3", "s3a"}:
                return self._sweep_s3(cutoff)
        return []

    # -- Parquet tables and manifests --------------------------------------------------

    def write_table(self, key: str, frame: pd.DataFrame | pa.Table) -> StoredObject:
        """Write a DataFrame or Arrow table as one Parquet object, atomically."""
        table = (
            frame
            if isinstance(frame, pa.Table)
            else pa.Table.from_pandas(frame, preserve_index=False)
        )
        with self._translate("encode Parquet for", key):
            payload = _parquet_bytes(_no_null_columns(table))
        return self.put(key, payload, media_type=PARQUET_MEDIA_TYPE)

    def read_table(self, key: str) -> pd.DataFrame:
        """Read the Parquet object at ``key`` into a DataFrame."""
        payload = self.get(key)
        with self._translate("decode Parquet at", key):
            return pq.read_table(io.BytesIO(payload)).to_pandas()

    @staticmethod
    def manifest_key(asset: str, slug: str) -> str:
        """``manifests/{asset}/listing={slug}/part-0.parquet``."""
        validate_segment(asset, what="asset name")
        validate_segment(slug, what="listing slug")
        return f"manifests/{asset}/listing={slug}/part-0.parquet"

    def write_manifest(
        self, asset: str, slug: str, rows: Sequence[Mapping], *, schema: pa.Schema | None = None
    ) -> str:
        """Replace the manifest of one listing for ``asset`` with ``rows``; return its key.

        One Parquet file per (asset, listing), hive-partitioned by ``listing``, so
        ``pd.read_parquet(f"{root}/manifests/{asset}")`` reads the whole catalogue.
        Each row also gets a ``listing_slug`` string column.  A ``listing`` key in a row
        (as in rows read back with :meth:`read_manifest`) must equal ``slug`` and is not
        stored: that name is the partition column.  A listing with no rows has no
        manifest: its previous file is removed.

        Column types come from ``schema`` when given (columns the rows lack are null),
        else from the values.  A column with only missing values takes its type from
        the asset's other manifests, so that all listings' files stay readable together.
        """
        key = self.manifest_key(asset, slug)
        records = []
        for row in rows:
            record = dict(row)
            partition = record.pop("listing", slug)
            if partition != slug:
                raise StorageError(
                    f"manifest row for listing {slug!r} of {asset!r} has listing "
                    f"{partition!r}: 'listing' is the partition column"
                )
            record.setdefault("listing_slug", slug)
            records.append(record)
        if not records:
            self.delete(key)
            return key
        with self._translate("encode manifest", key):
            if schema is not None and "listing_slug" not in schema.names:
                schema = schema.append(pa.field("listing_slug", pa.string()))
            table = pa.Table.from_pylist(records, schema=schema)
            if schema is None:
                table = self._type_null_columns(asset, table)
            self._manifest_types.setdefault(asset, {}).update(
                (f.name, f.type) for f in table.schema if not pa.types.is_null(f.type)
            )
        self.write_table(key, table)
        logger.debug("manifest %s: %d rows", key, len(records))
        return key

    def delete_manifest(self, asset: str, slug: str) -> None:
        """Remove one listing's manifest for ``asset`` (a listing left the catalogue)."""
        self.delete(self.manifest_key(asset, slug))

    def read_manifest(self, asset: str, slug: str | None = None) -> pd.DataFrame:
        """One listing's manifest, or with ``slug=None`` the whole catalogue's.

        The result has a string column ``listing`` (the slug) whatever the slugs look
        like; an asset without manifests gives an empty DataFrame.
        """
        validate_segment(asset, what="asset name")
        if slug is not None:
            key = self.manifest_key(asset, slug)
            if not self.exists(key):
                return pd.DataFrame()
            frame = self.read_table(key)
            frame["listing"] = pd.Series([slug] * len(frame), dtype="str", index=frame.index)
            return frame
        folder = f"manifests/{asset}"
        if not self.list(folder):
            return pd.DataFrame()
        with self._translate("read manifests", folder):
            return self._read_dataset(folder).to_pandas()

    # -- internals ---------------------------------------------------------------------

    def _local_path(self, key: str) -> Path:
        assert self._local_root is not None
        target = self._local_root.joinpath(*key.split("/"))
        resolved = target.resolve()
        if not resolved.is_relative_to(self._local_root):
            raise StorageError(f"key {key!r} resolves outside the store root")
        return target

    def _remote_path(self, key: str) -> str:
        return f"{self._base}/{key}"

    def _put_local(self, key: str, data: bytes | BinaryIO) -> tuple[str, int]:
        target = self._local_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in _chunks(data):
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)
            _sync_folder(target.parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return digest.hexdigest(), size

    def _put_remote(self, key: str, payload: bytes, media_type: str) -> None:
        extra: dict[str, Any] = {}
        if self._protocol in {"s3", "s3a"}:
            extra["ContentType"] = media_type
        self._fs.pipe_file(self._remote_path(key), payload, **extra)

    def _same_size_exists(self, key: str, size: int) -> bool:
        with self._translate("check", key):
            if self._local_root is not None:
                path = self._local_path(key)
                return path.is_file() and path.stat().st_size == size
            path = self._remote_path(key)
            self._fs.invalidate_cache(path)
            try:
                return int(self._fs.size(path)) == size
            except FileNotFoundError:
                return False

    def _list_local(self, prefix: str) -> Iterator[str]:
        assert self._local_root is not None
        folder = self._local_root.joinpath(*prefix.split("/")) if prefix else self._local_root
        if not folder.is_dir():
            return
        for dirpath, _dirs, files in os.walk(folder):
            rel = Path(dirpath).relative_to(self._local_root).as_posix()
            for name in files:
                yield name if rel == "." else f"{rel}/{name}"

    def _list_remote(self, prefix: str) -> list[str]:
        folder = self._remote_path(prefix) if prefix else self._base
        self._fs.invalidate_cache(folder)
        try:
            found = self._fs.find(folder, detail=True)
        except FileNotFoundError:
            return []
        start = len(self._base) + 1
        # files only: when its listing races a write, find() can name the folder itself
        return [
            path[start:]
            for path, info in found.items()
            if info.get("type") != "directory" and path.startswith(self._base + "/")
        ]

    def _sweep_local(self, cutoff: float) -> list[str]:
        assert self._local_root is not None
        removed = []
        for dirpath, _dirs, files in os.walk(self._local_root):
            for name in files:
                path = Path(dirpath, name)
                if name.startswith(TEMP_PREFIX) and path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    removed.append(path.relative_to(self._local_root).as_posix())
        return sorted(removed)

    def _sweep_s3(self, cutoff: float) -> list[str]:
        bucket, _, prefix = self._base.partition("/")
        prefix = f"{prefix}/" if prefix else ""
        answer = self._fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix)
        removed = []
        for upload in answer.get("Uploads", []):
            if upload["Initiated"].timestamp() < cutoff:
                self._fs.call_s3(
                    "abort_multipart_upload",
                    Bucket=bucket,
                    Key=upload["Key"],
                    UploadId=upload["UploadId"],
                )
                removed.append(upload["Key"][len(prefix) :])
        return sorted(removed)

    def _type_null_columns(self, asset: str, table: pa.Table) -> pa.Table:
        """Give all-null columns the type other listings' manifests use (else string)."""
        nulls = [f.name for f in table.schema if pa.types.is_null(f.type)]
        if not nulls:
            return table
        known = self._manifest_types.setdefault(asset, {})
        if any(name not in known for name in nulls):
            known.update(
                (name, kind)
                for name, kind in self._stored_manifest_types(asset).items()
                if name not in known
            )
        for name in nulls:
            index = table.schema.get_field_index(name)
            kind = known.get(name, pa.string())
            table = table.set_column(index, name, table.column(index).cast(kind))
        return table

    def _stored_manifest_types(self, asset: str, limit: int = 8) -> dict[str, pa.DataType]:
        """Column types of up to ``limit`` stored manifests of ``asset``."""
        types: dict[str, pa.DataType] = {}
        for key in self.list(f"manifests/{asset}")[:limit]:
            schema = pq.read_schema(io.BytesIO(self.get(key)))
            for field in schema:
                if not pa.types.is_null(field.type):
                    types.setdefault(field.name, field.type)
        return types

    def _read_dataset(self, folder: str) -> pa.Table:
        partitioning = ds.partitioning(pa.schema([("listing", pa.string())]), flavor="hive")
        source = str(self._local_path(folder)) if self._local_root else self._remote_path(folder)
        options: dict[str, Any] = {"format": "parquet", "partitioning": partitioning}
        if self._fs is not None:
            options["filesystem"] = self._fs
        dataset = ds.dataset(source, **options)
        try:
            return dataset.to_table()
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            # Listings wrote different column sets or types: read with the union.
            schemas = [fragment.physical_schema for fragment in dataset.get_fragments()]
            unified = _unify(schemas, partitioning.schema)
            return ds.dataset(source, schema=unified, **options).to_table()

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return redact(text)

    @contextlib.contextmanager
    def _translate(self, action: str, key: str | None) -> Iterator[None]:
        """The one boundary where foreign errors become ``StorageError``."""
        try:
            yield
        except BkbnError:
            raise
        except Exception as exc:
            where = f" {self.uri(key) if _safe_key(key) else key!r}" if key else ""
            detail = self._scrub(f"{type(exc).__name__}: {exc}")
            raise StorageError(f"media store could not {action}{where}: {detail}") from exc


def _is_secret_option(name: str) -> bool:
    lowered = name.lower()
    return lowered != "endpoint_url" and any(word in lowered for word in _SECRET_OPTION_WORDS)


def _safe_key(key: str | None) -> bool:
    try:
        validate_key(key or "")
    except StorageError:
        return False
    return True


def _read_all(data: bytes | BinaryIO) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    return b"".join(_chunks(data))


def _chunks(data: bytes | BinaryIO) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
        return
    read = getattr(data, "read", None)
    if read is None:
        raise StorageError(f"cannot store a {type(data).__name__}: give bytes or a binary file")
    while chunk := read(_CHUNK):
        yield bytes(chunk)


def _no_null_columns(table: pa.Table) -> pa.Table:
    """Store all-null columns as strings, so manifests of many listings stay compatible."""
    for index, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(pa.string()))
    return table


def _sync_folder(folder: Path) -> None:
    """Make a rename durable: flush the folder entry (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unify(schemas: list[pa.Schema], partition: pa.Schema) -> pa.Schema:
    """One schema for all files: types promoted where Arrow can, else string."""
    by_name: dict[str, list[pa.DataType]] = {}
    for schema in schemas:
        for field in schema:
            by_name.setdefault(field.name, []).append(field.type)
    fields = []
    for name, kinds in by_name.items():
        try:
            merged = (
                pa.unify_schemas(
                    [pa.schema([(name, kind)]) for kind in kinds], promote_options="permissive"
                )
                .field(name)
                .type
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            merged = pa.string()
        fields.append(pa.field(name, pa.string() if pa.types.is_null(merged) else merged))
    fields.extend(field for field in partition if field.name not in by_name)
    return pa.schema(fields)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()
