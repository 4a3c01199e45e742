"""The ``bkbn`` command line: ``run``, ``emulator``, ``nightly``, ``demo``.

Each subcommand lives beside the code it drives (``client/_cli.py``,
``emulator/_cli.py``, ``jobs/_cli.py``); this module only builds the parser and
dispatches.  Exit codes: 0 success, 2 usage error, 3 API error, 4 network error,
5 a run or job failed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ._logging import configure_from_env

__all__ = ["EXIT_API", "EXIT_FAILED", "EXIT_NETWORK", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_API = 3
EXIT_NETWORK = 4
EXIT_FAILED = 5

#: subcommand -> module that defines ``add_arguments(parser)`` and ``run(args) -> int``
_COMMANDS = {
    "run": ("bkbn_pipelines.client._cli", "Run a graph through the api or local backend."),
    "emulator": ("bkbn_pipelines.emulator._cli", "Serve the Backbone Lab API locally."),
    "nightly": ("bkbn_pipelines.jobs._cli", "Run nightly catalogue processing."),
    "demo": ("bkbn_pipelines.jobs._cli_demo", "Run the nightly job on the bundled examples."),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bkbn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in _COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    configure_from_env()
    args = _parser().parse_args(argv)
    try:
        return int(args._module.run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
