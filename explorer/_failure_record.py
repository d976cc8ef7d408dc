"""A found failure as data: the typed record of what :meth:`ScheduleFailure.to_json` writes.

A failure crosses layers and files as a :class:`FailureRecord`: the job's result
(``explorer explore --json``), the nightly state and summary, the HTML report. A front end
that saved or can replay the failure hands it on as a :class:`FailureReport` (the record
plus its replay line, its corpus entry and, for ``--json``, the rendered message).

Invariants:

- ``to_json`` is the published JSON form, unchanged; ``from_json(to_json())`` gives an equal
  record, also through ``json.dumps``/``json.loads``.
- ``from_json`` reads input a person can hand over or edit (``summary.json``), so it checks
  the type of every field it reads and raises :class:`RecordError` naming the field
  (``outcome.location.line``); a missing optional field takes its default, unknown fields
  are ignored.
- An outcome's ``details`` differ per kind of failure and stay JSON (:data:`JsonValue`);
  what the report draws of them, a deadlock's wait-for graph, is read through the typed
  :class:`WaitFor`, checked when the record is read.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias, TypeVar

from explorer._errors import ExplorerError
from explorer._locations import Location
from explorer._outcome import Outcome
from explorer._shrink import DEFAULT_MAX_RUNS, DEFAULT_MAX_SECONDS, ShrinkReport
from explorer._trace import Step
from explorer.strategies._base import Parameter

JsonValue: TypeAlias = (
    "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None")
"""A value as JSON holds it."""

StrategyInfo: TypeAlias = dict[str, Parameter]
"""A strategy's parameters as :meth:`~explorer.strategies.Strategy.describe` gives them."""

_T = TypeVar("_T")

_FIX: Final = ("the JSON was not written by this explorer or was edited: give the file "
               "'explorer nightly' or 'explorer explore --json' wrote")


class RecordError(ExplorerError, ValueError):
    """A failure's (or a job result's) JSON does not have the shape this explorer writes."""


