"""Partial-order reduction with declared footprints over anyio's primitives.

anyio implements some primitives in Python with its own state (under asyncio: its lock,
semaphore and capacity limiter; under both backends: its condition and memory object
streams). The declared model must record their operations, or ``DPOR(footprints=
"declared")`` treats steps that race on them as independent and claims to have covered
every interleaving while it skipped some. Each program here is checked against exhaustive
search: the reduced search reaches every outcome the full one does, on both runtimes.
"""

from __future__ import annotations

import importlib
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectSendStream

import explorer
from explorer._patching import Patches, when_imported
from explorer.strategies import DPOR

Program = Callable[[list[Any]], Awaitable[None]]
RUNTIMES = ("asyncio", "trio")


def _journal() -> Any:
    """Declared state the programs log into: the order in which tasks got through."""
    return explorer.shared({"order": ()}, "journal")


def _log(journal: Any, entry: object) -> None:
    journal["order"] = (*journal["order"], entry)


async def lock_turns(out: list[Any]) -> None:
    journal = _journal()
    gate = anyio.Lock()

    async def clerk(name: str) -> None:
        async with gate:
            _log(journal, name)

    async with anyio.create_task_group() as group:
        for name in ("ann", "bo", "cy"):
            group.start_soon(clerk, name)
    out.append(journal["order"])


async def semaphore_turns(out: list[Any]) -> None:
    journal = _journal()
    permits = anyio.Semaphore(2)

    async def download(name: str) -> None:
        async with permits:
            await anyio.sleep(0)
            _log(journal, name)

    async with anyio.create_task_group() as group:
        for name in ("a.txt", "b.txt", "c.txt"):
            group.start_soon(download, name)
    out.append(journal["order"])


async def limiter_turns(out: list[Any]) -> None:
    journal = _journal()
    limiter = anyio.CapacityLimiter(1)

    async def query(name: str) -> None:
        async with limiter:
            _log(journal, name)

    async with anyio.create_task_group() as group:
        for name in ("select", "update", "delete"):
            group.start_soon(query, name)
    out.append(journal["order"])


async def condition_handoff(out: list[Any]) -> None:
    journal = _journal()
    ready = anyio.Condition()
    tickets: list[int] = []  # guarded by the condition's lock

    async def waiter(name: str) -> None:
        async with ready:
            await ready.wait_for(lambda: bool(tickets))
            _log(journal, (name, tickets.pop()))

    async def issuer() -> None:
        for ticket in (1, 2):
            async with ready:
                tickets.append(ticket)
                ready.notify()

    async with anyio.create_task_group() as group:
        group.start_soon(waiter, "left")
        group.start_soon(waiter, "right")
        group.start_soon(issuer)
    out.append(journal["order"])


async def stream_fan_in(out: list[Any]) -> None:
    send, receive = anyio.create_memory_object_stream[str](1)
    received: list[str] = []

    async def sensor(mine: MemoryObjectSendStream[str], reading: str) -> None:
        async with mine:
            await mine.send(reading)

    async def collector() -> None:
        async with receive:
            async for reading in receive:
                received.append(reading)

    async with anyio.create_task_group() as group:
        group.start_soon(collector)
        with send:  # each sensor closes its own clone; the stream ends after both
            group.start_soon(sensor, send.clone(), "temp")
            group.start_soon(sensor, send.clone(), "humidity")
    out.append(tuple(received))


async def stream_backlog(out: list[Any]) -> None:
    # Nobody waits: the items queue in the buffer, in the order of the sends.
    send, receive = anyio.create_memory_object_stream[str](3)

    async def enqueue(job: str) -> None:
        await send.send(job)

    async with anyio.create_task_group() as group:
        for job in ("resize", "thumbnail", "upload"):
            group.start_soon(enqueue, job)
    out.append(tuple(receive.receive_nowait() for _ in range(3)))
    send.close()
    receive.close()


PROGRAMS = (lock_turns, semaphore_turns, limiter_turns, condition_handoff, stream_fan_in,
            stream_backlog)


def _outcomes(program: Program, runtime: str,
              strategy: object) -> tuple[set[Any], explorer.ExploreResult]:
    out: list[Any] = []

    async def scenario() -> None:
        await program(out)

    result = explorer.explore(scenario, runtime=runtime,
                              strategy=strategy,  # type: ignore[arg-type]
                              max_schedules=20_000, raise_on_failure=False)
    return set(out), result


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_declared_reduction_reaches_every_outcome(program: Program, runtime: str) -> None:
    everything, full = _outcomes(program, runtime, "systematic")
    reduced, declared = _outcomes(program, runtime, DPOR(footprints="declared"))
    assert full.exhausted and declared.exhausted
    assert full.failure is None and declared.failure is None
    assert len(everything) > 1  # the outcome does depend on the schedule
    assert reduced == everything
    assert declared.schedules <= full.schedules


