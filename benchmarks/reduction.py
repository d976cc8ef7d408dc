"""Partial-order reduction: schedules explored with and without it, and what recording
footprints costs per run."""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import explorer
from benchmarks import scenarios
from explorer._asyncio._runner import AsyncioRuntime
from strategies import DPOR, Fixed

CAP = 50_000


def disjoint_writers(n: int) -> Callable[[], Any]:
    async def scenario() -> None:
        data = explorer.shared({})

        async def writer(key: int) -> None:
            await asyncio.sleep(0)
            data[key] = key

        await asyncio.gather(*(writer(k) for k in range(n)))

    return scenario


def locked_counter(tasks: int, increments: int) -> Callable[[], Any]:
    return functools.partial(scenarios.locked_counter, tasks, increments, declared=True)


def lastzero(n: int) -> Callable[[], Any]:
    """One reader scans an array from the end for the last zero while n writers each set
    their slot from the previous one (a classic DPOR benchmark, in asyncio)."""
    async def scenario() -> None:
        array = explorer.shared({i: 0 for i in range(n + 1)})

        async def reader() -> None:
            i = n
            while array[i] != 0:
                await asyncio.sleep(0)
                i -= 1

        async def writer(j: int) -> None:
            await asyncio.sleep(0)
            array[j] = array[j - 1] + 1

        await asyncio.gather(reader(), *(writer(j) for j in range(1, n + 1)))

    return scenario


def sigma(n: int) -> Callable[[], Any]:
    """n tasks each write their own slot of an array, then one task sums it."""
    async def scenario() -> None:
        array = explorer.shared({i: 0 for i in range(n)})

        async def writer(j: int) -> None:
            await asyncio.sleep(0)
            array[j] = j + 1

        await asyncio.gather(*(writer(j) for j in range(n)))
        assert sum(array[i] for i in range(n)) == n * (n + 1) // 2

    return scenario


PROGRAMS: list[tuple[str, Callable[[], Any]]] = [
    *((f"disjoint keys, {n} tasks", disjoint_writers(n)) for n in (2, 4, 8)),
    *((f"locked counter {t} x {i}", locked_counter(t, i)) for t, i in ((2, 2), (3, 1), (3, 2))),
    *((f"lastzero {n}", lastzero(n)) for n in (2, 3)),
    *((f"sigma {n}", sigma(n)) for n in (2, 4, 6)),
]


def _count(scenario: Callable[[], Any], strategy: Any) -> str:
    result = explorer.explore(scenario, strategy=strategy, max_schedules=CAP,
                              raise_on_failure=False)
    return f"{result.schedules:,}" + ("" if result.exhausted else " (cap, not done)")


def per_run_cost(rounds: int = 5, runs: int = 1000) -> tuple[float, float]:
    """Microseconds per run of the 3 x 3 locked counter, footprints off and on."""
    scenario = locked_counter(3, 3)
    runtime = AsyncioRuntime()
    timings: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for on in (False, True):
            with runtime.session(footprints=on):
                start = time.perf_counter()
                for _ in range(runs):
                    fixed = Fixed([])
                    fixed.start_run()
                    runtime.run(scenario, fixed.choose, max_steps=10_000,
                                footprints="declared" if on else None)
                timings[on].append((time.perf_counter() - start) / runs * 1e6)
    return statistics.median(timings[False]), statistics.median(timings[True])


def section() -> list[str]:
    lines = [
        "## Partial-order reduction",
        "",
        f"Schedules run to cover each program completely (cap {CAP:,}): naive systematic "
        "search, and DPOR with declared shared state (`strategies.DPOR(declared=True)`).",
        "",
        "| program | systematic | dpor (declared) |",
        "|---|---:|---:|",
    ]
    for name, scenario in PROGRAMS:
        lines.append(f"| {name} | {_count(scenario, 'systematic')} | "
                     f"{_count(scenario, DPOR(declared=True))} |")
    off, on = per_run_cost()
    lines += ["", f"Footprint recording on the 3 x 3 locked counter: {off:.0f} us per run "
                  f"off, {on:.0f} us on (**{on / off:.2f}x**)."]
    return lines