@dataclass(frozen=True, slots=True)
class Fields:
    """Checked reading of one JSON object: ``where`` names the record, ``prefix`` the path
    of this object inside it (``outcome.location.``), so an error names the exact field."""

    data: Mapping[str, object]
    where: str
    prefix: str = ""

    @classmethod
    def of(cls, data: object, where: str, prefix: str = "") -> Fields:
        if not isinstance(data, Mapping):
            name = prefix.rstrip(".") or "the record"
            raise RecordError(f"{where}: {name} is {type(data).__name__} "
                              f"{str(data)[:40]!r}, not an object; {_FIX}")
        return cls(data, where, prefix)

    def error(self, key: str, value: object, wanted: str) -> RecordError:
        return RecordError(f'{self.where}: field "{self.prefix}{key}" is '
                           f"{type(value).__name__} {str(value)[:40]!r}, not {wanted}; {_FIX}")

    def get(self, key: str, kinds: type[_T] | tuple[type, ...], wanted: str, default: _T
            ) -> _T:
        """``data[key]`` if it has one of ``kinds`` (``default`` when missing or null);
        a bool is not taken for a number."""
        value = self.data.get(key)
        if value is None:
            return default
        allowed = kinds if isinstance(kinds, tuple) else (kinds,)
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise self.error(key, value, wanted)
        return value  # type: ignore[return-value]

    def text(self, key: str, default: str = "") -> str:
        return self.get(key, str, "a string", default)

    def opt_text(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.text(key)

    def integer(self, key: str, default: int = 0) -> int:
        return self.get(key, int, "an integer", default)

    def opt_integer(self, key: str) -> int | None:
        return None if self.data.get(key) is None else self.integer(key)

    def number(self, key: str, default: float = 0.0) -> float:
        return float(self.get(key, (int, float), "a number", default))

    def flag(self, key: str, default: bool = False) -> bool:
        return self.get(key, bool, "true or false", default)

    def opt_flag(self, key: str) -> bool | None:
        return None if self.data.get(key) is None else self.flag(key)

    def obj(self, key: str) -> Fields | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(key, value, "an object")
        return Fields(value, self.where, f"{self.prefix}{key}.")

    def items(self, key: str) -> list[object]:
        return list(self.get(key, list, "a list", []))

    def objects(self, key: str) -> list[Fields]:
        found = []
        for index, item in enumerate(self.items(key)):
            if not isinstance(item, Mapping):
                raise self.error(f"{key}[{index}]", item, "an object")
            found.append(Fields(item, self.where, f"{self.prefix}{key}[{index}]."))
        return found

    def texts(self, key: str) -> tuple[str, ...]:
        items = self.items(key)
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise self.error(f"{key}[{index}]", item, "a string")
        return tuple(str(item) for item in items)

    def parameters(self, key: str) -> StrategyInfo:
        """An object of strategy parameters (strings, numbers, booleans, nulls)."""
        found = self.obj(key)
        if found is None:
            return {}
        out: StrategyInfo = {}
        for name, value in found.data.items():
            if value is not None and not isinstance(value, str | int | float | bool):
                raise found.error(str(name), value, "a string, number, boolean or null")
            out[str(name)] = value
        return out

    def text_map(self, key: str) -> dict[str, str]:
        """An object whose values are all strings (``{}`` when missing or null)."""
        found = self.obj(key)
        if found is None:
            return {}
        for name, value in found.data.items():
            if not isinstance(value, str):
                raise found.error(str(name), value, "a string")
        return {str(name): str(value) for name, value in found.data.items()}

    def json_object(self, key: str) -> dict[str, JsonValue]:
        found = self.obj(key)
        return {} if found is None else {
            str(k): _json_value(v, found, str(k)) for k, v in found.data.items()}


def _json_value(value: object, fields: Fields | None = None, key: str = "") -> JsonValue:
    """``value`` as JSON data: tuples become lists. Read from a file (``fields`` given),
    anything JSON cannot hold is an error; from a live outcome, it is written as text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_json_value(item, fields, f"{key}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, fields, f"{key}.{k}") for k, v in value.items()}
    if fields is not None:
        raise fields.error(key, value, "JSON data")
    return str(value)


# --------------------------------------------------------------------------- parts


@dataclass(frozen=True, slots=True)
class SavedLocation:
    """A source position as saved: the file's base name, the line and the function."""

    file: str
    line: int
    function: str

    @classmethod
    def of(cls, location: Location) -> SavedLocation:
        return cls(os.path.basename(location.filename), location.lineno, location.function)

    @property
    def short(self) -> str:
        """``file.py:12``, as :attr:`Location.short` gives it."""
        return f"{self.file}:{self.line}"

    def location(self) -> Location:
        return Location(self.file, self.line, self.function)

    def to_json(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "function": self.function}

    @classmethod
    def from_json(cls, fields: Fields | None) -> SavedLocation | None:
        if fields is None:
            return None
        return cls(fields.text("file"), fields.integer("line"), fields.text("function"))


def _saved(location: Location | None) -> SavedLocation | None:
    return SavedLocation.of(location) if location is not None else None


def _json(location: SavedLocation | None) -> dict[str, object] | None:
    return location.to_json() if location is not None else None


@dataclass(frozen=True, slots=True)
class SavedStep:
    """One step of a saved trace (:class:`explorer._trace.Step` with saved locations)."""

    index: int
    task: str
    kind: str
    start: SavedLocation | None
    end: SavedLocation | None
    operation: str | None = None
    resource: str | None = None
    decision: tuple[int, int] | None = None
    time: float = 0.0
    result: str | None = None
    preempted: str | None = None
    preempted_at: SavedLocation | None = None
    switch: bool = False
    foreign: bool = False
    site: SavedLocation | None = None
    call: str | None = None

    @classmethod
    def of(cls, step: Step) -> SavedStep:
        return cls(step.index, step.task, step.kind, _saved(step.start), _saved(step.end),
                   step.operation, step.resource, step.decision, step.time, step.result,
                   step.preempted, _saved(step.preempted_at), step.switch, step.foreign,
                   _saved(step.site), step.call)

    @property
    def deviated(self) -> bool:
        return self.decision is not None and self.decision[0] != 0

    def step(self) -> Step:
        """The trace step this was saved from (its locations keep base names only)."""
        def live(saved: SavedLocation | None) -> Location | None:
            return saved.location() if saved is not None else None

        return Step(self.index, self.task, self.kind, live(self.start), live(self.end),
                    self.operation, self.resource, self.decision, self.time, self.result,
                    self.preempted, live(self.preempted_at), self.switch, self.foreign,
                    live(self.site), self.call)

    def to_json(self) -> dict[str, object]:
        # The same keys, in the same order, as Step.to_json: the trace hash is over them.
        return {
            "index": self.index, "task": self.task, "kind": self.kind,
            "start": _json(self.start), "end": _json(self.end),
            "operation": self.operation, "resource": self.resource,
            "decision": list(self.decision) if self.decision else None,
            "time": self.time, "result": self.result, "preempted": self.preempted,
            "preempted_at": _json(self.preempted_at), "switch": self.switch,
            "foreign": self.foreign, "site": _json(self.site), "call": self.call,
        }

    @classmethod
    def from_json(cls, fields: Fields) -> SavedStep:
        decision: tuple[int, int] | None = None
        if fields.data.get("decision") is not None:
            match fields.items("decision"):
                case [int() as chosen, int() as count] if not isinstance(
                        chosen, bool) and not isinstance(count, bool):
                    decision = (chosen, count)
                case pair:
                    raise fields.error("decision", pair,
                                       "a pair of integers [chosen, count]")
        return cls(fields.integer("index"), fields.text("task"), fields.text("kind"),
                   SavedLocation.from_json(fields.obj("start")),
                   SavedLocation.from_json(fields.obj("end")),
                   fields.opt_text("operation"), fields.opt_text("resource"),
                   decision,
                   fields.number("time"), fields.opt_text("result"),
                   fields.opt_text("preempted"),
                   SavedLocation.from_json(fields.obj("preempted_at")),
                   fields.flag("switch"), fields.flag("foreign"),
                   SavedLocation.from_json(fields.obj("site")), fields.opt_text("call"))


@dataclass(frozen=True, slots=True)
class RaceRecord:
    """A conflicting pair of steps (:class:`explorer._races.Conflict`) as saved: the
    steps' indices, the sentence describing it, and its reversed replay's verdict."""

    first: int
    second: int
    description: str
    decides: bool | None = None
    reversed: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"first": self.first, "second": self.second,
                "description": self.description, "decides": self.decides,
                "reversed": self.reversed}

    @classmethod
    def from_json(cls, fields: Fields) -> RaceRecord:
        return cls(fields.integer("first"), fields.integer("second"), fields.text("description"),
                   fields.opt_flag("decides"), fields.opt_text("reversed"))


