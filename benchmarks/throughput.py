"""Throughput: the cost of control, measured against the stock event loop (asyncio's, or
``trio.run``) in the same process.

Every figure is a ratio of runs made moments apart, alternated round by round (the median
round is reported): on a shared machine absolute times move with the load, ratios much
less. At scale (:func:`step_cost`, :func:`strategy_rates`) the scenario is
:func:`fan_out`: N tasks started at once, each yielding ten times.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import explorer


@dataclass(frozen=True)
class Throughput:
    scenario: str
    schedules_per_second: float
    steps_per_second: float
    stock_runs_per_second: float
    peer_schedules_per_second: float | None = None  # the peer's, when measured beside

    @property
    def ratio(self) -> float:
        return self.schedules_per_second / self.stock_runs_per_second


def stock_rate(scenario: Callable[[], Any], runs: int) -> float:
    """Runs per second of ``scenario`` on one reused, uncontrolled stock asyncio loop."""
    loop = asyncio.new_event_loop()
    try:
        start = time.perf_counter()
        for _ in range(runs):
            loop.run_until_complete(scenario())
        return runs / (time.perf_counter() - start)
    finally:
        loop.close()


def stock_trio_rate(scenario: Callable[[], Any], runs: int) -> float:
    """Runs per second of ``scenario`` under stock ``trio.run`` (one run loop per run, as
    trio has no reusable loop)."""
    import trio

    start = time.perf_counter()
    for _ in range(runs):
        trio.run(scenario)
    return runs / (time.perf_counter() - start)


def controlled_rate(scenario: Callable[[], Any], schedules: int,
                    seed: int, runtime: str = "asyncio") -> tuple[float, float]:
    result = explorer.explore(scenario, strategy="random", seed=seed,
                              max_schedules=schedules, runtime=runtime)
    if result.failure is not None or result.schedules != schedules:
        raise RuntimeError(f"benchmark scenario failed or stopped early: {result.failure}")
    return result.schedules / result.elapsed, result.steps / result.elapsed


def measure(name: str, scenario: Callable[[], Any], schedules: int,
            rounds: int, runtime: str = "asyncio",
            peer: Callable[[int, int], float] | None = None) -> Throughput:
    """Alternate rounds of controlled and stock runs, so machine noise hits both alike;
    report the median round of each. ``peer(schedules, seed)``, when given, is a peer
    tool's schedules per second on the same scenario, measured in every round too."""
    stock, controlled, steps, peers = [], [], [], []
    stock_of = stock_trio_rate if runtime == "trio" else stock_rate
    for round_ in range(rounds):
        stock.append(stock_of(scenario, schedules))
        rate, step_rate = controlled_rate(scenario, schedules, seed=round_, runtime=runtime)
        controlled.append(rate)
        steps.append(step_rate)
        if peer is not None:
            peers.append(peer(schedules, round_))
    return Throughput(name, statistics.median(controlled), statistics.median(steps),
                      statistics.median(stock), statistics.median(peers) if peers else None)


# --------------------------------------------------------------------------- at scale

SCALE_TASKS: Final = (2, 10, 50, 100, 500)
SCALE_AWAITS: Final = 10
SAMPLING: Final = ("random", "portfolio", "pct", "pos", "symmetric", "coverage", "surw",
                   "rff", "coarse")


def fan_out(tasks: int, awaits: int = SCALE_AWAITS) -> Callable[[], Any]:
    """``tasks`` tasks started at once by ``gather``, each yielding ``awaits`` times: every
    step is a scheduling point among all the tasks still running, and the tasks finish
    at different moments, so gather's done callbacks queue among them."""
    async def worker() -> None:
        for _ in range(awaits):
            await asyncio.sleep(0)

    async def fan() -> None:
        await asyncio.gather(*(worker() for _ in range(tasks)))

    fan.__qualname__ = f"fan_out_{tasks}"
    return fan


@dataclass(frozen=True)
class StepCost:
    tasks: int
    steps_per_run: float
    controlled_us: float  # per step, median round (whole explore(): checks included)
    stock_us: float  # per step of the same scenario on one reused stock loop
    ratio: float  # median over rounds of (stock time / controlled time), same round
    unchecked: float  # the same ratio for the runs alone: no determinism check, no setup


STEP_COST_SCHEDULES: Final = 20
"""Fewest schedules per round of :func:`step_cost`: an exploration checks its first
schedule's determinism whatever its length, so an exploration of a few schedules of a
long scenario would measure that fixed cost rather than the cost per step; explorations
run hundreds of schedules (the default budget is 1,000)."""


