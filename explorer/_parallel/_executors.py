"""Where the parts of one exploration run: this process, worker processes, a Dask cluster.

Invariant: an executor hands each part only plain data (the target reference and the
settings as JSON, the part's index and the count) and gets back a
:class:`~explorer._parallel._split.PartResult` per part, in index order. The first part to
report a failure stops the others (through a shared flag, a Dask event); a real Ctrl-C
stops them too, and is reported as :class:`~explorer.ExplorationInterrupted`.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import queue
import signal
import socket
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Final

from explorer._errors import ExplorerError, UsageError
from explorer._interrupts import ExplorationInterrupted
from explorer._parallel._split import POLL, JSONObject, Partition, PartResult, run_partition
from explorer._settings import Settings
from explorer._targets import TargetRef, add_paths

ProgressCallback = Callable[[int], None]
_STOP_GRACE: Final = 10.0  # seconds an interrupted worker gets to end its current run


class Executor(ABC):
    """Runs the parts of one exploration somewhere; :func:`explore_target` merges them."""

    count: int = 1
    shard: Partition | None = None

    @abstractmethod
    def run_parts(self, ref: TargetRef, settings: Settings,
                  on_schedules: ProgressCallback | None) -> list[PartResult]:
        """Run every part of the job; return the parts' results."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release workers or cluster connections."""

    def describe(self) -> str:
        return "in this process"

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Everything in this process; with a shard, only that shard's part."""

    def __init__(self, shard: Partition | None = None) -> None:
        self.shard = shard
        self.count = shard.count if shard else 1

    def run_parts(self, ref: TargetRef, settings: Settings,
                  on_schedules: ProgressCallback | None) -> list[PartResult]:
        index = self.shard.index if self.shard else 0
        return [run_partition(ref.to_json(), settings.to_json(), index, self.count,
                              on_schedules=on_schedules)]

    def describe(self) -> str:
        return f"shard {self.shard}" if self.shard else "in this process"


# Set in each worker process by the pool's initializer.
_STOP: Any = None
_PROGRESS: Any = None


def _init_process(stop: Any, progress: Any, paths: list[str]) -> None:
    global _STOP, _PROGRESS
    _STOP, _PROGRESS = stop, progress
    add_paths(paths)
    # A Ctrl-C in a terminal reaches the whole process group: the parent stops the workers
    # (through ``stop``), so they ignore it rather than die mid-run with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()


