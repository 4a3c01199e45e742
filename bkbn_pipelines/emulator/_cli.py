"""``bkbn emulator``: serve the Backbone Lab API on this machine."""

from __future__ import annotations

import argparse
import sys

from .._errors import BkbnError, ConfigError

__all__ = ["add_arguments", "run"]


def _port(text: str) -> int:
    """A TCP port number, or a usage error naming the bad value."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range 0-65535")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_port, default=8765, help="port to listen on (0-65535)")
    parser.add_argument("--config", metavar="FILE", help="YAML config (docs/emulator.md)")
    parser.add_argument(
        "--test-mode",
        action="store_true",
        help="enable the /_test endpoints and fault injection (never in production)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ._app import create_app
    from ._config import load_config

    try:
        config = load_config(args.config)
        if config.faults and not args.test_mode:
            print("error: the config sets faults; start with --test-mode", file=sys.stderr)
            return 2
        app = create_app(config, test_mode=args.test_mode)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BkbnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    mode = ", test mode" if args.test_mode else ""
    print(
        f"bkbn emulator on http://{args.host}:{args.port} (renderer: {config.renderer}{mode})",
        file=sys.stderr,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
