"""The ready-queue index (explorer._asyncio._ready): the same candidates, in the same
order, as a scan of the queue, so every schedule replays as it did before the index."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import explorer
from explorer._asyncio import _loop, _ready
from explorer._asyncio._handles import Handle, HeldHandle, IOHandle, TaskHandle, eligible_indices
from explorer._asyncio._ready import ReadyIndex
from explorer._asyncio._runner import AsyncioRuntime
from explorer._runtime import PointView, RunMode, RunRecord
from tests.conftest import reading_chooser

Scenario = Callable[[], Coroutine[Any, Any, None]]


async def _kitchen() -> None:
    """Many plain callbacks at once (timers, future and done callbacks, call_soon) among
    tasks that lock, wait, sleep, cancel and finish at different times."""
    loop = asyncio.get_running_loop()
    lock = asyncio.Lock()
    gate = asyncio.Event()
    log: list[str] = []

    async def clerk(k: int) -> None:
        loop.call_soon(log.append, f"soon {k}")
        async with lock:
            await asyncio.sleep(0)
        loop.call_later(0.01 * (k % 3), log.append, f"later {k}")
        await asyncio.sleep(0.01 * (k % 2))
        if k % 4 == 0:
            gate.set()
        await gate.wait()

    async def idler() -> None:
        await asyncio.sleep(10)

    idle = asyncio.ensure_future(idler())
    loop.call_soon(idle.cancel)  # a queued plain callback that cancels a timer's task
    await asyncio.gather(*(clerk(k) for k in range(7)))
    with pytest.raises(asyncio.CancelledError):
        await idle
    await asyncio.sleep(0.05)  # virtual time: the last call_later fires
    assert len(log) == 14


async def _fanout() -> None:
    """Tasks that finish at different times: gather's done callbacks pile up in the
    queue while other tasks are still running."""
    async def worker(k: int) -> None:
        for _ in range(k % 4):
            await asyncio.sleep(0)

    await asyncio.gather(*(worker(k) for k in range(12)))


async def _echo() -> None:
    """Clients of a stream server over the simulated network: deliveries held behind the
    work their connection's previous event queued."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
        writer.close()

    async def client(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", 7100)
        for _ in range(2):
            writer.write(b"ping %d\n" % k)
            await writer.drain()
            assert await reader.readline() == b"PING %d\n" % k
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 7100)
    async with server:
        await asyncio.gather(*(client(k) for k in range(4)))


def _runs(scenario: Scenario, seeds: range, *, timer_races: bool) -> Iterator[RunRecord]:
    runtime = AsyncioRuntime()
    for seed in seeds:
        rng = random.Random(seed)

        def choose(count: int, view: PointView, rng: random.Random = rng) -> int:
            return int(rng.random() * count)

        with runtime.session():
            yield runtime.run(scenario, choose, RunMode(max_steps=10_000, traced=True,
                                                        timer_races=timer_races))


