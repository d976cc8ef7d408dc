"""Injected network faults: opt-in decisions, found, shrunk to the one that matters, told.

The scenarios are what users write: an asyncio streams server started inside the scenario
and clients using ``asyncio.open_connection``, unchanged. A fault is a decision (option 0,
no fault, is the stock behaviour), so with faults off nothing changes, and with faults on
the explorer finds the client that does not survive a reset and the retry that charges
twice, shrinks the schedule to the one fault the failure needs, and names it in the story.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import pytest

import explorer
from explorer import Corpus
from explorer._faults import (
    ALL,
    KINDS,
    NO_FAULT,
    Decider,
    describe,
    fault_at,
    fault_here,
    fault_kinds,
    spell,
)
from explorer._runtime import Candidate, PointView
from explorer._schedule import Schedule
from explorer._settings import Settings, SettingsError
from explorer.strategies import Strategy
from tests.conftest import cli_project, run_cli

PAYMENTS = ("payments.internal", 8443)
PAYMENTS_AT = "payments.internal:8443"  # how stories name the payment server
TIMEOUT = 5.0  # seconds of virtual time a client waits for an answer


# --------------------------------------------------------------------------- scenarios


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               line: bytes) -> bytes:
    writer.write(line)
    await writer.drain()
    return await reader.readline()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):  # a reset closes with the reset's error
        await writer.wait_closed()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]


class _Connections:
    """A server's connection callback that keeps each handler's task and writer, so the
    scenario can wait for the handlers and close every connection before it returns
    (else a handler may outlive it, a leaked task, or a connection stay open)."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._tasks: list[asyncio.Task[None]] = []
        self._writers: list[asyncio.StreamWriter] = []

    def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        self._tasks.append(asyncio.ensure_future(self._handler(reader, writer)))

    async def stop(self, server: asyncio.Server) -> None:
        """Close the server, wait for its handlers (Python 3.11's wait_closed does not),
        and close the connections whose handler never started."""
        server.close()
        await asyncio.gather(*self._tasks)
        for writer in self._writers:
            await _close(writer)


