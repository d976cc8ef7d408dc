"""Running one exploration in several places: worker processes, a Dask cluster, CI shards.

Three layers, each importing only the one before it:

- :mod:`._split`: how a strategy's work is shared among workers (by its
  :data:`~explorer.strategies.Splitting`), what one worker runs (:func:`run_partition`)
  and what it returns (:class:`PartResult`, plain data);
- :mod:`._executors`: where the parts run (:class:`SerialExecutor`,
  :class:`ProcessExecutor`, :class:`DaskExecutor`, chosen by :func:`executor_for`);
- :mod:`._job`: one target explored (:func:`explore_target`), the parts merged into a
  :class:`JobResult` that the command line and the nightly job present.

A shard (``--shard i/n`` in a CI matrix) runs exactly what worker ``i - 1`` of ``n``
would. The first failure stops the other workers; each worker shrinks its own failure,
and the coordinator replays the shrunk schedule to rebuild the full failure locally.
"""

from __future__ import annotations

from explorer._parallel._executors import (
    CONNECT_TIMEOUT,
    DaskExecutor,
    Executor,
    ProcessExecutor,
    ProgressCallback,
    SerialExecutor,
    executor_for,
)
from explorer._parallel._job import (
    JobResult,
    explore_target,
    job_settings,
    joint_coverage,
    rebuild_failure,
)
from explorer._parallel._split import (
    CHUNK,
    FoundFailure,
    Observed,
    Partition,
    PartResult,
    run_partition,
)
from explorer._settings import Settings

__all__ = ["CHUNK", "CONNECT_TIMEOUT", "DaskExecutor", "Executor", "FoundFailure", "JobResult",
           "Observed", "PartResult", "Partition", "ProcessExecutor", "ProgressCallback",
           "SerialExecutor", "Settings", "executor_for", "explore_target", "job_settings",
           "joint_coverage", "rebuild_failure", "run_partition"]
