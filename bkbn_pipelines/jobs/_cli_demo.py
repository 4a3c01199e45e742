"""``bkbn demo``: the nightly run on the bundled ``examples/catalogue.csv``.

Stages with a tiny untrained model when no staging weights are configured (the run
says so, and those renders stay out of the brochures), so every step runs offline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import EXIT_USAGE
from ._cli import _common_arguments, run_with

__all__ = ["DEFAULT_CATALOGUE", "add_arguments", "run"]

DEFAULT_CATALOGUE = Path("examples") / "catalogue.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--catalogue",
        default=str(DEFAULT_CATALOGUE),
        help=f"Catalogue to run (default: {DEFAULT_CATALOGUE}).",
    )
    _common_arguments(parser)
    parser.set_defaults(allow_untrained=True)


def run(args: argparse.Namespace) -> int:
    catalogue = Path(args.catalogue)
    if not catalogue.exists():
        sys.stderr.write(f"error: {catalogue} not found; run `bkbn demo` in the project folder\n")
        return EXIT_USAGE
    return run_with(args, catalogue=str(catalogue))
