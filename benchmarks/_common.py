"""Shared helpers of the benchmarks: results files, machine facts, sample data."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": _cpu_model() or platform.processor(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine
    }
    from importlib import metadata

    for package in ("torch", "dagster"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    torch = sys.modules.get("torch")  # never imported just for this: it takes seconds
    if torch is not None and torch.cuda.is_available():
        info["cuda"] = torch.cuda.get_device_name(0)
    return info


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation; ``None`` when empty."""
    data = sorted(values)
    if not data:
        return None
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return data[low] + (data[high] - data[low]) * (pos - low)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 0.01:
            return f"{value:.3f}"
        return f"{value:.2e}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A markdown table of ``rows``; ``columns`` are ``(key, heading)`` pairs."""
    lines = [
        "| " + " | ".join(h for _, h in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(k)) for k, _ in columns) + " |")
    return "\n".join(lines)


def write_results(
    name: str, result: dict[str, Any], markdown: str, out_dir: Path | str | None = None
) -> Path:
    """Write ``<name>.json`` and ``<name>.md`` under ``out_dir``; returns the JSON path."""
    folder = Path(out_dir) if out_dir is not None else RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **result,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")
    header = f"# {name}\n\nMeasured {result['measured_at']} on {result['machine']['cpus']} CPUs "
    header += f"({result['machine']['processor']}), Python {result['machine']['python']}.\n\n"
    (folder / f"{name}.md").write_text(header + markdown.rstrip() + "\n")
    return path


def sample_jpeg(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small real JPEG with some structure, different per ``seed``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    base = rng.integers(40, 215, size=3)
    ys, xs = np.mgrid[0:height, 0:width]
    pixels = np.empty((height, width, 3), dtype=np.float32)
    for channel in range(3):
        pixels[..., channel] = base[channel] + 30 * np.sin(xs / (5 + channel) + ys / 7)
    pixels += rng.normal(0, 6, size=pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


CATALOGUE_COLUMNS = (
    "listing_id",
    "address",
    "city",
    "price",
    "currency",
    "beds",
    "baths",
    "area_m2",
    "style",
    "photos",
    "capture",
    "updated_at",
)


def write_catalogue(
    folder: Path, listings: int, photos: int, *, size: tuple[int, int] = (64, 48)
) -> Path:
    """A catalogue CSV of ``listings`` listings with ``photos`` generated photos each."""
    photo_dir = folder / "photos"
    photo_dir.mkdir(parents=True, exist_ok=True)
    from bkbn_pipelines._contract import STYLES as styles

    path = folder / "catalogue.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CATALOGUE_COLUMNS)
        writer.writeheader()
        for index in range(listings):
            names = []
            for number in range(photos):
                name = f"l{index:05d}-{number}.jpg"
                (photo_dir / name).write_bytes(sample_jpeg(index * 100 + number, size))
                names.append(f"photos/{name}")
            writer.writerow(
                {
                    "listing_id": f"BENCH-{index:05d}",
                    "address": f"{index + 1} Benchmark Road",
                    "city": "Testville",
                    "price": 250_000 + 1000 * index,
                    "currency": "EUR",
                    "beds": 1 + index % 4,
                    "baths": 1 + index % 2,
                    "area_m2": 40 + index % 90,
                    "style": styles[index % len(styles)],
                    "photos": ";".join(names),
                    "capture": "",
                    "updated_at": "2026-12-01T08:00:00Z",
                }
            )
    return path


@contextmanager
def serve_app(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port in a thread."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=0.5)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="bench-emulator", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the emulator did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def quiet_dagster() -> None:
    """Silence Dagster's preview warnings and its per-event console logging."""
    import logging
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    for name in ("dagster", "dagster.builtin"):
        logging.getLogger(name).setLevel(logging.ERROR)
