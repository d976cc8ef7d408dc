"""SCTBench-style programs ported to asyncio, for measuring search strategies.

``PROGRAMS`` lists every port with its buggy and fixed scenario; ``DEEP`` names the two
families whose difficulty grows with the number of tasks (reorder_N and twostage_N).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.sctbench import programs as p


@dataclass(frozen=True)
class Program:
    name: str
    buggy: Callable[[], Any]
    fixed: Callable[[], Any]
    family: str
    tasks: int

    @property
    def deep(self) -> bool:
        return self.family in DEEP


DEEP = ("reorder", "twostage")
SIZES = (3, 5, 10, 20)


def _sized(family: str, buggy: Callable[[int], Any], fixed: Callable[[int], Any],
           n: int) -> Program:
    return Program(f"{family}_{n}", functools.partial(buggy, n), functools.partial(fixed, n),
                   family, n)


PROGRAMS: list[Program] = [
    Program("account", p.account, p.account_fixed, "account", 3),
    Program("bluetooth_driver", p.bluetooth_driver, p.bluetooth_driver_fixed,
            "bluetooth_driver", 2),
    Program("circular_buffer", p.circular_buffer, p.circular_buffer_fixed,
            "circular_buffer", 2),
    Program("lazy01", p.lazy01, p.lazy01_fixed, "lazy01", 3),
    Program("queue", p.queue, p.queue_fixed, "queue", 2),
    *(_sized("reorder", p.reorder, p.reorder_fixed, n) for n in SIZES),
    Program("stack", p.stack, p.stack_fixed, "stack", 2),
    Program("token_ring", p.token_ring, p.token_ring_fixed, "token_ring", 4),
    Program("twostage", p.twostage, p.twostage_fixed, "twostage", 2),
    *(_sized("twostage", p.twostage, p.twostage_fixed, n) for n in SIZES),
    Program("wronglock", p.wronglock, p.wronglock_fixed, "wronglock", 8),
]


def by_name(name: str) -> Program:
    for program in PROGRAMS:
        if program.name == name:
            return program
    raise KeyError(name)
