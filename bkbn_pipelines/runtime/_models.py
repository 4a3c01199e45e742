"""Model folders: finding them, telling trained from untrained, loading and caching.

Models load only from local folders in diffusers (or, for segmentation, transformers)
format, always with ``local_files_only=True``; nothing is downloaded.  A loaded
pipeline is cached per (folder, ControlNet folder, device, dtype) for the life of the
process and guarded by a lock, because a diffusers pipeline is not safe to call from
two threads at once.

Whether weights are trained is read from the folder: a ``bkbn_weights.json`` file
whose ``weights`` is ``"untrained"`` (written by
:func:`bkbn_pipelines.runtime.testing.build_tiny_inpaint_pipeline`), or a
``"_bkbn_weights": "untrained"`` entry in ``model_index.json`` / ``config.json``.
Every other folder counts as ``"pretrained"``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .._errors import ModelNotFoundError
from ._device import resolve_device, resolve_dtype, torch_dtype
from ._settings import ENV_VARS, RuntimeSettings

__all__ = [
    "InpaintPipeline",
    "SegmentationModel",
    "inpaint_folder",
    "load_inpaint_pipeline",
    "load_segmentation_model",
    "weights_label",
]

logger = logging.getLogger("bkbn_pipelines.runtime")

_UNTRAINED_DIR = "bkbn-untrained-tiny-inpaint"
_cache: dict[tuple[str, ...], Any] = {}
_cache_lock = threading.Lock()  # guards _cache and _load_locks, held only briefly
_load_locks: dict[tuple[str, ...], threading.Lock] = {}
_fallback_lock = threading.Lock()


def _cached(key: tuple[str, ...], load: Callable[[], Any]) -> Any:
    """The cached value of ``key``; ``load`` runs once however many threads ask at once."""
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        key_lock = _load_locks.setdefault(key, threading.Lock())
    with key_lock:
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        value = load()
        with _cache_lock:
            _cache[key] = value
        return value


def _setting_name(setting: str) -> str:
    return f"{ENV_VARS[setting]} / {setting}"


def weights_label(*folders: Path | None) -> str:
    """``"untrained"`` if any folder is marked untrained, else ``"pretrained"``."""
    for folder in folders:
        if folder is None:
            continue
        marker = folder / "bkbn_weights.json"
        if marker.is_file() and _read_json(marker).get("weights") == "untrained":
            return "untrained"
        for index in ("model_index.json", "config.json"):
            if (folder / index).is_file() and (
                _read_json(folder / index).get("_bkbn_weights") == "untrained"
            ):
                return "untrained"
    return "pretrained"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


#: ``owner/name``, the shape of a Hugging Face Hub model id.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]*[A-Za-z0-9]")


def _hub_id_advice(value: str, folder: Path) -> str:
    """Advice for a setting that holds a Hub id rather than a folder, else ``""``."""
    if folder.exists() or not _HUB_ID.fullmatch(value):
        return ""
    return (
        f"; {value!r} looks like a Hugging Face Hub id, but models are not downloaded: "
        "save the model with save_pretrained on a machine with internet access and "
        "name that folder instead"
    )


def _configured(settings: RuntimeSettings, setting: str, index: str, what: str) -> Path | None:
    """The folder ``setting`` names, checked to hold ``index``; ``None`` if it is not set."""
    folder = settings.model_path(setting)
    if folder is None:
        return None
    if not (folder / index).is_file():
        raise ModelNotFoundError(
            f"{_setting_name(setting)}: no {what} at {str(folder)!r} ({index} missing)"
            + _hub_id_advice(str(getattr(settings, setting)), folder)
        )
    return folder


def inpaint_folder(settings: RuntimeSettings, graph: str) -> Path:
    """The inpainting pipeline folder ``graph`` will use; raises if there is none.

    With no ``staging_model`` set and ``allow_untrained`` on, a tiny random pipeline
    is built once (under ``models_dir`` or the temporary folder) and used instead.
    """
    folder = _configured(settings, "staging_model", "model_index.json", "diffusers pipeline")
    if folder is not None:
        return folder
    if settings.allow_untrained:
        return _untrained_fallback(settings)
    raise ModelNotFoundError(
        f"{_setting_name('staging_model')} is not set: the {graph} graph needs real "
        "weights, a diffusers inpainting pipeline in a local folder (for example a "
        "Stable Diffusion inpainting checkpoint saved with save_pretrained on a machine "
        "with internet access). Set BKBN_STAGING_MODEL to that folder (relative paths "
        "are read from BKBN_MODELS_DIR), or set BKBN_ALLOW_UNTRAINED=1 to run on "
        'untrained test weights, whose results are labelled weights="untrained".'
    )


def controlnet_folder(settings: RuntimeSettings) -> Path | None:
    return _configured(settings, "controlnet_model", "config.json", "diffusers ControlNet model")


def segmentation_folder(settings: RuntimeSettings) -> Path | None:
    return _configured(settings, "segmentation_model", "config.json", "segmentation model")


def _untrained_fallback(settings: RuntimeSettings) -> Path:
    base = settings.models_dir.expanduser() if settings.models_dir else Path(tempfile.gettempdir())
    folder = base / _UNTRAINED_DIR
    with _fallback_lock:
        if not (folder / "model_index.json").is_file():
            from .testing import build_tiny_inpaint_pipeline

            logger.warning(
                "no staging model configured; building an untrained tiny pipeline at %s "
                "(results will be labelled untrained)",
                folder,
            )
            # Built beside the target and renamed, so another process never sees half.
            base.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=f".{_UNTRAINED_DIR}-", dir=base))
            build_tiny_inpaint_pipeline(scratch / "pipeline")
            try:
                os.replace(scratch / "pipeline", folder)
            except OSError:  # another process finished first
                if not (folder / "model_index.json").is_file():
                    raise
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    return folder


#: Pipeline class in ``model_index.json`` -> (inpainting class, ControlNet inpainting class).
_INPAINT_CLASSES = {
    "StableDiffusionPipeline": (
        "StableDiffusionInpaintPipeline",
        "StableDiffusionControlNetInpaintPipeline",
    ),
    "StableDiffusionImg2ImgPipeline": (
        "StableDiffusionInpaintPipeline",
        "StableDiffusionControlNetInpaintPipeline",
    ),
    "StableDiffusionInpaintPipeline": (
        "StableDiffusionInpaintPipeline",
        "StableDiffusionControlNetInpaintPipeline",
    ),
    "StableDiffusionXLPipeline": (
        "StableDiffusionXLInpaintPipeline",
        "StableDiffusionXLControlNetInpaintPipeline",
    ),
    "StableDiffusionXLImg2ImgPipeline": (
        "StableDiffusionXLInpaintPipeline",
        "StableDiffusionXLControlNetInpaintPipeline",
    ),
    "StableDiffusionXLInpaintPipeline": (
        "StableDiffusionXLInpaintPipeline",
        "StableDiffusionXLControlNetInpaintPipeline",
    ),
}


def _inpaint_class(folder: Path, *, controlnet: bool) -> Any:
    """The diffusers class that inpaints with the pipeline saved in ``folder``.

    Text-to-image and image-to-image checkpoints load into the matching inpainting
    class, which blends the mask in latent space when the UNet has 4 input channels.
    """
    import diffusers

    name = _read_json(folder / "model_index.json").get("_class_name", "")
    if name not in _INPAINT_CLASSES:
        raise ModelNotFoundError(
            f"{_setting_name('staging_model')}: the pipeline at {str(folder)!r} is a "
            f"{name or 'pipeline of unknown class'}; staging and declutter need one of "
            f"{', '.join(sorted(_INPAINT_CLASSES))}"
        )
    return getattr(diffusers, _INPAINT_CLASSES[name][1 if controlnet else 0])


def _quiet_libraries() -> None:
    """No progress bars from diffusers or transformers inside a service."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


