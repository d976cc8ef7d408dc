"""The corpus: saved failing schedules, one JSON file each, replayed as regression cases.

:class:`Corpus` is the one place that writes, finds, deletes, collects and migrates
entries; the engine, the pytest plugin, the nightly job and the command line all go
through it (the command line only presents what it returns). Contract:

- **Untrusted input.** Corpus files travel through CI artifacts and pull requests, so
  reading one never imports, calls or runs anything it names. Only regular files inside
  the corpus directory are read (never a FIFO, a device, or a symbolic link that leads out
  of it), at most :data:`MAX_BYTES` of them, never trusting the size the file system
  reports; every field is checked against the published format
  (:mod:`explorer._corpus_format`). Replaying an entry runs the scenario the *caller*
  matched to it by name, never one looked up from the file.
- **One entry per failure.** The file name is derived from what defines the replay
  (scenario, runtime, schedule), and :meth:`Corpus.save` writes nothing when an entry
  already records the same scenario, runtime and failure signature (its docstring has
  the whole rule).
- **Atomic.** An entry is written to a temporary file in the same directory, flushed to
  disk and renamed into place: an interrupted write leaves the old state, never half a file.
- **Plans before deletions.** :meth:`Corpus.gc` and :meth:`Corpus.migration` return what
  they would do; :meth:`Corpus.apply` does it (a dry run prints the plan).
- **Loud about bad files.** An oversized, non-JSON, truncated, malformed or newer-format
  file raises :class:`CorpusError` naming the file and what to do; listing a corpus reports
  such files in place and still returns every good entry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from explorer._corpus_format import FORMAT, file_type
from explorer._corpus_format import MAX_BYTES as MAX_BYTES
from explorer._corpus_format import RUNTIMES as RUNTIMES
from explorer._corpus_format import VERSION as VERSION
from explorer._corpus_format import CorpusEntry as CorpusEntry
from explorer._corpus_format import CorpusError as CorpusError
from explorer._corpus_format import decode as decode
from explorer._corpus_format import parse as parse
from explorer._corpus_format import parse_json as parse_json
from explorer._errors import ExplorerError
from explorer._faults import FAULT_KIND
from explorer._files import write_atomically
from explorer._runtime import display_task
from explorer._schedule import Schedule
from explorer._trace import Trace
from explorer._version import __version__

if TYPE_CHECKING:
    from explorer._failure import ScheduleFailure

DEFAULT_DIRECTORY = "corpus"

# --------------------------------------------------------------------------- statuses

# How an entry replays (explorer._regressions gives each entry exactly one), worst first:
# a command over many entries reports (and exits by) the worst it saw.
FAILS: Final = "fails"
FIXED: Final = "fixed"
DIVERGED: Final = "diverged"
ERROR: Final = "error"
UNKNOWN_SCENARIO: Final = "unknown-scenario"
UNREADABLE: Final = "unreadable"
NEWER_FORMAT: Final = "newer-format"
STATUSES: Final = (FAILS, DIVERGED, ERROR, UNKNOWN_SCENARIO, UNREADABLE, NEWER_FORMAT, FIXED)

# What Corpus.save did (see its docstring for the duplicate rule).
NEW: Final = "new"
KEPT: Final = "kept"
REFRESHED: Final = "refreshed"
REPLACED: Final = "replaced"

# Why garbage collection removes (or keeps) an entry.
GC_FIXED: Final = "fixed"
GC_UNKNOWN: Final = "unknown scenario"
GC_DUPLICATE: Final = "duplicate"


@dataclass(frozen=True)
class Saved:
    """What :meth:`Corpus.save` did: the entry that holds the failure (``path``) and
    ``status``, one of ``new``, ``kept``, ``refreshed`` or ``replaced`` (then
    ``replaced`` is the duplicate entry that was deleted)."""

    path: Path
    status: str
    replaced: Path | None = None

    @property
    def new(self) -> bool:
        """The corpus held no entry of this failure before."""
        return self.status == NEW

    @property
    def added(self) -> bool:
        """A file that was not there before holds the failure now (``new`` or
        ``replaced``)."""
        return self.status in (NEW, REPLACED)


class Verdict(Protocol):
    """How a corpus item replayed, as :meth:`Corpus.gc` needs it (``explorer.
    _regressions.CorpusReplay`` is one): a status of :data:`STATUSES`, its detail, and for
    a failing entry whether it failed as saved (``same``)."""

    @property
    def path(self) -> Path: ...
    @property
    def status(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def entry(self) -> CorpusEntry | None: ...
    @property
    def same(self) -> bool: ...


@dataclass(frozen=True)
class GcItem:
    """One file in a :class:`GcPlan`: ``reason`` is ``fixed``, ``unknown scenario`` or
    ``duplicate`` for a removal, the entry's status for one kept; ``detail`` says more."""

    path: Path
    reason: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"path": str(self.path), "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class GcPlan:
    """What :meth:`Corpus.gc` would delete (``remove``, ``temporary``) and which entries
    it keeps although they do not fail (``keep``, with why)."""

    remove: tuple[GcItem, ...]
    keep: tuple[GcItem, ...]
    temporary: tuple[Path, ...]


