"""The records the nightly job, the command line and the HTML report exchange, typed.

The nightly job keeps its state (:class:`NightlyState`: the plan of :class:`Slice` and one
:class:`SliceResult` per finished slice) and writes its :class:`Summary` (rows per scenario,
per corpus entry and per distinct failure) as JSON; the command line prints them and the
HTML report draws them. Every record has ``to_json`` and ``from_json``, and the JSON is the
published file format (``state.json``, ``summary.json``), unchanged.

Invariant: ``from_json`` reads files a person can hand over (``explorer report
summary.json``), so it checks the type of every field it reads and raises
:class:`SummaryError` naming the field; a missing optional field takes its default (older
summaries and hand-written ones lack some). A failure's detail is a
:class:`~explorer._failure_record.FailureReport` (the JSON of
:meth:`ScheduleFailure.to_json` plus ``replay``, ``corpus_path``, ``new_in_corpus``), with
the trace cut to an excerpt, checked the same way.
"""

from __future__ import annotations

import dataclasses
import json
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Final, TypeVar

from explorer._errors import ExplorerError
from explorer._failure_record import FailureReport, RecordError
from explorer._files import file_kind
from explorer._targets import TargetRef, replay_command

STATE_FORMAT: Final = "explorer-nightly-state"
SUMMARY_FORMAT: Final = "explorer-nightly"
VERSION: Final = 1

_T = TypeVar("_T")


class SummaryError(ExplorerError, ValueError):
    """A state or summary file does not have the shape this explorer writes."""


def _failure(data: object, where: str) -> FailureReport:
    """A failure's detail read back; :class:`SummaryError` naming the field otherwise."""
    try:
        return FailureReport.from_json(data, where)
    except RecordError as err:
        raise SummaryError(str(err)) from None


