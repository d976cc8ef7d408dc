"""The determinism check of passing schedules runs untraced, hashed replays; traced
replays are made only to explain a difference, on both runtimes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio

import explorer
from explorer._asyncio._runner import AsyncioRuntime
from explorer._runtime import RunMode, RunRecord
from explorer._trio._runner import TrioRuntime

_RUNTIMES = {"asyncio": AsyncioRuntime, "trio": TrioRuntime}


def _counting_traced(monkeypatch: pytest.MonkeyPatch, runtime: str) -> dict[str, int]:
    seen = {"traced": 0, "hashed": 0}
    cls: Any = _RUNTIMES[runtime]
    run = cls.run

    def counting(self: Any, scenario: Any, chooser: Any, mode: RunMode) -> RunRecord:
        seen["traced"] += mode.traced
        seen["hashed"] += mode.hashed
        return run(self, scenario, chooser, mode)  # type: ignore[no-any-return]

    monkeypatch.setattr(cls, "run", counting)
    return seen


async def _asyncio_pair() -> None:
    async def step() -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    await asyncio.gather(step(), step(), step())


async def _trio_pair() -> None:
    async def step() -> None:
        await trio.sleep(0)
        await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(step)


@pytest.mark.parametrize(("runtime", "scenario"),
                         [("asyncio", _asyncio_pair), ("trio", _trio_pair)])
def test_agreeing_runs_are_checked_without_a_trace(
        runtime: str, scenario: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _counting_traced(monkeypatch, runtime)
    result = explorer.explore(scenario, runtime=runtime, strategy="random", seed=2,
                              max_schedules=16)
    assert result.failure is None and result.schedules == 16
    assert seen["traced"] == 0
    # The 1st schedule is always checked (later ones while checks stay a small share of
    # the time): each checked run is hashed, and so is its one replay.
    assert seen["hashed"] >= 2 and seen["hashed"] % 2 == 0


def _drifting(runtime: str) -> Any:
    """Each third run stops a task at another line, nothing else changes: only the step
    hash (or a trace) can tell."""
    runs = {"n": 0}
    sleep = asyncio.sleep if runtime == "asyncio" else trio.sleep

    async def worker() -> None:
        if runs["n"] % 3 == 2:
            await sleep(0)
        else:
            await sleep(0)

    async def asyncio_main() -> None:
        runs["n"] += 1
        await asyncio.gather(worker(), worker())

    async def trio_main() -> None:
        runs["n"] += 1
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker)
            nursery.start_soon(worker)

    return asyncio_main if runtime == "asyncio" else trio_main


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_a_step_that_stops_at_another_line_is_nondeterminism(runtime: str) -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_drifting(runtime), runtime=runtime, strategy="random", seed=1,
                         max_schedules=50)
    failure = info.value
    assert failure.kind == "nondeterminism"
    text = str(failure)
    # Explained by traced replays once the untraced check saw the difference.
    assert "first difference at step" in text or "comes and goes" in text
    assert "ran a step differently" in text or "traced replays" in text


def _hashed_runs(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each run of the asyncio runtime from now on is hashed, in order."""
    runs: list[bool] = []
    run = AsyncioRuntime.run

    def noting(self: Any, scenario: Any, chooser: Any, mode: RunMode) -> RunRecord:
        runs.append(mode.hashed)
        return run(self, scenario, chooser, mode)  # type: ignore[no-any-return]

    monkeypatch.setattr(AsyncioRuntime, "run", noting)
    return runs


def _checked(runs: list[bool]) -> list[int]:
    """The schedules checked, from the runs of a passing exploration: a checked schedule
    is a hashed run followed by its hashed replay; no other run is hashed."""
    checked: list[int] = []
    schedule = index = 0
    while index < len(runs):
        schedule += 1
        if runs[index]:
            assert runs[index + 1], "a checked run is followed by its hashed replay"
            checked.append(schedule)
            index += 2
        else:
            index += 1
    return checked


async def _three_sleepers() -> None:
    async def sleeper() -> None:
        for _ in range(3):
            await asyncio.sleep(0)

    await asyncio.gather(sleeper(), sleeper(), sleeper())


def test_checks_replay_a_bounded_share_of_the_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _hashed_runs(monkeypatch)
    result = explorer.explore(_three_sleepers, strategy="random", seed=5, max_schedules=70)
    assert result.failure is None and result.schedules == 70
    # Every run has the same length here, so the budget reads in schedules: the 1st is
    # checked; the 2nd, 4th and 8th would replay more than an eighth of the steps
    # explored; the 16th, 32nd and 64th fit.
    assert _checked(runs) == [1, 16, 32, 64]


def _event_drifting() -> Any:
    """Each third run a waiter waits for the event at another line: its await chain ends
    in the event's future (no frame there), and only the waiter's own frame differs."""
    runs = {"n": 0}

    async def waiter(opened: asyncio.Event) -> None:
        if runs["n"] % 3 == 2:
            await opened.wait()
        else:
            await opened.wait()

    async def opener(opened: asyncio.Event) -> None:
        await asyncio.sleep(0)
        opened.set()

    async def gate() -> None:
        runs["n"] += 1
        opened = asyncio.Event()
        await asyncio.gather(waiter(opened), waiter(opened), opener(opened))

    return gate


def test_a_task_waiting_on_a_future_at_another_line_is_nondeterminism() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_event_drifting(), strategy="random", seed=3, max_schedules=20)
    assert info.value.kind == "nondeterminism"
    assert "ran a step differently" in str(info.value) or "traced replays" in str(info.value)


def _one_line(runtime: str, first: bool) -> Any:
    """Two awaits on one line; ``first`` picks which one the waiter stops at."""
    if runtime == "asyncio":
        async def asyncio_main() -> None:
            opened = asyncio.Event()

            async def waiter() -> None:
                await opened.wait() if first else await opened.wait()  # noqa: RUF034 - two awaits on one line, on purpose

            async def opener() -> None:
                await asyncio.sleep(0)
                opened.set()

            await asyncio.gather(waiter(), opener())

        return asyncio_main

    async def trio_main() -> None:
        opened = trio.Event()

        async def waiter() -> None:
            await opened.wait() if first else await opened.wait()  # noqa: RUF034 - two awaits on one line, on purpose

        async def opener() -> None:
            await trio.sleep(0)
            opened.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            nursery.start_soon(opener)

    return trio_main


def _step_hash(runtime: str, scenario: Any) -> int | None:
    rt = _RUNTIMES[runtime]()
    with rt.session():
        record = rt.run(scenario, lambda count, view: 0, RunMode(max_steps=1000, hashed=True))
    assert record.outcome.kind == "pass"
    return record.stats.step_hash


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_the_step_hash_tells_two_awaits_on_one_line_apart(runtime: str) -> None:
    first = _step_hash(runtime, _one_line(runtime, True))
    assert first is not None
    assert _step_hash(runtime, _one_line(runtime, True)) == first
    assert _step_hash(runtime, _one_line(runtime, False)) != first
