"""Throughput: the cost of control, measured against the stock event loop (asyncio's, or
``trio.run``) in the same process."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import explorer


@dataclass(frozen=True)
class Throughput:
    scenario: str
    schedules_per_second: float
    steps_per_second: float
    stock_runs_per_second: float

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
            rounds: int, runtime: str = "asyncio") -> Throughput:
    """Alternate rounds of controlled and stock runs, so machine noise hits both alike;
    report the median round of each."""
    stock, controlled, steps = [], [], []
    stock_of = stock_trio_rate if runtime == "trio" else stock_rate
    for round_ in range(rounds):
        stock.append(stock_of(scenario, schedules))
        rate, step_rate = controlled_rate(scenario, schedules, seed=round_, runtime=runtime)
        controlled.append(rate)
        steps.append(step_rate)
    return Throughput(name, statistics.median(controlled), statistics.median(steps),
                      statistics.median(stock))