def _get(data: Mapping[str, object], key: str, kinds: type[_T] | tuple[type, ...],
         default: _T, where: str) -> _T:
    """``data[key]`` if it has one of ``kinds`` (``default`` when it is missing or null)."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in (
            kinds if isinstance(kinds, tuple) else (kinds,))):
        raise SummaryError(f'{where}: field "{key}" is {type(value).__name__} '
                           f"{str(value)[:40]!r}; the file was not written by this explorer "
                           "or was edited: give the file 'explorer nightly' wrote")
    return value  # type: ignore[return-value]


def _text(data: Mapping[str, object], key: str, where: str, default: str = "") -> str:
    return _get(data, key, str, default, where)


def _opt_text(data: Mapping[str, object], key: str, where: str) -> str | None:
    value = data.get(key)
    return None if value is None else _text(data, key, where)


def _int(data: Mapping[str, object], key: str, where: str, default: int = 0) -> int:
    return _get(data, key, int, default, where)


def _opt_int(data: Mapping[str, object], key: str, where: str) -> int | None:
    return None if data.get(key) is None else _int(data, key, where)


def _float(data: Mapping[str, object], key: str, where: str, default: float = 0.0) -> float:
    return float(_get(data, key, (int, float), default, where))


def _opt_float(data: Mapping[str, object], key: str, where: str) -> float | None:
    return None if data.get(key) is None else _float(data, key, where)


def _bool(data: Mapping[str, object], key: str, where: str, default: bool = False) -> bool:
    return _get(data, key, bool, default, where)


def _objects(data: Mapping[str, object], key: str, where: str) -> list[Mapping[str, object]]:
    items = _get(data, key, list, [], where)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise SummaryError(f'{where}: field "{key}[{index}]" is '
                               f"{type(item).__name__}, not an object; give the file "
                               "'explorer nightly' wrote")
    return items


def _texts(data: Mapping[str, object], key: str, where: str) -> list[str]:
    return [str(item) for item in _get(data, key, list, [], where)]


# --------------------------------------------------------------------------- the state


@dataclass(frozen=True)
class Slice:
    """One planned piece of a nightly run: replay a corpus entry (``verify``, with its
    ``path``) or explore a ``target`` with a ``strategy`` (``explore``)."""

    id: str
    kind: str
    path: str | None = None
    target: TargetRef | None = None
    strategy: str | None = None

    @classmethod
    def verify(cls, path: str) -> Slice:
        return cls(f"verify:{PurePath(path).name}", "verify", path=path)

    @classmethod
    def explore(cls, target: TargetRef, strategy: str) -> Slice:
        return cls(f"explore:{target.canonical}:{strategy}", "explore", target=target,
                   strategy=strategy)

    def to_json(self) -> dict[str, object]:
        if self.kind == "verify":
            return {"id": self.id, "kind": self.kind, "path": self.path}
        assert self.target is not None
        return {"id": self.id, "kind": self.kind, "target": self.target.to_json(),
                "strategy": self.strategy}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Slice:
        where = "nightly plan"
        kind = _text(data, "kind", where)
        target = data.get("target")
        if kind not in ("verify", "explore") or (kind == "explore") != isinstance(target,
                                                                                  dict):
            raise SummaryError(f"{where}: slice {data.get('id')!r} is not a verify slice "
                               "with a path or an explore slice with a target; delete the "
                               "state file or pass --fresh to start over")
        return cls(_text(data, "id", where), kind, _opt_text(data, "path", where),
                   TargetRef.from_json(target) if isinstance(target, dict) else None,
                   _opt_text(data, "strategy", where))


# The fields a SliceResult types; the rest of its JSON is kept in ``extra``.
_RESULT_FIELDS: Final = ("id", "kind", "status", "elapsed", "pid", "finished_at", "failure",
                         "scenario", "runtime", "target", "schedules", "distinct",
                         "coverage", "error", "path", "schedule", "detail", "same")


@dataclass
class SliceResult:
    """What one finished slice found.

    An ``explore`` slice: ``target``, ``status`` (``passed``, ``failed`` or ``error`` with
    ``error``), ``schedules``, ``distinct``, ``coverage``; the job's other statistics
    (``settings``, ``strategy``, ``workers``, ...) are in ``extra``. A ``verify`` slice:
    the entry's ``path``, ``schedule`` and its replay ``status`` (a corpus status, or
    ``removed``), ``detail`` and ``same``. Both: the ``failure`` found (or None), the
    ``scenario`` and ``runtime``, ``elapsed`` seconds, and the process and time that
    finished it.
    """

    id: str
    kind: str
    status: str
    elapsed: float = 0.0
    pid: int | None = None
    finished_at: str | None = None
    failure: FailureReport | None = None
    scenario: str | None = None
    runtime: str | None = None
    target: str | None = None
    schedules: int = 0
    distinct: int = 0
    coverage: str = ""
    error: str | None = None
    path: str | None = None
    schedule: str | None = None
    detail: str = ""
    same: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = dict(self.extra)
        data.update({name: getattr(self, name) for name in _RESULT_FIELDS})
        data["failure"] = self.failure.to_json() if self.failure is not None else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> SliceResult:
        where = f"nightly result {data.get('id')!r}"
        failure = data.get("failure")
        if failure is not None:
            failure = _failure(failure, f"{where} failure")
        return cls(
            _text(data, "id", where), _text(data, "kind", where),
            _text(data, "status", where), _float(data, "elapsed", where),
            _opt_int(data, "pid", where), _opt_text(data, "finished_at", where), failure,
            _opt_text(data, "scenario", where), _opt_text(data, "runtime", where),
            _opt_text(data, "target", where), _int(data, "schedules", where),
            _int(data, "distinct", where), _text(data, "coverage", where),
            _opt_text(data, "error", where), _opt_text(data, "path", where),
            _opt_text(data, "schedule", where), _text(data, "detail", where),
            _bool(data, "same", where),
            {k: v for k, v in data.items() if k not in _RESULT_FIELDS})

    @property
    def internal_error(self) -> bool:
        return (self.error or "").startswith("internal error")


@dataclass
class NightlyState:
    """The state file of a nightly run: what defines it (``fingerprint``), its plan, and
    the result of every finished slice by slice id. ``finished`` is set when the last
    slice is done (a run with it set is complete and is not resumed)."""

    fingerprint: dict[str, object]
    seed: int | None
    budget: float
    plan: list[Slice]
    results: dict[str, SliceResult] = field(default_factory=dict)
    started: str | None = None
    root: str | None = None
    problems: list[str] = field(default_factory=list)
    finished: str | None = None

    @property
    def spent(self) -> float:
        """Seconds the finished slices took."""
        return sum(r.elapsed for r in self.results.values())

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "format": STATE_FORMAT, "version": VERSION, "fingerprint": self.fingerprint,
            "seed": self.seed, "budget": self.budget, "started": self.started,
            "root": self.root, "problems": self.problems,
            "plan": [item.to_json() for item in self.plan],
            "results": {key: result.to_json() for key, result in self.results.items()}}
        if self.finished is not None:
            data["finished"] = self.finished
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> NightlyState:
        """The state of ``data`` (whose format and version the caller checked)."""
        where = "nightly state"
        results = _get(data, "results", dict, {}, where)
        for key, value in results.items():
            if not isinstance(value, dict):
                raise SummaryError(f'{where}: the result of slice {key!r} is '
                                   f"{type(value).__name__}, not an object; delete the "
                                   "state file or pass --fresh to start over")
        return cls(dict(_get(data, "fingerprint", dict, {}, where)),
                   _opt_int(data, "seed", where), _float(data, "budget", where),
                   [Slice.from_json(item) for item in _objects(data, "plan", where)],
                   {str(k): SliceResult.from_json(v) for k, v in results.items()},
                   _opt_text(data, "started", where), _opt_text(data, "root", where),
                   _texts(data, "problems", where), _opt_text(data, "finished", where))


# --------------------------------------------------------------------------- the summary


@dataclass(frozen=True)
class FailureRow:
    """One distinct failure of a run: where it was found (``source``: ``explore
    (<strategy>)`` or ``corpus``) and the corpus entry that holds it."""

    scenario: str
    kind: str
    location: str
    schedule: str | None
    source: str
    runtime: str = "asyncio"
    deviations: int | None = None
    corpus_path: str | None = None
    new: bool = False
    replay: str | None = None
    command: str | None = None
    """The `explorer replay` line that replays it from the project root."""

    def to_json(self) -> dict[str, object]:
        return {"scenario": self.scenario, "runtime": self.runtime, "kind": self.kind,
                "location": self.location, "schedule": self.schedule,
                "deviations": self.deviations, "corpus_path": self.corpus_path,
                "new": self.new, "source": self.source, "replay": self.replay,
                "command": self.command}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> FailureRow:
        where = "summary failure"
        return cls(_text(data, "scenario", where), _text(data, "kind", where),
                   _text(data, "location", where), _opt_text(data, "schedule", where),
                   _text(data, "source", where), _text(data, "runtime", where, "asyncio"),
                   _opt_int(data, "deviations", where),
                   _opt_text(data, "corpus_path", where), _bool(data, "new", where),
                   _opt_text(data, "replay", where), _opt_text(data, "command", where))


@dataclass(frozen=True)
class StrategyRow:
    """How one strategy's slice of a scenario went."""

    strategy: str
    schedules: int = 0
    coverage: str = ""
    status: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"strategy": self.strategy, "schedules": self.schedules,
                "coverage": self.coverage, "status": self.status}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> StrategyRow:
        where = "summary strategy"
        return cls(_text(data, "strategy", where), _int(data, "schedules", where),
                   _text(data, "coverage", where), _opt_text(data, "status", where))


