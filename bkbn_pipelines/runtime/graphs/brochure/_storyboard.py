"""Storyboard: which photos a brochure shows, in which order.

Each photo is decoded upright (EXIF orientation applied), given a room and a quality
score, and compared with the others by a 64-bit difference hash; of a group of near
duplicates (Hamming distance <= ``DUPLICATE_BITS``) only the best is kept.  The cover
is the best exterior or living-room photo; the rest follow in room order, best first.

Rooms come, in this order, from ``photo_rooms`` in the parameters, from words in the
photo's name (``living``, ``kitchen``, ``bath``...; ``_``, ``-`` and ``.`` separate
words, so ``int_pd_living_room.jpg`` is a living room), or from a colour heuristic that
only recognises exteriors (a bright, blue, untextured top band: sky); any other
photo is a plain ``room``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ....media import open_image

__all__ = [
    "DUPLICATE_BITS",
    "ROOM_ORDER",
    "Photo",
    "dhash",
    "hamming",
    "quality",
    "storyboard",
]

logger = logging.getLogger("bkbn_pipelines.runtime.brochure")

DUPLICATE_BITS = 10
ROOM_ORDER = (
    "exterior",
    "living",
    "kitchen",
    "dining",
    "bedroom",
    "bathroom",
    "office",
    "room",
)
#: Words in a photo's name that say its room, checked in this order: the rooms inside
#: first, so "garden_view_bedroom" is a bedroom and "front" alone an exterior.  A word
#: matches a whole word of the name, or its plural ("bedrooms").
_NAME_HINTS = (
    ("living", ("living", "livingroom", "lounge", "salon", "sitting", "sittingroom")),
    ("kitchen", ("kitchen", "kitchenette", "cuisine")),
    ("dining", ("dining", "diningroom")),
    ("bedroom", ("bedroom", "bed", "chambre")),
    ("bathroom", ("bathroom", "bath", "bathtub", "ensuite", "shower", "wc", "toilet")),
    ("office", ("office", "study", "library")),
    ("exterior", ("exterior", "facade", "façade", "garden", "outside", "street", "front")),
)


@dataclass
class Photo:
    index: int
    name: str
    image: Image.Image = field(repr=False)
    room: str = "room"
    room_source: str = "default"
    sharpness: float = 0.0
    exposure: float = 0.0
    resolution: float = 0.0
    score: float = 0.0
    hash: int = 0
    duplicate_of: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "room": self.room,
            "room_source": self.room_source,
            "width": self.image.width,
            "height": self.image.height,
            "score": round(self.score, 4),
            "sharpness": round(self.sharpness, 4),
            "exposure": round(self.exposure, 4),
            "resolution": round(self.resolution, 4),
            "dhash": f"{self.hash:016x}",
            "duplicate_of": self.duplicate_of,
        }


def _grey(image: Image.Image, long_side: int = 512) -> np.ndarray:
    small = image.copy()
    small.thumbnail((long_side, long_side), Image.Resampling.BOX)
    return np.asarray(small.convert("L"), dtype=np.float64) / 255.0


def quality(image: Image.Image) -> tuple[float, float, float, float]:
    """(score, sharpness, exposure, resolution), each 0..1.

    Sharpness: variance of the 4-neighbour Laplacian at 512 px, 0.01 and above = 1.
    Exposure: 1 at mid-grey mean brightness, less for dark or bright photos and for
    clipped shadows or highlights.  Resolution: megapixels / 2, at most 1.
    """
    grey = _grey(image)
    lap = (
        -4 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
    )
    sharpness = float(min(1.0, lap.var() / 0.01))
    clipped = float(((grey < 0.02) | (grey > 0.98)).mean())
    exposure = float(max(0.0, 1 - 2 * abs(grey.mean() - 0.5) - clipped))
    resolution = float(min(1.0, image.width * image.height / 2e6))
    score = 0.5 * sharpness + 0.3 * exposure + 0.2 * resolution
    return score, sharpness, exposure, resolution


def dhash(image: Image.Image) -> int:
    """64-bit difference hash: is each of 8x8 cells brighter than its right neighbour."""
    small = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.BOX), dtype=np.int32)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _name_words(name: str) -> list[str]:
    """The words of a photo's file name, lower case: ``int_pd_living-room2.JPG`` gives
    ``int, pd, living, room, jpg``; ``_``, ``-``, ``.``, digits and spaces break words,
    and so does a capital after a small letter (``LivingRoom``)."""
    stem = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", stem)
    return re.findall(r"[^\W\d_]+", stem.lower())


def _room_from_name(name: str) -> str | None:
    words = _name_words(name)
    singular = {w[:-1] for w in words if len(w) > 3 and w.endswith("s")}
    found = set(words) | singular
    for room, hints in _NAME_HINTS:
        if found.intersection(hints):
            return room
    return None


def _looks_exterior(image: Image.Image) -> bool:
    small = image.copy()
    small.thumbnail((128, 128), Image.Resampling.BOX)
    rgb = np.asarray(small, dtype=np.float64) / 255.0
    top = rgb[: max(1, rgb.shape[0] // 4)]
    r, g, b = top[..., 0], top[..., 1], top[..., 2]
    sky = (b > r + 0.05) & (b > 0.45) & (b >= g)
    return bool(sky.mean() > 0.35)


def _room_hints(params: Mapping[str, Any], names: Sequence[str]) -> dict[int, str]:
    raw = params.get("photo_rooms")
    hints: dict[int, str] = {}
    if isinstance(raw, Mapping):
        for i, name in enumerate(names):
            if raw.get(name):
                hints[i] = str(raw[name])
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        for i, room in enumerate(raw):
            if room:
                hints[i] = str(room)
    return hints


def storyboard(
    inputs: Sequence[bytes],
    names: Sequence[str],
    params: Mapping[str, Any],
    *,
    listing_id: str | None = None,
    max_photos: int = 8,
) -> tuple[list[Photo], list[Photo], list[dict[str, str]]]:
    """(chosen photos in order, near duplicates put out, photos that could not be used)."""
    hints = _room_hints(params, names)
    photos: list[Photo] = []
    rejected: list[dict[str, str]] = []
    for i, data in enumerate(inputs):
        try:
            image = open_image(data, name=names[i], listing_id=listing_id)
        except Exception as exc:  # a MediaError names the photo; other photos go on
            logger.warning("brochure: photo %s left out: %s", names[i], exc)
            rejected.append({"name": names[i], "reason": str(exc)})
            continue
        photo = Photo(index=i, name=names[i], image=image)
        if i in hints:
            photo.room, photo.room_source = hints[i], "params"
        elif (room := _room_from_name(names[i])) is not None:
            photo.room, photo.room_source = room, "name"
        elif _looks_exterior(image):
            photo.room, photo.room_source = "exterior", "image"
        photo.score, photo.sharpness, photo.exposure, photo.resolution = quality(image)
        photo.hash = dhash(image)
        photos.append(photo)

    kept: list[Photo] = []
    duplicates: list[Photo] = []
    for photo in sorted(photos, key=lambda p: (-p.score, p.index)):
        twin = next((k for k in kept if hamming(k.hash, photo.hash) <= DUPLICATE_BITS), None)
        if twin is None:
            kept.append(photo)
        else:
            photo.duplicate_of = twin.index
            duplicates.append(photo)

    def rank(p: Photo) -> tuple[int, float, int]:
        order = ROOM_ORDER.index(p.room) if p.room in ROOM_ORDER else len(ROOM_ORDER)
        return (order, -p.score, p.index)

    cover_pool = [p for p in kept if p.room in ("exterior", "living")] or kept
    chosen: list[Photo] = []
    if cover_pool:
        cover = max(cover_pool, key=lambda p: (p.score, -p.index))
        chosen = [cover, *sorted((p for p in kept if p is not cover), key=rank)]
    return chosen[:max_photos], duplicates, rejected
