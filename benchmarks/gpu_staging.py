"""GPU timing of the staging graph: milliseconds per render step and peak GPU memory.

Runs ``staging`` through the local runtime on CUDA in half precision (float16) and
writes JSON (and prints a markdown table).  By default it builds the tiny random
pipeline of :mod:`bkbn_pipelines.runtime.testing`, which measures the runtime's own
overhead around a real diffusers pipeline; ``--model`` points it at a real
diffusers inpainting folder instead.

    python -m benchmarks.gpu_staging --out benchmarks/results/gpu_staging.json
    python -m benchmarks.gpu_staging --model /models/sd-inpainting --steps 28 --runs 3

Exits with status 2 when no CUDA device is present.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "photos" / "int_pd_living_room.jpg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="diffusers inpainting folder (default: tiny random)")
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up")
    parser.add_argument("--render-size", type=int, default=512, help="internal long side")
    parser.add_argument("--resolution", default="1k", choices=("1k", "2k", "4k"))
    parser.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    parser.add_argument("--out", default="benchmarks/results/gpu_staging.json")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: this benchmark needs one", file=sys.stderr)
        return 2

    from bkbn_pipelines._events import NodeDone, RenderProgress, Result
    from bkbn_pipelines.runtime import LocalRuntime, RuntimeSettings
    from bkbn_pipelines.runtime.testing import build_tiny_inpaint_pipeline

    with tempfile.TemporaryDirectory() as scratch:
        model = args.model or str(build_tiny_inpaint_pipeline(Path(scratch) / "tiny", seed=0))
        settings = RuntimeSettings(
            device="cuda",
            dtype=args.dtype,
            staging_model=model,
            steps=args.steps,
            render_size=args.render_size,
        )
        runtime = LocalRuntime(settings)
        photo = PHOTO.read_bytes()
        params = {"style": "scandi-warm", "resolution": args.resolution, "seed": 1}

        runs = []
        for index in range(args.runs + 1):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            step_times: list[float] = []
            nodes: dict[str, int] = {}
            last = time.perf_counter()
            t0 = last
            result = None
            for event in runtime.run("staging", [photo], params):
                now = time.perf_counter()
                if isinstance(event, RenderProgress):
                    step_times.append((now - last) * 1000)
                    last = now
                elif isinstance(event, NodeDone):
                    nodes[event.node] = event.ms
                    last = now
                elif isinstance(event, Result):
                    result = event
                else:
                    last = now
            torch.cuda.synchronize()
            if result is None:
                print(f"run {index} failed: {event}", file=sys.stderr)
                return 1
            image = Image.open(io.BytesIO(result.artifacts["image"].data))
            runs.append(
                {
                    "warmup": index == 0,
                    "wall_ms": round((time.perf_counter() - t0) * 1000, 1),
                    "ms_per_step_median": round(statistics.median(step_times[1:] or step_times), 2),
                    "ms_per_step_first": round(step_times[0], 2),
                    "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                    "nodes_ms": nodes,
                    "output": list(image.size),
                    "weights": result.data["weights"],
                }
            )

    timed = [r for r in runs if not r["warmup"]]
    report = {
        "benchmark": "gpu_staging",
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "model": "tiny random (bkbn_pipelines.runtime.testing)" if not args.model else args.model,
        "dtype": args.dtype,
        "steps": args.steps,
        "render_size": args.render_size,
        "resolution": args.resolution,
        "ms_per_step_median": statistics.median(r["ms_per_step_median"] for r in timed),
        "peak_gpu_mib": max(r["peak_gpu_mib"] for r in timed),
        "wall_ms_median": statistics.median(r["wall_ms"] for r in timed),
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("| GPU | dtype | steps | ms/step (median) | peak GPU MiB | wall ms (median) |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {report['gpu']} | {args.dtype} | {args.steps} | {report['ms_per_step_median']} "
        f"| {report['peak_gpu_mib']} | {report['wall_ms_median']} |"
    )
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
