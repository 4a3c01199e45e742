"""Walk-through capture bundles: the input of the ``floor-plan`` graph.

The format is written down in docs/capture-bundle.md.  :func:`read_capture` validates a
bundle, :func:`write_capture` and :func:`bundle_from_rgbd` write one, and
:func:`synthesize_capture` renders one from a known floor plan for tests and demos.
"""

from __future__ import annotations

from ._format import (
    PLAIN_VIDEO_MESSAGE,
    CaptureBundle,
    CaptureFrame,
    Intrinsics,
    bundle_from_rgbd,
    read_capture,
    write_capture,
)
from ._synth import PlanTruth, demo_plan, plan_truth, synthesize_capture

__all__ = [
    "PLAIN_VIDEO_MESSAGE",
    "CaptureBundle",
    "CaptureFrame",
    "Intrinsics",
    "PlanTruth",
    "bundle_from_rgbd",
    "demo_plan",
    "plan_truth",
    "read_capture",
    "synthesize_capture",
    "write_capture",
]