@dataclass
class ScenarioRow:
    """One explored target, its strategies added up. ``status`` is ``passed``,
    ``failed`` or ``error``."""

    target: str
    scenario: str | None = None
    runtime: str = "asyncio"
    status: str = "passed"
    schedules: int = 0
    elapsed: float = 0.0
    distinct: int = 0
    rate: float = 0.0
    strategies: list[StrategyRow] = field(default_factory=list)
    failures: list[FailureRow] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"target": self.target, "scenario": self.scenario, "runtime": self.runtime,
                "schedules": self.schedules, "elapsed": self.elapsed,
                "distinct": self.distinct,
                "strategies": [s.to_json() for s in self.strategies],
                "failures": [f.to_json() for f in self.failures], "status": self.status,
                "rate": self.rate}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ScenarioRow:
        where = "summary scenario"
        return cls(_text(data, "target", where), _opt_text(data, "scenario", where),
                   _text(data, "runtime", where, "asyncio"),
                   _text(data, "status", where, "passed"), _int(data, "schedules", where),
                   _float(data, "elapsed", where), _int(data, "distinct", where),
                   _float(data, "rate", where),
                   [StrategyRow.from_json(s) for s in _objects(data, "strategies", where)],
                   [FailureRow.from_json(f) for f in _objects(data, "failures", where)])


