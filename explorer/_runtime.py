"""The seam between runtimes and the scheduler, in runtime-neutral terms.

A runtime (the controlled asyncio loop, later trio) runs one scenario from scratch and, at
every scheduling point, calls a *chooser* with the number of candidates and a
:class:`PointView` that can describe each candidate. The chooser returns an index; the
runtime never knows which strategy is behind it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Final, Protocol


@dataclass(frozen=True, slots=True)
class Location:
    """A source position: where a task was suspended, resumed, failed or waited."""

    filename: str
    lineno: int
    function: str

    @property
    def short(self) -> str:
        """``file.py:12`` — the form used in messages and traces."""
        return f"{os.path.basename(self.filename)}:{self.lineno}"

    def __str__(self) -> str:
        return f"{self.short} ({self.function})"

    def to_json(self) -> dict[str, Any]:
        return {"file": os.path.basename(self.filename), "line": self.lineno,
                "function": self.function}


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ready unit of work at a scheduling point, described without runtime objects.

    ``kind`` is one of ``start`` (a task's first step), ``step`` (a task resuming after a
    bare yield), ``wakeup`` (a task resuming because what it awaited completed),
    ``callback`` (a plain callback) or ``timer`` (fire the earliest pending timer now).
    """

    task: str | None
    kind: str
    location: Location | None = None
    operation: str | None = None
    resource: str | None = None


def display_task(task_id: str | None, kind: str = "callback") -> str:
    """How traces name the work of a step: task ids without the common ``main/`` prefix;
    ``clock`` for a timer firing, ``loop`` for a plain callback."""
    if task_id is None:
        return "clock" if kind == "timer" else "loop"
    return task_id[5:] if task_id.startswith("main/") else task_id


class PointView(Protocol):
    """What a chooser may ask about the candidates at the current scheduling point."""

    def candidate(self, index: int) -> Candidate:
        """Describe candidate ``index`` (computed on demand: it costs time)."""
        ...


Chooser = Callable[[int, PointView], int]
"""``chooser(count, view) -> index`` with ``0 <= index < count``; called on the hot path."""

STARVATION_BOUND: Final = 1000
"""Fairness, part 1: how many scheduling points in a row candidate 0 (the oldest ready
work, what the stock runtime runs next) may be passed over. At the next point it runs
without a decision. A real event loop runs everything ready at the start of an iteration
within that iteration; the controlled runtimes reorder ready work to model awaits that take
different amounts of time, but starving one ready task without end is a schedule no real
loop makes (Musuvathi and Qadeer, "Fair stateless model checking", PLDI 2008). The bound
is far above what an ordering bug needs (each pass-over is a deviation)."""


@dataclass(slots=True)
class RunStats:
    """Counters of one run."""

    steps: int = 0
    points: int = 0
    virtual_time: float = 0.0
    tasks: int = 0
    # Steps after the last deviation, all in stock order: what the step bound counts.
    stock_steps: int = 0


@dataclass(slots=True)
class RunRecord:
    """What one run produced: its decisions and its outcome (and trace, if traced)."""

    decisions: list[int]
    outcome: Any  # explorer._outcome.Outcome; typed loosely to keep this module leaf-level
    stats: RunStats = field(default_factory=RunStats)
    trace: Any = None  # explorer._trace.Trace when the run was traced
    footprints: Any = None  # list of StepRecord when footprints were recorded
    names: Any = None  # object id -> readable name, when footprints were named


Scenario = Callable[[], Coroutine[Any, Any, Any]]
"""A scenario bound to its arguments: each call returns a fresh coroutine."""


class Runtime(Protocol):
    """What the engine needs from a runtime (the asyncio loop, trio): run a scenario once
    from scratch under a chooser, inside a session that installs what runs need."""

    name: str

    def session(self, *, footprints: bool = False) -> AbstractContextManager[Any]: ...

    def run(self, scenario: Scenario, chooser: Chooser, *, max_steps: int,
            timer_races: bool = False, traced: bool = False,
            footprints: str | None = None, naming: bool = False,
            run_timeout: float | None = None) -> RunRecord: ...
