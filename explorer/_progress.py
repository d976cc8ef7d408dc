"""Progress bars of the command line: schedules done, rate, failures, time left.

Invariant: progress goes to stderr only, and only when it is wanted (a terminal, or
``EXPLORER_PROGRESS=1``), so stdout stays the command's result (``--json`` stays pure JSON).
Each bar counts the failures of its own piece of work; the overall bar of a job counts
them all. ``rich`` is imported only when a bar is drawn.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from explorer._nightly import Progress as NightlyProgress
from explorer._summary import SliceResult

if TYPE_CHECKING:
    from rich.progress import ProgressColumn


def progress_enabled() -> bool:
    """``EXPLORER_PROGRESS`` if it says yes or no, else whether stderr is a terminal."""
    setting = os.environ.get("EXPLORER_PROGRESS", "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    return sys.stderr.isatty()


class Bars:
    """Rich progress bars on stderr: one per piece of work (a target, a slice), and an
    optional overall bar above them for a whole job."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = progress_enabled() if enabled is None else enabled
        self.failures = 0  # of the whole command, shown on the overall bar
        self._current_failures = 0  # of the current bar only
        # rich's Progress and its task ids; rich is imported only when enabled.
        self._progress: Any = None
        self._task: Any = None
        self._overall: Any = None

    def __enter__(self) -> Bars:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn
            from rich.table import Column

            forced = os.environ.get("EXPLORER_PROGRESS", "").strip() == "1"
            self._progress = Progress(
                TextColumn("{task.description}", table_column=Column(
                    max_width=48, no_wrap=True, overflow="ellipsis")),
                BarColumn(bar_width=24),
                TextColumn("{task.completed:>9,.0f} {task.fields[unit]}"), rate_column(),
                TextColumn("{task.fields[failures]} failure(s)"), left_column(),
                console=Console(stderr=True, force_terminal=forced or None),
                refresh_per_second=5)
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, description: str, *, total: int | None = None,
              seconds: float | None = None, keep: bool = True) -> None:
        """A bar for the next piece of work, starting at 0 failures; ``keep=False``
        removes the previous one."""
        self._current_failures = 0
        if self._progress is None:
            return
        if self._task is not None:
            if keep:
                self._progress.stop_task(self._task)
            else:
                self._progress.remove_task(self._task)
        deadline = time.monotonic() + seconds if seconds is not None else None
        self._task = self._progress.add_task(description, total=total, unit="schedules",
                                             failures=0, deadline=deadline)

    def overall(self, description: str, *, total: int, done: int, seconds: float) -> None:
        """A bar above the others for a whole job (the nightly run's slices)."""
        if self._progress is not None:
            self._overall = self._progress.add_task(
                description, total=total, completed=done, failures=self.failures,
                deadline=time.monotonic() + seconds, unit="slices")

    def step_overall(self) -> None:
        if self._progress is not None and self._overall is not None:
            self._progress.update(self._overall, advance=1, failures=self.failures)

    def advance(self, schedules: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=schedules,
                                  failures=self._current_failures)

    def failed(self) -> None:
        """The current piece of work failed: counted on its bar and on the overall one."""
        self.failures += 1
        self._current_failures += 1
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.update(self._task, failures=self._current_failures)
        if self._overall is not None:
            self._progress.update(self._overall, failures=self.failures)


def rate_column() -> ProgressColumn:
    """Schedules per second of a bar counting schedules (blank for other units)."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            if task.fields.get("unit") != "schedules":
                return Text("")
            elapsed = task.finished_time if task.finished else task.elapsed
            speed = task.completed / elapsed if elapsed else None
            return Text(f"{speed:>8,.0f}/s" if speed else "       -/s")

    return RateColumn()


def left_column() -> ProgressColumn:
    """Time left: to the bar's deadline when it has one, else rich's estimate."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class LeftColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            deadline = task.fields.get("deadline")
            if task.finished:
                return Text("done")
            if deadline is not None:
                left: float | None = max(0.0, deadline - time.monotonic())
            else:
                left = task.time_remaining
            return Text("" if left is None else f"{left:,.0f}s left")

    return LeftColumn()


class NightlyBars(NightlyProgress):
    """Adapts the nightly job's progress events to :class:`Bars`: a bar per slice."""

    def __init__(self, bars: Bars) -> None:
        self.bars = bars

    def slice_started(self, number: int, total: int, label: str, seconds: float | None
                      ) -> None:
        self.bars.start(f"[{number}/{total}] {label}", seconds=seconds, keep=False)

    def schedules(self, count: int) -> None:
        self.bars.advance(count)

    def slice_finished(self, result: SliceResult) -> None:
        if result.failure is not None and result.kind == "explore":
            self.bars.failed()
        self.bars.step_overall()
