"""A deterministic schedule explorer for async Python.

The explorer replaces the event loop with a controlled one, so every interleaving of
coroutines at their awaits is an explicit sequence of decisions that can be searched,
replayed and read. Start with :func:`explore`.

Names are loaded on first use, so that importing the package (as the pytest plugin's entry
point does in every test run) costs next to nothing until the explorer is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from explorer._version import __version__ as __version__

if TYPE_CHECKING:
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
    from explorer._explored import explored
    from explorer._failure import ScheduleFailure
    from explorer._footprint import shared
    from explorer._interrupts import ExplorationInterrupted
    from explorer._invariants import always
    from explorer._linearize import (
        LinearizabilityResult,
        LinScenario,
        Operation,
        check_linearizable,
        linearizability_scenarios,
        operation,
        replay_linearizability,
    )
    from explorer._linearize._http import (
        HttpResult,
        aiohttp_client,
        asgi_client,
        http_operation,
        ignore_fields,
    )
    from explorer._linearize._pytest import LinearizabilityCheck
    from explorer._network import alias
    from explorer._outcome import FAILURE_KINDS, Outcome
    from explorer._regressions import (
        CorpusReplay,
        pin,
        replay_corpus,
        replay_entry,
        reproduce,
    )
    from explorer._runtime import Candidate, Location
    from explorer._schedule import Schedule
    from explorer._settings import Settings, get_profile, register_profile
    from explorer._shrink import ShrinkReport
    from explorer._trace import Step, Trace


_WHERE: dict[str, str] = {
    "Corpus": "_corpus", "CorpusEntry": "_corpus", "CorpusError": "_corpus",
    "ExploreResult": "_engine", "RunResult": "_engine", "explore": "_engine",
    "replay": "_engine", "run": "_engine",
    "DidNotReproduce": "_errors", "EscapeError": "_errors", "ExplorerError": "_errors",
    "HealthWarning": "_errors", "InvalidScheduleError": "_errors",
    "ReplayDivergence": "_errors", "RuntimeSelfTestError": "_errors",
    "UsageError": "_errors",
    "explored": "_explored",
    "ScheduleFailure": "_failure",
    "shared": "_footprint",
    "always": "_invariants",
    "LinearizabilityResult": "_linearize", "LinScenario": "_linearize",
    "Operation": "_linearize", "check_linearizable": "_linearize",
    "linearizability_scenarios": "_linearize", "operation": "_linearize",
    "replay_linearizability": "_linearize",
    "LinearizabilityCheck": "_linearize._pytest",
    "HttpResult": "_linearize._http", "asgi_client": "_linearize._http",
    "aiohttp_client": "_linearize._http",
    "http_operation": "_linearize._http", "ignore_fields": "_linearize._http",
    "alias": "_network",
    "ExplorationInterrupted": "_interrupts",
    "FAILURE_KINDS": "_outcome", "Outcome": "_outcome",
    "CorpusReplay": "_regressions", "pin": "_regressions", "replay_corpus": "_regressions",
    "replay_entry": "_regressions", "reproduce": "_regressions",
    "Candidate": "_runtime", "Location": "_runtime",
    "Schedule": "_schedule",
    "Settings": "_settings", "get_profile": "_settings", "register_profile": "_settings",
    "ShrinkReport": "_shrink",
    "Step": "_trace", "Trace": "_trace",
}

__all__ = [
    "FAILURE_KINDS",
    "alias",
    "aiohttp_client",
    "asgi_client",
    "http_operation",
    "HttpResult",
    "ignore_fields",
    "always",
    "Candidate",
    "check_linearizable",
    "Corpus",
    "CorpusEntry",
    "CorpusError",
    "CorpusReplay",
    "DidNotReproduce",
    "EscapeError",
    "ExplorationInterrupted",
    "explore",
    "explored",
    "ExplorerError",
    "ExploreResult",
    "HealthWarning",
    "InvalidScheduleError",
    "LinearizabilityCheck",
    "LinearizabilityResult",
    "linearizability_scenarios",
    "LinScenario",
    "Location",
    "operation",
    "Operation",
    "Outcome",
    "pin",
    "replay",
    "replay_corpus",
    "replay_entry",
    "replay_linearizability",
    "ReplayDivergence",
    "reproduce",
    "run",
    "RunResult",
    "RuntimeSelfTestError",
    "Schedule",
    "ScheduleFailure",
    "Settings",
    "get_profile",
    "register_profile",
    "shared",
    "ShrinkReport",
    "Step",
    "Trace",
    "UsageError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'explorer' has no attribute {name!r}")
    # Not cached on the package: a name always comes from the module now in sys.modules,
    # so a test harness that unloads modules between runs (pytester) never mixes classes
    # of two imports of the same module.
    return getattr(importlib.import_module(f"explorer.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
