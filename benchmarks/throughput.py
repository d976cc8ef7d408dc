"""Throughput: the cost of control, measured against stock asyncio in the same process."""

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


def controlled_rate(scenario: Callable[[], Any], schedules: int,
                    seed: int) -> tuple[float, float]:
    result = explorer.explore(scenario, strategy="random", seed=seed,
                              max_schedules=schedules)
    if result.failure is not None or result.schedules != schedules:
        raise RuntimeError(f"benchmark scenario failed or stopped early: {result.failure}")
    return result.schedules / result.elapsed, result.steps / result.elapsed


def measure(name: str, scenario: Callable[[], Any], schedules: int,
            rounds: int) -> Throughput:
    """Alternate rounds of controlled and stock runs, so machine noise hits both alike;
    report the median round of each."""
    stock, controlled, steps = [], [], []
    for round_ in range(rounds):
        stock.append(stock_rate(scenario, schedules))
        rate, step_rate = controlled_rate(scenario, schedules, seed=round_)
        controlled.append(rate)
        steps.append(step_rate)
    return Throughput(name, statistics.median(controlled), statistics.median(steps),
                      statistics.median(stock))