@dataclass(frozen=True)
class Rewrite:
    """An entry of an older format (``path``) and its JSON in the current one."""

    path: Path
    data: dict[str, Any]


@dataclass(frozen=True)
class MigrationPlan:
    """What :meth:`Corpus.migration` would rewrite, what is current, and the files it
    skips (each with the :class:`CorpusError` that says why)."""

    rewrites: tuple[Rewrite, ...]
    current: tuple[Path, ...]
    skipped: tuple[CorpusError, ...]


class EntryNotFound(ExplorerError, LookupError):
    """No entry, or more than one, matches the name given to :meth:`Corpus.find`."""


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
            # A fault's options belong to no task: a replay finds "fault" there.
            task = display_task(None, step.kind) if step.kind == FAULT_KIND else step.task
            out.append({"point": point, "choice": step.decision[0], "task": task,
                        "kind": step.kind})
        point += 1
    return out


def _entry_json(failure: ScheduleFailure) -> dict[str, Any]:
    """The JSON of the entry that records ``failure`` (the published format)."""
    outcome = failure.outcome.to_json()
    scenario = failure.outcome.details.get("scenario")
    # A linearizability failure is one generated scenario's: the scenario (operation names
    # and JSON arguments, never code) is what replay_linearizability needs besides the
    # schedule.
    extra: dict[str, Any] = ({"linearizability": {"scenario": scenario}}
                             if failure.kind == "not_linearizable"
                             and isinstance(scenario, dict) else {})
    return extra | {
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
        "shrink": dataclasses.asdict(failure.shrink) if failure.shrink else None,
        "deviations": failure.deviations,
        "switches": failure.switches,
        "expected": expected_candidates(failure.trace),
        "trace_hash": failure.trace.hash(),
        # What the duplicate rule compares besides the signature: it survives task
        # renumbering (Outcome.stable_signature); an optional field, ignored by readers.
        "stable_signature": _jsonable(failure.outcome.stable_signature()),
    }


