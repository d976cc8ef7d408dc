"""Footprints: what each step reads and writes, for partial-order reduction.

A footprint is a set of accesses ``(object, item, mode)``: ``object`` identifies a shared
object within one run, ``item`` a key or attribute of it (``None`` for the whole object)
and ``mode`` is ``"r"`` or ``"w"``. Two steps are *dependent* when they access the same
object (the same item, or the whole object) and at least one of them writes; the special
access :data:`UNKNOWN` is dependent on everything, which keeps reduction sound for steps
the explorer cannot see into.

Accesses come from three places: asyncio's primitives (recorded by the runtime), task
completion and cancellation, and state the scenario declares with :func:`shared`.
Footprints are recorded only while a reduction strategy runs; elsewhere :func:`shared`
objects behave like the objects they wrap, at the cost of one check per access.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any, Final, NamedTuple, TypeVar

from explorer._errors import UsageError

Access = tuple[int, object, str]
UNKNOWN: Final[Access] = (0, None, "w")
CANCELLED: Final = "cancelled"
"""The item that links a queued callback to the step that cancels it: that step writes
``(callback, CANCELLED)`` and the callback's own step reads it. A cancelled callback never
runs, so no race with it can show in the run that cancelled it: a reduction strategy must
also try the callback first wherever a step that cancelled one was chosen over it."""
_WHOLE: Final = None


class StepRecord(NamedTuple):
    """One recorded step: its process (task id, or ``loop`` for plain callbacks), its
    footprint, the index of the step that scheduled it (``None`` for none: it happens
    after no earlier step) and its scheduling point (``None`` when it ran without one).
    Both runtimes record these; the happens-before model reads them."""

    process: str
    footprint: set[Access]
    enabler: int | None
    point: int | None


StepTuple = tuple[str, set[Access], int | None, int | None]
"""A step record as a runtime may hold it while the run still goes: a plain
``(process, footprint, enabler, point)`` tuple (a :class:`StepRecord` is one too)."""


_K = TypeVar("_K")
_V = TypeVar("_V")


# The footprint of the step running now, while a run records footprints. Runs of the
# controlled loop happen on one thread at a time, so a module global is enough, and it
# keeps the cost of an access that is not recorded to one comparison.
current: set[Access] | None = None
# While a failing run is replayed to explain it: every object accesses were recorded on.
seen: dict[int, object] | None = None
# While a run records footprints: every object whose id a footprint holds, kept alive until
# the run ends. CPython hands a freed object's id to the next object of its size, so
# without this a waiter future or a handle that one step used and dropped, and another
# step's that reuses its address, would be one location; which ones meet depends on the
# allocator, so the reads-from pairs and dependences a run shows (and the schedules a
# search picks from them) would change from one process to the next.
kept: dict[int, object] | None = None


def record(obj: object, item: object, mode: str) -> None:
    """Add an access to the footprint of the running step, if footprints are recorded."""
    if current is not None:
        key = id(obj)
        current.add((key, item, mode))
        if kept is not None:
            kept[key] = obj
        if seen is not None:
            seen[key] = obj


def dependent(a: Iterable[Access], b: Iterable[Access]) -> bool:
    """True when two footprints conflict (same object and item, one of them a write)."""
    return conflicts(index(a), index(b))


Index = dict[int, list[tuple[object, str]]]


def index(footprint: Iterable[Access]) -> Index:
    """A footprint grouped by object, for repeated conflict checks.

    A footprint holding UNKNOWN conflicts with every non-empty one whatever else it holds,
    so its index is UNKNOWN's alone: steps through a library can record thousands of
    accesses before one of them turns out unknowable, and indexing those is wasted."""
    if isinstance(footprint, (set, frozenset)) and UNKNOWN in footprint:
        return {0: [(None, "w")]}
    out: Index = {}
    for obj, item, mode in footprint:
        out.setdefault(obj, []).append((item, mode))
    return out


def conflicts(a: Index, b: Index) -> bool:
    if not a or not b:
        return False
    if 0 in a or 0 in b:  # UNKNOWN's object: dependent on any step that touches anything
        return True
    if len(b) < len(a):
        a, b = b, a
    for obj, accesses in a.items():
        others = b.get(obj)
        if others is None:
            continue
        for item, mode in accesses:
            for other_item, other_mode in others:
                if (mode == "w" or other_mode == "w") and (
                    item is _WHOLE or other_item is _WHOLE or item == other_item
                ):
                    return True
    return False


class _InsertionOrder:
    """The item that adding or removing a key writes: the dict's iteration order. Two
    tasks adding different keys do not commute when anything iterates the dict later."""

    def __repr__(self) -> str:
        return "<insertion order>"


INSERTION_ORDER: Final = _InsertionOrder()


class SharedDict(MutableMapping[_K, _V]):
    """A dict whose reads and writes by key are recorded in step footprints."""

    def __init__(self, data: MutableMapping[_K, _V] | None = None, *,
                 name: str | None = None) -> None:
        self._data: MutableMapping[_K, _V] = data if data is not None else {}
        self.name = name
        if seen is not None:
            seen[id(self)] = self

    def __getitem__(self, key: _K) -> _V:
        if current is not None:  # record(self, key, "r"), inlined: this is hot
            current.add((id(self), key, "r"))
            if kept is not None:
                kept[id(self)] = self
        return self._data[key]

    def __setitem__(self, key: _K, value: _V) -> None:
        if current is not None:
            current.add((id(self), key, "w"))
            if key not in self._data:  # a new key also changes the iteration order
                current.add((id(self), INSERTION_ORDER, "w"))
            if kept is not None:
                kept[id(self)] = self
        self._data[key] = value

    def __delitem__(self, key: _K) -> None:
        record(self, key, "w")
        record(self, INSERTION_ORDER, "w")
        del self._data[key]

    def __contains__(self, key: object) -> bool:
        record(self, key, "r")
        return key in self._data

    def __iter__(self) -> Iterator[_K]:
        record(self, _WHOLE, "r")
        return iter(list(self._data))

    def __len__(self) -> int:
        record(self, _WHOLE, "r")
        return len(self._data)

    def __repr__(self) -> str:
        return f"shared({self._data!r})"


class SharedObject:
    """An object whose attribute reads and writes are recorded in step footprints."""

    __slots__ = ("__weakref__", "_name", "_target")

    def __init__(self, target: object, *, name: str | None = None) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_name", name)
        if seen is not None:
            seen[id(self)] = self

    def __getattr__(self, name: str) -> Any:
        record(self, name, "r")
        return getattr(object.__getattribute__(self, "_target"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        record(self, name, "w")
        setattr(object.__getattribute__(self, "_target"), name, value)

    def __delattr__(self, name: str) -> None:
        record(self, name, "w")
        delattr(object.__getattribute__(self, "_target"), name)

    def __repr__(self) -> str:
        return f"shared({object.__getattribute__(self, '_target')!r})"


def shared(obj: Any, name: str | None = None) -> Any:
    """Declare ``obj`` as state shared between tasks, so reduction can see its accesses.

    A dict (or any mutable mapping) is wrapped so each key is its own location; any other
    object so each attribute is. Use the returned object in place of the original;
    ``name`` is how race explanations call it::

        balances = explorer.shared({"alice": 100, "bob": 50}, "balances")
        account = explorer.shared(Account(), "account")
    """
    if isinstance(obj, (SharedDict, SharedObject)):
        return obj
    if isinstance(obj, MutableMapping):
        return SharedDict(obj, name=name)
    return SharedObject(obj, name=name)


class Label(NamedTuple):
    """How race explanations name an object recorded by automatic footprints
    (:mod:`explorer._monitoring`): ``name`` (numbered per name, ``Account#1``, unless
    ``numbered`` is false), and whether its items are attributes (``Account#1.balance``)
    rather than keys. ``target`` keeps the object alive while the run is explained."""

    name: str
    attributes: bool
    target: object
    numbered: bool = True


def describe_objects(objects: dict[int, object]) -> dict[int, str]:
    """Readable names for recorded objects: declared names, else ``Type#n`` in order of
    first access. Attributes of shared objects are marked with a leading dot."""
    names: dict[int, str] = {}
    counts: dict[str, int] = {}
    for key, obj in objects.items():
        prefix = ""
        if isinstance(obj, SharedObject):
            given = object.__getattribute__(obj, "_name")
            kind = type(object.__getattribute__(obj, "_target")).__name__
            prefix = "."
        elif isinstance(obj, SharedDict):
            given, kind = obj.name, "shared"
        elif isinstance(obj, Label):
            kind = obj.name
            given = None if obj.numbered else obj.name
            prefix = "." if obj.attributes else ""
        else:
            given, kind = None, type(obj).__name__
        if given is None:
            counts[kind] = counts.get(kind, 0) + 1
            given = f"{kind}#{counts[kind]}"
        names[key] = prefix + given
    return names


AUTO_SUPPORTED: Final = sys.version_info >= (3, 12)
"""Whether automatic footprints (``footprints="auto"``) can run here: they record accesses
with ``sys.monitoring``, new in Python 3.12."""


def require_auto() -> None:
    """Raise :class:`~explorer._errors.UsageError` when automatic footprints are not
    available here (before Python 3.12). Strategies check this when they are built, without
    loading the monitoring machinery itself."""
    if AUTO_SUPPORTED:
        return
    version = ".".join(map(str, sys.version_info[:3]))
    raise UsageError(
        f"footprints='auto' records what each step reads and writes with "
        f"sys.monitoring, which needs Python 3.12 or later; this is Python {version}. "
        "On this version, either declare the state tasks share with "
        "explorer.shared(...) and use explorer.strategies.DPOR(declared=True), or use the "
        "conservative default (strategy='dpor', where every task step counts as "
        "touching everything)"
    )