@dataclass(frozen=True)
class CorpusRow:
    """How one corpus entry replayed in a run."""

    path: str
    status: str
    detail: str = ""
    scenario: str | None = None
    runtime: str | None = None
    schedule: str | None = None
    same: bool = False

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "scenario": self.scenario, "runtime": self.runtime,
                "schedule": self.schedule, "status": self.status, "detail": self.detail,
                "same": self.same}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> CorpusRow:
        where = "summary corpus entry"
        return cls(_text(data, "path", where), _text(data, "status", where),
                   _text(data, "detail", where), _opt_text(data, "scenario", where),
                   _opt_text(data, "runtime", where), _opt_text(data, "schedule", where),
                   _bool(data, "same", where))


@dataclass
class Summary:
    """A nightly run summed up: ``failures`` (one row per distinct failure, its detail at
    the same index of ``failure_details``), ``scenarios``, ``corpus`` entries replayed,
    ``errors``, the time ``spent`` of the ``budget``, and the run's ``exit_code``."""

    scenarios: list[ScenarioRow] = field(default_factory=list)
    corpus: list[CorpusRow] = field(default_factory=list)
    failures: list[FailureRow] = field(default_factory=list)
    failure_details: list[FailureReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: str | None = None
    finished: str | None = None
    complete: bool = True
    budget: float | None = None
    spent: float = 0.0
    seed: int | None = None
    root: str | None = None
    exit_code: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "format": SUMMARY_FORMAT, "version": VERSION, "started": self.started,
            "finished": self.finished, "complete": self.complete, "budget": self.budget,
            "spent": self.spent, "seed": self.seed, "root": self.root,
            "scenarios": [row.to_json() for row in self.scenarios],
            "corpus": [row.to_json() for row in self.corpus],
            "failures": [row.to_json() for row in self.failures],
            "failure_details": [detail.to_json() for detail in self.failure_details],
            "errors": self.errors,
            "exit_code": self.exit_code,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Summary:
        """The summary of ``data``; :class:`SummaryError` if it is not one."""
        where = "summary"
        if data.get("format") != SUMMARY_FORMAT:
            raise SummaryError(f'{where}: no "format": "{SUMMARY_FORMAT}"; give the '
                               "summary.json 'explorer nightly' wrote")
        return cls(
            [ScenarioRow.from_json(r) for r in _objects(data, "scenarios", where)],
            [CorpusRow.from_json(r) for r in _objects(data, "corpus", where)],
            [FailureRow.from_json(r) for r in _objects(data, "failures", where)],
            [_failure(detail, f"{where} failure_details[{index}]") for index, detail
             in enumerate(_get(data, "failure_details", list, [], where))],
            _texts(data, "errors", where),
            _opt_text(data, "started", where), _opt_text(data, "finished", where),
            _bool(data, "complete", where, True), _opt_float(data, "budget", where),
            _float(data, "spent", where), _opt_int(data, "seed", where),
            _opt_text(data, "root", where), _int(data, "exit_code", where))


# --------------------------------------------------------------------------- summing up


def signature(failure: FailureReport) -> tuple[str, str, str]:
    """Kind, ``file:line`` and exception type of a failure."""
    outcome = failure.record.outcome
    where = outcome.location.short if outcome.location is not None else ""
    return (outcome.kind, where, str(outcome.exc_type))


def relative(path: str | None, root: str | None) -> str | None:
    """``path`` relative to the project ``root`` when it lies under it (summaries are read
    on other machines, and a CI log shows the project's paths, not the runner's)."""
    if path is None or root is None:
        return path
    try:
        return PurePath(path).relative_to(root).as_posix()
    except ValueError:
        return path


def is_new(row: FailureRow) -> bool:
    """A failure the corpus did not hold before this run: found by exploration and saved
    as a new entry (or not saved at all). A corpus entry that still fails is known."""
    return row.source != "corpus" and (row.new or row.corpus_path is None)


FAIL_ON: Final = ("any", "new")
"""What fails the nightly job: any failure, or only failures new to the corpus."""


def _failure_row(scenario: str, failure: FailureReport, source: str,
                 root: str | None = None) -> FailureRow:
    kind, where, _ = signature(failure)
    record = failure.record
    command = replay_command(scenario, str(record.schedule), record.runtime,
                             root=Path(root) if root else None)
    return FailureRow(scenario, kind, where, record.schedule, source, record.runtime,
                      record.deviations, failure.corpus_path, failure.new_in_corpus,
                      failure.replay, command)


def summarize(state: NightlyState, fail_on: str = "any") -> Summary:
    """The run's summary: per scenario, per corpus entry, and every distinct failure.
    Paths under the project root are relative to it. ``fail_on`` (see :data:`FAIL_ON`)
    decides whether failures already in the corpus make the exit code 1."""
    results = state.results
    scenarios: dict[str, ScenarioRow] = {}
    summary = Summary(errors=list(state.problems))
    seen: set[tuple[str, tuple[str, str, str]]] = set()
    root = state.root

    def add(scenario: str, failure: FailureReport, source: str) -> FailureRow | None:
        key = (scenario, signature(failure))
        if key in seen:
            return None
        seen.add(key)
        failure = dataclasses.replace(failure,
                                      corpus_path=relative(failure.corpus_path, root))
        row = _failure_row(scenario, failure, source, root)
        summary.failures.append(row)
        summary.failure_details.append(failure)
        return row

    for item in state.plan:
        result = results.get(item.id)
        if result is None or item.kind != "explore" or item.target is None:
            continue
        target = item.target.spec
        row = scenarios.setdefault(target, ScenarioRow(target, result.scenario,
                                                       result.runtime or "asyncio"))
        row.scenario = row.scenario or result.scenario
        row.runtime = result.runtime or row.runtime
        row.schedules += result.schedules
        row.elapsed += result.elapsed
        # Strategies of one scenario explore the same interleavings: a sum would count
        # those both found twice (16 of a scenario that has 8). The largest count is what
        # is known to be distinct; an exhausted search's count is the scenario's total.
        row.distinct = max(row.distinct, result.distinct)
        row.strategies.append(StrategyRow(str(item.strategy), result.schedules,
                                          result.coverage, result.status))
        if result.status == "error":
            row.status = "error"
            summary.errors.append(f"{target}: {result.error}")
        if result.failure:
            row.status = "failed"
            added = add(str(result.scenario), result.failure,
                        f"explore ({item.strategy})")
            if added is not None:
                row.failures.append(added)
    for row in scenarios.values():
        row.rate = row.schedules / row.elapsed if row.elapsed > 0 else 0.0
    for item in state.plan:
        result = results.get(item.id)
        if result is None or item.kind != "verify":
            continue
        summary.corpus.append(CorpusRow(str(relative(result.path, root)), result.status,
                                        result.detail, result.scenario, result.runtime,
                                        result.schedule, result.same))
        if result.status == "fails" and result.failure:
            add(str(result.scenario), result.failure, "corpus")
    summary.scenarios = list(scenarios.values())
    summary.started, summary.finished = state.started, state.finished
    summary.complete = len(results) == len(state.plan)
    summary.budget, summary.spent = state.budget, state.spent
    summary.seed, summary.root = state.seed, state.root
    summary.exit_code = _exit_code(summary, results.values(), state, fail_on)
    return summary


def _exit_code(summary: Summary, results: Iterable[SliceResult], state: NightlyState,
               fail_on: str) -> int:
    if any(fail_on == "any" or is_new(row) for row in summary.failures):
        return 1
    results = list(results)
    if any(r.internal_error for r in results):
        return 3
    if any(r.status == "error" for r in results):
        return 2
    if not state.plan:
        return 5
    return 0


def distinct_failures(summaries: Sequence[Summary]
                      ) -> tuple[list[FailureRow], list[FailureReport]]:
    """Failure rows and their details, one per bug (scenario, kind and place) however many
    shards found it, under whichever schedule."""
    failures: list[FailureRow] = []
    details: list[FailureReport] = []
    seen: set[tuple[str, str, str]] = set()
    for summary in summaries:
        for row, detail in zip(summary.failures, summary.failure_details, strict=False):
            key = (row.scenario, row.kind, row.location)
            if key not in seen:
                seen.add(key)
                failures.append(row)
                details.append(detail)
    return failures, details


_STATUS_RANK: Final = {"error": 3, "failed": 2, "passed": 1}


def merge_scenarios(rows: Iterable[ScenarioRow]) -> list[ScenarioRow]:
    """Rows of the same target from several summaries (CI shards) added up."""
    merged: dict[str, ScenarioRow] = {}
    for row in rows:
        into = merged.get(row.target)
        if into is None:
            merged[row.target] = ScenarioRow(
                row.target, row.scenario, row.runtime, row.status, row.schedules,
                row.elapsed, row.distinct, row.rate, list(row.strategies),
                list(row.failures))
            continue
        into.schedules += row.schedules
        # Shards split the search, so their counts add up; never past the schedules run.
        into.distinct = min(into.distinct + row.distinct, into.schedules)
        into.elapsed += row.elapsed
        into.strategies += row.strategies
        known = {(f.kind, f.location) for f in into.failures}
        into.failures += [f for f in row.failures if (f.kind, f.location) not in known]
        if _STATUS_RANK.get(row.status, 0) > _STATUS_RANK.get(into.status, 0):
            into.status = row.status
        if into.elapsed:
            into.rate = into.schedules / into.elapsed
    return list(merged.values())


MAX_SUMMARY_BYTES: Final = 256 * 1024 * 1024
"""A nightly summary keeps trace excerpts only; anything larger is not one."""


def read_summary(path: Path) -> Summary:
    """The summary in ``path``: only a regular file (a FIFO would block the read, a device
    never end), read up to :data:`MAX_SUMMARY_BYTES`; :class:`SummaryError` naming the
    file and the fix otherwise."""
    fix = "give the summary.json an 'explorer nightly' run wrote"
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise SummaryError(f"{path} is not a regular file ({file_kind(info.st_mode)}); "
                               f"{fix}")
        if info.st_size > MAX_SUMMARY_BYTES:
            raise SummaryError(f"{path} is {info.st_size:,} bytes, more than a summary "
                               f"holds (at most {MAX_SUMMARY_BYTES:,}); {fix}")
        with path.open("rb") as file:
            raw = file.read(MAX_SUMMARY_BYTES + 1)
        if len(raw) > MAX_SUMMARY_BYTES:
            raise SummaryError(f"{path} grew past {MAX_SUMMARY_BYTES:,} bytes while being "
                               f"read; {fix}")
        data = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise SummaryError(f"{path}: cannot be read as JSON ({problem}); {fix}") from None
    if not isinstance(data, dict) or data.get("format") != SUMMARY_FORMAT:
        raise SummaryError(f"{path} is not a nightly summary (no \"format\": "
                           f"\"{SUMMARY_FORMAT}\"); give the summary.json 'explorer "
                           "nightly' wrote")
    try:
        return Summary.from_json(data)
    except SummaryError as err:
        raise SummaryError(f"{path}: {err}") from None