def _jsonable(value: object) -> object:
    """``value`` with tuples as lists (as JSON gives it back), so that a signature read
    from a file compares equal to one just computed."""
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def simplicity(data: Mapping[str, Any]) -> tuple[bool, int, int, int]:
    """The order in which one bug's entries are kept, simplest first (the shrinker's
    order): shrunk before not shrunk, then the fewest switches, deviations and steps. Of
    two equally simple entries the one already saved is kept, so that reruns do not
    rename files in a committed directory. ``data`` is an entry's JSON; a count it lacks
    (an entry of an older explorer) counts as more than any."""
    worst = 10**9
    shrink = data.get("shrink")
    steps = shrink.get("steps") if isinstance(shrink, Mapping) else None
    switches, deviations = data.get("switches"), data.get("deviations")
    return (not data.get("shrunk"),
            switches if isinstance(switches, int) else worst,
            deviations if isinstance(deviations, int) else worst,
            steps if isinstance(steps, int) else worst)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` itself (no lock file is left in a
    directory users commit) while the body runs; without ``fcntl`` (Windows), or on a
    file system that cannot lock a directory, run the body unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # a file system without directory locks
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_entry(path: Path, data: Mapping[str, Any]) -> None:
    write_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _duplicates(failing: Iterable[CorpusEntry]) -> list[GcItem]:
    """Entries that fail as saved exactly as another one does: all but the simplest of
    each failure (:func:`simplicity`, as :meth:`Corpus.save` keeps them, then the file
    name)."""
    groups: dict[tuple[object, ...], list[CorpusEntry]] = {}
    for entry in failing:
        groups.setdefault((entry.scenario, entry.runtime, *entry.signature()), []).append(entry)
    out: list[GcItem] = []
    for group in groups.values():
        best, *rest = sorted(group, key=lambda e: (simplicity(e.data), e.path.name))
        out += [GcItem(e.path, GC_DUPLICATE, f"fails as {best.path.name} does, which is kept")
                for e in rest]
    return out


# Rewrites from format version N to N + 1, applied in order. Version 1 is the first, so
# there is nothing to rewrite yet; a new format adds its step here.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def migrated(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (an entry of an older format version) rewritten step by step to the
    current format, and checked against it; a :class:`CorpusError` naming ``path`` if
    that cannot be done."""
    version = int(data["version"])
    while version < VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise CorpusError(path, f"has format version {version}, which no explorer "
                                    "wrote; it cannot be migrated: remove it")
        try:
            data = step(dict(data))
        except Exception as exc:  # noqa: BLE001 - a damaged old entry must not stop the rest
            raise CorpusError(path, f"cannot be migrated from format version {version} "
                                    f"({type(exc).__name__}: {exc}); remove it") from None
        version += 1
    data["version"] = VERSION
    decode(path, data)
    return data


class Corpus:
    """A directory of saved failures: save, read, find, delete, gc and migrate entries.

    Every entry is one file whose name is derived from what defines its replay
    (:func:`entry_name`). Writes are atomic; reads treat every file as untrusted."""

    def __init__(self, directory: str | os.PathLike[str] = DEFAULT_DIRECTORY) -> None:
        self.directory = Path(directory)

    # -- saving ---------------------------------------------------------------------

    def save(self, failure: ScheduleFailure) -> Saved:
        """Save a :class:`ScheduleFailure` unless the corpus already holds it; say which.

        The one duplicate rule: **a failure is already saved when an entry records the
        same scenario, runtime and failure signature** (kind, place and exception type, as
        :meth:`Outcome.signature` defines them), under this schedule or another. Then:

        - the entry this failure's schedule would be written to exists and records the
          same failure with the same expected tasks: it is kept as it is (``kept``);
        - that entry exists but records something else (the code changed since, or the
          file is damaged): it is rewritten in place (``refreshed``); a file of a newer
          format is never overwritten by an older explorer (``kept``);
        - other entries record the same failure: one bug is one entry however many
          schedules (and seeds) show it, and it holds the *simplest* schedule known
          (:func:`simplicity`: shrunk first, then the fewest switches, deviations and
          steps, then the schedule's text). If the simplest existing twin is at least as
          simple as this failure, it is kept and its path returned (``kept``); otherwise
          the new file is written, then the twins deleted (``replaced``: the first one
          deleted is named). Twins left by older explorers are deleted as well.
        - otherwise the failure is written to a new entry (``new``).

        Saving holds a lock on the corpus directory (where the platform has ``fcntl``),
        so that worker processes (pytest-xdist, the parallel job) saving the same bug at
        the same moment still leave one entry.
        """
        with _locked(self.directory):
            return self._save(failure)

    def _save(self, failure: ScheduleFailure) -> Saved:
        path = self.directory / entry_name(failure.scenario, failure.runtime,
                                           failure.schedule)
        data = _entry_json(failure)
        signature = tuple(failure.outcome.signature())
        if path.exists():
            try:
                there = self.load(path)
            except CorpusError as err:
                if err.status == NEWER_FORMAT:
                    return Saved(path, KEPT)
            else:
                if there.signature() == signature and list(there.expected) == data["expected"]:
                    return Saved(path, KEPT)
            _write_entry(path, data)
            return Saved(path, REFRESHED)
        twins = sorted(self.find_failures(failure.scenario, failure.runtime, signature,
                                          data["stable_signature"]),
                       key=lambda entry: simplicity(entry.data))
        if twins and simplicity(twins[0].data) <= simplicity(data):
            for extra in twins[1:]:
                extra.path.unlink(missing_ok=True)
            return Saved(twins[0].path, KEPT)
        _write_entry(path, data)
        for twin in twins:
            twin.path.unlink(missing_ok=True)
        if twins:
            return Saved(path, REPLACED, twins[0].path)
        return Saved(path, NEW)

    def find_failures(self, scenario: str, runtime: str, signature: tuple[object, ...],
                      stable: object = None) -> list[CorpusEntry]:
        """Every readable entry (in file-name order) that records this failure: the same
        :meth:`Outcome.signature`, or the same ``stable`` signature (the JSON form of
        :meth:`Outcome.stable_signature`, which entries record), so that a deadlock whose
        tasks were numbered otherwise is still the same bug."""
        return [item for item in self.entries()
                if isinstance(item, CorpusEntry) and item.scenario == scenario
                and item.runtime == runtime
                and (item.signature() == tuple(signature)
                     or (stable is not None
                         and item.data.get("stable_signature") == stable))]

    def find_failure(self, scenario: str, runtime: str, signature: tuple[object, ...]
                     ) -> CorpusEntry | None:
        """The first readable entry (in file-name order) that records this failure."""
        for item in self.entries():
            if isinstance(item, CorpusEntry) and item.scenario == scenario and \
                    item.runtime == runtime and item.signature() == tuple(signature):
                return item
        return None

    # -- finding and deleting ---------------------------------------------------------

    def find(self, name: str | os.PathLike[str]) -> Path:
        """The entry ``name`` designates: an existing file's path, an entry's file name,
        or a unique prefix of the name or of its hash; :class:`EntryNotFound` otherwise."""
        direct = Path(name)
        if direct.is_file():
            return direct
        text = str(name)
        matches = [p for p in self.paths() if p.name == text or p.name.startswith(text)
                   or p.stem.rsplit("-", 1)[-1].startswith(text)]
        if len(matches) != 1:
            problem = "no entry" if not matches else f"{len(matches)} entries"
            raise EntryNotFound(f"{problem} in {self.directory} match {text!r}; give the "
                                "file name (see 'explorer corpus list')")
        return matches[0]

    def delete(self, names: Iterable[str | os.PathLike[str]]) -> list[Path]:
        """Delete the entries ``names`` designate (as :meth:`find` reads them); every name
        is looked up before anything is deleted, so a bad one deletes nothing."""
        paths = [self.find(name) for name in names]
        for path in paths:
            path.unlink()
        return paths

    # -- garbage collection -----------------------------------------------------------

    def gc(self, judge: Callable[[CorpusEntry | CorpusError], Verdict], *,
           prune_unknown: bool = False) -> GcPlan:
        """What garbage collection would delete, and why; nothing is deleted here
        (:meth:`apply` does it, so a dry run is the plan printed).

        ``judge`` replays an item and gives its status (``explorer._regressions.
        replay_one`` does). Removed: entries whose bug is ``fixed``; entries of an
        ``unknown scenario`` only with ``prune_unknown`` (kept by default: a scenario
        left out of the call would lose them); a ``duplicate``, an entry that fails as
        saved exactly as another that is kept (the same scenario, runtime and signature:
        the rule of :meth:`save`; the shrunk one with the fewest deviations is kept); and
        the temporary files of interrupted writes. Entries that still fail, no longer
        fit the code (``diverged``), cannot run (``error``) or cannot be read
        (``unreadable``, ``newer-format``) are kept: the last three with the reason."""
        remove: list[GcItem] = []
        keep: list[GcItem] = []
        failing: list[CorpusEntry] = []
        for item in self.entries():
            verdict = judge(item)
            if verdict.status == FIXED:
                remove.append(GcItem(verdict.path, GC_FIXED, verdict.detail))
            elif verdict.status == UNKNOWN_SCENARIO:
                (remove if prune_unknown else keep).append(
                    GcItem(verdict.path, GC_UNKNOWN, verdict.detail))
            elif verdict.status == FAILS:
                if verdict.same and verdict.entry is not None:
                    failing.append(verdict.entry)
            elif verdict.status != DIVERGED:
                keep.append(GcItem(verdict.path, verdict.status, verdict.detail))
        remove += _duplicates(failing)
        return GcPlan(tuple(remove), tuple(keep), tuple(self.temporary_files()))

    def temporary_files(self) -> list[Path]:
        """Files an interrupted atomic write left behind (never an entry)."""
        if not self.directory.is_dir():
            return []
        return sorted({*self.directory.glob(".tmp-*.json"),
                       *self.directory.glob(".*.json.*.tmp")})

    # -- migration --------------------------------------------------------------------

    def migration(self) -> MigrationPlan:
        """Every entry of an older format version rewritten, step by step through
        :data:`MIGRATIONS`, to the current one and checked against it; nothing is
        written here (:meth:`apply` does it). Files that cannot be read or migrated are
        listed with their :class:`CorpusError`; current entries are checked too."""
        rewrites: list[Rewrite] = []
        current: list[Path] = []
        skipped: list[CorpusError] = []
        for path in self.paths():
            try:
                data = self.load_json(path)
                if data["version"] == VERSION:
                    self.load(path)  # checked field by field, like every other reader
                    current.append(path)
                    continue
                rewrites.append(Rewrite(path, migrated(path, data)))
            except CorpusError as err:
                skipped.append(err)
        return MigrationPlan(tuple(rewrites), tuple(current), tuple(skipped))

    def apply(self, plan: GcPlan | MigrationPlan) -> None:
        """Carry out a plan of :meth:`gc` (delete) or :meth:`migration` (rewrite,
        atomically); a file already gone is not an error."""
        if isinstance(plan, GcPlan):
            for path in (*(item.path for item in plan.remove), *plan.temporary):
                path.unlink(missing_ok=True)
        else:
            for rewrite in plan.rewrites:
                _write_entry(rewrite.path, rewrite.data)

    # -- reading ----------------------------------------------------------------------

    def load(self, path: str | os.PathLike[str]) -> CorpusEntry:
        """Read and check one entry; raise :class:`CorpusError` naming ``path``."""
        path = Path(path)
        return parse(path, self.read(path))

    def load_json(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Read one file as :func:`parse_json` does (for migrations)."""
        path = Path(path)
        return parse_json(path, self.read(path))

    def read(self, path: Path) -> bytes:
        """The bytes of ``path``, if it is a regular file inside the corpus directory (a
        symbolic link to one is followed only if its target is inside too), at most
        :data:`MAX_BYTES` + 1 of them.

        The file is opened without following a last symbolic link and without blocking
        (a FIFO opens at once and is then refused), and checked on the opened descriptor,
        so what is checked is what is read; the size the file system reports is never
        trusted (``/dev/zero`` and FIFOs report 0)."""
        try:
            real = Path(os.path.realpath(path))
            home = Path(os.path.realpath(self.directory))
            if not real.is_relative_to(home):
                raise CorpusError(path, f"leads to {real}, outside the corpus directory "
                                        f"{home}; entries are read only from regular files "
                                        "inside it: replace the link by a copy of the file, "
                                        "or remove it")
            # (Windows has none of the last three; it has no FIFOs to block on either.)
            flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) \
                | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(real, flags)
        except OSError as exc:
            raise CorpusError(path, f"cannot be read: {exc.strerror}") from None
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise CorpusError(path, f"is {file_type(mode)}, not a regular file; a "
                                        "corpus holds only regular JSON files: remove it")
            chunks: list[bytes] = []
            size = 0
            while size <= MAX_BYTES:
                chunk = os.read(fd, MAX_BYTES + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            raise CorpusError(path, f"cannot be read: {exc.strerror}") from None
        finally:
            os.close(fd)
        return b"".join(chunks)

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


def shown_path(path: str | os.PathLike[str], root: Path) -> str:
    """``path`` relative to ``root`` (pytest's rootdir) where it is inside it, so that
    summaries stay short and read the same on every machine."""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def save_for_test(directory: str | os.PathLike[str], failure: ScheduleFailure, nodeid: str,
                  root: Path) -> tuple[str, str | None]:
    """Save the failure a pytest test found: the entry's path as shown, and the line the
    corpus summary lists when the save added a file (None when the entry was kept)."""
    saved = Corpus(directory).save(failure)
    failure.saved_to(saved.path)
    shown = shown_path(saved.path, root)
    if not saved.added:
        return shown, None
    replaces = f" (replaces {saved.replaced})" if saved.replaced else ""
    return shown, f"{nodeid}: saved {shown}{replaces}"