def step_cost(tasks: int, rounds: int, steps_per_round: int = 30_000) -> StepCost:
    """Cost per step of ``explore()`` (random) against a reused stock loop, alternated
    round by round; each round's ratio compares runs made moments apart. A round is at
    least :data:`STEP_COST_SCHEDULES` schedules (and about ``steps_per_round`` steps)."""
    scenario = fan_out(tasks)
    per_run = tasks * (SCALE_AWAITS + 1) + 1
    schedules = max(STEP_COST_SCHEDULES, steps_per_round // per_run)
    ratios, controlled, stock, unchecked = [], [], [], []
    for round_ in range(rounds):
        stock_time = 1.0 / stock_rate(scenario, schedules)
        result = explorer.explore(scenario, strategy="random", seed=round_,
                                  max_schedules=schedules)
        if result.failure is not None or result.schedules != schedules:
            raise RuntimeError(f"benchmark scenario failed: {result.failure}")
        steps = result.steps / schedules
        controlled.append(result.elapsed / result.steps * 1e6)
        stock.append(stock_time / steps * 1e6)
        ratios.append(stock_time * schedules / result.elapsed)
        unchecked.append(stock_time * schedules / _runs_time(scenario, schedules, round_))
    return StepCost(tasks, steps, statistics.median(controlled), statistics.median(stock),
                    statistics.median(ratios), statistics.median(unchecked))


def _runs_time(scenario: Callable[[], Any], schedules: int, seed: int) -> float:
    """Seconds of ``schedules`` random runs of ``scenario`` as an exploration makes them
    between its determinism checks (untraced, unhashed), in one runtime session."""
    from explorer._asyncio._runner import AsyncioRuntime
    from explorer._runtime import RunMode
    from explorer._settings import DEFAULT_MAX_STEPS
    from explorer.strategies import RandomWalk

    runtime = AsyncioRuntime()
    walk = RandomWalk(seed)
    mode = RunMode(max_steps=DEFAULT_MAX_STEPS)
    with runtime.session():
        start = time.perf_counter()
        for _ in range(schedules):
            walk.start_run()
            runtime.run(scenario, walk.choose, mode)
        return time.perf_counter() - start


def strategy_rates(tasks: int, rounds: int, strategies: tuple[str, ...] = SAMPLING,
                   steps_per_round: int = 20_000) -> dict[str, float]:
    """Each strategy's steps per second relative to ``random``'s on :func:`fan_out`,
    median over rounds; within a round the strategies run one after another."""
    scenario = fan_out(tasks)
    schedules = max(4, steps_per_round // (tasks * (SCALE_AWAITS + 1) + 1))
    ratios: dict[str, list[float]] = {name: [] for name in strategies}
    for round_ in range(rounds):
        rates = {}
        for name in ("random", *strategies):
            result = explorer.explore(scenario, strategy=name, seed=round_,
                                      max_schedules=schedules, raise_on_failure=False)
            rates[name] = result.steps / result.elapsed
        for name in strategies:
            ratios[name].append(rates[name] / rates["random"])
    return {name: statistics.median(values) for name, values in ratios.items()}


_FIRST_CALL = """
import time
start = time.perf_counter()
import asyncio
after_asyncio = time.perf_counter()
import explorer

async def counter():
    lock = asyncio.Lock()
    total = 0
    async def add():
        nonlocal total
        for _ in range(3):
            async with lock:
                seen = total
                await asyncio.sleep(0)
                total = seen + 1
    await asyncio.gather(add(), add(), add())
    assert total == 9

explorer.explore(counter, max_schedules=10)
end = time.perf_counter()
print(end - start, end - after_asyncio)
"""

_STOCK_FIRST_CALL = """
import time
start = time.perf_counter()
import asyncio
asyncio.run(asyncio.sleep(0))
print(time.perf_counter() - start)
"""


@dataclass(frozen=True)
class FirstCall:
    """Medians, in seconds, over alternated fresh processes."""

    total: float  # importing asyncio and explorer, then a first explore()
    explorer: float  # the same without importing asyncio: the explorer's own part
    stock: float  # importing asyncio and one stock asyncio.run


def first_call_parts(rounds: int = 5) -> FirstCall:
    """The cost of a first ``explore()`` (the locked counter, 10 schedules) in a fresh
    process, against importing asyncio and running one stock ``asyncio.run`` there.

    Bytecode is cached, as after any install (a warm-up process writes it to a private
    cache, whatever PYTHONDONTWRITEBYTECODE says): without it, compiling the explorer's
    sources would be measured, a cost only the first process after an edit pays."""
    ours: list[float] = []
    own: list[float] = []
    stock: list[float] = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        env.pop("PYTHONDONTWRITEBYTECODE", None)

        def timed(code: str) -> list[float]:
            out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                 text=True, check=True, env=env)
            return [float(x) for x in out.stdout.split()]

        timed(_FIRST_CALL)  # writes the bytecode caches
        for _ in range(rounds):
            total, part = timed(_FIRST_CALL)
            ours.append(total)
            own.append(part)
            stock.extend(timed(_STOCK_FIRST_CALL))
    return FirstCall(statistics.median(ours), statistics.median(own),
                     statistics.median(stock))


def first_call(rounds: int = 5) -> tuple[float, float]:
    """:func:`first_call_parts`' total and stock figures."""
    parts = first_call_parts(rounds)
    return parts.total, parts.stock


def per_run_cost(scenario: Callable[[], Any], schedules: int, rounds: int) -> float:
    """Stock runs' time over controlled schedules' time for one scenario (alternated
    rounds, median): what a short example pays for control."""
    ratios = []
    for round_ in range(rounds):
        stock = 1.0 / stock_rate(scenario, schedules)
        result = explorer.explore(scenario, strategy="random", seed=round_,
                                  max_schedules=schedules, raise_on_failure=False)
        ratios.append(stock * result.schedules / result.elapsed)
    return statistics.median(ratios)
