"""Hypothesis-driven schedules: draw the scheduler's decisions from Hypothesis.

``schedules()`` is a Hypothesis strategy. The value it gives is a :class:`DrawnSchedule`,
a strategy of the explorer whose every decision is drawn from the running Hypothesis
example's choice sequence. So inputs and schedule are searched and shrunk together:
Hypothesis shrinks each decision towards 0 — the stock order — which removes deviations,
and its example database and failure reproduction cover the schedule too::

    from hypothesis import given, strategies as st
    from explorer.strategies.hypothesis import schedules

    @given(amounts=st.lists(st.integers(1, 100), min_size=2, max_size=3),
           schedule=schedules())
    def test_no_overdraft(amounts, schedule):
        explorer.replay(withdraw_all, schedule, amounts)   # raises ScheduleFailure

A drawn schedule runs once: draw another for another run.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from explorer._faults import fault_kinds
from explorer._runtime import PointView
from explorer._schedule import Schedule
from explorer.strategies._base import Parameter, Strategy

_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./:~ -]+")


def _quiet_explanations() -> None:
    """Keep the explorer's own lines out of Hypothesis's "explain" phase.

    That phase lists the lines that only failing examples ran. A failing schedule makes the
    explorer build its report (shrinking, the story), so without this the list is the
    explorer's internals rather than the user's code. Hypothesis already leaves out pytest
    and the standard library the same way; its list is not public API, so nothing happens
    when it is not there."""
    try:
        from hypothesis.internal import scrutineer
    except ImportError:  # pragma: no cover - a Hypothesis without the explain phase
        return
    unhelpful = getattr(scrutineer, "UNHELPFUL_LOCATIONS", None)
    if not isinstance(unhelpful, tuple):  # pragma: no cover - its shape changed
        return
    explorer_dir = Path(sys.modules["explorer"].__file__ or __file__).resolve().parent
    ours = sorted(f"{directory.as_posix()}/**"
                  for directory in {explorer_dir, Path(__file__).resolve().parent})
    # Hypothesis turns the patterns into one regular expression, escaping only dots: a
    # directory with other special characters is left out rather than breaking it.
    scrutineer.UNHELPFUL_LOCATIONS = unhelpful + tuple(
        pattern for pattern in ours
        if pattern not in unhelpful and _PLAIN_PATH.fullmatch(pattern[:-3]))


_quiet_explanations()

__all__ = ["DrawnSchedule", "schedules"]


class DrawnSchedule(Strategy):
    """A one-run strategy whose decisions come from a Hypothesis example."""

    name = "hypothesis"

    def __init__(self, data: st.DataObject, *, timer_races: bool = False,
                 faults: bool | Iterable[str] = False) -> None:
        self._data = data
        self.timer_races = timer_races
        self.faults = fault_kinds(faults)  # checked when the test runs, not when declared
        self.decisions: list[int] = []
        self._used = False

    def start_run(self) -> bool:
        if self._used:
            return False
        self._used = True
        return True

    def choose(self, count: int, view: PointView) -> int:
        # Straight from the choice sequence (an integer in range, shrinking towards 0),
        # without the per-draw printout of data.draw().
        conjecture = getattr(self._data, "conjecture_data", None)
        if conjecture is not None and hasattr(conjecture, "draw_integer"):
            choice = int(conjecture.draw_integer(0, count - 1))
        else:  # pragma: no cover - older Hypothesis
            choice = int(self._data.draw(st.integers(0, count - 1)))
        self.decisions.append(choice)
        return choice

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        # Hypothesis prints the falsifying example as it was drawn, before the run made
        # the schedule; a note is printed with it, after the run: the string to paste.
        with contextlib.suppress(InvalidArgument):  # outside a Hypothesis test: no notes
            note(f"schedule: {self.schedule}")

    @property
    def schedule(self) -> Schedule:
        """The decisions drawn so far, as a replayable schedule."""
        return Schedule.from_decisions(self.decisions, timers=self.timer_races,
                                       faults=self.faults)

    def describe(self) -> dict[str, Parameter]:
        return {"name": self.name}

    def __repr__(self) -> str:
        if not self._used:
            return "schedules() (not run yet)"
        return f"schedules() -> {self.schedule}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis prints a falsifying example with its pretty printer, which shows a
        # value made by st.builds as the call that built it (DrawnSchedule(data(...),
        # ...)) unless the value prints itself: the schedule string is what to paste.
        printer.text(repr(self))


def schedules(*, timer_races: bool = False, faults: bool | Iterable[str] = False
              ) -> st.SearchStrategy[DrawnSchedule]:
    """A Hypothesis strategy for schedules; pass the drawn value to ``explorer.replay``
    or ``explorer.run`` as the ``schedule``. ``timer_races`` and ``faults`` (True, or
    some of the kinds of :mod:`explorer._faults`) are the settings of the run it makes."""
    return st.builds(lambda data: DrawnSchedule(data, timer_races=timer_races, faults=faults),
                     st.data())