def _exit_with_parent() -> None:
    """End this worker as soon as its parent process is gone (killed, crashed): a pool
    worker waits for work forever otherwise, and outlives it."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="explorer-parent-watch").start()


def _process_task(ref: JSONObject, settings: JSONObject, index: int, count: int,
                  job: int) -> dict[str, object]:
    def report(n: int) -> None:
        with contextlib.suppress(Exception):  # progress is best effort
            _PROGRESS.put_nowait((job, n))

    return run_partition(ref, settings, index, count, on_schedules=report,
                         should_stop=lambda: bool(_STOP.value == job)).to_json()


class ProcessExecutor(Executor):
    """``count`` worker processes started with the ``spawn`` method, kept for many jobs."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise UsageError(f"--workers must be at least 1, got {count}")
        self.count = count
        context = multiprocessing.get_context("spawn")
        self._stop = context.Value("q", 0)
        self._progress = context.Queue()
        self._pool = ProcessPoolExecutor(count, mp_context=context,
                                         initializer=_init_process,
                                         initargs=(self._stop, self._progress,
                                                   list(sys.path)))
        self._job = 0
        self._schedules = 0  # reported by the workers in the current job
        self._interrupted = False

    def run_parts(self, ref: TargetRef, settings: Settings,
                  on_schedules: ProgressCallback | None) -> list[PartResult]:
        self._job += 1
        job = self._job
        futures = [self._pool.submit(_process_task, ref.to_json(), settings.to_json(), k,
                                     self.count, job) for k in range(self.count)]
        pending: set[Future[dict[str, object]]] = set(futures)
        self._schedules = 0
        start = time.perf_counter()
        try:
            while pending:
                done, pending = wait(pending, timeout=POLL, return_when=FIRST_COMPLETED)
                self._drain(job, on_schedules)
                for future in done:
                    if future.exception() is None and future.result()["failure"] is not None:
                        self._stop.value = job
        except KeyboardInterrupt:
            self._stop.value = job
            self._interrupted = True
            raise ExplorationInterrupted(
                f"interrupted after {self._schedules:,} schedule(s) of {ref.spec} in "
                f"{time.perf_counter() - start:.1f}s by {self.count} worker processes; "
                "a failure a worker was still shrinking is not reported") from None
        self._drain(job, on_schedules)
        return [PartResult.from_json(_result(f, k)) for k, f in enumerate(futures)]

    def _drain(self, job: int, on_schedules: ProgressCallback | None) -> None:
        while True:
            try:
                sender, n = self._progress.get_nowait()
            except queue.Empty:
                return
            if sender == job:
                self._schedules += n
                if on_schedules is not None:
                    on_schedules(n)

    def close(self) -> None:
        if not self._interrupted:
            self._pool.shutdown(wait=True, cancel_futures=True)
        else:
            # Interrupted: the workers were told to stop and finish their current run
            # (run_timeout bounds it); one stuck in a C call is terminated.
            # The pool keeps its processes private; there is no API to reach them.
            processes = list((self._pool._processes or {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.join(_STOP_GRACE)
                if process.is_alive():
                    process.terminate()
                    process.join(1.0)
        self._progress.close()
        self._progress.join_thread()

    def describe(self) -> str:
        return f"{self.count} worker processes"


def _result(future: Future[dict[str, object]], index: int) -> Mapping[str, object]:
    try:
        return future.result()
    except ExplorerError:
        raise
    except Exception as exc:
        raise ExplorerError(f"worker {index + 1} failed: {type(exc).__name__}: {exc}") from exc


def _distributed() -> Any:
    """The ``distributed`` package, untyped (it ships no annotations for mypy)."""
    return importlib.import_module("distributed")


CONNECT_TIMEOUT: Final = 2.5
"""Seconds for each of the TCP probe and the client's handshake with a Dask scheduler, so a
wrong address fails within 5 s. A scheduler answers within milliseconds, over a slow VPN
within a second: waiting longer (Dask's own default is 30 s) only delays the message about
a wrong address."""


def _check_address(cluster: str) -> str:
    """``cluster`` stripped, once it is a well-formed scheduler address; for a TCP or TLS
    address, once something accepts a connection there.

    Dask retries a refused connection until its timeout: probing first turns "nothing
    listens there" into an immediate error instead of a wait.
    """
    comm = importlib.import_module("distributed.comm")
    addressing = importlib.import_module("distributed.comm.addressing")
    known = sorted(importlib.import_module("distributed.comm.registry").backends)
    address = cluster.strip()
    example = "give the scheduler's address, for example --cluster tcp://scheduler:8786"
    if not address:
        raise UsageError(f"--cluster {cluster!r} is empty; {example}")
    scheme, location = comm.parse_address(address)
    if scheme not in known:
        raise UsageError(f"--cluster {cluster!r}: unknown address scheme {scheme!r} (Dask "
                         f"knows {', '.join(known)}); {example}")
    if scheme not in ("tcp", "tls"):
        return address
    try:
        host, port = addressing.parse_host_port(location, default_port=8786)
    except ValueError:
        host, port = "", 0
    if not host or not 0 < port < 65536:
        raise UsageError(f"--cluster {cluster!r} is not host:port (a port is 1 to 65535); "
                         f"{example}")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:  # refused, unknown host, unreachable, timed out
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise UsageError(f"cannot connect to the Dask scheduler at {address}: {reason}; "
                         "check the address and that the scheduler is running") from None
    return address


def _dask_task(ref: JSONObject, settings: JSONObject, index: int, count: int,
               stop: str) -> dict[str, object]:
    event = _distributed().Event(stop)
    return run_partition(ref, settings, index, count, should_stop=event.is_set).to_json()


class DaskExecutor(Executor):
    """The parts run as tasks on a Dask distributed cluster.

    ``cluster`` is a scheduler address (``tcp://host:8786``) or anything
    ``distributed.Client`` accepts (a ``LocalCluster``). Workers must be able to import the
    explorer and the target's module (install the project on them, or share the checkout
    at the same path). ``count`` defaults to the number of worker threads.
    """

    def __init__(self, cluster: Any, count: int | None = None) -> None:
        try:
            distributed = _distributed()
        except ImportError:
            raise UsageError("--cluster needs Dask: pip install 'explorer[cluster]'") from None
        if isinstance(cluster, str):
            cluster = _check_address(cluster)
        try:
            self._client: Any = distributed.Client(cluster, timeout=f"{CONNECT_TIMEOUT}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"cannot connect to the Dask scheduler at {cluster}: {exc}; "
                             "check the address and that the scheduler is running") from None
        threads = sum(int(w.get("nthreads", 1)) for w in
                      self._client.scheduler_info()["workers"].values())
        self.count = count or max(1, threads)
        self._address = str(cluster) if isinstance(cluster, str) else "a local cluster"

    def run_parts(self, ref: TargetRef, settings: Settings,
                  on_schedules: ProgressCallback | None) -> list[PartResult]:
        distributed = _distributed()
        stop = f"explorer-stop-{uuid.uuid4().hex}"
        event = distributed.Event(stop, client=self._client)
        futures = [self._client.submit(_dask_task, ref.to_json(), settings.to_json(), k,
                                       self.count, stop, pure=False, key=f"{stop}-{k}")
                   for k in range(self.count)]
        results: dict[int, PartResult] = {}
        try:
            for future in distributed.as_completed(futures):
                k = futures.index(future)
                try:
                    results[k] = PartResult.from_json(future.result())
                except ExplorerError:
                    raise
                except Exception as exc:
                    raise ExplorerError(f"cluster worker {k + 1} failed: "
                                        f"{type(exc).__name__}: {exc}") from exc
                if on_schedules is not None:
                    on_schedules(results[k].schedules)
                if results[k].failure is not None:
                    event.set()
        finally:
            self._client.cancel(futures)
        return [results[k] for k in range(self.count)]

    def close(self) -> None:
        self._client.close()

    def describe(self) -> str:
        return f"{self.count} tasks on the Dask cluster at {self._address}"


@contextlib.contextmanager
def executor_for(*, workers: int | None = None, cluster: Any = None,
                 shard: str | None = None) -> Iterator[Executor]:
    """The executor the command-line options ask for."""
    chosen = [name for name, value in (("--workers", workers), ("--cluster", cluster),
                                       ("--shard", shard)) if value is not None]
    if len(chosen) > 1 and not (chosen == ["--workers", "--cluster"]):
        raise UsageError(f"{' and '.join(chosen)} cannot be combined; a shard runs in one "
                         "process (use one CI job per shard)")
    executor: Executor
    if cluster is not None:  # an empty address is an error, not "no cluster"
        executor = DaskExecutor(cluster, workers)
    elif shard is not None:
        executor = SerialExecutor(Partition.parse_shard(shard))
    elif workers and workers > 1:
        executor = ProcessExecutor(workers)
    else:
        executor = SerialExecutor()
    with executor:
        yield executor