async def ping_without_reset_handling() -> None:
    """A client that assumes the connection never fails: a reset escapes as an error."""
    async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if await reader.readline():
                writer.write(b"pong\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            await _close(writer)

    server = await asyncio.start_server(connections := _Connections(pong), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert await _ask(reader, writer, b"ping\n") == b"pong\n"
    finally:
        await _close(writer)
        await connections.stop(server)


def payment_scenario(*, idempotent: bool) -> Callable[[], Coroutine[Any, Any, None]]:
    """A payment service and a client that retries a charge whose answer it did not get.

    Without an idempotency key, a response dropped after the server charged (or one that
    never comes, so the client's timeout fires) makes the client charge again: the
    customer pays twice. With a key, the server answers a repeated key from its record.
    """
    async def scenario() -> None:
        charges: list[str] = []
        seen: dict[str, bytes] = {}
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                request = await reader.readline()
                if request:
                    key = request.split()[1].decode()
                    if idempotent and key in seen:
                        writer.write(seen[key])
                    else:
                        charges.append(key)
                        seen[key] = f"charged {len(charges)}\n".encode()
                        writer.write(seen[key])
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                await _close(writer)

        server = await asyncio.start_server(connections := _Connections(handle), *PAYMENTS)
        paid = False
        for attempt in range(3):
            key = "order-7" if idempotent else f"attempt-{attempt}"
            try:
                reader, writer = await asyncio.open_connection(*PAYMENTS)
            except ConnectionError:
                continue
            try:
                async with asyncio.timeout(TIMEOUT):
                    answer = await _ask(reader, writer, f"charge {key} 30\n".encode())
                paid = answer.startswith(b"charged")
            except (ConnectionError, TimeoutError):
                pass
            finally:
                await _close(writer)
            if paid:
                break
        await connections.stop(server)
        assert len(charges) <= 1, f"the customer was charged {len(charges)} times"
        assert not paid or len(charges) == 1

    scenario.__qualname__ = "idempotent_payment" if idempotent else "retried_payment"
    return scenario


retried_payment = payment_scenario(idempotent=False)
idempotent_payment = payment_scenario(idempotent=True)


async def request_never_answered() -> None:
    """A client whose timeout is its only defence: it fires when the answer never comes."""
    async def slow_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if await reader.readline():
                writer.write(b"ok\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            await _close(writer)

    server = await asyncio.start_server(connections := _Connections(slow_ok), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"status\n")
        await writer.drain()
        await asyncio.wait_for(reader.readline(), TIMEOUT)
    finally:
        await _close(writer)
        await connections.stop(server)


def _fault_steps(trace: explorer.Trace | None) -> list[explorer.Step]:
    """The faults injected in a run (fault points where none was are steps too)."""
    assert trace is not None
    return [step for step in trace.steps if step.kind == "fault" and step.deviated]


# --------------------------------------------------------------------------- found


def test_a_client_that_does_not_handle_a_reset_fails_with_faults_only() -> None:
    quiet = explorer.explore(ping_without_reset_handling, max_schedules=200, seed=3)
    assert quiet.ok and quiet.schedules == 200

    with pytest.raises(explorer.ScheduleFailure) as caught:
        explorer.explore(ping_without_reset_handling, faults=True, max_schedules=2000, seed=3)
    failure = caught.value
    assert failure.outcome.kind == "exception"
    assert failure.outcome.exc_type in ("ConnectionResetError", "ConnectionRefusedError",
                                        "IncompleteReadError")
    assert failure.schedule.faults == ALL and failure.deviations == 1
    [fault] = _fault_steps(failure.trace)
    assert fault.operation in ("refused", "reset", "dropped")
    assert f": {describe(fault.operation, '127.0.0.1:40000')}" in str(failure)


def test_a_retry_without_idempotency_charges_twice_and_the_story_names_the_fault() -> None:
    with pytest.raises(explorer.ScheduleFailure) as caught:
        explorer.explore(retried_payment, faults=True, max_schedules=2000, seed=5)
    failure = caught.value
    assert failure.outcome.kind == "assertion"
    assert "charged 2 times" in str(failure)
    # Shrunk to the one fault the double charge needs: the answer to the first charge
    # is lost after the server charged, dropped or never coming.
    # The fault is the one decision made on purpose (one detour); the other deviations
    # only keep each task going where the stock order would rotate.
    assert failure.shrink is not None and failure.shrink.detours == 1
    [fault] = _fault_steps(failure.trace)
    assert fault.operation in ("dropped", "unanswered")
    assert fault.resource == PAYMENTS_AT
    story = str(failure)
    assert "fault injected in the network: " + describe(fault.operation, PAYMENTS_AT) in story
    assert str(failure.schedule).startswith("v1+faults:")


def test_the_idempotency_key_passes_300_default_schedules_with_faults() -> None:
    result = explorer.explore(idempotent_payment, faults=True, max_schedules=300, seed=5)
    assert result.ok and result.schedules == 300


def test_the_idempotency_key_passes_every_schedule_within_two_deviations() -> None:
    result = explorer.explore(idempotent_payment, faults=True, strategy="systematic",
                              deviation_bound=2, max_schedules=100_000)
    assert result.ok and result.exhausted
    assert "at most 2 deviation" in result.coverage


def test_a_response_that_never_comes_fires_the_callers_timeout() -> None:
    result = explorer.explore(request_never_answered, faults={"unanswered"},
                              max_schedules=500, seed=1, raise_on_failure=False)
    failure = result.failure
    assert failure is not None and failure.outcome.exc_type == "TimeoutError"
    [fault] = _fault_steps(failure.trace)
    assert fault.operation == "unanswered"
    assert failure.trace is not None and failure.trace.steps[-1].time == TIMEOUT
    assert "the response from 127.0.0.1:40000 never came" in str(failure)
    assert str(failure.schedule).startswith("v1+faults=unanswered:")


# --------------------------------------------------------------------------- shrinking


class _ManyFaults(Strategy):
    """One run that refuses the first connection and drops every answer: three faults
    where the double charge needs one."""

    name = "many-faults"

    def __init__(self) -> None:
        self._ran = False
        self._connects = 0

    def start_run(self) -> bool:
        ran, self._ran = self._ran, True
        return not ran

    def choose(self, count: int, view: PointView) -> int:
        first = view.candidate(0)
        if first.kind != "fault":
            return 0
        operations = [view.candidate(i).operation for i in range(count)]
        if "refused" in operations:
            self._connects += 1
            return operations.index("refused") if self._connects == 1 else 0
        return operations.index("dropped") if "dropped" in operations else 0


def test_shrinking_keeps_only_the_fault_the_failure_needs() -> None:
    result = explorer.explore(retried_payment, strategy=_ManyFaults(), faults=True,
                              max_schedules=1, raise_on_failure=False)
    failure = result.failure
    assert failure is not None and failure.shrink is not None
    assert failure.shrink.original_deviations == 3
    assert failure.shrink.detours == 1  # the fault, and nothing else chosen on purpose
    # One fault is left: a dropped or a never-coming answer, whichever runs fewer steps.
    [fault] = _fault_steps(failure.trace)
    assert fault.operation in ("dropped", "unanswered")


# --------------------------------------------------------------------------- replay


def test_a_faults_schedule_replays_the_same_run() -> None:
    result = explorer.explore(retried_payment, faults=True, max_schedules=2000, seed=5,
                              raise_on_failure=False)
    failure = result.failure
    assert failure is not None and failure.trace is not None
    again = explorer.run(retried_payment, schedule=str(failure.schedule))
    assert again.outcome.kind == "assertion"
    assert again.schedule == failure.schedule
    assert again.trace.hash() == failure.trace.hash()
    with pytest.raises(explorer.ScheduleFailure):
        explorer.replay(retried_payment, str(failure.schedule))


def test_a_corpus_entry_with_faults_replays_strictly(tmp_path: Path) -> None:
    result = explorer.explore(retried_payment, faults=True, max_schedules=2000, seed=5,
                              raise_on_failure=False, corpus=tmp_path)
    assert result.failure is not None
    [report] = explorer.replay_corpus(tmp_path, scenarios={
        result.failure.scenario: retried_payment})
    assert report.status == "fails", report
    [entry] = Corpus(tmp_path).entries()
    assert not isinstance(entry, Exception)
    assert "fault" in entry.expected_tasks().values()  # the fault's point expects a fault


def test_schedules_without_the_flag_read_and_print_as_before() -> None:
    for text in ("v1:", "v1:3=1,7=2", "v1+timers:3=1"):
        schedule = Schedule.parse(text)
        assert schedule.faults == frozenset() and str(schedule) == text
    assert Schedule.parse("v1+timers+faults:2=1") == Schedule(((2, 1),), True, ALL)
    selected = Schedule.parse("v1+faults=dropped.reset:4=2")
    assert selected.faults == {"reset", "dropped"}
    assert str(selected) == "v1+faults=reset.dropped:4=2"  # the kinds in their order
    for bad in ("v1+faults=lost:1=1", "v1+faults+faults:1=1", "v1+faultsy:1=1"):
        with pytest.raises(explorer.InvalidScheduleError):
            Schedule.parse(bad)


def test_with_faults_off_no_fault_site_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("a fault site asked for a decision with faults off")

    monkeypatch.setattr("explorer._asyncio._network.fault_at", refuse)
    result = explorer.explore(retried_payment, max_schedules=100, seed=2)
    assert result.ok
    stock = explorer.run(retried_payment)
    assert str(stock.schedule) == "v1:" and stock.passed


def test_the_stock_schedule_with_faults_on_injects_none() -> None:
    stock = explorer.run(retried_payment, schedule="v1+faults:")
    assert stock.passed and _fault_steps(stock.trace) == []
    plain = explorer.run(retried_payment)
    # Every fault point adds one decision, all at 0, and one step to the trace, so the
    # trace's decisions count the scheduling points as the schedule does; the work that
    # ran is the same.
    points = [s for s in stock.trace.steps if s.kind == "fault"]
    assert points and all(s.operation == NO_FAULT for s in points)
    assert len(stock.decisions) == len(plain.decisions) + len(points)
    assert sum(1 for s in stock.trace.steps if s.decision) == len(stock.decisions)
    assert [s.operation for s in stock.trace.steps if s.kind != "fault"] == \
        [s.operation for s in plain.trace.steps]


class _FaultPoints(Strategy):
    """The stock schedule, noting at which scheduling points faults were offered."""

    name = "fault-points"

    def __init__(self) -> None:
        self.points: list[int] = []
        self._point = 0
        self._ran = False

    def start_run(self) -> bool:
        ran, self._ran = self._ran, True
        return not ran

    def choose(self, count: int, view: PointView) -> int:
        if view.candidate(0).kind == "fault":
            self.points.append(self._point)
        self._point += 1
        return 0


def test_a_diverging_replay_at_a_fault_point_is_not_raised_into_the_scenario() -> None:
    async def swallowing() -> None:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            await _close(writer)
        except Exception:  # noqa: BLE001 - the scenario catches everything it can
            pass
        server.close()

    spy = _FaultPoints()
    assert explorer.explore(swallowing, strategy=spy, faults={"refused"}, max_schedules=1).ok
    [connect] = spy.points  # one connection attempt: one fault point
    with pytest.raises(explorer.ReplayDivergence, match="only 2 candidate"):
        explorer.run(swallowing, schedule=f"v1+faults=refused:{connect}=7")


# --------------------------------------------------------------------------- strategies


@pytest.mark.parametrize("name", ["random", "pct", "pos", "surw", "symmetric", "coverage",
                                  "portfolio", "systematic"])
def test_every_sampling_strategy_decides_fault_points(name: str) -> None:
    result = explorer.explore(retried_payment, strategy=name, faults=True, seed=11,
                              max_schedules=2000, raise_on_failure=False)
    assert result.failure is not None, f"{name} found no double charge in 2,000 schedules"
    assert _fault_steps(result.failure.trace)


def test_dpor_refuses_faults_with_the_reason() -> None:
    with pytest.raises(explorer.UsageError, match="dpor strategy records footprints"):
        explorer.explore(retried_payment, strategy="dpor", faults=True, max_schedules=5)


# --------------------------------------------------------------------------- the parts


class _FakeDecider:
    def __init__(self, faults: frozenset[str], answer: int) -> None:
        self.faults = faults
        self.answer = answer
        self.asked: list[list[str | None]] = []

    def decide(self, options: Sequence[Candidate]) -> int:
        self.asked.append([option.operation for option in options])
        return self.answer


def test_a_site_offers_no_fault_first_then_its_enabled_kinds() -> None:
    decider = _FakeDecider(ALL, 2)
    assert isinstance(decider, Decider)
    assert fault_at(decider, "respond", "db:1") == "unanswered"
    assert decider.asked == [[NO_FAULT, "dropped", "unanswered"]]
    only = _FakeDecider(frozenset({"unanswered"}), 1)
    assert fault_at(only, "respond", "db:1") == "unanswered"
    assert fault_at(only, "connect", "db:1") is None  # not enabled: no decision at all
    assert only.asked == [[NO_FAULT, "unanswered"]]
    assert fault_at(_FakeDecider(frozenset(), 1), "deliver", "db:1") is None
    assert fault_here("connect", "db:1") is None  # outside any run


def test_the_faults_setting_takes_true_a_set_or_text() -> None:
    assert Settings().faults == frozenset()
    assert Settings(faults=True).faults == ALL  # type: ignore[arg-type]
    assert Settings.merged({"faults": "reset, dropped"}).faults == {"reset", "dropped"}
    assert Settings.merged({"faults": "none"}).faults == frozenset()
    assert fault_kinds(["refused"]) == {"refused"} and spell(ALL) == "all"
    sent = Settings(faults=frozenset({"reset"}))
    assert Settings.from_json(sent.to_json()) == sent
    with pytest.raises(SettingsError, match=r"unknown fault kind.*'lost'.*refused, reset"):
        Settings(faults={"lost"})  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="faults must be True, False or a selection"):
        Settings(faults=3)  # type: ignore[arg-type]
    assert set(KINDS) == ALL


def test_explore_keeps_a_profiles_faults_unless_given() -> None:
    settings = Settings(faults=True, max_schedules=50, seed=1)  # type: ignore[arg-type]
    result = explorer.explore(retried_payment, settings=settings, raise_on_failure=False)
    assert result.failure is not None  # the profile's faults were not reset to none
    quiet = explorer.explore(retried_payment, settings=settings, faults=False)
    assert quiet.ok


def test_trio_runs_decide_fault_points_too() -> None:
    trio = pytest.importorskip("trio")

    async def scenario() -> None:
        async def client(n: int) -> None:
            await trio.sleep(0)
            if fault_here("connect", f"db.internal:{5432 + n}") == "refused":
                raise ConnectionRefusedError(f"db.internal:{5432 + n}")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(client, 0)
            nursery.start_soon(client, 1)

    assert explorer.explore(scenario, runtime="trio", max_schedules=50, seed=1).ok
    result = explorer.explore(scenario, runtime="trio", faults={"refused"}, seed=1,
                              max_schedules=50, raise_on_failure=False)
    failure = result.failure
    # Shrunk to one fault and no switch: the refused client keeps going to its connect
    # (a deviation from trio's rotation, but no task set aside), then the fault.
    assert failure is not None and failure.switches == 0
    assert len(_fault_steps(failure.trace)) == 1
    assert "the connection to db.internal:5432 was refused" in str(failure) or \
        "the connection to db.internal:5433 was refused" in str(failure)
    again = explorer.run(scenario, schedule=str(failure.schedule), runtime="trio")
    assert failure.trace is not None and again.trace.hash() == failure.trace.hash()


def test_an_aiohttp_client_sees_a_response_dropped_after_the_withdrawal() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    from aiohttp import web

    withdrawn: list[int] = []

    async def scenario() -> None:
        withdrawn.clear()

        async def withdraw(request: web.Request) -> web.Response:
            withdrawn.append(10)
            return web.json_response({"balance": 100 - sum(withdrawn)})

        app = web.Application()
        app.router.add_post("/withdraw", withdraw)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session, \
                    session.post(f"http://127.0.0.1:{port}/withdraw") as response:
                assert (await response.json())["balance"] == 90
        finally:
            await runner.cleanup()

    result = explorer.explore(scenario, faults={"dropped"}, strategy="systematic",
                              deviation_bound=1, raise_on_failure=False)
    failure = result.failure
    assert failure is not None
    assert failure.outcome.exc_type == "aiohttp.client_exceptions.ClientOSError"
    assert withdrawn == [10]  # the failing replay: the server did withdraw
    assert "the response from 127.0.0.1:40000 was dropped after the server processed" \
        in str(failure)


_CLI_SCENARIO = '''
import asyncio


async def ping():
    async def pong(reader, writer):
        if await reader.readline():
            writer.write(b"pong\\n")
        writer.close()

    server = await asyncio.start_server(pong, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping\\n")
    assert await reader.readline() == b"pong\\n"
    writer.close()
    server.close()
'''


def test_the_command_line_takes_faults_and_keeps_them_in_the_corpus(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    from explorer import cli

    root, name = cli_project(tmp_path, monkeypatch, request, "faults_", _CLI_SCENARIO)
    code, _, err = run_cli(capsys, "explore", f"{name}:ping", "--faults", "lost")
    assert code == cli.USAGE and "--faults" in err and "'lost'" in err
    code, out, _ = run_cli(capsys, "explore", f"{name}:ping", "-s", "systematic",
                           "-d", "1", "--faults", "refused,reset")
    assert code == cli.FAILURES and "fault injected" in out
    [entry] = Corpus(root / "corpus").entries()
    assert not isinstance(entry, Exception)
    schedule = str(entry.schedule)
    assert schedule.startswith("v1+faults=refused.reset:")
    code, out, _ = run_cli(capsys, "replay", f"{name}:ping", schedule)
    assert code == cli.FAILURES and f"Schedule: {schedule}" in out
    code, out, _ = run_cli(capsys, "shrink", f"{name}:ping", schedule)
    assert code == cli.FAILURES and "fault injected" in out


# Hypothesis stops a run in the middle when its example runs out of data (a StopTest
# from a drawn decision); that run's connections are left open, and their StreamWriters
# warn when collected after the session's loop closed.
@pytest.mark.filterwarnings("ignore:Exception ignored in.*StreamWriter.__del__")
def test_hypothesis_schedules_draw_fault_decisions_too() -> None:
    pytest.importorskip("hypothesis")
    from hypothesis import given, settings

    from explorer.strategies.hypothesis import DrawnSchedule, schedules

    @given(schedule=schedules(faults={"dropped"}))
    @settings(max_examples=300, database=None, derandomize=True, deadline=None)
    def check(schedule: DrawnSchedule) -> None:
        explorer.replay(retried_payment, schedule)

    with pytest.raises(explorer.ScheduleFailure) as caught:
        check()
    assert str(caught.value.schedule).startswith("v1+faults=dropped:")
    assert [step.operation for step in _fault_steps(caught.value.trace)] == ["dropped"]
