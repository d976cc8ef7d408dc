"""A self-test of the private trio internals the trio runtime relies on.

The runtime replaces ``Runner.runq`` and drives ``unrolled_run`` itself, so it depends on
how trio's loop takes its batch (``list(runner.runq)`` then ``runner.runq.clear()``), on
``setup_runner``, on a few Task fields (``_counter``, ``_ki_protected``,
``_schedule_points``), on the ``Deadlines`` and ``GLOBAL_RUN_CONTEXT`` objects, on the
run variables behind ``trio.socket``'s custom socket factory and resolver (set in a
runner's ``_locals`` before its run starts, for the simulated network), and on the
primitive operations partial-order reduction records. Most of them are private: each is
checked once per process, at first use, and a change raises
:class:`~explorer.RuntimeSelfTestError` naming it and the trio version instead of letting
runs misbehave silently. A last check runs a two-task program and compares the order of
its steps with the decisions made.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

import trio

from explorer._errors import RuntimeSelfTestError
from explorer._runtime import RunMode

if TYPE_CHECKING:
    from explorer._runtime import Runtime

SUPPORTED = "trio 0.28 to 0.35"


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeSelfTestError(
            f"trio {trio.__version__} changed an internal the explorer's trio runtime "
            f"relies on: {what}. The explorer supports {SUPPORTED}; install a supported "
            "version (pip install 'trio>=0.28,<=0.35') or report this with your trio version."
        )


@functools.cache
def self_test(runtime: type[Runtime]) -> None:
    """Raise :class:`RuntimeSelfTestError` if a trio internal we depend on changed.

    ``runtime`` is the trio runtime class (passed in: this module sits below it); its
    runs are checked last, on a two-task program."""
    from trio._core import _run

    for name in ("setup_runner", "unrolled_run", "GLOBAL_RUN_CONTEXT", "Runner", "Task"):
        _require(hasattr(_run, name), f"trio._core._run.{name} is missing")
    params = list(inspect.signature(_run.setup_runner).parameters)
    _require(params[:2] == ["clock", "instruments"] and len(params) == 4,
             f"setup_runner takes {params}")
    params = list(inspect.signature(_run.unrolled_run).parameters)
    _require(params[:3] == ["runner", "async_fn", "args"], f"unrolled_run takes {params}")
    source = inspect.getsource(_run.unrolled_run)
    for line in ("batch = list(runner.runq)", "runner.runq.clear()",
                 "runner.deadlines.expire(now)", "events = yield timeout"):
        _require(line in source, f"unrolled_run no longer contains {line!r}")
    fields = {f.name for f in _fields(_run.Task)}
    for name in ("_counter", "_ki_protected", "_schedule_points", "coro",
                 "_parent_nursery"):
        _require(name in fields, f"trio.lowlevel.Task has no field {name}")
    fields = {f.name for f in _fields(_run.Runner)}
    for name in ("runq", "tasks", "deadlines", "main_task", "main_task_outcome",
                 "waiting_for_idle", "io_manager", "_locals"):
        _require(name in fields, f"trio's Runner has no field {name}")
    _check_socket_hooks()
    _require(hasattr(_run.Deadlines, "next_deadline"), "Deadlines.next_deadline is missing")
    _check_primitives()
    _check_scheduling(runtime)


def _check_primitives() -> None:
    """Every primitive operation that partial-order reduction records must exist."""
    from explorer._trio._footprints import _defining, _targets

    try:
        targets = _targets()
    except ImportError as exc:
        _require(False, f"a primitive's module moved: {exc}")
        return
    for cls, names, _target in targets:
        for name in names:
            try:
                _defining(cls, name)
            except AttributeError:
                _require(False, f"{cls.__name__}.{name} is missing")


def _check_socket_hooks() -> None:
    """The simulated network is installed as a run's custom socket factory and hostname
    resolver, through the run variables behind trio's ``set_custom_*`` functions."""
    from trio import _socket

    for name in ("_socket_factory", "_resolver"):
        _require(isinstance(getattr(_socket, name, None), trio.lowlevel.RunVar),
                 f"trio._socket.{name} is not the RunVar behind trio.socket's "
                 "set_custom_socket_factory/set_custom_hostname_resolver")


def _fields(cls: type) -> Any:
    import attrs

    return attrs.fields(cls)


def _check_scheduling(runtime_class: type[Runtime]) -> None:
    """Two tasks, three steps each: the chosen order must be the order that ran."""
    log: list[str] = []

    async def worker(name: str) -> None:
        for _ in range(3):
            log.append(name)
            await trio.lowlevel.checkpoint()

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker, "a")
            nursery.start_soon(worker, "b")

    def first(count: int, view: object) -> int:
        return 0

    def last(count: int, view: object) -> int:
        return count - 1

    runtime = runtime_class.__new__(runtime_class)  # skip __init__: it calls this test
    with runtime.session():
        for chooser, expected in ((first, "ababab"), (last, "bbbaaa")):
            log.clear()
            record = runtime.run(scenario, chooser, RunMode(max_steps=1000))
            _require(not record.outcome.failed,
                     f"a two-task program failed: {record.outcome.message}")
            _require("".join(log) == expected,
                     f"steps ran as {''.join(log)!r}, not as decided ({expected!r})")