@pytest.mark.parametrize("timer_races", [False, True])
@pytest.mark.parametrize("scenario", [_kitchen, _fanout, _echo])
def test_the_index_picks_what_a_scan_of_the_queue_picks(
        scenario: Scenario, timer_races: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    built = {"n": 0}
    rebuild = ReadyIndex.rebuild

    def counted(self: ReadyIndex) -> bool:
        built["n"] += 1
        return rebuild(self)

    monkeypatch.setattr(ReadyIndex, "rebuild", counted)
    indexed = [(r.decisions, r.outcome.kind, r.traced().hash())
               for r in _runs(scenario, range(25), timer_races=timer_races)]
    assert built["n"] >= 25  # the index was in use in every run
    # The loop falls back to the scan whenever the index cannot be made.
    monkeypatch.setattr(ReadyIndex, "rebuild", lambda self: False)
    scanned = [(r.decisions, r.outcome.kind, r.traced().hash())
               for r in _runs(scenario, range(25), timer_races=timer_races)]
    assert indexed == scanned
    assert all(kind == "pass" for _, kind, _ in indexed)
    assert len({decisions.count(0) for decisions, _, _ in indexed}) > 1  # varied runs


def test_the_index_agrees_with_the_scan_under_random_queueing() -> None:
    rng = random.Random(7)
    ready: deque[Any] = deque()
    index = ReadyIndex(ready)

    def handle(kind: type) -> Any:
        made = object.__new__(kind)
        made._cancelled = False
        return made

    for _ in range(3000):
        if rng.random() < 0.55 or not ready:
            new = handle(TaskHandle if rng.random() < 0.6 else Handle)
            if index.active and index.synced == len(ready) and rng.random() < 0.5:
                index.push(new)  # as call_soon does
            ready.append(new)
            continue
        if not index.active:
            assert index.rebuild()
        assert index.sync()
        expected = [ready[i] for i in eligible_indices(ready)]
        assert index.eligible == expected
        pick = rng.randrange(len(expected))
        assert index.take(pick) is expected[pick]
        assert expected[pick] not in ready


def test_descriptions_are_built_once_per_ready_handle(
        monkeypatch: pytest.MonkeyPatch) -> None:
    walks = {"n": 0}
    owner = _ready._task_owner  # asked once per description built

    def counted(handle: Any) -> tuple[asyncio.Task[Any] | None, str]:
        found = owner(handle)
        walks["n"] += found[0] is not None  # a task's frames are walked
        return found

    monkeypatch.setattr(_ready, "_task_owner", counted)
    points = {"n": 0, "candidates": 0}

    def describe_all(count: int, view: PointView) -> int:
        points["n"] += 1
        points["candidates"] += count
        assert view.candidates(count) == [view.candidate(i) for i in range(count)]
        assert view.processes(count) == [view.process(i) for i in range(count)]
        return count - 1

    async def many() -> None:
        async def worker() -> None:
            for _ in range(5):
                await asyncio.sleep(0)

        await asyncio.gather(*(worker() for _ in range(10)))

    with AsyncioRuntime().session() as runtime:
        runtime.run(many, describe_all, RunMode(max_steps=10_000))
    # Each task handle is described once while queued, however many points it waits.
    assert points["candidates"] > 3 * walks["n"]
    assert walks["n"] <= 10 * 6 + 1


def test_the_determinism_check_is_untraced_while_runs_agree(
        monkeypatch: pytest.MonkeyPatch) -> None:
    traced = {"n": 0}
    run = AsyncioRuntime.run

    def counting(self: AsyncioRuntime, scenario: Any, chooser: Any,
                 mode: RunMode) -> RunRecord:
        traced["n"] += mode.traced
        return run(self, scenario, chooser, mode)

    monkeypatch.setattr(AsyncioRuntime, "run", counting)
    result = explorer.explore(_fanout, strategy="random", seed=3, max_schedules=20)
    assert result.failure is None and result.schedules == 20
    assert traced["n"] == 0


def _candidates_by_the_rule(ready: list[Any]) -> list[int]:
    """The candidates as the handles module's docstring states them, written plainly."""
    queued = set(map(id, ready))
    out: list[int] = []
    plain_seen = False  # a plain callback (held or not) came first among the plain ones
    for index, handle in enumerate(ready):
        held = type(handle) is not TaskHandle and bool(getattr(handle, "_after", ())) \
            and any(id(before) in queued for before in handle._after)
        if type(handle) is TaskHandle or (type(handle) is IOHandle and not held):
            out.append(index)
        elif type(handle) is not IOHandle:
            if not plain_seen and not held:
                out.append(index)
            plain_seen = True
    return out


def test_the_scan_keeps_the_rule_with_network_holds() -> None:
    rng = random.Random(11)
    loop = SimpleNamespace(_ncallbacks=0)  # release() counts a hold that ends on it
    for _ in range(400):
        ready: list[Any] = []
        for _ in range(rng.randrange(1, 30)):
            kind = rng.choice([TaskHandle, TaskHandle, Handle, IOHandle, HeldHandle, HeldHandle])
            made: Any = object.__new__(kind)
            made._cancelled = False
            made._loop = loop
            if kind is IOHandle or kind is HeldHandle:
                gone = object.__new__(TaskHandle)  # a handle that already left the queue
                made._after = tuple(rng.sample([*ready, gone], min(len(ready) + 1, 2))
                                    if rng.random() < 0.7 else ())
            ready.append(made)
        assert eligible_indices(ready) == _candidates_by_the_rule(ready)


def test_the_index_agrees_with_the_scan_under_network_holds() -> None:
    rng = random.Random(3)
    loop = SimpleNamespace(_ncallbacks=0)
    ready: deque[Any] = deque()
    index = ReadyIndex(ready)
    gone: list[Any] = []  # handles taken from the queue: what a hold may still name
    holds = 0

    def handle(kind: type) -> Any:
        made: Any = object.__new__(kind)
        made._cancelled = False
        made._loop = loop
        if kind is IOHandle or kind is HeldHandle:
            # Held behind some of the handles queued before it (or already gone).
            pool = [*ready, *gone[-3:]]
            made._after = tuple(rng.sample(pool, min(len(pool), rng.randrange(4))))
        return made

    for _ in range(4000):
        if rng.random() < 0.55 or not ready:
            kind = rng.choice([TaskHandle, TaskHandle, Handle, IOHandle, HeldHandle, HeldHandle])
            new = handle(kind)
            holds += kind in (IOHandle, HeldHandle) and bool(new._after)
            # As the loop does: call_soon classifies task steps and plain callbacks at
            # once; network callbacks and held ones are classified at the next point.
            if kind in (TaskHandle, Handle) and index.active \
                    and index.synced == len(ready) and rng.random() < 0.5:
                index.push(new)
            ready.append(new)
            continue
        if not index.active:
            assert index.rebuild()
        assert index.sync()
        expected = [ready[i] for i in eligible_indices(ready)]
        assert index.eligible == expected
        pick = rng.randrange(len(expected))
        taken = index.take(pick)
        assert taken is expected[pick]
        assert taken not in ready
        gone.append(taken)
        if rng.random() < 0.01:
            index.active = False  # as after a purge: made again at the next point
    assert holds > 500  # many holds were queued, and each was either met or released


async def _deadlines() -> None:
    """Tasks that each leave timeout blocks before their deadlines, and one that is
    woken by a deadline: timers cancelled in the heap, and one that expired."""
    async def polite() -> None:
        for _ in range(3):
            async with asyncio.timeout(5):
                await asyncio.sleep(0)

    async def late() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)

    await asyncio.gather(*(polite() for _ in range(5)), late())


