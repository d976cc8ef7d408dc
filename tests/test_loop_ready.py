"""The ready-queue index (explorer._asyncio._ready): the same candidates, in the same
order, as a scan of the queue, so every schedule replays as it did before the index."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

import explorer
from explorer._asyncio import _ready
from explorer._asyncio._handles import Handle, TaskHandle, eligible_indices
from explorer._asyncio._ready import ReadyIndex
from explorer._asyncio._runner import AsyncioRuntime
from explorer._runtime import PointView, RunMode, RunRecord

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
@pytest.mark.parametrize("scenario", [_kitchen, _fanout])
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
    waiting_on = _ready.waiting_on

    def counted(task: asyncio.Task[Any], frames: Any = None
                ) -> tuple[str | None, object | None]:
        walks["n"] += 1
        return waiting_on(task, frames)

    monkeypatch.setattr(_ready, "waiting_on", counted)
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
