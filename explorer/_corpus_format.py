"""The corpus entry format: checking one file's bytes, which are untrusted input.

Invariant: reading an entry never imports, calls or runs anything it names. The bytes are
size-checked (:data:`MAX_BYTES`) and their bracket depth checked (:data:`MAX_DEPTH`) before
JSON parsing; every field is type-checked against the published format
(``corpus/format/entry.schema.json``), nested fields too, and a scenario name must be a
dotted Python name. An oversized, non-JSON, truncated, malformed or newer-format file
raises :class:`CorpusError` naming the file, the first field that does not fit, and what
to do. Reading files from a directory (and refusing FIFOs, devices and links leading out
of it) is :class:`explorer._corpus.Corpus`'s part.
"""

from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explorer._errors import ExplorerError, InvalidScheduleError
from explorer._outcome import HANG
from explorer._schedule import Schedule

FORMAT = "explorer-corpus"
VERSION = 1
MAX_BYTES = 1_000_000
MAX_DEPTH = 32  # a saved entry nests 3 levels; json.loads would recurse on 100,000
MAX_POINT = 999_999  # beyond any step bound a replay reaches; as Schedule.parse allows
MAX_CHOICE = 99_999
MAX_NAME = 1000
MAX_SCHEDULE = 100_000  # characters of a schedule string
RUNTIMES = ("asyncio", "trio")  # the engine's runtimes; a test keeps the two equal

# A dotted Python name (with the ``<locals>`` and ``<lambda>`` parts qualnames have), plus
# the ``[id]`` of a parametrized test as the pytest plugin records it. Matched against
# configured scenarios by equality only, never imported. The same pattern is in
# corpus/format/entry.schema.json.
SCENARIO_PATTERN = (r"^[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|<locals>|<lambda>))*"
                    r"(\[[^\x00-\x1f]*\])?$")
_SCENARIO = re.compile(SCENARIO_PATTERN)
_HASH = re.compile(r"^[0-9a-f]{64}$")
# The schedule string as Schedule.parse writes it (it reads some looser forms too).
_SCHEDULE = re.compile(r"^v1(\+timers)?(\+faults(=[a-z]+(\.[a-z]+)*)?)?:"
                       r"([0-9]{1,6}=0*[1-9][0-9]{0,4}(,[0-9]{1,6}=0*[1-9][0-9]{0,4})*)?$")


class CorpusError(ExplorerError, ValueError):
    """A corpus file cannot be used; ``path`` names it and ``status`` says why
    (``"unreadable"`` or ``"newer-format"``)."""

    def __init__(self, path: Path, problem: str, *, status: str = "unreadable") -> None:
        super().__init__(f"corpus file {path}: {problem}")
        self.path = path
        self.status = status


