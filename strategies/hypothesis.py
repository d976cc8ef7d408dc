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

from collections.abc import Iterable

from hypothesis import strategies as st

from explorer._faults import fault_kinds
from explorer._runtime import PointView
from explorer._schedule import Schedule
from explorer.strategies._base import Parameter, Strategy

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


def schedules(*, timer_races: bool = False, faults: bool | Iterable[str] = False
              ) -> st.SearchStrategy[DrawnSchedule]:
    """A Hypothesis strategy for schedules; pass the drawn value to ``explorer.replay``
    or ``explorer.run`` as the ``schedule``. ``timer_races`` and ``faults`` (True, or
    some of the kinds of :mod:`explorer._faults`) are the settings of the run it makes."""
    return st.builds(lambda data: DrawnSchedule(data, timer_races=timer_races, faults=faults),
                     st.data())