@contextlib.contextmanager
def _only_library_errors() -> Iterator[None]:
    """Silence the libraries' import-time advice (optional backends, deprecations)
    while a model loads; their errors still show."""
    from transformers.utils import logging as transformers_logging

    before = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        transformers_logging.set_verbosity(before)


@dataclass
class InpaintPipeline:
    """A loaded inpainting pipeline and what the graphs need to know about it."""

    pipe: Any
    folder: Path
    controlnet: Path | None
    device: str
    dtype: str
    weights: str
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def multiple(self) -> int:
        """Image sides must be a multiple of this (the VAE factor, at least 8)."""
        return max(8, int(self.pipe.vae_scale_factor))

    @property
    def native_size(self) -> int:
        """The long side the UNet was built for, in pixels."""
        sample = self.pipe.unet.config.sample_size
        sample = max(sample) if isinstance(sample, (list, tuple)) else sample
        return int(sample) * int(self.pipe.vae_scale_factor)

    def render(
        self,
        *,
        image: Image.Image,
        mask: Image.Image,
        prompt: str,
        negative_prompt: str,
        steps: int,
        seed: int,
        on_step: Callable[[int, int], None],
        control_image: Image.Image | None = None,
        guidance_scale: float = 7.5,
    ) -> Image.Image:
        """Inpaint the white part of ``mask``; sizes must be multiples of :attr:`multiple`."""
        import torch

        def callback(pipe: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict:
            on_step(index + 1, int(getattr(pipe, "num_timesteps", steps) or steps))
            return {}

        kwargs: dict[str, Any] = {}
        if self.controlnet is not None:
            kwargs["control_image"] = control_image
        with self.lock, torch.inference_mode():
            generator = torch.Generator(device="cpu").manual_seed(seed)
            output = self.pipe(
                prompt=prompt,
                negative_prompt=negative_prompt,
                image=image,
                mask_image=mask,
                height=image.height,
                width=image.width,
                num_inference_steps=steps,
                strength=1.0,
                guidance_scale=guidance_scale,
                generator=generator,
                callback_on_step_end=callback,
                output_type="pil",
                **kwargs,
            )
        return output.images[0].convert("RGB")


def load_inpaint_pipeline(settings: RuntimeSettings, graph: str) -> InpaintPipeline:
    """The cached inpainting pipeline of ``settings`` (loaded on first use)."""
    folder = inpaint_folder(settings, graph)
    control = controlnet_folder(settings)
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    key = (
        "inpaint",
        str(folder.resolve()),
        str(control.resolve()) if control else "",
        device,
        dtype,
    )
    return _cached(key, lambda: _load_inpaint(folder, control, device, dtype))


def _load_inpaint(folder: Path, control: Path | None, device: str, dtype: str) -> InpaintPipeline:
    import diffusers

    _quiet_libraries()
    with _only_library_errors():
        pipeline_class = _inpaint_class(folder, controlnet=control is not None)
    kwargs: dict[str, Any] = {
        "torch_dtype": torch_dtype(dtype),
        "local_files_only": True,
        "low_cpu_mem_usage": False,
    }
    logger.info("loading %s from %s on %s (%s)", pipeline_class.__name__, folder, device, dtype)
    with _only_library_errors():
        if control is not None:
            kwargs["controlnet"] = diffusers.ControlNetModel.from_pretrained(control, **kwargs)
        pipe = pipeline_class.from_pretrained(folder, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    return InpaintPipeline(
        pipe=pipe,
        folder=folder,
        controlnet=control,
        device=device,
        dtype=dtype,
        weights=weights_label(folder, control),
    )


@dataclass
class SegmentationModel:
    """A transformers semantic-segmentation model and its label names."""

    model: Any
    processor: Any
    labels: dict[int, str]
    device: str
    weights: str
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def labels_of(self, image: Image.Image) -> tuple[Any, dict[int, str]]:
        """Per-pixel class ids (numpy, image size) and the names of the ids."""
        import torch

        with self.lock, torch.inference_mode():
            batch = self.processor(images=image, return_tensors="pt").to(self.device)
            logits = self.model(**batch).logits.float()
            logits = torch.nn.functional.interpolate(
                logits, size=(image.height, image.width), mode="bilinear", align_corners=False
            )
            ids = logits.argmax(dim=1)[0].cpu().numpy()
        return ids, self.labels


def load_segmentation_model(settings: RuntimeSettings) -> SegmentationModel | None:
    """The cached segmentation model of ``settings``, or ``None`` if none is set."""
    folder = segmentation_folder(settings)
    if folder is None:
        return None
    device = resolve_device(settings.device)
    key = ("segmentation", str(folder.resolve()), device)
    return _cached(key, lambda: _load_segmentation(folder, device))


def _load_segmentation(folder: Path, device: str) -> SegmentationModel:
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    logger.info("loading segmentation model from %s on %s", folder, device)
    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    model = AutoModelForSemanticSegmentation.from_pretrained(folder, local_files_only=True)
    model = model.to(device).eval()
    labels = {int(k): str(v).lower() for k, v in model.config.id2label.items()}
    return SegmentationModel(
        model=model,
        processor=processor,
        labels=labels,
        device=device,
        weights=weights_label(folder),
    )
