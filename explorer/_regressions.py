"""Keeping found failures: ``@reproduce``, ``@pin`` and replaying a corpus.

``@explorer.reproduce("v1:...")`` on a scenario makes ``explore`` run exactly that schedule
and nothing else (and say so if it no longer fails), like Hypothesis's
``@reproduce_failure``. ``@explorer.pin("v1:...", ...)`` keeps schedules as permanent
regression cases that ``explore`` runs before searching, like Hypothesis's ``@example``.
:func:`replay_corpus` replays every saved corpus entry and gives each exactly one status
(:data:`STATUSES`): it still fails, now passes, no longer fits the code, names no scenario
it was given, cannot run, or cannot be read.

Invariant: a corpus entry only ever runs a scenario the caller handed over
(:class:`Scenarios`), matched by the name the entry records. Nothing is imported or looked
up because a file names it: corpus files are untrusted input.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from explorer._corpus import (
    DIVERGED,
    ERROR,
    FAILS,
    FIXED,
    NEWER_FORMAT,
    STATUSES,
    UNKNOWN_SCENARIO,
    UNREADABLE,
    Corpus,
    CorpusEntry,
    CorpusError,
)
from explorer._errors import ReplayDivergence, UsageError
from explorer._scenario import PINS_ATTR, REPRODUCE_ATTR, pin, reproduce, scenario_name

# Names this module has always offered (the package exports pin and reproduce from here).
__all__ = [
    "DIVERGED", "ERROR", "FAILS", "FIXED", "NEWER_FORMAT", "PINS_ATTR", "REPRODUCE_ATTR",
    "STATUSES", "UNKNOWN_SCENARIO", "UNREADABLE", "CorpusReplay", "Scenarios",
    "ScenariosLike", "pin", "replay_corpus", "replay_entry", "replay_one", "reproduce",
    "unknown_detail",
]


@dataclass(frozen=True)
class CorpusReplay:
    """How one corpus entry replayed. ``status`` is one of :data:`STATUSES`: ``fails``
    (``same`` tells whether in the saved way), ``fixed``, ``diverged``, ``error`` (the
    scenario it names cannot run: not async, does not import, raised outside the run),
    ``unknown-scenario`` (no scenario given has its name), ``unreadable`` or
    ``newer-format``."""

    path: Path
    status: str
    detail: str
    entry: CorpusEntry | None = None
    failure: Any = None  # ScheduleFailure when status == "fails"
    same: bool = False


@dataclass(frozen=True)
class Scenarios:
    """The scenarios a corpus may run, by the name entries record (``module.qualname``).

    Built only from what the user configured or named (functions passed to
    :func:`replay_corpus`, command-line targets, ``[tool.explorer] targets``, marked tests
    pytest collects), never from a name read in a file. ``broken`` maps the names of
    configured scenarios that cannot run to why, so that their entries say so.
    """

    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    broken: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, scenarios: ScenariosLike) -> Scenarios:
        """Accept :class:`Scenarios`, a mapping name -> function, or scenario functions
        (each is named as ``explore`` names it when saving)."""
        if isinstance(scenarios, Scenarios):
            return scenarios
        given: object = scenarios  # the annotation excludes these; callers may not heed it
        if isinstance(given, str) or callable(given):
            raise UsageError(
                f"replay_corpus(scenarios=...) got {given!r}, one "
                f"{'name' if isinstance(given, str) else 'function'}; it takes the "
                "scenario functions themselves, as a list (scenarios=[test_transfer]) or a "
                "mapping from the names entries record to functions")
        if isinstance(scenarios, Mapping):
            for name, fn in scenarios.items():
                if not isinstance(name, str) or not callable(fn):
                    raise UsageError(f"replay_corpus(scenarios=...) maps {name!r} to "
                                     f"{fn!r}; it must map scenario names to functions")
            return cls(dict(scenarios))
        functions: dict[str, Callable[..., Any]] = {}
        for fn in scenarios:
            if not callable(fn):
                raise UsageError(f"replay_corpus(scenarios=...) got {fn!r}, which is not a "
                                 "function; pass the scenario functions themselves")
            functions[scenario_name(fn)] = fn
        return cls(functions)

    def __len__(self) -> int:
        return len(self.functions) + len(self.broken)


ScenariosLike: TypeAlias = (
    "Scenarios | Mapping[str, Callable[..., Any]] | Iterable[Callable[..., Any]]")


def replay_entry(entry: CorpusEntry, fn: Callable[..., Any], *,
                 strict: bool = True) -> CorpusReplay:
    """Replay one entry against ``fn``."""
    from explorer._engine import run
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
    saved = entry.saved.location
    detail = ("still fails as saved" if same else
              f"fails differently: {result.outcome.kind} at "
              f"{result.outcome.location.short if result.outcome.location else '?'} "
              f"(saved: {entry.kind} at {saved.short if saved else '?'})")
    return CorpusReplay(entry.path, FAILS, detail, entry, failure, same)


def unknown_detail(name: str) -> str:
    return (f"no scenario named {name} was given, so nothing was run (a corpus never imports "
            "what its files name): give the scenario as a target, list it in "
            "[tool.explorer] targets, mark its test @pytest.mark.explore, or pass the "
            "function in replay_corpus(scenarios=...)")


def linearizability_detail(name: str, path: Path,
                           in_pytest: Mapping[str, str] | None = None) -> str:
    """Why a linearizability check's entry is not replayed in a verify slice, and how it is.

    The entry names the check's factory (``<module>.<factory>.linearizability``) and holds
    the scenario as data; replaying it takes the factory, the operations and the check's
    ``model``/``normalize``, which are code the entry does not (and must not) hold. A
    plain target cannot stand in: a check runs explorations of its own, which cannot
    start inside an explored scenario. So the test that runs the check replays it.
    """
    factory = name.removesuffix(".linearizability")
    how = (f"replayed by the test that checks {factory} with the linearizability fixture: "
           "pytest replays a check's saved entries before it explores (")
    if in_pytest:  # the nightly job knows the pytest targets of its run
        tests = ", ".join(sorted(in_pytest.values())[:3]) + (
            ", ..." if len(in_pytest) > 3 else "")
        how += (f"if that test is one of this run's pytest targets ({tests}), its explore "
                "slice replays it; otherwise ")
    return (f"a linearizability check's failure, not run here: {how}mark that test "
            "@pytest.mark.explore so the nightly job runs it, or run it with pytest). "
            f"Outside pytest: explorer.replay_linearizability(factory, operations, "
            f"explorer.Corpus('{path.parent}').load('{path}')), with the operations, "
            "model and normalize the check was given")


def replay_one(item: CorpusEntry | CorpusError, scenarios: Scenarios, *,
               strict: bool = True) -> CorpusReplay:
    """The one status of one corpus item: whatever happens, a report, never an exception
    (but ``KeyboardInterrupt`` and other exits of the process itself)."""
    if isinstance(item, CorpusError):
        status = NEWER_FORMAT if item.status == NEWER_FORMAT else UNREADABLE
        return CorpusReplay(item.path, status, str(item))
    if item.scenario in scenarios.broken:
        return CorpusReplay(item.path, ERROR, f"the scenario {item.scenario} cannot run: "
                            f"{scenarios.broken[item.scenario]}", item)
    fn = scenarios.functions.get(item.scenario)
    if fn is None:
        detail = (linearizability_detail(item.scenario, item.path)
                  if "linearizability" in item.data else unknown_detail(item.scenario))
        return CorpusReplay(item.path, UNKNOWN_SCENARIO, detail, item)
    try:
        return replay_entry(item, fn, strict=strict)
    except Exception as exc:  # noqa: BLE001 - one entry's problem must not stop the others
        return CorpusReplay(item.path, ERROR, f"replaying {item.scenario} raised "
                            f"{type(exc).__name__}: {exc}", item)


def replay_corpus(directory: str | os.PathLike[str] = "corpus", *,
                  scenarios: ScenariosLike, strict: bool = True) -> list[CorpusReplay]:
    """Replay every entry of a corpus directory against the ``scenarios`` given.

    ``scenarios`` are the functions entries may run (a list such as ``[test_transfer]``,
    or a mapping from recorded names to functions); an entry is matched to one by the
    name it records, and one that matches none is reported ``unknown-scenario``. Every
    entry gets exactly one report, whatever the others do.
    """
    known = Scenarios.of(scenarios)
    return [replay_one(item, known, strict=strict) for item in Corpus(directory).entries()]
