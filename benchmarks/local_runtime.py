"""Local runtime speed: megapixels per second of relight and palette, events per second
of the client's stream parser.

- ``relight`` (graph): the whole ``relight`` graph through ``LocalRuntime`` as a caller
  sees it: JPEG decode, analysis, white balance, tone, PNG encode.
- ``relight`` (array): :func:`relight_array` alone, the numerical core, on a float image.
- ``palette``: :func:`dominant_colours`, the work of the brochure graph's ``palette``
  node (k-means in CIELAB on a 96-pixel copy of each photo) on one photo.
- ``sse``: :class:`SSEDecoder` fed a synthetic stream shaped like the emulator's
  (``id``, ``event``, JSON ``data``, a heartbeat comment every 20 events) in chunks.

Both graphs are numpy and PIL code on the CPU; they have no GPU path, so a GPU would not
change these figures (the GPU figures of staging are ``benchmarks.gpu_staging``).

    python -m benchmarks.local_runtime
    python -m benchmarks.local_runtime --quick
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._common import markdown_table, write_results

NAME = "local_runtime"

SIZES = {"1 MP": (1216, 912), "3 MP": (2048, 1536), "12 MP": (4032, 3024)}
QUICK_SIZES = {"0.2 MP": (512, 384)}


def photo(size: tuple[int, int], seed: int = 0) -> tuple[bytes, Any]:
    """A photo-like JPEG (gradients, texture, a colour cast) and its PIL image."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 90 + 60 * np.sin(xs / 97.0) * np.cos(ys / 131.0)
    pixels = np.stack([base * 1.15, base, base * 0.8], axis=-1)
    pixels += rng.normal(0, 8, size=pixels.shape).astype(np.float32)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), image


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    fn()  # warm-up: imports, caches, allocations
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def bench_images(sizes: dict[str, tuple[int, int]], repeats: int) -> list[dict[str, Any]]:
    import numpy as np

    from bkbn_pipelines._events import Result
    from bkbn_pipelines.runtime import LocalRuntime, RuntimeSettings
    from bkbn_pipelines.runtime.graphs.brochure._palette import dominant_colours
    from bkbn_pipelines.runtime.graphs.relight import relight_array

    runtime = LocalRuntime(RuntimeSettings(device="cpu"))
    rows = []
    for label, size in sizes.items():
        data, image = photo(size)
        megapixels = size[0] * size[1] / 1e6
        array = np.asarray(image, dtype=np.float32) / 255.0

        def graph(data: bytes = data) -> None:
            events = list(runtime.run("relight", [data], {}))
            if not isinstance(events[-1], Result):
                raise RuntimeError(f"relight did not succeed: {events[-1]!r}")

        cases = {
            "relight (graph)": graph,
            "relight (array)": lambda array=array: relight_array(array),
            "palette": lambda image=image: dominant_colours([image], k=5, seed=0),
        }
        for case, fn in cases.items():
            times = timed(fn, repeats)
            median = statistics.median(times)
            rows.append(
                {
                    "case": case,
                    "size": f"{label} ({size[0]}x{size[1]})",
                    "megapixels": megapixels,
                    "repeats": repeats,
                    "median_s": median,
                    "best_s": min(times),
                    "mp_per_s": megapixels / median,
                }
            )
            print(f"  {case} {label}: {megapixels / median:.1f} MP/s", file=sys.stderr)
    return rows


def synthetic_stream(events: int, run_id: str = "run_benchmark000000000000000") -> bytes:
    """An event stream like the emulator's: progress events and a ping every 20."""
    import json

    parts = []
    for seq in range(1, events + 1):
        data = json.dumps({"step": seq, "total": events, "node": "render", "ms": 12})
        parts.append(f"id: {run_id}:{seq}\nevent: render.progress\ndata: {data}\n\n")
        if seq % 20 == 0:
            parts.append(": ping\n\n")
    return "".join(parts).encode()


def bench_sse(events: int, chunk_sizes: Sequence[int], repeats: int) -> list[dict[str, Any]]:
    from bkbn_pipelines.client._sse import SSEDecoder

    body = synthetic_stream(events)
    rows = []
    for chunk in chunk_sizes:
        chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)]
        counted = []

        def parse(chunks: list[bytes] = chunks, counted: list[int] = counted) -> None:
            decoder = SSEDecoder()
            n = 0
            for piece in chunks:
                n += len(decoder.feed(piece))
            n += len(decoder.close())
            counted.append(n)

        times = timed(parse, repeats)
        if counted[-1] != events:
            raise RuntimeError(f"the parser found {counted[-1]} events, expected {events}")
        median = statistics.median(times)
        rows.append(
            {
                "chunk_bytes": chunk,
                "events": events,
                "megabytes": len(body) / 1e6,
                "repeats": repeats,
                "median_s": median,
                "events_per_s": events / median,
                "mb_per_s": len(body) / 1e6 / median,
            }
        )
        print(f"  sse chunks of {chunk} B: {events / median:,.0f} events/s", file=sys.stderr)
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke size: a second or two")
    parser.add_argument("--repeats", type=int, help="timed repeats per case (default 5)")
    parser.add_argument("--events", type=int, help="events in the SSE stream (default 200000)")
    parser.add_argument("--out-dir", help="where to write the results (default results/)")
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = args.repeats or (1 if quick else 5)
    events = args.events or (2_000 if quick else 200_000)

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    images = bench_images(QUICK_SIZES if quick else SIZES, repeats)
    sse = bench_sse(events, (64, 4096, 65536), 1 if quick else 3)
    result = {
        "quick": quick,
        "device": device,
        "gpu_note": "relight and palette are numpy/PIL code: they run on the CPU only",
        "images": images,
        "sse": sse,
    }
    markdown = (
        "Relight and palette (CPU; both graphs are numpy and PIL code without a GPU path):\n\n"
        + markdown_table(
            images,
            [
                ("case", "case"),
                ("size", "photo"),
                ("median_s", "median s"),
                ("mp_per_s", "MP/s"),
                ("repeats", "repeats"),
            ],
        )
        + f"\n\nStream parser, {events:,} events"
        f" ({sse[0]['megabytes']:.1f} MB with heartbeats):\n\n"
        + markdown_table(
            sse,
            [
                ("chunk_bytes", "chunk bytes"),
                ("median_s", "median s"),
                ("events_per_s", "events/s"),
                ("mb_per_s", "MB/s"),
            ],
        )
        + "\n"
    )
    path = write_results(NAME, result, markdown, args.out_dir)
    print(markdown)
    print(f"written {path}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
