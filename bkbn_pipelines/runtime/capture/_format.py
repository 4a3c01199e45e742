"""Reading and writing walk-through capture bundles (docs/capture-bundle.md).

A bundle is a zip with ``capture.json`` at its root and the frame files it names.
:func:`read_capture` checks everything floor-plan inference relies on and raises
:class:`~bkbn_pipelines._errors.CaptureBundleError` naming the first thing that is
missing or wrong; :func:`write_capture` is its inverse.
"""

from __future__ import annotations

import io
import json
import logging
import math
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ..._errors import CaptureBundleError

__all__ = [
    "CAPTURE_FORMAT",
    "CAPTURE_VERSION",
    "PLAIN_VIDEO_MESSAGE",
    "CaptureBundle",
    "CaptureFrame",
    "Intrinsics",
    "bundle_from_rgbd",
    "read_capture",
    "write_capture",
]

logger = logging.getLogger("bkbn_pipelines.runtime.capture")

CAPTURE_FORMAT = "bkbn-capture"
CAPTURE_VERSION = 1

PLAIN_VIDEO_MESSAGE = (
    "floor-plan needs a capture bundle with camera poses, depth and intrinsics; "
    "a plain video has none of them — see docs/capture-bundle.md"
)

#: Largest uncompressed size of one member and of the whole bundle.
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_FRAMES = 5000