@dataclass(frozen=True, slots=True)
class WaitEdge:
    """An edge of a wait-for graph: ``source`` waits on / is held by ``target``."""

    source: str
    target: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class Wait:
    """What one blocked task waits on, and where."""

    task: str | None
    operation: str | None
    resource: str | None
    location: SavedLocation | None


@dataclass(frozen=True, slots=True)
class WaitFor:
    """A deadlock's wait-for graph as its outcome's ``details`` hold it: the ``cycle`` of
    tasks (empty for a lost wake-up), the labelled ``edges``, each blocked task's wait, and
    the tasks waiting for something nothing will do (``lost_wakeups``)."""

    cycle: tuple[str, ...]
    edges: tuple[WaitEdge, ...]
    waits: tuple[Wait, ...]
    lost_wakeups: tuple[str, ...]

    @classmethod
    def from_details(cls, details: Mapping[str, JsonValue], where: str = "failure"
                     ) -> WaitFor:
        fields = Fields(details, where, "outcome.details.")
        edges = []
        for index, edge in enumerate(fields.items("edges")):
            if not isinstance(edge, list) or len(edge) not in (2, 3) or not all(
                    isinstance(x, str) for x in edge):
                raise fields.error(f"edges[{index}]", edge,
                                   "a list [from, to, label] of strings")
            edges.append(WaitEdge(*(str(x) for x in edge)))
        waits = tuple(Wait(w.opt_text("task"), w.opt_text("operation"),
                           w.opt_text("resource"),
                           SavedLocation.from_json(w.obj("location")))
                      for w in fields.objects("waits"))
        return cls(fields.texts("cycle"), tuple(edges), waits, fields.texts("lost_wakeups"))


