"""``bkbn run GRAPH --input PATH_OR_URL``: run one graph and write its outputs.

Progress goes to stderr (a plain text bar from ``render.progress``); with ``--json``
every event is a JSON line on stdout instead.  The primary output is written to
``--out`` (default: ``GRAPH-RUNID.EXT`` in the current folder), the other outputs
of the graph next to it as ``STEM.NAME.EXT``.  When ``--out``'s suffix is the
extension of one of the graph's outputs (``floor-plan --out plan.svg``), that output
is written there and the others beside it with their own extensions (``plan.json``,
``plan.dxf``).  The path of ``--out`` is printed last.  Exit codes: 2 usage, 3 API
error, 4 network error, 5 the run failed.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from .._errors import (
    APIConnectionError,
    APIError,
    BkbnError,
    ConfigError,
    GraphError,
    InvalidParamsError,
    MediaError,
    RunFailedError,
    UnknownGraphError,
)
from .._events import ErrorEvent, Event, NodeDone, NodeStart, RenderProgress, Result, RunStart

__all__ = ["add_arguments", "run"]

EXIT_OK, EXIT_USAGE, EXIT_API, EXIT_NETWORK, EXIT_FAILED = 0, 2, 3, 4, 5

_URL_SCHEMES = ("http://", "https://", "s3://", "data:")
_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "application/pdf": ".pdf",
    "text/html": ".html",
    "application/json": ".json",
    "image/svg+xml": ".svg",
    "image/vnd.dxf": ".dxf",
    "application/dxf": ".dxf",
    "application/zip": ".zip",
}
_PRIMARY = {"brochure": "pdf", "floor-plan": "plan"}


class UsageError(Exception):
    """A bad argument; exit code 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "graph",
        metavar="GRAPH",
        help="staging, relight, declutter, brochure, "
        "floor-plan, optionally with a version (staging-v2.4)",
    )
    parser.add_argument(
        "--input",
        dest="inputs",
        action="append",
        required=True,
        metavar="PATH_OR_URL",
        help="a file, or an https:, s3: or data: URL (api backend); repeat "
        "for the photos of a brochure",
    )
    parser.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a graph parameter; VALUE is read as JSON when it parses "
        "(true, 3, {...}), @FILE reads JSON from a file",
    )
    parser.add_argument("--out", type=Path, help="where to write the primary output")
    parser.add_argument(
        "--json",
        action="store_true",
        help="JSON lines of events on stdout instead of a progress bar",
    )
    parser.add_argument(
        "--backend",
        choices=("api", "local"),
        default="api",
        help="api (BKBN_API_KEY, BKBN_BASE_URL...) or local (in-process)",
    )
    parser.add_argument("--base-url", help="API base URL (default: BKBN_BASE_URL)")


def parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {item!r}: expected KEY=VALUE")
        if raw.startswith("@"):
            try:
                params[key] = json.loads(Path(raw[1:]).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise UsageError(
                    f"--param {key}: cannot read JSON from {raw[1:]!r}: {exc}"
                ) from None
            continue
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def _family(graph: str) -> str:
    base, sep, version = graph.rpartition("-v")
    return base if sep and version.replace(".", "").isdigit() else graph


def _input_file(path_text: str) -> Any:
    from ..backends import InputFile

    path = Path(path_text)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--input {path_text!r}: {exc.strerror or exc}") from None
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return InputFile(data=data, media_type=media_type, name=path.name)


class _Progress:
    """A plain text progress display on a stream (stderr)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.open_bar = False
        self.live = bool(getattr(out, "isatty", lambda: False)())
        self.last_quarter = -1

    def _end_bar(self) -> None:
        if self.open_bar:
            self.out.write("\n")
            self.open_bar = False

    def show(self, event: Event) -> None:
        if isinstance(event, RunStart):
            self.out.write(f"run {event.run_id} ({event.graph})\n")
        elif isinstance(event, NodeStart):
            self._end_bar()
            self.last_quarter = -1
        elif isinstance(event, NodeDone):
            self._end_bar()
            self.out.write(f"  {event.node:<24} {event.ms:>6} ms\n")
        elif isinstance(event, RenderProgress):
            width = 30
            done = int(width * event.step / max(event.total, 1))
            bar = "#" * done + "-" * (width - done)
            text = f"  render [{bar}] {event.step}/{event.total}"
            if self.live:  # a terminal: redraw one line
                self.out.write("\r" + text)
                self.open_bar = True
            else:  # a log: one line per quarter, so the log stays readable
                quarter = 4 * event.step // max(event.total, 1)
                if quarter != self.last_quarter:
                    self.last_quarter = quarter
                    self.out.write(text + "\n")
        elif isinstance(event, ErrorEvent):
            self._end_bar()
        self.out.flush()

    def close(self) -> None:
        self._end_bar()


def _event_json(event: Event) -> str:
    return json.dumps(
        {"event": event.type, "id": event.id, "data": event.to_data()}, ensure_ascii=False
    )


def _extension(name: str, media_type: str) -> str:
    if name in {"svg", "dxf", "pdf", "html"}:
        return "." + name
    return _EXTENSIONS.get(media_type) or mimetypes.guess_extension(media_type) or ".bin"


def _named_by_suffix(out: Path, extensions: Mapping[str, str]) -> str | None:
    """The one output whose extension is ``out``'s suffix (``plan.svg`` -> ``svg``)."""
    suffix = out.suffix.lower()
    named = [name for name, extension in extensions.items() if extension == suffix]
    return named[0] if len(named) == 1 else None


def _output_paths(
    out: Path, chosen: str, extensions: Mapping[str, str], *, own_suffixes: bool
) -> dict[str, Path]:
    """``chosen`` at ``out``, the other outputs beside it: as ``STEM.EXT`` with
    ``own_suffixes`` when no other output has that extension, else ``STEM.NAME.EXT``."""
    counts = Counter(extensions.values())
    paths: dict[str, Path] = {}
    for name, extension in extensions.items():
        if name == chosen:
            paths[name] = out
        elif own_suffixes and counts[extension] == 1:
            paths[name] = out.with_suffix(extension)
        else:
            paths[name] = out.with_name(f"{out.stem}.{name}{extension}")
    return paths


def write_outputs(
    graph: str,
    result: Result,
    outputs: Mapping[str, Any],
    out: Path | None,
    run_id: str | None = None,
) -> tuple[Path, dict[str, Path]]:
    """Write every output; returns the path of the one at ``out`` and all paths by name.

    When ``out``'s suffix is the extension of one output (``plan.svg``), that output
    goes to ``out`` and the others beside it with their own extensions (``plan.json``,
    ``plan.dxf``).  Otherwise the primary output goes to ``out`` and the others to
    ``STEM.NAME.EXT``.
    """
    if not outputs:
        raise APIError("the run succeeded but its result names no output file")
    extensions = {name: _extension(name, item.media_type) for name, item in outputs.items()}
    primary = _PRIMARY.get(_family(graph), "image")
    if primary not in outputs:
        primary = next(iter(outputs))
    if out is None:
        run_id = run_id or (result.id or "").rpartition(":")[0] or "result"
        out = Path(f"{_family(graph)}-{run_id}{extensions[primary]}")
    named = _named_by_suffix(out, extensions)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = _output_paths(out, named or primary, extensions, own_suffixes=named is not None)
    for name, path in written.items():
        path.write_bytes(outputs[name].data)
    return out, written


def _run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from ..backends import ApiBackend, GraphRequest, make_backend

    params = parse_params(args.params)
    settings: dict[str, Any] = {}
    if args.base_url and args.backend == "api":
        settings["base_url"] = args.base_url
    urls = [item for item in args.inputs if item.startswith(_URL_SCHEMES)]
    if urls and args.backend == "local":
        raise UsageError("--backend local takes files, not URLs, as --input")
    backend = make_backend(args.backend, **settings)
    progress = _Progress(stderr)
    try:
        if isinstance(backend, ApiBackend):
            inputs = [
                item if item.startswith(_URL_SCHEMES) else _data_uri_of(item)
                for item in args.inputs
            ]
            body = backend.body_for_urls(args.graph, inputs, params)
            events = backend.stream_body(args.graph, body)
        else:
            request = GraphRequest(
                graph=args.graph, inputs=[_input_file(p) for p in args.inputs], params=params
            )
            events = backend.stream(request)
        result: Result | None = None
        run_id: str | None = None
        for event in events:
            if isinstance(event, RunStart):
                run_id = event.run_id
            if args.json:
                stdout.write(_event_json(event) + "\n")
                stdout.flush()
            else:
                progress.show(event)
            if isinstance(event, ErrorEvent):
                progress.close()
                stderr.write(f"run failed: {event.error_type}: {event.message}\n")
                return EXIT_FAILED
            if isinstance(event, Result):
                result = event
        progress.close()
        if result is None:
            stderr.write("the run ended without a result\n")
            return EXIT_FAILED
        path, written = write_outputs(args.graph, result, backend.outputs(result), args.out, run_id)
        if result.data.get("weights") == "untrained":
            stderr.write(
                "WARNING: rendered WITHOUT real model weights, on an untrained model: the "
                "image is noise, not a staging. For real renders set BKBN_STAGING_MODEL to "
                "a diffusers inpainting model folder (docs/runtime.md).\n"
            )
        if args.json:
            record = {
                "event": "output",
                "path": str(path),
                "outputs": {k: str(v) for k, v in written.items()},
            }
            stdout.write(json.dumps(record) + "\n")
        else:
            stdout.write(f"{path}\n")
        return EXIT_OK
    finally:
        progress.close()
        backend.close()


def _data_uri_of(path_text: str) -> str:
    from ..backends._api import data_uri

    return data_uri(_input_file(path_text))


def run(args: argparse.Namespace) -> int:
    """Entry point of ``bkbn run``; returns the exit code."""
    stdout, stderr = sys.stdout, sys.stderr
    try:
        return _run(args, stdout, stderr)
    except (UsageError, ConfigError, InvalidParamsError, UnknownGraphError, MediaError) as exc:
        stderr.write(f"bkbn run: {exc}\n")
        return EXIT_USAGE
    except RunFailedError as exc:
        stderr.write(f"bkbn run: run failed: {exc}\n")
        return EXIT_FAILED
    except APIConnectionError as exc:
        stderr.write(f"bkbn run: network error: {exc}\n")
        return EXIT_NETWORK
    except APIError as exc:
        stderr.write(f"bkbn run: API error: {exc}\n")
        return EXIT_API
    except GraphError as exc:
        stderr.write(f"bkbn run: run failed: {exc}\n")
        return EXIT_FAILED
    except BkbnError as exc:
        stderr.write(f"bkbn run: {exc}\n")
        return EXIT_FAILED
