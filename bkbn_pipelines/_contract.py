"""Constants of the Backbone Lab API contract, shared by client, emulator and runtime.

docs/api.md explains each of them in prose.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "ERROR_TYPES",
    "FIXED_TOKENS",
    "GRAPHS",
    "RESOLUTIONS",
    "ROOM_TYPES",
    "SIZE_LIMITS",
    "STYLES",
    "SUPPORTED_VERSIONS",
    "render_tokens",
]

API_VERSION: Final = "2026-01-01"
SUPPORTED_VERSIONS: Final = frozenset({API_VERSION})
DEFAULT_BASE_URL: Final = "https://api.bkbn.com"

#: HTTP status -> ``error.type`` of the JSON error body.
ERROR_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

_MB: Final = 1024 * 1024

#: Largest whole request body per endpoint family, in bytes.
SIZE_LIMITS: Final[dict[str, int]] = {
    "workflows": 32 * _MB,
    "staging": 32 * _MB,
    "floor-plans": 32 * _MB,
    "brochures": 64 * _MB,
    "batches": 256 * _MB,
}

STYLES: Final = (
    "scandi-warm",
    "modern-neutral",
    "mid-century",
    "coastal",
    "industrial",
    "japandi",
)
ROOM_TYPES: Final = ("living", "bedroom", "kitchen", "dining", "office", "bathroom")

#: Output resolution name -> length of the long side in pixels.
RESOLUTIONS: Final[dict[str, int]] = {"1k": 1024, "2k": 2048, "4k": 4096}

#: Graph name -> newest version. ``staging`` means ``staging-v2.4``.
GRAPHS: Final[dict[str, str]] = {
    "staging": "2.4",
    "relight": "1.2",
    "declutter": "1.1",
    "brochure": "0.9",
    "floor-plan": "1.0",
}

#: Token cost of graphs that do not render pixels.
FIXED_TOKENS: Final = 10


def render_tokens(megapixels_out: float, steps: int) -> int:
    """Token cost of a render: ``ceil(megapixels_out * steps / 10)``, at least 1."""
    return max(1, math.ceil(megapixels_out * steps / 10))
