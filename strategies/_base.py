"""The strategy interface: how the next run's decisions are chosen.

A strategy sees only candidate counts, a :class:`~explorer._runtime.PointView` it may ask for
candidate descriptions, and, after each run, the run's decisions and whether it failed (and,
for a strategy that asks for footprints, the run's step records). It knows nothing about
asyncio or trio: no strategy module imports a runtime or the monitoring machinery.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

from explorer._footprint import StepRecord
from explorer._runtime import PointView

Parameter = str | int | float | bool | None
"""The value of one parameter in :meth:`Strategy.describe`: plain JSON data."""

Statistic = int | float | str | bool | None | Mapping[str, "Statistic"]
"""The value of one counter in :meth:`Strategy.statistics`: a number, or counters by name
(a portfolio's per-member shares)."""

Splitting = Literal["partition", "seeded", "whole"]
"""How the parallel job shares one strategy's work among ``count`` workers:

``partition``
    each worker runs a share of one space (the strategy takes ``partition=(index,
    count)``; DPOR is dealt its share by :meth:`~explorer.strategies.DPOR.deal`);
``seeded``
    each worker runs chunks of runs under seeds of its own (the strategy takes ``seed=``);
``whole``
    the strategy cannot be split: worker 0 runs all of it.
"""


class Strategy(ABC):
    """Decides the candidate at every scheduling point, across many runs.

    Call order per run: :meth:`start_run` (False means nothing is left to explore), then
    :meth:`choose` at each scheduling point, then :meth:`end_run`.
    """

    name: str = "strategy"

    # Capabilities, declared here so that the engine and the parallel job never probe a
    # strategy for optional methods.
    footprints: str | None = None
    """The footprint model the engine must record for :meth:`observe` to learn from
    (``"conservative"``, ``"declared"`` or ``"auto"``), or None: no footprints needed."""
    timer_races: bool = False
    """Whether the runs this strategy decides offer "fire the next timer now" candidates
    (a strategy that carries its own setting, such as a drawn Hypothesis schedule)."""
    faults: frozenset[str] = frozenset()
    """The network fault kinds the runs this strategy decides offer at fault points
    (:mod:`explorer._faults`), when it carries its own setting as :attr:`timer_races`
    does; empty: no fault point."""
    splitting: ClassVar[Splitting] = "whole"
    """How the parallel job shares this strategy's work among workers (:data:`Splitting`)."""

    @abstractmethod
    def start_run(self) -> bool:
        """Prepare the next run; return False when the strategy has nothing left to run."""

    @abstractmethod
    def choose(self, count: int, view: PointView) -> int:
        """Pick an index in ``range(count)`` (``count >= 2``). Called on the hot path."""

    @property
    def footprint_models(self) -> frozenset[str]:
        """Every footprint model some run of this strategy may ask for
        (:meth:`run_footprints`), known before the first run: the engine prepares the
        recording once for the whole exploration. Default: :attr:`footprints`, if set."""
        return frozenset() if self.footprints is None else frozenset((self.footprints,))

    def run_footprints(self) -> str | None:
        """The footprint model to record for the run :meth:`start_run` just prepared, or
        None: record nothing for it. Default: :attr:`footprints`, every run alike; a
        strategy that combines others (a portfolio) answers for the member whose turn it
        is, so that recording costs only in that member's runs."""
        return self.footprints

    def observe(self, steps: Sequence[StepRecord]) -> None:  # noqa: B027
        """Learn the finished run's recorded steps, before :meth:`end_run`.

        Called only after a run for which :meth:`run_footprints` named a model (and the
        engine could record it); ``steps`` are the run's
        :class:`~explorer._footprint.StepRecord` list (default: nothing to learn)."""

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:  # noqa: B027
        """Learn from the finished run (default: nothing to learn)."""

    @property
    def exhausted(self) -> bool:
        """True when every schedule the strategy promises to cover has been run."""
        return False

    @property
    def counts_as_schedule(self) -> bool:
        """False for a run that re-executes an already counted schedule (a probe)."""
        return True

    def coverage(self) -> str:
        """An honest sentence about what the runs so far covered."""
        return "a sample of schedules"

    def describe(self) -> dict[str, Parameter]:
        """Parameters that reproduce this strategy (recorded with failures).

        Called when a failure is found, so a strategy that combines others (a portfolio)
        can name the one that made the failing schedule."""
        return {"name": self.name}

    def statistics(self) -> dict[str, Statistic]:
        """Counters about the runs so far (for example each sub-strategy's share)."""
        return {}
