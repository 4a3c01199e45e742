"""bkbn_pipelines: Dagster assets for the Backbone Lab API.

Listing photos, staged renders, enhanced photos, floor plans and brochures as
materializations partitioned by listing, run either through the Backbone Lab API
(``api`` backend) or in-process on a local GPU (``local`` backend).
"""

from __future__ import annotations

from . import _logging as _logging  # installs the NullHandler on import
from ._errors import *  # noqa: F403
from ._errors import __all__ as _errors_all
from ._events import *  # noqa: F403
from ._events import __all__ as _events_all

__version__ = "0.1.0"

__all__ = ["__version__", *_errors_all, *_events_all]
