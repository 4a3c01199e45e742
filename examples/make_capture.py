"""Regenerate examples/captures/demo_walkthrough.zip, the demo's walk-through capture.

The bundle is rendered from a known floor plan (a living room, a bedroom and a
bathroom in an L-shaped flat) by the project's synthetic capture generator, so the
floor plan the demo infers can be compared with the plan it came from.

    python examples/make_capture.py
"""

from __future__ import annotations

from pathlib import Path

from bkbn_pipelines.runtime.capture import demo_plan, synthesize_capture

OUT = Path(__file__).resolve().parent / "captures" / "demo_walkthrough.zip"


def main() -> None:
    data = synthesize_capture(demo_plan(), seed=7, frames_per_room=10, width=160, height=120)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(data)
    print(f"wrote {OUT.name}: {len(data) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