@dataclass(frozen=True)
class OutcomeRecord:
    """How the failing run ended (:class:`explorer._outcome.Outcome`) as saved."""

    kind: str
    message: str = ""
    location: SavedLocation | None = None
    exc_type: str | None = None
    details: Mapping[str, JsonValue] = field(default_factory=dict)

    @classmethod
    def of(cls, outcome: Outcome) -> OutcomeRecord:
        return cls(outcome.kind, outcome.message, _saved(outcome.location), outcome.exc_type,
                   {str(k): _json_value(v) for k, v in outcome.details.items()})

    @property
    def wait_for(self) -> WaitFor | None:
        """The wait-for graph of a deadlock (None when the details hold no edges)."""
        return WaitFor.from_details(self.details) if self.details.get("edges") else None

    def outcome(self) -> Outcome:
        loc = self.location.location() if self.location is not None else None
        return Outcome(self.kind, self.message, loc, self.exc_type, dict(self.details))

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message,
                "location": _json(self.location), "exc_type": self.exc_type,
                "details": dict(self.details)}

    @classmethod
    def from_json(cls, fields: Fields) -> OutcomeRecord:
        record = cls(fields.text("kind"), fields.text("message"),
                     SavedLocation.from_json(fields.obj("location")),
                     fields.opt_text("exc_type"), fields.json_object("details"))
        if record.details.get("edges"):
            WaitFor.from_details(record.details, fields.where)  # checked now, drawn later
        return record


def _shrink_json(report: ShrinkReport | None) -> dict[str, object] | None:
    return dataclasses.asdict(report) if report is not None else None


def _shrink(fields: Fields | None) -> ShrinkReport | None:
    if fields is None:
        return None
    return ShrinkReport(fields.integer("original_deviations"), fields.integer("deviations"),
                        fields.integer("original_steps"), fields.integer("steps"),
                        fields.integer("runs"), fields.flag("proven_minimal"),
                        fields.flag("budget_exhausted"),
                        # Counted since switches order the shrinker; absent before.
                        fields.opt_integer("original_switches"),
                        fields.opt_integer("switches"), fields.flag("switches_proven"),
                        fields.flag("deviations_proven"),
                        fields.integer("max_runs", DEFAULT_MAX_RUNS),
                        fields.number("max_seconds", DEFAULT_MAX_SECONDS),
                        fields.flag("deviations_cut"),
                        # Counted since detours come second in the order; absent before.
                        fields.opt_integer("original_detours"),
                        fields.opt_integer("detours"), fields.flag("detours_proven"))


# --------------------------------------------------------------------------- the failure