@dataclass(frozen=True)
class SavedLocation:
    """Where a saved failure happened: file name (no directory), line, function."""

    file: str
    line: int
    function: str

    @property
    def short(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class SavedFailure:
    """The failure an entry recorded, typed (the file's ``failure`` object, checked)."""

    kind: str
    message: str
    location: SavedLocation | None
    exc_type: str | None


@dataclass(frozen=True)
class CorpusEntry:
    """One saved failure, as read from its file and checked against the format: every
    field below has the type it says (``failure``, ``found`` and ``expected`` keep the
    file's objects, with their known fields checked; :attr:`saved` is ``failure`` typed)."""

    path: Path
    scenario: str
    runtime: str
    schedule: Schedule
    failure: dict[str, Any]
    found: dict[str, Any]
    shrunk: bool
    expected: tuple[dict[str, Any], ...] = ()
    trace_hash: str | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def kind(self) -> str:
        return self.saved.kind

    @property
    def saved(self) -> SavedFailure:
        loc = self.failure.get("location")
        return SavedFailure(str(self.failure["kind"]), str(self.failure["message"]),
                            SavedLocation(loc["file"], loc["line"], loc["function"])
                            if loc else None, self.failure.get("exc_type"))

    def signature(self) -> tuple[object, ...]:
        """:meth:`Outcome.signature` of the saved failure (equal to that of a replay
        that fails the same way)."""
        saved = self.saved
        loc = saved.location
        if saved.kind == HANG:  # as Outcome.signature: the function, not the line
            return (saved.kind, f"{loc.file}:{loc.function}" if loc else None, None, None)
        return (saved.kind, loc.short if loc else None, loc.line if loc else None,
                saved.exc_type)

    def expected_tasks(self) -> dict[int, str]:
        """Scheduling point -> the task the schedule expects to pick there."""
        return {int(e["point"]): str(e["task"]) for e in self.expected
                if "point" in e and "task" in e}



def file_type(mode: int) -> str:
    """What a file that is not a regular one is (``st_mode`` of its ``stat``)."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def _check_size(path: Path, size: int) -> None:
    if size > MAX_BYTES:
        raise CorpusError(path, f"is more than the {MAX_BYTES:,} bytes a corpus entry may "
                                "have; it is not a corpus entry, remove it")


def nesting_depth(raw: bytes) -> int:
    """The deepest bracket nesting of a JSON text, brackets inside strings not counted.

    Cheap (two regular-expression passes) and run before ``json.loads``, whose recursion
    a deeply nested file would exhaust."""
    text = _STRINGS.sub(b'""', raw)
    quote = text.find(b'"')
    if quote >= 0:  # an unterminated string: the rest is inside it
        text = text[:quote]
    depth = deepest = 0
    for bracket in _BRACKETS.findall(text):
        if bracket in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class _Misfit(Exception):
    """A field that does not fit the format; the message names it (``failure.location``)."""


def _describe(value: object) -> str:
    kind = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value), "?")
    if isinstance(value, dict | list) or value is None:
        return kind
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
        return f"a {len(str(abs(value)))}-digit integer"
    text = json.dumps(value[:41] if isinstance(value, str) else value)
    return f"{text[:40]}{'...' if len(text) > 40 else ''} ({kind})"


def _get(obj: dict[str, Any], key: str, where: str, kinds: tuple[type, ...], what: str,
         *, required: bool = True) -> Any:
    """``obj[key]`` if it is one of ``kinds`` (a bool is never an integer here)."""
    name = f"{where}{key}"
    if key not in obj:
        if required:
            raise _Misfit(f'field "{name}" is missing; it must be {what}')
        return None
    value = obj[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise _Misfit(f'field "{name}" is {_describe(value)}; it must be {what}')
    return value


def _int(obj: dict[str, Any], key: str, where: str, low: int, high: int, *,
         required: bool = True, nullable: bool = False) -> int | None:
    what = f"an integer from {low:,} to {high:,}" + (" or null" if nullable else "")
    value = _get(obj, key, where, (int, type(None)) if nullable else (int,), what,
                 required=required)
    if value is not None and not low <= value <= high:
        raise _Misfit(f'field "{where}{key}" is {value:,}' if abs(value) < 10**12 else
                      f'field "{where}{key}" is a {len(str(abs(value)))}-digit number'
                      f"; it must be {what}")
    return value  # type: ignore[no-any-return]


def _text(obj: dict[str, Any], key: str, where: str, *, required: bool = True,
          nullable: bool = False, limit: int = MAX_BYTES) -> str | None:
    what = "a string" + (" or null" if nullable else "")
    value = _get(obj, key, where, (str, type(None)) if nullable else (str,), what,
                 required=required)
    if value is not None and len(value) > limit:
        raise _Misfit(f'field "{where}{key}" is a string of {len(value):,} characters; it '
                      f"must have at most {limit:,}")
    return value  # type: ignore[no-any-return]


def _object(obj: dict[str, Any], key: str, where: str, *, required: bool = True,
            nullable: bool = False) -> dict[str, Any] | None:
    what = "an object" + (" or null" if nullable else "")
    return _get(obj, key, where, (dict, type(None)) if nullable else (dict,), what,  # type: ignore[no-any-return]
                required=required)


def _check_failure(failure: dict[str, Any]) -> None:
    _text(failure, "kind", "failure.", limit=100)
    _text(failure, "message", "failure.")
    _text(failure, "exc_type", "failure.", nullable=True, limit=MAX_NAME)
    location = _object(failure, "location", "failure.", nullable=True)
    if location is not None:
        _text(location, "file", "failure.location.", limit=MAX_NAME)
        _int(location, "line", "failure.location.", 0, 10**9)
        _text(location, "function", "failure.location.", limit=MAX_NAME)


def _check_found(found: dict[str, Any]) -> None:
    strategy = _object(found, "strategy", "found.", required=False)
    if strategy is not None:
        _text(strategy, "name", "found.strategy.", required=False, limit=MAX_NAME)
    _int(found, "found_after", "found.", 0, 2**63, required=False, nullable=True)
    _text(found, "explorer", "found.", required=False, nullable=True, limit=100)
    _text(found, "python", "found.", required=False, nullable=True, limit=100)


MAX_LIN_TASKS = 64  # tasks of a linearizability scenario: far beyond what a check explores
MAX_LIN_CALLS = 1000  # calls of a scenario in all (each replayed call is a sequential run)


def _check_linearizability(data: dict[str, Any]) -> None:
    """The ``linearizability`` field of a not_linearizable entry: ``{"scenario": {"prefix":
    [call], "tasks": [[call, ...], ...], "suffix": [call]}}``, call = ``{"op": name,
    "args": [JSON values]}``, no other keys. Only its shape is checked here: the operation
    names and arities are checked against the operations the replaying code passes."""
    lin = _object(data, "linearizability", "", required=False)
    if lin is None:
        return
    _only(lin, "linearizability.", ("scenario",))
    scenario = _object(lin, "scenario", "linearizability.")
    assert scenario is not None
    where = "linearizability.scenario."
    _only(scenario, where, ("prefix", "tasks", "suffix"))
    tasks = _get(scenario, "tasks", where, (list,), "a non-empty list of lists of calls")
    if not tasks or len(tasks) > MAX_LIN_TASKS:
        raise _Misfit(f'field "{where}tasks" has {len(tasks):,} tasks; it must have 1 to '
                      f"{MAX_LIN_TASKS}")
    groups = [(f"{where}tasks[{i}]", t) for i, t in enumerate(tasks)]
    groups += [(f"{where}{key}", scenario[key]) for key in ("prefix", "suffix")
               if key in scenario]
    total = 0
    for name, calls in groups:
        if not isinstance(calls, list):
            raise _Misfit(f'field "{name}" is {_describe(calls)}; it must be a list of calls '
                          '{"op": name, "args": [...]}')
        total += len(calls)
        if total > MAX_LIN_CALLS:
            raise _Misfit(f'field "{where[:-1]}" holds more than {MAX_LIN_CALLS:,} calls; a '
                          "saved scenario is a shrunk one, a few calls")
        for index, call in enumerate(calls):
            at = f"{name}[{index}]."
            if not isinstance(call, dict):
                raise _Misfit(f'field "{at[:-1]}" is {_describe(call)}; it must be a call '
                              '{"op": name, "args": [...]}')
            _only(call, at, ("op", "args"))
            _text(call, "op", at, limit=MAX_NAME)
            _get(call, "args", at, (list,), "a list of JSON values", required=False)


def _only(obj: dict[str, Any], where: str, keys: tuple[str, ...]) -> None:
    extra = sorted(set(obj) - set(keys))
    if extra:
        raise _Misfit(f'field "{where}{extra[0][:40]}" is not part of the format (the fields '
                      f"of {where[:-1] or 'an entry'} are {', '.join(keys)})")


def _check_expected(data: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    expected = _get(data, "expected", "", (list,), "a list of objects", required=False)
    for index, item in enumerate(expected or ()):
        where = f"expected[{index}]."
        if not isinstance(item, dict):
            raise _Misfit(f'field "expected[{index}]" is {_describe(item)}; it must be an '
                          "object")
        _int(item, "point", where, 0, MAX_POINT)
        _text(item, "task", where, nullable=True, limit=MAX_NAME)
        _int(item, "choice", where, 1, MAX_CHOICE, required=False)
        _text(item, "kind", where, required=False, limit=100)
    return tuple(expected or ())


def _check_schedule(data: dict[str, Any]) -> Schedule:
    text = _text(data, "schedule", "", limit=MAX_SCHEDULE)
    assert text is not None
    if not _SCHEDULE.fullmatch(text):
        raise _Misfit(f'field "schedule" is {_describe(text)}; it must be a schedule string '
                      "like v1:0=1,3=2 (increasing points, each with a non-zero choice)")
    try:
        schedule = Schedule.parse(text)
    except InvalidScheduleError as exc:
        raise _Misfit(f'field "schedule" is not a schedule: {exc}') from None
    except ValueError:  # Python refuses to convert an integer of over 4,300 digits
        raise _Misfit('field "schedule" holds an integer too long to read') from None
    for point, choice in schedule.deviations:
        if point > MAX_POINT or choice > MAX_CHOICE:
            raise _Misfit(f'field "schedule" asks for candidate {_describe(choice)} at '
                          f"scheduling point {_describe(point)}; points go up to "
                          f"{MAX_POINT:,} and candidates up to {MAX_CHOICE:,}")
    return schedule


def _check_envelope(path: Path, data: object) -> dict[str, Any]:
    """``data`` if it is a corpus entry of this format version or an older one."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CorpusError(path, f"is JSON but not a corpus entry (expected \"format\": "
                                f"\"{FORMAT}\")")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise CorpusError(path, f'field "version" is {_describe(version)}; it must be a '
                                "format version, a whole number")
    if version > VERSION:
        raise CorpusError(path, f"was written by a newer explorer (format version {version}; "
                                f"this one reads up to {VERSION}); upgrade the explorer to "
                                "replay it", status="newer-format")
    return data


def decode(path: Path, data: object) -> CorpusEntry:
    """Check parsed JSON against the published format
    (``corpus/format/entry.schema.json``) and build the entry; raise :class:`CorpusError`
    naming ``path`` and the first field that does not fit. Unknown fields are kept in
    ``data`` and otherwise ignored."""
    data = _check_envelope(path, data)
    if data["version"] != VERSION:
        raise CorpusError(path, f"is in the older format version {data['version']}; run "
                                "'explorer corpus migrate' to rewrite it in the current one")
    try:
        scenario = _text(data, "scenario", "", limit=MAX_NAME)
        assert scenario is not None
        if not _SCENARIO.fullmatch(scenario):
            raise _Misfit(f'field "scenario" is {_describe(scenario)}; it must be the dotted '
                          "Python name of a scenario function, like package.module.function")
        runtime = _text(data, "runtime", "", limit=100)
        if runtime not in RUNTIMES:
            raise _Misfit(f'field "runtime" is {_describe(runtime)}; this explorer knows the '
                          f"runtimes {', '.join(RUNTIMES)}")
        schedule = _check_schedule(data)
        failure = _object(data, "failure", "")
        assert failure is not None
        _check_failure(failure)
        found = _object(data, "found", "")
        assert found is not None
        _check_found(found)
        shrunk = _get(data, "shrunk", "", (bool,), "true or false")
        _object(data, "shrink", "", required=False, nullable=True)
        _int(data, "deviations", "", 0, MAX_POINT, required=False)
        _int(data, "switches", "", 0, MAX_POINT, required=False, nullable=True)
        # The failure's signature without task numbers, compared (never evaluated) to
        # find the entry of the same bug: any JSON array, or null.
        _get(data, "stable_signature", "", (list, type(None)), "an array or null",
             required=False)
        # A linearizability failure's scenario: data checked against the operations the
        # replaying code passes (explorer._linearize), never imported or called.
        _check_linearizability(data)
        expected = _check_expected(data)
        trace_hash = _text(data, "trace_hash", "", required=False, nullable=True, limit=64)
        if trace_hash is not None and not _HASH.fullmatch(trace_hash):
            raise _Misfit(f'field "trace_hash" is {_describe(trace_hash)}; it must be 64 '
                          "lowercase hex digits (a SHA-256)")
    except _Misfit as misfit:
        raise CorpusError(path, f"does not fit the corpus format: {misfit}; the file was "
                                "edited or damaged: delete it, or restore it from version "
                                "control") from None
    return CorpusEntry(path, scenario, runtime, schedule, failure, found, shrunk, expected,
                       trace_hash, data)


def parse(path: Path, raw: bytes) -> CorpusEntry:
    """Validate the bytes of a corpus file; raise :class:`CorpusError` naming ``path``."""
    return decode(path, parse_json(path, raw))


def parse_json(path: Path, raw: bytes) -> dict[str, Any]:
    """The JSON object of a corpus file of this format version or an older one (for
    migrations), parsed safely but not checked field by field (:func:`decode` does that)."""
    _check_size(path, len(raw))
    depth = nesting_depth(raw)
    if depth > MAX_DEPTH:
        raise CorpusError(path, f"nests brackets {depth:,} levels deep, more than the "
                                f"{MAX_DEPTH} a corpus entry may have; it is not a corpus "
                                "entry, remove it")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CorpusError(path, f"is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                "the file is corrupt: delete it or restore it from version "
                                "control") from None
    except json.JSONDecodeError as exc:
        raise CorpusError(path, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column "
                                f"{exc.colno}); the file is corrupt or truncated: delete it "
                                "or restore it from version control") from None
    except (ValueError, RecursionError) as exc:  # an integer of over 4,300 digits, say
        raise CorpusError(path, f"cannot be parsed as JSON ({exc}); it is not a corpus "
                                "entry, remove it") from None
    return _check_envelope(path, data)
