"""Virtual time for controlled trio runs: time passes only when every task is blocked."""

from __future__ import annotations

import math

import trio


class VirtualClock(trio.abc.Clock):
    """A clock that the driver moves forward to the next deadline, never in real time.

    ``deadline_to_sleep_time`` reports how far away a deadline is in virtual seconds; the
    driver never sleeps for it but calls :meth:`advance_to` instead.
    """

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0

    def start_clock(self) -> None:
        self.now = 0.0

    def current_time(self) -> float:
        return self.now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return max(0.0, deadline - self.now)

    def advance_to(self, deadline: float) -> None:
        if deadline > self.now and not math.isinf(deadline):
            self.now = deadline

    def __repr__(self) -> str:
        return f"<VirtualClock t={self.now:g}>"
