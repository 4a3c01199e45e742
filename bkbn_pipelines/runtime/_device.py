"""Which device and precision a run uses: CUDA, then MPS, then CPU; half on a GPU."""

from __future__ import annotations

import functools

from .._errors import ConfigError

__all__ = ["resolve_device", "resolve_dtype", "torch_dtype"]


@functools.cache
def _available() -> tuple[bool, bool]:
    try:
        import torch
    except ImportError:
        return False, False
    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available(), bool(mps is not None and mps.is_available())


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` if present, else ``mps``, else ``cpu``; checks explicit ones."""
    cuda, mps = _available()
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if device == "cuda" and not cuda:
        raise ConfigError(
            "BKBN_DEVICE / device: 'cuda' was asked for but no CUDA device is present"
        )
    if device == "mps" and not mps:
        raise ConfigError("BKBN_DEVICE / device: 'mps' was asked for but MPS is not available")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` -> ``float16`` on a GPU, ``float32`` on the CPU."""
    if dtype != "auto":
        return dtype
    return "float32" if device == "cpu" else "float16"


def torch_dtype(name: str):
    import torch

    return {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[name]
