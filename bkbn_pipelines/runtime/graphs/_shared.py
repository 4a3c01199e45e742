"""Pieces shared by the image graphs: parameter checks, render sizes, compositing."""

from __future__ import annotations

import base64
import binascii
import io
import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..._contract import RESOLUTIONS
from ..._errors import InvalidParamsError
from .._imageprep import crop_back, fit_long_side, pad_to_multiple
from .._models import InpaintPipeline

logger = logging.getLogger("bkbn_pipelines.runtime")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def reject_unknown(graph: str, params: Mapping[str, Any], known: Iterable[str]) -> None:
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InvalidParamsError(
            f"{graph}: unknown parameter {unknown[0]!r}; known: {', '.join(sorted(known))}"
        )


def choice(params: Mapping[str, Any], name: str, options: Iterable[str], default: Any) -> Any:
    value = params.get(name)
    if value is None:
        return default
    options = tuple(options)
    if value not in options:
        raise InvalidParamsError(f"{name}: {value!r} is not one of {', '.join(options)}")
    return value


def flag(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidParamsError(f"{name}: {value!r} is not a boolean")


def seed(params: Mapping[str, Any]) -> int:
    """The run's seed: the ``seed`` parameter, or a fresh random one (reported back)."""
    value = params.get("seed")
    if value is None:
        return secrets.randbelow(2**31)
    if isinstance(value, bool):
        raise InvalidParamsError(f"seed: {value!r} is not an integer")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int):
        raise InvalidParamsError(f"seed: {value!r} is not an integer")
    if not 0 <= value < 2**63:
        raise InvalidParamsError(f"seed: {value} is not within 0..2**63-1")
    return value


def resolution(params: Mapping[str, Any], default: str = "1k") -> str:
    return choice(params, "resolution", RESOLUTIONS, default)


def working_image(
    photo: Image.Image, pipeline: InpaintPipeline, render_size: int | None
) -> Image.Image:
    """The photo at the render's long side (the model's own size unless set)."""
    long_side = render_size or pipeline.native_size
    return photo.resize(fit_long_side(photo.size, long_side), Image.Resampling.LANCZOS)


def render_inpaint(
    ctx: Any,
    pipeline: InpaintPipeline,
    work: Image.Image,
    mask: np.ndarray,
    *,
    prompt: str,
    negative_prompt: str,
    steps: int,
    run_seed: int,
    control: np.ndarray | None = None,
) -> Image.Image:
    """Inpaint ``mask`` of ``work`` (padded to the model's multiple, then cropped back)."""
    padded, padding = pad_to_multiple(work, pipeline.multiple)
    mask_image, _ = pad_to_multiple(Image.fromarray(mask.astype(np.uint8) * 255), pipeline.multiple)
    control_image = None
    if control is not None:
        edges, _ = pad_to_multiple(
            Image.fromarray(control.astype(np.uint8) * 255), pipeline.multiple
        )
        control_image = edges.convert("RGB")
    rendered = pipeline.render(
        image=padded,
        mask=mask_image,
        prompt=prompt,
        negative_prompt=negative_prompt,
        steps=steps,
        seed=run_seed,
        on_step=ctx.progress,
        control_image=control_image,
    )
    return crop_back(rendered, padding)


def blend(base: Image.Image, overlay: Image.Image, soft_mask: np.ndarray) -> Image.Image:
    """``overlay`` where ``soft_mask`` is 1, ``base`` where it is 0 (all the same size)."""
    a = np.asarray(base, dtype=np.float32)
    b = np.asarray(overlay, dtype=np.float32)
    m = soft_mask.astype(np.float32)[..., None]
    return Image.fromarray((a * (1.0 - m) + b * m + 0.5).clip(0, 255).astype(np.uint8))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float mask in [0, 1] resized (bilinear) to ``size`` = (width, height)."""
    image = Image.fromarray((mask.astype(np.float32) * 255).clip(0, 255).astype(np.uint8))
    resized = image.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32) / 255.0


def combined_weights(*labels: str | None) -> str:
    """``"untrained"`` when any model the run used is untrained, else ``"pretrained"``."""
    return "untrained" if "untrained" in labels else "pretrained"


def warn_untrained(ctx: Any, pipeline: InpaintPipeline) -> None:
    if pipeline.weights == "untrained":
        logger.warning(
            "run %s of %s used UNTRAINED weights from %s: the image is not a real render; "
            "set BKBN_STAGING_MODEL to a folder with real weights",
            ctx.run_id,
            ctx.graph.full_name,
            pipeline.folder,
        )


def decode_mask(value: Any) -> Image.Image:
    """A given mask (PNG bytes, a ``data:`` URI or base64 text) as an ``L`` image.

    White (over 127 in greyscale, or opaque where the PNG has alpha) means "clear".
    """
    if isinstance(value, Image.Image):
        return value.convert("L")
    data: bytes
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("data:"):
            header, _, text = text.partition(",")
            if ";base64" not in header:
                raise InvalidParamsError("mask: a data: URI must be base64-encoded")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidParamsError("mask: not valid base64") from exc
    else:
        raise InvalidParamsError("mask: expected PNG bytes, a data: URI or base64 text")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            has_alpha = opened.mode in {"RGBA", "LA"}
            return opened.getchannel("A") if has_alpha else opened.convert("L")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidParamsError(f"mask: not a readable image ({exc})") from exc


def mask_array(mask: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Booleans of a decoded mask at ``size`` (nearest-neighbour resize if needed)."""
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.NEAREST)
    return np.asarray(mask) > 127
