"""SCTBench-style programs ported to asyncio, for measuring search strategies.

``PROGRAMS`` lists the gather ports with their buggy and fixed scenarios, ``C_SHAPE`` the
ports in the C originals' shape, ``ALL_PROGRAMS`` both; ``DEEP`` names the two
families whose difficulty grows with the number of tasks (reorder_N and twostage_N).
Two shapes: the ``gather`` ports start all tasks at once with one checker (N - 1 writers);
the ``c`` ports (names ``reorder_c_S+C``, ``twostage_c_W+R``) keep the C originals' shape,
tasks created one by one with a scheduling point after each creation and joined in order,
with the originals' splits of writers and checkers (:data:`C_SHAPE`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.sctbench import programs as p
from benchmarks.sctbench import published


@dataclass(frozen=True)
class Program:
    name: str
    buggy: Callable[[], Any]
    fixed: Callable[[], Any]
    family: str
    tasks: int
    shape: str = "gather"
    """``gather`` (all tasks started at once) or ``c`` (the C original's shape)."""
    published_as: str | None = None
    """The program whose published figures apply (see :mod:`.published`), if any."""

    @property
    def deep(self) -> bool:
        return self.family in DEEP

    @property
    def published_key(self) -> str | None:
        """The C program whose published figures apply: what a C-shaped port names; a
        gather port's own name, unless its split of tasks differs from the C program's
        (:data:`.published.VARIANTS`: then the C-shaped port with the C split shows them)."""
        if self.shape == "c":
            return self.published_as
        return None if self.name in published.VARIANTS else self.name


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


def _c_shape(family: str, buggy: Callable[[int, int], Any], fixed: Callable[[int, int], Any],
             first: int, second: int, published_as: str | None) -> Program:
    return Program(f"{family}_c_{first}+{second}", functools.partial(buggy, first, second),
                   functools.partial(fixed, first, second), family, first + second, "c",
                   published_as)


C_SHAPE: list[Program] = [
    _c_shape("reorder", p.reorder_c, p.reorder_c_fixed, 2, 1, "reorder_3"),
    _c_shape("reorder", p.reorder_c, p.reorder_c_fixed, 4, 1, "reorder_5"),
    _c_shape("reorder", p.reorder_c, p.reorder_c_fixed, 9, 1, "reorder_10"),
    _c_shape("reorder", p.reorder_c, p.reorder_c_fixed, 10, 10, "reorder_20"),
    _c_shape("reorder", p.reorder_c, p.reorder_c_fixed, 20, 20, None),
    _c_shape("reorder", p.reorder_c, p.reorder_c_fixed, 49, 1, None),
    _c_shape("twostage", p.twostage_c, p.twostage_c_fixed, 1, 1, "twostage"),
    _c_shape("twostage", p.twostage_c, p.twostage_c_fixed, 10, 10, "twostage_20"),
    _c_shape("twostage", p.twostage_c, p.twostage_c_fixed, 20, 20, None),
    _c_shape("twostage", p.twostage_c, p.twostage_c_fixed, 25, 25, None),
]
"""The ports in the C originals' shape (``tasks`` does not count ``main``): reorder with one
checker (reorder_3, 5, 10 and a 50-thread variant) and with the published reorder_20's
10 + 10 split, twostage with 1 + 1 (SCTBench's twostage), 10 + 10 (twostage_20 as
published) and larger even splits. ``published_as`` names the C program whose figures
apply."""

ALL_PROGRAMS: list[Program] = [*PROGRAMS, *C_SHAPE]
"""Both shapes: what the benchmark section measures."""


def by_name(name: str) -> Program:
    for program in ALL_PROGRAMS:
        if program.name == name:
            return program
    raise KeyError(name)
