"""A deterministic schedule explorer for async Python.

The explorer replaces the event loop with a controlled one, so every interleaving of
coroutines at their awaits is an explicit sequence of decisions that can be searched,
replayed and read. Start with :func:`explore`.
"""

from __future__ import annotations

from explorer._corpus import Corpus, CorpusEntry, CorpusError
from explorer._engine import ExploreResult, RunResult, explore, replay, run
from explorer._errors import (
    DidNotReproduce,
    EscapeError,
    ExplorerError,
    HealthWarning,
    InvalidScheduleError,
    ReplayDivergence,
    RuntimeSelfTestError,
    UsageError,
)
from explorer._failure import ScheduleFailure
from explorer._invariants import always
from explorer._outcome import FAILURE_KINDS, Outcome
from explorer._regressions import CorpusReplay, pin, replay_corpus, reproduce
from explorer._runtime import Candidate, Location
from explorer._schedule import Schedule
from explorer._shrink import ShrinkReport
from explorer._trace import Step, Trace

__version__ = "0.1.0"

__all__ = [
    "FAILURE_KINDS",
    "Candidate",
    "Corpus",
    "CorpusEntry",
    "CorpusError",
    "CorpusReplay",
    "DidNotReproduce",
    "EscapeError",
    "ExploreResult",
    "ExplorerError",
    "HealthWarning",
    "InvalidScheduleError",
    "Location",
    "Outcome",
    "ReplayDivergence",
    "RunResult",
    "RuntimeSelfTestError",
    "Schedule",
    "ScheduleFailure",
    "ShrinkReport",
    "Step",
    "Trace",
    "UsageError",
    "__version__",
    "always",
    "explore",
    "pin",
    "replay",
    "replay_corpus",
    "reproduce",
    "run",
]
