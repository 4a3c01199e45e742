"""Benchmarks of bkbn_pipelines: scripts, not tests.

Each module runs as ``python -m benchmarks.<name>`` and writes
``benchmarks/results/<name>.json`` and ``.md``; ``python -m benchmarks.run_all`` (``make
bench``) runs them all.  ``--quick`` runs a small smoke size.  docs/performance.md holds
the results of one run and what limits each figure.
"""

BENCHMARKS = ("api_throughput", "orchestration_overhead", "local_runtime", "memory")