async def crossed_locks() -> None:
    """Two transfers take the same two locks in opposite orders; the second starts late,
    so the stock schedule passes and only a reordering of the acquisitions deadlocks."""
    source, target = anyio.Lock(), anyio.Lock()

    async def forward() -> None:
        async with source:
            await anyio.sleep(0)
            async with target:
                pass

    async def backward() -> None:
        for _ in range(4):
            await anyio.sleep(0)
        async with target:
            await anyio.sleep(0)
            async with source:
                pass

    async with anyio.create_task_group() as group:
        group.start_soon(forward)
        group.start_soon(backward)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_declared_reduction_finds_a_lock_order_deadlock(runtime: str) -> None:
    stock = explorer.explore(crossed_locks, runtime=runtime, strategy="systematic",
                             max_schedules=1, raise_on_failure=False)
    assert stock.failure is None  # only a reordering deadlocks
    result = explorer.explore(crossed_locks, runtime=runtime,
                              strategy=DPOR(footprints="declared"), max_schedules=5_000,
                              raise_on_failure=False)
    assert result.failure is not None
    assert result.failure.outcome.kind == "deadlock"


def test_declared_reduction_finds_a_deadlock_between_two_endpoints() -> None:
    # Through a real stack: Starlette handlers, called over httpx's ASGI transport, take
    # two anyio locks in opposite orders. Before anyio's lock was modelled, one schedule
    # was searched and reported as every interleaving.
    httpx = pytest.importorskip("httpx")
    applications = pytest.importorskip("starlette.applications")
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    locks: dict[str, anyio.Lock] = {}

    async def checkout(request: Request) -> PlainTextResponse:
        async with locks["cart"]:
            await anyio.sleep(0)
            async with locks["inventory"]:
                return PlainTextResponse("paid")

    async def restock(request: Request) -> PlainTextResponse:
        for _ in range(3):
            await anyio.sleep(0)
        async with locks["inventory"]:
            await anyio.sleep(0)
            async with locks["cart"]:
                return PlainTextResponse("stocked")

    app = applications.Starlette(routes=[Route("/checkout", checkout, methods=["POST"]),
                                         Route("/restock", restock, methods=["POST"])])

    async def scenario() -> None:
        locks["cart"], locks["inventory"] = anyio.Lock(), anyio.Lock()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client, \
                anyio.create_task_group() as group:
            group.start_soon(client.post, "/checkout")
            group.start_soon(client.post, "/restock")

    result = explorer.explore(scenario, strategy=DPOR(footprints="declared"),
                              max_schedules=2_000, raise_on_failure=False)
    assert result.failure is not None
    assert result.failure.outcome.kind == "deadlock"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_wrappers_last_for_the_session_only(runtime: str) -> None:
    from anyio._backends import _asyncio as backend

    def operations() -> tuple[object, ...]:
        return (backend.Lock.__dict__["acquire"], MemoryObjectSendStream.__dict__["send"],
                anyio.Condition.__dict__["notify"])

    before = operations()
    during: list[tuple[object, ...]] = []

    async def scenario() -> None:
        during.append(operations())

    explorer.explore(scenario, runtime=runtime, strategy=DPOR(footprints="declared"),
                     max_schedules=1, raise_on_failure=False)
    # anyio's trio backend wraps trio's lock (recorded as trio's): its asyncio backend's
    # lock is left alone under trio.
    wrapped = [now is not then for now, then in zip(during[0], before, strict=True)]
    assert wrapped == [runtime == "asyncio", True, True]
    assert operations() == before


def test_two_watchers_of_one_module_both_apply(tmp_path: pathlib.Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # The runtime's patches and the footprint recording both watch anyio's asyncio
    # backend: each watcher asks the other for the module's spec, which must not recurse.
    (tmp_path / "watched_twice.py").write_text("marks = []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    patches = Patches()
    try:
        when_imported("watched_twice", lambda module: module.marks.append("first"), patches)
        when_imported("watched_twice", lambda module: module.marks.append("second"), patches)
        module = importlib.import_module("watched_twice")
    finally:
        patches.restore()
        sys.modules.pop("watched_twice", None)
    assert sorted(module.marks) == ["first", "second"]


def test_anyio_imported_during_the_first_run_is_recorded() -> None:
    # In a fresh interpreter anyio is first imported by the scenario, inside a run: its
    # primitives must be recorded from that run on, or the first run's footprints hide
    # the race the search must reverse.
    script = textwrap.dedent("""
        import sys
        import explorer
        from explorer.strategies import DPOR

        async def scenario():
            import anyio
            first, second = anyio.Lock(), anyio.Lock()

            async def forward():
                async with first:
                    await anyio.sleep(0)
                    async with second:
                        pass

            async def backward():
                for _ in range(4):
                    await anyio.sleep(0)
                async with second:
                    await anyio.sleep(0)
                    async with first:
                        pass

            async with anyio.create_task_group() as group:
                group.start_soon(forward)
                group.start_soon(backward)

        assert "anyio" not in sys.modules
        result = explorer.explore(scenario, strategy=DPOR(footprints="declared"),
                                  max_schedules=5_000, raise_on_failure=False)
        print(result.failure.outcome.kind if result.failure else "passed")
    """)
    done = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True,
                          text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "deadlock"
