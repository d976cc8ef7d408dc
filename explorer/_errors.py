"""The exception hierarchy of the explorer.

Every exception the explorer raises derives from :class:`ExplorerError`::

    ExplorerError
    ├── ScheduleFailure (also AssertionError)   the scenario failed under a schedule
    ├── UsageError (also TypeError)             the explorer was called the wrong way
    ├── InvalidScheduleError (also ValueError)  a schedule string could not be parsed
    ├── ReplayDivergence (also ValueError)      a schedule no longer fits the code
    ├── DidNotReproduce (also AssertionError)   a @reproduce schedule no longer fails
    ├── CorpusError (also ValueError)           a corpus file cannot be used
    ├── EscapeError (also RuntimeError)         the scenario used real I/O, threads or time
    └── RuntimeSelfTestError (also RuntimeError) the interpreter's asyncio is not one we can control

``ScheduleFailure`` is defined in :mod:`explorer._failure` because it carries the
outcome, schedule and trace of the failing run; ``CorpusError`` in
:mod:`explorer._corpus`, with the file it names.
"""

from __future__ import annotations


class ExplorerError(Exception):
    """Root of every exception raised by the explorer."""


class UsageError(ExplorerError, TypeError):
    """The explorer's API was called with something it cannot use."""


class InvalidScheduleError(ExplorerError, ValueError):
    """A schedule string is malformed or from a format this version cannot read."""


class ReplayDivergence(ExplorerError, ValueError):
    """Replaying a schedule reached a decision that does not fit the running code.

    ``step`` is the 0-based index of the scheduling point, ``expected`` the candidate
    index the schedule asked for and ``available`` how many candidates were there
    (0 when the run ended before the schedule's last recorded decision). ``reason`` says
    what did not fit and nothing more: the message adds advice for a replay after a code
    change, which a caller that knows better (a determinism check, the command line)
    replaces with its own.
    """

    def __init__(self, message: str, *, point: int, expected: int, available: int,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = message if reason is None else reason
        self.point = point
        self.expected = expected
        self.available = available


class DidNotReproduce(ExplorerError, AssertionError):
    """A schedule given to ``@explorer.reproduce`` no longer makes the scenario fail."""


class EscapeError(ExplorerError, RuntimeError):
    """The scenario tried to leave the controlled world (sockets, threads, real time).

    ``location`` is the user-code line that made the call, when it could be found.
    """

    location: object = None


class RuntimeSelfTestError(ExplorerError, RuntimeError):
    """The installed asyncio does not behave the way the controlled loop relies on."""


class HealthWarning(UserWarning):
    """The exploration ran, but probably not the way it was meant to (in the spirit of
    Hypothesis's health checks): no scheduling points, every schedule the same, or runs
    close to the step bound."""
