"""The runtime-neutral floor both runtimes stand on: the seam's run mode and statuses, the
one classification order, the active-run hook behind ``explorer.always``, source
locations and the wait-for graph."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable

import pytest

import explorer
from explorer import _outcome as oc
from explorer._asyncio import _loop
from explorer._classify import BrokenInvariant, classify_run
from explorer._errors import EscapeError, UsageError
from explorer._locations import (
    Location,
    caller_location,
    is_user_file,
    traceback_location,
    user_location,
)
from explorer._outcome import Outcome
from explorer._runtime import (
    InvariantSink,
    RunMode,
    RunRecord,
    RunStatus,
    active_run,
    finding,
)
from explorer._trace import Trace
from explorer._trio import _scheduler
from explorer._waitgraph import Wait, find_cycle, is_orphan, new_graph

RUNTIMES = ("asyncio", "trio")


# --------------------------------------------------------------------------- the seam


def test_both_runtimes_stop_with_the_seams_statuses() -> None:
    for status in ("DONE", "DEADLOCK", "STEP_BOUND", "ABORTED"):
        assert getattr(_loop, status) is RunStatus[status]
        assert getattr(_scheduler, status) is RunStatus[status]


def test_a_run_mode_is_frozen_and_checks_its_footprints() -> None:
    mode = RunMode(max_steps=10, footprints="declared")
    assert mode.recording and not RunMode(max_steps=10).recording
    assert not RunMode(max_steps=10, footprints="auto", traced=True).recording
    with pytest.raises(dataclasses.FrozenInstanceError):
        mode.max_steps = 11  # type: ignore[misc]
    with pytest.raises(UsageError, match=r"footprints='everything'.*'declared'"):
        RunMode(max_steps=10, footprints="everything")


def test_the_trace_of_an_untraced_run_is_refused_with_the_fix() -> None:
    record = RunRecord([], oc.PASSED)
    with pytest.raises(TypeError, match=r"RunMode\(\.\.\., traced=True\)"):
        record.traced()
    trace = Trace()
    assert RunRecord([], oc.PASSED, trace=trace).traced() is trace


# --------------------------------------------------------------------------- classification


class _Facts:
    """Every fact holds, until a test takes it away: the first left decides."""

    def __init__(self, status: RunStatus = RunStatus.DONE) -> None:
        self.status = status
        self.max_steps = 7
        self.trace: Trace | None = None
        self.escaped: EscapeError | None = EscapeError("escaped")
        self.broken: BrokenInvariant | None = ("v stays 0", None, None)
        self.error: Outcome | None = Outcome(oc.EXCEPTION, "main raised")
        self.leak: Outcome | None = Outcome(oc.LEAKED_TASK, "leaked")
        self.lost: Outcome | None = Outcome(oc.EXCEPTION, "nobody retrieved it")

    def escape(self) -> EscapeError | None:
        return self.escaped

    def broken_invariant(self) -> BrokenInvariant | None:
        return self.broken

    def aborted(self) -> Outcome:
        return Outcome(oc.EXCEPTION, "a callback failed")

    def deadlock(self) -> Outcome:
        return Outcome(oc.DEADLOCK, "deadlock")

    def still_running(self) -> list[str]:
        return ["worker#1"]

    def scenario_error(self) -> Outcome | None:
        return self.error

    def leaked(self) -> Outcome | None:
        return self.leak

    def unretrieved(self) -> Outcome | None:
        return self.lost


def test_outcomes_are_classified_in_one_order() -> None:
    facts = _Facts()
    order: list[tuple[str, Callable[[], None]]] = [
        ("escape", lambda: setattr(facts, "escaped", None)),
        ("invariant violated", lambda: setattr(facts, "broken", None)),
        ("main raised", lambda: setattr(facts, "error", None)),
        ("leaked", lambda: setattr(facts, "leak", None)),
        ("nobody retrieved it", lambda: setattr(facts, "lost", None)),
    ]
    for expected, take_away in order:
        assert expected in classify_run(facts).message
        take_away()
    assert classify_run(facts) is oc.PASSED


@pytest.mark.parametrize(("status", "kind", "text"), [
    (RunStatus.ABORTED, oc.EXCEPTION, "a callback failed"),
    (RunStatus.DEADLOCK, oc.DEADLOCK, "deadlock"),
    (RunStatus.STEP_BOUND, oc.LIVELOCK, "tasks still running: worker#1"),
])
def test_a_stopped_run_is_classified_by_why_it_stopped(status: RunStatus, kind: str,
                                                       text: str) -> None:
    facts = _Facts(status)
    assert classify_run(facts).kind == oc.ESCAPE  # an escape explains what followed it
    facts.escaped = None
    assert classify_run(facts).kind == oc.ASSERTION  # then a broken invariant
    facts.broken = None
    outcome = classify_run(facts)
    assert outcome.kind == kind and text in outcome.message


def _swallowed_escape_then_deadlock(runtime: str) -> Callable[[], object]:
    if runtime == "trio":
        import trio

        async def trio_scenario() -> None:
            with contextlib.suppress(EscapeError):
                time.sleep(0.001)  # refused: the run records an escape
            await trio.Event().wait()  # nothing will ever set it

        return trio_scenario

    async def asyncio_scenario() -> None:
        with contextlib.suppress(EscapeError):
            time.sleep(0.001)
        await asyncio.Event().wait()

    return asyncio_scenario


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_an_escape_the_scenario_swallowed_outranks_the_deadlock_it_led_to(
        runtime: str) -> None:
    result = explorer.run(_swallowed_escape_then_deadlock(runtime), runtime=runtime)
    assert result.outcome.kind == oc.ESCAPE
    assert "time.sleep" in result.outcome.message


# --------------------------------------------------------------------------- explorer.always


class _Sink:
    def __init__(self) -> None:
        self.added: list[str] = []

    def add_invariant(self, predicate: Callable[[], object], message: str,
                      where: Location | None) -> None:
        self.added.append(message)


def test_the_active_run_is_found_through_the_registered_finders() -> None:
    assert active_run() is None
    outer, inner = _Sink(), _Sink()
    with finding(lambda: outer):
        assert active_run() is outer
        with finding(lambda: None):  # a session with no run in progress
            assert active_run() is outer
        with finding(lambda: inner):
            explorer.always(lambda: True, "holds")
    assert inner.added == ["holds"] and outer.added == []
    assert active_run() is None
    with pytest.raises(UsageError, match="outside a controlled run"):
        explorer.always(lambda: True)


def test_the_sink_protocol_is_what_both_runtimes_offer() -> None:
    sinks: list[type[InvariantSink]] = [_loop.ControlledLoop, _scheduler.Scheduler]
    assert all(callable(getattr(sink, "add_invariant", None)) for sink in sinks)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_always_catches_a_lost_update_through_anyio_on_both_runtimes(runtime: str) -> None:
    anyio = pytest.importorskip("anyio")

    async def transfer_twice() -> None:
        account = {"balance": 100, "moved": 0}
        explorer.always(lambda: account["balance"] + account["moved"] == 100,
                        "money is neither created nor lost")

        async def move(amount: int) -> None:
            balance = account["balance"]
            await anyio.sleep(0)  # another transfer may run here
            account["balance"] = balance - amount
            account["moved"] += amount

        async with anyio.create_task_group() as group:
            group.start_soon(move, 10)
            group.start_soon(move, 20)

    result = explorer.explore(transfer_twice, runtime=runtime, strategy="random", seed=3,
                              max_schedules=200, raise_on_failure=False)
    assert result.failure is not None and result.failure.kind == oc.ASSERTION
    assert "money is neither created nor lost" in result.failure.outcome.message


# --------------------------------------------------------------------------- locations


def _raise_here() -> None:
    asyncio.get_event_loop_policy()  # a library frame above this one on the way down
    raise ValueError("here")


def test_locations_point_at_user_code() -> None:
    assert is_user_file(__file__)
    assert not is_user_file(asyncio.__file__)
    assert not is_user_file(explorer.__file__)
    here = caller_location()
    assert here is not None and here.filename == __file__
    assert here.function.endswith("test_locations_point_at_user_code")
    with pytest.raises(ValueError, match="here") as caught:
        _raise_here()
    raised = traceback_location(caught.value)
    assert raised is not None and raised.function == "_raise_here"
    assert user_location([]) is None


# --------------------------------------------------------------------------- wait-for graph


def test_the_wait_graph_finds_the_cycle_from_the_smallest_task_and_the_orphans() -> None:
    graph = new_graph()
    for task in ("b", "a", "c"):
        graph.add_node(task, kind="task")
    for name in ("Lock#1", "Lock#2", "Event#1"):
        graph.add_node(name, kind="resource")
    graph.add_edge("b", "Lock#1", label="acquire")
    graph.add_edge("Lock#1", "a", label="held by")
    graph.add_edge("a", "Lock#2", label="acquire")
    graph.add_edge("Lock#2", "b", label="held by")
    graph.add_edge("c", "Event#1", label="wait")
    assert find_cycle(graph) == ["a", "b"]
    assert is_orphan(graph, Wait("c", "Event.wait", "Event#1", None))
    assert not is_orphan(graph, Wait("a", "Lock.acquire", "Lock#2", None))
    assert not is_orphan(graph, Wait("c", "sleep", None, None))
