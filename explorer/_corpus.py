"""The corpus: saved failing schedules, one JSON file each, replayed as regression cases.

Contract:

- **Plain data.** An entry is JSON, read with ``json.loads`` and nothing else; reading a
  corpus never imports or runs code. Replaying an entry runs its scenario, which the
  caller resolves.
- **Content addressed.** The file name is derived from what defines the replay (scenario,
  runtime, schedule), so saving the same failure twice writes one file.
- **Atomic.** An entry is written to a temporary file in the same directory, flushed to
  disk and renamed into place: an interrupted write leaves the old state, never half a file.
- **Loud about bad files.** An oversized, non-JSON, truncated, malformed or newer-format
  file raises :class:`CorpusError` naming the file and what to do; listing a corpus reports
  such files in place and still returns every good entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explorer._errors import ExplorerError, InvalidScheduleError
from explorer._files import write_atomically
from explorer._schedule import Schedule
from explorer._trace import Trace

FORMAT = "explorer-corpus"
VERSION = 1
MAX_BYTES = 1_000_000
DEFAULT_DIRECTORY = "corpus"

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "scenario": str, "runtime": str, "schedule": str, "failure": dict, "found": dict,
    "shrunk": bool,
}


class CorpusError(ExplorerError, ValueError):
    """A corpus file cannot be used; ``path`` names it and ``status`` says why
    (``"unreadable"`` or ``"newer-format"``)."""

    def __init__(self, path: Path, problem: str, *, status: str = "unreadable") -> None:
        super().__init__(f"corpus file {path}: {problem}")
        self.path = path
        self.status = status


@dataclass(frozen=True)
class CorpusEntry:
    """One saved failure, as read from its file."""

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
        return str(self.failure.get("kind", "?"))

    def signature(self) -> tuple[object, ...]:
        """The same shape as :meth:`Outcome.signature`, from the saved failure."""
        loc = self.failure.get("location") or {}
        return (self.kind, f"{loc['file']}:{loc['line']}" if loc else None,
                loc.get("line") if loc else None, self.failure.get("exc_type"))

    def expected_tasks(self) -> dict[int, str]:
        """Scheduling point -> the task the schedule expects to pick there."""
        return {int(e["point"]): str(e["task"]) for e in self.expected
                if "point" in e and "task" in e}


def entry_name(scenario: str, runtime: str, schedule: Schedule) -> str:
    """``<scenario>-<16 hex digits>.json``, hashed over what defines the replay."""
    key = json.dumps({"scenario": scenario, "runtime": runtime, "schedule": str(schedule)},
                     sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", scenario.rsplit(".", 1)[-1]).strip("_") or "scenario"
    return f"{slug[:60]}-{digest}.json"


def expected_candidates(trace: Trace) -> list[dict[str, Any]]:
    """For each deviation of a traced run: its scheduling point, choice and the work chosen."""
    out: list[dict[str, Any]] = []
    point = 0
    for step in trace.steps:
        if step.decision is None:
            continue
        if step.decision[0]:
            out.append({"point": point, "choice": step.decision[0], "task": step.task,
                        "kind": step.kind})
        point += 1
    return out


def _recorded_expectations(path: Path) -> object:
    """What an existing entry recorded at its deviations (None if it cannot be read)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("expected")
    except (OSError, ValueError, AttributeError):
        return None


def _check_size(path: Path, size: int) -> None:
    if size > MAX_BYTES:
        raise CorpusError(path, f"is {size:,} bytes, more than the {MAX_BYTES:,} a corpus "
                                "entry may have; it is not a corpus entry, remove it")


def parse(path: Path, raw: bytes) -> CorpusEntry:
    """Validate the bytes of a corpus file; raise :class:`CorpusError` naming ``path``."""
    _check_size(path, len(raw))
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
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CorpusError(path, f"is JSON but not a corpus entry (expected \"format\": "
                                f"\"{FORMAT}\")")
    version = data.get("version")
    if not isinstance(version, int):
        raise CorpusError(path, "has no integer \"version\"")
    if version > VERSION:
        raise CorpusError(path, f"was written by a newer explorer (format version {version}; "
                                f"this one reads up to {VERSION}); upgrade the explorer to "
                                "replay it", status="newer-format")
    for name, kind in _REQUIRED.items():
        if not isinstance(data.get(name), kind):
            raise CorpusError(path, f"field \"{name}\" is missing or not a "
                                    f"{getattr(kind, '__name__', kind)}")
    try:
        schedule = Schedule.parse(data["schedule"])
    except InvalidScheduleError as exc:
        raise CorpusError(path, f"has an invalid schedule: {exc}") from None
    expected = data.get("expected", [])
    if not isinstance(expected, list) or not all(isinstance(e, dict) for e in expected):
        raise CorpusError(path, "field \"expected\" must be a list of objects")
    return CorpusEntry(path, data["scenario"], data["runtime"], schedule, data["failure"],
                       data["found"], data["shrunk"], tuple(expected),
                       data.get("trace_hash"), data)


class Corpus:
    """A directory of saved failures."""

    def __init__(self, directory: str | os.PathLike[str] = DEFAULT_DIRECTORY) -> None:
        self.directory = Path(directory)

    def save(self, failure: Any) -> Path:
        """Save a :class:`ScheduleFailure`; return the entry's path (existing or new)."""
        from explorer import __version__

        path = self.directory / entry_name(failure.scenario, failure.runtime,
                                           failure.schedule)
        expected = expected_candidates(failure.trace)
        if path.exists() and _recorded_expectations(path) == expected:
            return path  # the same failure, already saved
        outcome = failure.outcome.to_json()
        data = {
            "format": FORMAT,
            "version": VERSION,
            "scenario": failure.scenario,
            "runtime": failure.runtime,
            "schedule": str(failure.schedule),
            "failure": {k: outcome[k] for k in ("kind", "message", "location", "exc_type")},
            "found": {
                "strategy": failure.strategy,
                "found_after": failure.found_after,
                "explorer": __version__,
                "python": platform.python_version(),
            },
            "shrunk": failure.shrink is not None,
            "shrink": failure.to_json()["shrink"],
            "deviations": failure.deviations,
            "expected": expected,
            "trace_hash": failure.trace.hash(),
        }
        write_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        return path

    def load(self, path: str | os.PathLike[str]) -> CorpusEntry:
        path = Path(path)
        try:
            _check_size(path, path.stat().st_size)  # before reading a huge file into memory
            raw = path.read_bytes()
        except OSError as exc:
            raise CorpusError(path, f"cannot be read: {exc.strerror}") from None
        return parse(path, raw)

    def paths(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("*.json") if not p.name.startswith("."))

    def entries(self) -> Iterator[CorpusEntry | CorpusError]:
        """Every entry in file-name order; a bad file yields its :class:`CorpusError`."""
        for path in self.paths():
            try:
                yield self.load(path)
            except CorpusError as err:
                yield err
