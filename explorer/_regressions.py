"""Keeping found failures: ``@reproduce``, ``@pin`` and replaying a corpus.

``@explorer.reproduce("v1:...")`` on a scenario makes ``explore`` run exactly that schedule
and nothing else (and say so if it no longer fails), like Hypothesis's
``@reproduce_failure``. ``@explorer.pin("v1:...", ...)`` keeps schedules as permanent
regression cases that ``explore`` runs before searching, like Hypothesis's ``@example``.
:func:`replay_corpus` replays every saved corpus entry and says, for each, whether it still
fails, now passes, no longer fits the code, or cannot be read.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from explorer._corpus import Corpus, CorpusEntry, CorpusError
from explorer._errors import ReplayDivergence, UsageError
from explorer._schedule import Schedule

REPRODUCE_ATTR: Final = "__explorer_reproduce__"
PINS_ATTR: Final = "__explorer_pins__"

_F = TypeVar("_F", bound=Callable[..., Any])

FAILS: Final = "fails"
FIXED: Final = "fixed"
DIVERGED: Final = "diverged"
UNREADABLE: Final = "unreadable"
NEWER_FORMAT: Final = "newer-format"
MISSING: Final = "missing"


def reproduce(schedule: Schedule | str) -> Callable[[_F], _F]:
    """Make ``explore`` run only ``schedule`` on the decorated scenario."""
    parsed = Schedule.coerce(schedule)

    def decorate(fn: _F) -> _F:
        setattr(fn, REPRODUCE_ATTR, parsed)
        return fn

    return decorate


def pin(*schedules: Schedule | str) -> Callable[[_F], _F]:
    """Make ``explore`` run these schedules first, every time, on the decorated scenario."""
    if not schedules:
        raise UsageError("explorer.pin() needs at least one schedule string, like "
                         "@explorer.pin('v1:3=1')")
    parsed = tuple(Schedule.coerce(s) for s in schedules)

    def decorate(fn: _F) -> _F:
        setattr(fn, PINS_ATTR, (*getattr(fn, PINS_ATTR, ()), *parsed))
        return fn

    return decorate


@dataclass(frozen=True)
class CorpusReplay:
    """How one corpus entry replayed: ``status`` is ``fails`` (``same`` tells whether in
    the saved way), ``fixed``, ``diverged``, ``unreadable``, ``newer-format`` or
    ``missing`` (the scenario cannot be found)."""

    path: Path
    status: str
    detail: str
    entry: CorpusEntry | None = None
    failure: Any = None  # ScheduleFailure when status == "fails"
    same: bool = False


def resolve_scenario(name: str) -> Callable[..., Any]:
    """Import ``package.module.function`` (or ``module.Class.method``) by its dotted name."""
    if "<locals>" in name:
        raise LookupError(f"{name} is defined inside a function and cannot be imported; "
                          "define scenarios at module level to replay them from a corpus")
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        if callable(obj):
            return obj  # type: ignore[no-any-return]
    raise LookupError(f"no scenario named {name} can be imported")


def replay_entry(entry: CorpusEntry, fn: Callable[..., Any], *,
                 strict: bool = True) -> CorpusReplay:
    """Replay one entry against ``fn``."""
    from explorer._engine import run, scenario_name
    from explorer._failure import ScheduleFailure

    try:
        result = run(fn, schedule=entry.schedule, runtime=entry.runtime, strict=strict,
                     expected=entry.expected_tasks() if strict else None)
    except ReplayDivergence as err:
        return CorpusReplay(entry.path, DIVERGED, str(err), entry)
    if not result.outcome.failed:
        return CorpusReplay(entry.path, FIXED,
                            f"passes now: the {entry.kind} it recorded is fixed; delete "
                            f"{entry.path} or keep the schedule with @explorer.pin", entry)
    failure = ScheduleFailure(result.outcome, entry.schedule, result.trace,
                              scenario=scenario_name(fn), strategy={"name": "corpus"},
                              runtime=entry.runtime)
    same = result.outcome.signature() == entry.signature()
    saved = entry.failure.get("location") or {}
    detail = ("still fails as saved" if same else
              f"fails differently: {result.outcome.kind} at "
              f"{result.outcome.location.short if result.outcome.location else '?'} "
              f"(saved: {entry.kind} at {saved.get('file', '?')}:{saved.get('line', '?')})")
    return CorpusReplay(entry.path, FAILS, detail, entry, failure, same)


def replay_corpus(directory: str | os.PathLike[str] = "corpus", *,
                  resolve: Callable[[str], Callable[..., Any]] = resolve_scenario,
                  strict: bool = True) -> list[CorpusReplay]:
    """Replay every entry of a corpus directory; bad files are reported, not fatal."""
    reports: list[CorpusReplay] = []
    for item in Corpus(directory).entries():
        if isinstance(item, CorpusError):
            status = NEWER_FORMAT if item.status == NEWER_FORMAT else UNREADABLE
            reports.append(CorpusReplay(item.path, status, str(item)))
            continue
        try:
            fn = resolve(item.scenario)
        except LookupError as err:
            reports.append(CorpusReplay(item.path, MISSING, str(err), item))
            continue
        reports.append(replay_entry(item, fn, strict=strict))
    return reports
