"""The trio runtime's view of a point (explorer._trio._scheduler): the lists it keeps
beside the run queue give, at every point, what each candidate gives on its own."""

from __future__ import annotations

import pytest
import trio

from explorer._runtime import PointView, RunMode
from explorer._trio._inspect import Names
from explorer._trio._runner import TrioRuntime
from tests.conftest import reading_chooser


async def _shop() -> None:
    """Workers that lock, wait on an event, sleep and spawn more work mid-run, so tasks
    join the queue in groups (ordered by creation) while others wait in it."""
    lock = trio.Lock()
    stocked = trio.Event()
    shelf: list[int] = []

    async def restock(k: int) -> None:
        async with lock:
            await trio.sleep(0)
            shelf.append(k)
        if k == 2:
            stocked.set()

    async def buyer(nursery: trio.Nursery, k: int) -> None:
        await stocked.wait()
        await trio.sleep(0.01 * (k % 3))
        if k % 2:
            nursery.start_soon(restock, 10 + k)
        async with lock:
            if shelf:
                shelf.pop()

    async with trio.open_nursery() as nursery:
        for k in range(4):
            nursery.start_soon(restock, k)
        for k in range(4):
            nursery.start_soon(buyer, nursery, k)


@pytest.mark.parametrize("timer_races", [False, True])
def test_kept_ids_and_descriptions_agree_with_each_candidate(timer_races: bool) -> None:
    def runs(read: bool) -> list[tuple[list[int], int]]:
        out = []
        for seed in range(15):
            choose = reading_chooser(seed, read)
            with TrioRuntime().session() as runtime:
                record = runtime.run(_shop, choose, RunMode(max_steps=10_000,
                                                            timer_races=timer_races))
            assert record.outcome.kind == "pass"
            out.append((record.decisions, record.stats.steps))
        return out

    assert runs(read=True) == runs(read=False)


def test_a_point_names_only_the_tasks_queued_since_the_last(
        monkeypatch: pytest.MonkeyPatch) -> None:
    named = {"n": 0}
    seen = {"candidates": 0}
    task_id = Names.task_id

    def counted(self: Names, task: trio.lowlevel.Task) -> str:
        named["n"] += 1
        return task_id(self, task)

    def by_process(count: int, view: PointView) -> int:
        seen["candidates"] += count
        processes = view.processes(count)
        return processes.index(max(processes))

    async def many() -> None:
        async def worker() -> None:
            for _ in range(15):
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            for _ in range(25):
                nursery.start_soon(worker)

    monkeypatch.setattr(Names, "task_id", counted)
    with TrioRuntime().session() as runtime:
        record = runtime.run(many, by_process, RunMode(max_steps=10_000))
    assert record.outcome.kind == "pass"
    # About one name per step (the task it requeued), not one per candidate per point.
    assert named["n"] < 2 * record.stats.steps < seen["candidates"] / 5