@dataclass(frozen=True)
class FailureRecord:
    """A failure as data: everything :meth:`ScheduleFailure.to_json` writes, typed.

    ``trace`` is None when it was left out of the JSON (a job's result without traces);
    ``trace_hash`` is the hash of the whole trace, also when ``trace`` is an excerpt.
    ``conflicts`` and ``deciding`` are the sentences of the conflicting pairs (all, then
    those whose order decided the failure); ``races`` the pairs with their verdicts.
    ``labels`` names tasks for people (``Trace.labels``: a task as steps name it -> what it
    is, such as ``POST /redeem/WELCOME10 #2 → redeem``). ``switches`` is the schedule's
    switch count (:mod:`explorer._switches`; None when it was not counted).
    """

    scenario: str
    runtime: str
    schedule: str
    found_after: int
    deviations: int
    strategy: Mapping[str, Parameter]
    outcome: OutcomeRecord
    trace: tuple[SavedStep, ...] | None
    trace_hash: str
    explanation: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    deciding: tuple[str, ...] = ()
    races: tuple[RaceRecord, ...] = ()
    shrink: ShrinkReport | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    switches: int | None = None

    @property
    def steps(self) -> tuple[SavedStep, ...]:
        return self.trace or ()

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "scenario": self.scenario, "runtime": self.runtime, "schedule": self.schedule,
            "found_after": self.found_after, "deviations": self.deviations,
            "strategy": dict(self.strategy), "outcome": self.outcome.to_json(),
            "trace": [s.to_json() for s in self.trace] if self.trace is not None else None,
            "trace_hash": self.trace_hash, "explanation": list(self.explanation),
            "conflicts": list(self.conflicts), "deciding": list(self.deciding),
            "races": [r.to_json() for r in self.races],
            "shrink": _shrink_json(self.shrink),
            "labels": dict(self.labels), "switches": self.switches,
        }
        if self.trace is None:
            del data["trace"]
        return data

    @classmethod
    def from_json(cls, data: object, where: str = "failure") -> FailureRecord:
        """The record of ``data``; :class:`RecordError` naming the field if it is not one."""
        fields = Fields.of(data, where)
        outcome = fields.obj("outcome")
        if outcome is None:
            raise fields.error("outcome", None, "an object")
        trace = None if fields.data.get("trace") is None else tuple(
            SavedStep.from_json(s) for s in fields.objects("trace"))
        return cls(fields.text("scenario"), fields.text("runtime", "asyncio"),
                   fields.text("schedule"), fields.integer("found_after", 1),
                   fields.integer("deviations"), fields.parameters("strategy"),
                   OutcomeRecord.from_json(outcome), trace, fields.text("trace_hash"),
                   fields.texts("explanation"), fields.texts("conflicts"),
                   fields.texts("deciding"),
                   tuple(RaceRecord.from_json(r) for r in fields.objects("races")),
                   _shrink(fields.obj("shrink")), fields.text_map("labels"),
                   fields.opt_integer("switches"))


@dataclass(frozen=True)
class FailureReport:
    """A failure as a front end hands it on: its ``record``, the line that replays it, the
    corpus entry it was saved to (``new_in_corpus``: the entry is new), and, in
    ``explorer explore --json``, the rendered ``message``. Its JSON is the record's with
    these fields added."""

    record: FailureRecord
    replay: str | None = None
    corpus_path: str | None = None
    new_in_corpus: bool = False
    message: str | None = None

    def to_json(self) -> dict[str, object]:
        data = self.record.to_json()
        if self.message is not None:
            data["message"] = self.message
        data.update(replay=self.replay, corpus_path=self.corpus_path,
                    new_in_corpus=self.new_in_corpus)
        return data

    @classmethod
    def from_json(cls, data: object, where: str = "failure") -> FailureReport:
        fields = Fields.of(data, where)
        return cls(FailureRecord.from_json(data, where), fields.opt_text("replay"),
                   fields.opt_text("corpus_path"), fields.flag("new_in_corpus"),
                   fields.opt_text("message"))


def cut_trace(steps: Sequence[SavedStep], keep_each_end: int) -> tuple[SavedStep, ...]:
    """``steps`` cut to the first and last ``keep_each_end`` and every deviation (step
    indices show the gaps)."""
    if len(steps) <= 2 * keep_each_end:
        return tuple(steps)
    ends = [*steps[:keep_each_end], *steps[-keep_each_end:]]
    keep = {s.index for s in ends} | {s.index for s in steps if s.deviated}
    return tuple(s for s in steps if s.index in keep)
