"""The strategy interface: how the next run's decisions are chosen.

A strategy sees only candidate counts, a :class:`~explorer._runtime.PointView` it may ask for
candidate descriptions, and, after each run, the run's decisions and whether it failed. It
knows nothing about asyncio or trio.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any


class Strategy(ABC):
    """Decides the candidate at every scheduling point, across many runs.

    Call order per run: :meth:`start_run` (False means nothing is left to explore), then
    :meth:`choose` at each scheduling point, then :meth:`end_run`.
    """

    name: str = "strategy"

    @abstractmethod
    def start_run(self) -> bool:
        """Prepare the next run; return False when the strategy has nothing left to run."""

    @abstractmethod
    def choose(self, count: int, view: Any) -> int:
        """Pick an index in ``range(count)`` (``count >= 2``). Called on the hot path."""

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

    def describe(self) -> dict[str, Any]:
        """Parameters that reproduce this strategy (recorded with failures).

        Called when a failure is found, so a strategy that combines others (a portfolio)
        can name the one that made the failing schedule."""
        return {"name": self.name}

    def statistics(self) -> dict[str, Any]:
        """Counters about the runs so far (for example each sub-strategy's share)."""
        return {}
