"""Run every benchmark in turn (``make bench``); ``--quick`` runs the smoke sizes.

Each benchmark runs in its own interpreter, so one's imports, caches and threads do
not weigh on the next.  Results go to ``benchmarks/results/`` (or ``--out-dir``).

    python -m benchmarks.run_all
    python -m benchmarks.run_all --quick --out-dir /some/folder
    python -m benchmarks.run_all --only local_runtime memory
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import BENCHMARKS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="these benchmarks only")
    parser.add_argument("--out-dir", help="where to write the results (default results/)")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    failed = []
    for name in args.only or BENCHMARKS:
        command = [sys.executable, "-m", f"benchmarks.{name}"]
        if args.quick:
            command.append("--quick")
        if args.out_dir:
            command += ["--out-dir", args.out_dir]
        print(f"== {name}", file=sys.stderr, flush=True)
        started = time.monotonic()
        code = subprocess.call(command, cwd=repo)
        print(f"== {name}: exit {code} in {time.monotonic() - started:.0f} s", file=sys.stderr)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
