"""A run worker, as Dagster's run launcher starts one: execute one run of a job.

Usage: python run_job.py PYTHON_FILE JOB_FN PARTITION RUN_CONFIG_JSON
The instance is ``$DAGSTER_HOME``'s. Prints the run id and whether it succeeded.
"""

import json
import sys

from dagster import DagsterInstance, execute_job
from dagster._core.definitions.reconstruct import ReconstructableJob


def main() -> None:
    path, fn, partition, run_config = sys.argv[1:5]
    with DagsterInstance.get() as instance:
        result = execute_job(
            ReconstructableJob.for_file(path, fn),
            instance=instance,
            run_config=json.loads(run_config),
            tags={"dagster/partition": partition},
        )
        print(json.dumps({"run_id": result.run_id, "success": result.success}))


if __name__ == "__main__":
    main()
