"""Settings of the local runtime: device, precision, and the model folders it may load.

Settings are frozen once made, so a run can be written down and repeated.  They come
from arguments or from ``BKBN_*`` environment variables (:meth:`RuntimeSettings.from_env`);
docs/runtime.md lists every variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .._errors import ConfigError

__all__ = ["DEVICES", "DTYPES", "RuntimeSettings"]

DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPES = ("auto", "float16", "bfloat16", "float32")

#: Setting name -> environment variable.
ENV_VARS: dict[str, str] = {
    "device": "BKBN_DEVICE",
    "dtype": "BKBN_DTYPE",
    "models_dir": "BKBN_MODELS_DIR",
    "staging_model": "BKBN_STAGING_MODEL",
    "controlnet_model": "BKBN_CONTROLNET_MODEL",
    "segmentation_model": "BKBN_SEGMENTATION_MODEL",
    "steps": "BKBN_STEPS",
    "render_size": "BKBN_RENDER_SIZE",
    "allow_untrained": "BKBN_ALLOW_UNTRAINED",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class RuntimeSettings:
    """How the local runtime runs graphs and where its models are.

    ``staging_model`` (also used by ``declutter``) names a folder holding a diffusers
    pipeline (``model_index.json`` at its top), absolute or relative to
    ``models_dir``.  ``controlnet_model`` is a diffusers ``ControlNetModel`` folder
    conditioned on edges; ``segmentation_model`` a transformers semantic
    segmentation folder (for instance a SegFormer trained on ADE20K).  ``render_size``
    is the long side of the internal render in pixels; ``None`` takes the model's own
    size (its UNet sample size times its VAE factor).  ``allow_untrained`` lets
    ``staging`` and ``declutter`` run without a configured model, on a tiny random
    pipeline whose outputs are labelled ``weights: "untrained"``.
    """

    device: str = "auto"
    dtype: str = "auto"
    models_dir: Path | None = None
    staging_model: str | None = None
    controlnet_model: str | None = None
    segmentation_model: str | None = None
    steps: int = 28
    render_size: int | None = None
    allow_untrained: bool = False

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(
                f"BKBN_DEVICE / device: {self.device!r} is not one of {', '.join(DEVICES)}"
            )
        if self.dtype not in DTYPES:
            raise ConfigError(
                f"BKBN_DTYPE / dtype: {self.dtype!r} is not one of {', '.join(DTYPES)}"
            )
        if not 1 <= int(self.steps) <= 200:
            raise ConfigError(f"BKBN_STEPS / steps: {self.steps!r} is not within 1..200")
        if self.render_size is not None and not 32 <= int(self.render_size) <= 4096:
            raise ConfigError(
                f"BKBN_RENDER_SIZE / render_size: {self.render_size!r} is not within 32..4096"
            )
        if self.models_dir is not None and not isinstance(self.models_dir, Path):
            object.__setattr__(self, "models_dir", Path(self.models_dir))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> RuntimeSettings:
        """Settings from ``BKBN_*`` variables; keyword arguments win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_VARS[f.name])
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.name, raw.strip())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_changes(self, **changes: Any) -> RuntimeSettings:
        """A copy with some settings changed."""
        return replace(self, **changes)

    def model_path(self, setting: str) -> Path | None:
        """The folder a model setting names, resolved against ``models_dir``."""
        value = getattr(self, setting)
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute() and self.models_dir is not None:
            path = self.models_dir.expanduser() / path
        return path


def _parse(name: str, raw: str) -> Any:
    variable = ENV_VARS[name]
    if name in {"steps", "render_size"}:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{variable} / {name}: {raw!r} is not an integer") from None
    if name == "allow_untrained":
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ConfigError(f"{variable} / {name}: {raw!r} is not a boolean (use 1 or 0)")
    if name == "models_dir":
        return Path(raw)
    if name in {"device", "dtype"}:
        return raw.lower()
    return raw