def test_a_timer_cancelled_before_it_expires_leaves_the_ready_queue_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    purges = {"n": 0}
    purge = _ready.ReadyQueue._purge_cancelled

    def counted(self: Any, batch: int) -> int:
        purges["n"] += 1
        return purge(self, batch)  # type: ignore[no-any-return]

    monkeypatch.setattr(_ready.ReadyQueue, "_purge_cancelled", counted)
    runs = list(_runs(_deadlines, range(10), timer_races=False))
    assert all(run.outcome.kind == "pass" for run in runs)
    # Fifteen timeout blocks per run end before their deadlines: no purge (a scan of the
    # whole ready queue) for any of them.
    assert purges["n"] == 0


def test_network_holds_are_followed_without_a_scan_per_point(
        monkeypatch: pytest.MonkeyPatch) -> None:
    scans = {"n": 0}
    scan = _loop.eligible_indices

    def counted(ready: Any) -> list[int]:
        scans["n"] += 1
        return scan(ready)

    monkeypatch.setattr(_loop, "eligible_indices", counted)
    result = explorer.explore(_echo, strategy="random", seed=4, max_schedules=10)
    assert result.failure is None and result.schedules == 10
    assert scans["n"] == 0


async def _adopted() -> None:
    """Tasks made by calling ``asyncio.Task`` directly, as aiohttp does: each queues its
    first step before the loop adopts it and gives it an id."""
    loop = asyncio.get_running_loop()

    async def part(k: int) -> None:
        for _ in range(k % 3):
            await asyncio.sleep(0)

    async def spawner() -> None:  # spawns among other candidates: at a point's index
        await asyncio.sleep(0)
        await asyncio.gather(*(asyncio.Task(part(k), loop=loop) for k in range(4)))

    await asyncio.gather(spawner(), spawner(), part(2))


@pytest.mark.parametrize("scenario", [_kitchen, _fanout, _echo, _adopted])
def test_kept_processes_and_descriptions_agree_with_each_candidate(
        scenario: Scenario) -> None:
    # Strategies read who the candidates are, their descriptions, both or neither, at
    # random points: the lists kept beside the index (from the first read on, through
    # takes, plain callbacks promoted, holds released, rebuilds) give, point by point,
    # what each candidate gives on its own, and reading them changes no schedule.
    def runs(read: bool) -> list[tuple[list[int], int]]:
        out = []
        for seed in range(12):
            choose = reading_chooser(seed, read)
            with AsyncioRuntime().session() as runtime:
                record = runtime.run(scenario, choose, RunMode(max_steps=10_000,
                                                               timer_races=seed % 2 == 1))
            assert record.outcome.kind == "pass"
            out.append((record.decisions, record.stats.steps))
        return out

    assert runs(read=True) == runs(read=False)


def test_processes_are_copied_not_rebuilt_at_each_point(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked = {"known": 0, "named": 0}
    known, named = _ready.known_process, _ready.process_of

    def counted_known(handle: Any) -> str | None:
        asked["known"] += 1
        return known(handle)

    def counted_named(namer: _ready.Namer, handle: Any) -> str:
        asked["named"] += 1
        return named(namer, handle)

    monkeypatch.setattr(_ready, "known_process", counted_known)
    monkeypatch.setattr(_ready, "process_of", counted_named)
    seen = {"points": 0, "candidates": 0}

    def by_process(count: int, view: PointView) -> int:
        processes = view.processes(count)
        seen["points"] += 1
        seen["candidates"] += count
        return processes.index(max(processes))  # decided by who the candidates are

    async def many() -> None:
        async def worker() -> None:
            for _ in range(20):
                await asyncio.sleep(0)

        await asyncio.gather(*(worker() for _ in range(30)))

    with AsyncioRuntime().session() as runtime:
        record = runtime.run(many, by_process, RunMode(max_steps=10_000))
    assert record.outcome.kind == "pass" and seen["points"] > 500
    # Every task is named when created: no candidate's process is looked up by name, and
    # what is looked up at all (a list's first making, plain callbacks) is a few per
    # task, not one per candidate at each point.
    assert asked["named"] == 0
    assert asked["known"] < 3 * 31 < seen["candidates"] / 50