_LENGTH_UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}
_VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".3gp")
_OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels of an image ``width`` x ``height``."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def scaled_to(self, width: int, height: int) -> Intrinsics:
        """The same camera for an image resampled to ``width`` x ``height``."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        return Intrinsics(
            self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, int(width), int(height)
        )

    def to_json(self) -> dict[str, float | int]:
        return {
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "width": self.width,
            "height": self.height,
        }


@dataclass(frozen=True)
class CaptureFrame:
    """One frame: its pose (camera to world, OpenCV camera axes, metres) and files."""

    index: int
    pose: np.ndarray = field(repr=False)
    intrinsics: Intrinsics
    depth_m: np.ndarray | None = field(default=None, repr=False)
    image_path: str | None = None
    room: str | None = None
    timestamp: float | None = None

    @property
    def position(self) -> np.ndarray:
        return self.pose[:3, 3]


@dataclass(frozen=True)
class CaptureBundle:
    """A validated capture: frames with poses in one world frame whose ``up`` is given."""

    frames: tuple[CaptureFrame, ...]
    up: np.ndarray = field(repr=False)
    floor_height: float | None = None
    source: str | None = None

    @property
    def has_depth(self) -> bool:
        return any(f.depth_m is not None for f in self.frames)


def _fail(message: str) -> CaptureBundleError:
    return CaptureBundleError(f"capture bundle: {message} (see docs/capture-bundle.md)")


def _looks_like_video(data: bytes) -> bool:
    head = data[:16]
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return True
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # Matroska / WebM
        return True
    return head.startswith(b"RIFF") and head[8:12] == b"AVI "


def _number(value: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"{where} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise _fail(f"{where} must be finite, got {value!r}")
    if positive and number <= 0:
        raise _fail(f"{where} must be positive, got {value!r}")
    return number


def _parse_intrinsics(raw: Any, where: str) -> Intrinsics:
    if not isinstance(raw, Mapping):
        raise _fail(f"{where} must be an object with fx, fy, cx, cy, width, height")
    missing = [k for k in ("fx", "fy", "cx", "cy", "width", "height") if k not in raw]
    if missing:
        raise _fail(f"{where} is missing {', '.join(missing)}")
    width = _number(raw["width"], f"{where}.width", positive=True)
    height = _number(raw["height"], f"{where}.height", positive=True)
    return Intrinsics(
        fx=_number(raw["fx"], f"{where}.fx", positive=True),
        fy=_number(raw["fy"], f"{where}.fy", positive=True),
        cx=_number(raw["cx"], f"{where}.cx"),
        cy=_number(raw["cy"], f"{where}.cy"),
        width=int(width),
        height=int(height),
    )


def _parse_pose(raw: Any, where: str, unit: float, opengl: bool) -> np.ndarray:
    try:
        pose = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(f"{where} must be 16 numbers (a 4x4 matrix, row-major)") from None
    if pose.size != 16:
        raise _fail(f"{where} must be 16 numbers (a 4x4 matrix, row-major), got {pose.size}")
    pose = pose.reshape(4, 4)
    if not np.all(np.isfinite(pose)):
        raise _fail(f"{where} contains a value that is not finite")
    if not np.allclose(pose[3], [0, 0, 0, 1], atol=1e-6):
        raise _fail(f"{where} last row must be 0 0 0 1")
    rot = pose[:3, :3]
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-3) or np.linalg.det(rot) < 0:
        raise _fail(f"{where} rotation part is not a rotation matrix")
    pose = pose.copy()
    pose[:3, 3] *= unit
    if opengl:
        pose = pose @ _OPENGL_TO_OPENCV
    return pose


class _Zip:
    """Checked access to the members of a bundle."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        infos = archive.infolist()
        if len(infos) > MAX_FRAMES * 3 + 10:
            raise _fail(f"too many files ({len(infos)})")
        total = sum(i.file_size for i in infos)
        if total > MAX_TOTAL_BYTES:
            raise _fail(f"uncompressed size {total} bytes is over {MAX_TOTAL_BYTES}")
        self.infos = {i.filename: i for i in infos if not i.is_dir()}

    def read(self, name: str, where: str) -> bytes:
        info = self.infos.get(name)
        if info is None:
            raise _fail(f"{where} names {name!r}, which is not in the zip")
        if info.file_size > MAX_MEMBER_BYTES:
            raise _fail(f"{name!r} is larger than {MAX_MEMBER_BYTES} bytes")
        try:
            return self.archive.read(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise _fail(f"{name!r} cannot be read from the zip ({exc})") from exc


def _decode_depth(data: bytes, spec: Mapping[str, Any], where: str) -> np.ndarray:
    """Depth in the file's own units as a float array (0 = no measurement)."""
    fmt = str(spec.get("format") or ("z16" if spec["path"].endswith(".raw") else "png16"))
    if fmt == "z16":
        if "width" not in spec or "height" not in spec:
            raise _fail(f"{where} is raw Z16 and needs width and height")
        width = int(_number(spec["width"], f"{where}.width", positive=True))
        height = int(_number(spec["height"], f"{where}.height", positive=True))
        if len(data) != width * height * 2:
            raise _fail(
                f"{where}: {spec['path']!r} has {len(data)} bytes, "
                f"expected {width}x{height}x2 for Z16"
            )
        return np.frombuffer(data, dtype="<u2").reshape(height, width).astype(np.float32)
    if fmt == "png16":
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                if img.mode not in ("I;16", "I;16B", "I;16L", "I", "L"):
                    raise _fail(f"{where}: {spec['path']!r} is {img.mode}, not 16-bit grey")
                return np.asarray(img, dtype=np.float32)
        except CaptureBundleError:
            raise
        except Exception as exc:  # Pillow raises many kinds; translate at this boundary
            raise _fail(f"{where}: {spec['path']!r} is not a readable PNG ({exc})") from exc
    raise _fail(f"{where}.format must be 'png16' or 'z16', got {fmt!r}")


def read_capture(data: bytes, *, load_depth: bool = True) -> CaptureBundle:
    """Parse and validate a capture bundle; raises ``CaptureBundleError`` naming the fault."""
    if not data:
        raise _fail("the input is empty")
    if _looks_like_video(data):
        raise CaptureBundleError(PLAIN_VIDEO_MESSAGE)
    if not data.startswith(b"PK\x03\x04"):
        raise _fail("the input is not a zip file; a capture bundle is a zip with capture.json")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise _fail(f"the zip cannot be read ({exc})") from exc
    with archive:
        members = _Zip(archive)
        if "capture.json" not in members.infos:
            names = list(members.infos)
            if names and all(n.lower().endswith(_VIDEO_SUFFIXES) for n in names):
                raise CaptureBundleError(PLAIN_VIDEO_MESSAGE)
            raise _fail("capture.json is missing at the root of the zip")
        try:
            meta = json.loads(members.read("capture.json", "capture.json"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _fail(f"capture.json is not valid JSON ({exc})") from exc
        return _parse(meta, members, load_depth=load_depth)


def _parse(meta: Any, members: _Zip, *, load_depth: bool) -> CaptureBundle:
    if not isinstance(meta, Mapping):
        raise _fail("capture.json must hold a JSON object")
    version = meta.get("version")
    if version != CAPTURE_VERSION:
        raise _fail(f"capture.json version must be {CAPTURE_VERSION}, got {version!r}")
    units = meta.get("units", "m")
    if units not in _LENGTH_UNITS:
        raise _fail(f"capture.json units must be one of {sorted(_LENGTH_UNITS)}, got {units!r}")
    unit = _LENGTH_UNITS[units]
    camera = meta.get("camera", "opencv")
    if camera not in ("opencv", "opengl"):
        raise _fail(f"capture.json camera must be 'opencv' or 'opengl', got {camera!r}")
    up = np.asarray(meta.get("up", [0.0, 1.0, 0.0]), dtype=np.float64)
    if up.shape != (3,) or not np.all(np.isfinite(up)) or np.linalg.norm(up) < 1e-9:
        raise _fail("capture.json up must be a non-zero vector of 3 numbers")
    up = up / np.linalg.norm(up)
    depth_scale = _number(meta.get("depth_scale", 0.001), "depth_scale", positive=True)
    floor_height = meta.get("floor_height")
    if floor_height is not None:
        floor_height = _number(floor_height, "floor_height") * unit
    default_k = meta.get("intrinsics")
    default_intrinsics = _parse_intrinsics(default_k, "intrinsics") if default_k else None

    frames_raw = meta.get("frames")
    if not isinstance(frames_raw, list) or not frames_raw:
        raise _fail("capture.json frames is missing or empty")
    if len(frames_raw) > MAX_FRAMES:
        raise _fail(f"capture.json has {len(frames_raw)} frames, at most {MAX_FRAMES}")
    frames = []
    for i, raw in enumerate(frames_raw):
        where = f"frames[{i}]"
        if not isinstance(raw, Mapping):
            raise _fail(f"{where} must be an object")
        if "pose" not in raw:
            raise _fail(f"{where}.pose is missing (a 4x4 camera-to-world matrix)")
        pose = _parse_pose(raw["pose"], f"{where}.pose", unit, camera == "opengl")
        if "intrinsics" in raw:
            intrinsics = _parse_intrinsics(raw["intrinsics"], f"{where}.intrinsics")
        elif default_intrinsics is not None:
            intrinsics = default_intrinsics
        else:
            raise _fail(f"{where}.intrinsics is missing and capture.json has no default")
        if "image" not in raw and "depth" not in raw:
            raise _fail(f"{where} has neither image nor depth")
        image_path = raw.get("image")
        if image_path is not None and image_path not in members.infos:
            raise _fail(f"{where}.image names {image_path!r}, which is not in the zip")
        depth = None
        if raw.get("depth") is not None:
            spec = raw["depth"]
            spec = {"path": spec} if isinstance(spec, str) else dict(spec)
            if "path" not in spec:
                raise _fail(f"{where}.depth.path is missing")
            blob = members.read(spec["path"], f"{where}.depth")
            if load_depth:
                raw_scale = spec.get("scale", depth_scale)
                scale = _number(raw_scale, f"{where}.depth.scale", positive=True)
                depth = _decode_depth(blob, spec, f"{where}.depth") * np.float32(scale)
        room = raw.get("room")
        timestamp = raw.get("timestamp")
        frames.append(
            CaptureFrame(
                index=i,
                pose=pose,
                intrinsics=intrinsics,
                depth_m=depth,
                image_path=image_path,
                room=str(room) if room else None,
                timestamp=float(timestamp) if isinstance(timestamp, int | float) else None,
            )
        )
    logger.debug("capture bundle: %d frames, up=%s", len(frames), up.tolist())
    return CaptureBundle(frames=tuple(frames), up=up, floor_height=floor_height)


def _png16(depth_mm: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(depth_mm, dtype=np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


class _FixedTimeZip:
    """Members dated 1980-01-01, so the same frames always give the same bytes."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive

    def writestr(self, name: str, data: bytes | str, *, stored: bool = False) -> None:
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        self.archive.writestr(info, data)


def write_capture(
    frames: Sequence[Mapping[str, Any]],
    *,
    up: Sequence[float] = (0.0, 1.0, 0.0),
    floor_height: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """Write a bundle from frames given as dicts.

    Each frame has ``pose`` (4x4, metres, OpenCV camera axes), ``intrinsics`` (a dict or
    :class:`Intrinsics`), optionally ``depth_mm`` (uint16 array, written as 16-bit PNG),
    ``depth_z16`` (uint16 array, written raw), ``image`` (JPEG or PNG bytes), ``room``
    and ``timestamp``.
    """
    meta: dict[str, Any] = {
        "format": CAPTURE_FORMAT,
        "version": CAPTURE_VERSION,
        "units": "m",
        "camera": "opencv",
        "up": [float(v) for v in up],
        "depth_scale": 0.001,
        "frames": [],
    }
    if floor_height is not None:
        meta["floor_height"] = float(floor_height)
    if extra:
        meta.update(extra)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        archive = _FixedTimeZip(zf)
        for i, frame in enumerate(frames):
            intrinsics = frame["intrinsics"]
            if isinstance(intrinsics, Intrinsics):
                intrinsics = intrinsics.to_json()
            entry: dict[str, Any] = {
                "pose": [round(float(v), 6) for v in np.asarray(frame["pose"]).reshape(16)],
                "intrinsics": dict(intrinsics),
            }
            image = frame.get("image")
            if image is not None:
                ext = "png" if image[:4] == b"\x89PNG" else "jpg"
                entry["image"] = f"frames/{i:05d}.{ext}"
                archive.writestr(entry["image"], image, stored=True)
            if frame.get("depth_mm") is not None:
                entry["depth"] = f"depth/{i:05d}.png"
                archive.writestr(entry["depth"], _png16(frame["depth_mm"]))
            elif frame.get("depth_z16") is not None:
                z16 = np.ascontiguousarray(frame["depth_z16"], dtype="<u2")
                entry["depth"] = {
                    "path": f"depth/{i:05d}.raw",
                    "format": "z16",
                    "width": int(z16.shape[1]),
                    "height": int(z16.shape[0]),
                }
                archive.writestr(entry["depth"]["path"], z16.tobytes())
            for key in ("room", "timestamp"):
                if frame.get(key) is not None:
                    entry[key] = frame[key]
            meta["frames"].append(entry)
        archive.writestr("capture.json", json.dumps(meta, indent=1, ensure_ascii=False))
    return buf.getvalue()


def bundle_from_rgbd(
    depth_z16: np.ndarray,
    intrinsics: Intrinsics,
    *,
    image: bytes | None = None,
    pose: np.ndarray | None = None,
    up: Sequence[float] = (0.0, -1.0, 0.0),
    room: str | None = None,
) -> bytes:
    """Wrap one RGB-D frame (Z16 depth in millimetres) into a capture bundle.

    With the default identity ``pose`` the world frame is the camera frame (OpenCV axes:
    x right, y down, z forward), so ``up`` defaults to ``-y``: the camera held level.
    """
    frame: dict[str, Any] = {
        "pose": np.eye(4) if pose is None else np.asarray(pose, dtype=np.float64),
        "intrinsics": intrinsics,
        "depth_z16": np.asarray(depth_z16, dtype=np.uint16),
        "image": image,
        "room": room,
    }
    return write_capture([frame], up=up)
