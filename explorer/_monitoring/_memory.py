"""The memory model: recording what an operation on a value reads and writes.

Footprint locations (see the package docstring): ``(object, name)`` for attributes,
``(module.__dict__, name)`` for globals, ``(container, key)`` for items of the builtin
containers, the whole container for size, iteration and structural changes, a separate
*insertion order* item, ``(future, whole)``, and one sentinel read for any other C-level
state. Each function here adds to the running step's footprint what one operation does and
returns False when the operation cannot be modelled (the caller then makes the step
UNKNOWN). Values may be marks (:mod:`explorer._monitoring._values`).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import types
import weakref
from typing import Any, Final

from explorer import _footprint
from explorer._footprint import Label
from explorer._monitoring._categories import (
    ATOM,
    BAD,
    FUT,
    IMM,
    ITER,
    MUT,
    PY,
    SEQUENCES,
    VIEW,
    atom_key,
    builtin_base,
    category_of,
    contents,
    lookup,
    python_generator,
)
from explorer._monitoring._places import WATCHED, code_kind
from explorer._monitoring._state import STATE, Footprint
from explorer._monitoring._values import (
    ATOM_ITER,
    C_STATE,
    CELLS,
    OPAQUE,
    ORDER,
    PRIVATE_ITER,
    PURE,
    TUPLES,
    WATCHED_ITERABLES,
    Fresh,
    Iter,
    Mark,
    known,
    private,
)


def keep(obj: object) -> None:
    """Keep ``obj`` alive until the run ends: its id is in a footprint.

    Footprints name objects by id, and CPython hands the id of a freed object to the next
    object of its size. Without this, a temporary one step makes and frees (a request's
    header list, a loop's iterator, a generator's frame) and a temporary of another task's
    step that reuses its address would be one location, and the two steps would conflict
    over nothing they share; which temporaries meet would also depend on the allocator,
    so the same exploration would run a different number of schedules from one process
    to the next. Holding every recorded object for the run makes an id name one object
    for the run's whole length.

    What a program can see of it (docs/reduction.md, "Through framework code"): an object
    a step recorded and dropped stays alive until the next run starts, so its
    ``__del__``, its ``weakref.finalize`` and weak-reference callbacks run then, not in
    the step, and a ``WeakValueDictionary`` or ``WeakSet`` still holds it for the rest of
    the run."""
    STATE.kept[id(obj)] = obj


def note(obj: object, attributes: bool = False) -> None:
    """Remember a recorded object: alive for the run (:func:`keep`) and, while naming, for
    race explanations."""
    keep(obj)
    seen = _footprint.seen
    if seen is not None and id(obj) not in seen:
        seen[id(obj)] = Label(type(obj).__name__, attributes, obj) if attributes else obj


def note_namespace(namespace: dict[str, Any]) -> None:
    """Remember a module namespace, for race explanations (only while naming)."""
    STATE.kept[id(namespace)] = namespace
    seen = _footprint.seen
    if seen is not None and id(namespace) not in seen:
        seen[id(namespace)] = Label(f"module {namespace.get('__name__', '?')}", True,
                                    namespace, numbered=False)


def _registry(registry: weakref.WeakSet[Any]) -> bool:
    """True (and remembered for the run, with the containers inside it) for asyncio's own
    registries: every task (``asyncio.tasks._scheduled_tasks``, filled by the C ``Task``
    constructor) and the running loop's async generators (``loop._asyncgens``, filled by
    its first-iteration hook).

    They are the runtime's bookkeeping, like its ready queue: the WeakSet code that keeps
    them runs on asyncio's behalf whenever a task or an async generator is made or
    collected, and what reads them (``all_tasks()``, ``shutdown_asyncgens()``) is trusted
    code, whose reads are never recorded. Recorded, every step that starts a task or an
    async generator (each request through an ASGI app) would write the same set."""
    loop = asyncio.events._get_running_loop()
    if registry is not getattr(asyncio.tasks, "_scheduled_tasks", None) \
            and registry is not getattr(loop, "_asyncgens", None):
        return False
    for name in ("data", "_pending_removals", "_iterating"):
        if not hasattr(registry, name):
            return False  # not the WeakSet this rule was written for: recorded as usual
    for part in (registry, *(getattr(registry, name) for name in
                             ("data", "_pending_removals", "_iterating"))):
        STATE.registries.add(id(part))
        keep(part)
    return True


# Module-level caches of the web stack whose entry for a key is a pure function of the
# key's object, which only look up and insert (docs/reduction.md, "Pure caches").
_PURE_CACHES: Final = (("fastapi.routing", "_endpoint_context_cache"),)
# The keys FastAPI's pure lru_caches (explorer._monitoring._calls._PURE_CACHED) are called
# with: one slot, set by the constructor and never again.
_RECORDS: Final = (("fastapi.dependencies.models", "_CallIdentity", ("call",)),)


def add_pure_caches() -> None:
    """At the start of a run: accesses to the pure caches are not recorded.

    FastAPI's ``_endpoint_context_cache`` maps ``id(endpoint)`` to where the endpoint's
    source is (file, line, name), computed on a miss by code that stays watched (it reads
    the file's status and lines, which a step that changes the file conflicts with). The
    routes hold the endpoint for the app's life, so the id names one function; FastAPI
    never iterates, deletes or replaces an entry. Which request fills an entry first, and
    in which order entries are inserted, therefore changes no value any code reads: a hit
    returns a dict equal to what the miss would have made. Only its identity differs,
    like the ``lru_cache`` rule's. User code iterating that private dict is outside the
    model.

    The same holds for the keys of the pure ``lru_cache``d functions: on a hit, the cache's
    C code compares the key with the one stored by whichever step missed first (FastAPI's
    ``_CallIdentity.__eq__`` reads the stored key's ``call``). A key is an immutable
    record: its one slot is set by its constructor, in the step that made it, before any
    other step can reach it, and never again; which step made the stored key changes no
    value read. Accesses to the attributes of such a record are not recorded (checked:
    the class has exactly those slots and no ``__dict__``)."""
    for module_name, name in _PURE_CACHES:
        module = sys.modules.get(module_name)
        cache = getattr(module, name, None) if module is not None else None
        if type(cache) is dict:
            STATE.registries.add(id(cache))
            keep(cache)
    for module_name, name, slots in _RECORDS:
        module = sys.modules.get(module_name)
        cls = getattr(module, name, None) if module is not None else None
        if isinstance(cls, type) and cls.__dict__.get("__slots__") == slots \
                and cls.__bases__ == (object,) and "__setattr__" not in cls.__dict__:
            STATE.records.add(cls)


def read_c_state(fp: Footprint) -> None:
    """Record reading C-level state (one sentinel location for all of it)."""
    fp.add((id(C_STATE), None, "r"))


def _unshared(value: object, fp: Footprint) -> bool:
    """For a mark or fresh container: True if accessing it touches nothing shared (an
    atom, or a container a builtin made, which only this frame's stack holds), False
    if it may be anything."""
    return isinstance(value, Fresh) or known(value)


_IMMUTABLE_ATOMS: Final = frozenset({
    int, float, complex, bool, str, bytes, type(None), type(...), type(NotImplemented),
    range, slice, types.BuiltinFunctionType, types.MethodType, types.CodeType, property,
    staticmethod, classmethod, types.MethodDescriptorType, types.WrapperDescriptorType,
    types.MethodWrapperType, types.ClassMethodDescriptorType, types.GetSetDescriptorType,
    types.MemberDescriptorType, types.GenericAlias, types.UnionType})
_INTERPRETER_STATE: Final = frozenset({
    types.CellType, types.FrameType, types.TracebackType, types.CoroutineType,
    types.GeneratorType, types.AsyncGeneratorType})


def attribute_access(obj: object, name: str | None, mode: str, fp: Footprint) -> bool:
    """Record an attribute access; False when it cannot be modelled."""
    if private(obj):
        return _unshared(obj, fp)  # an atom, or an object only this step can reach
    if id(obj) in STATE.registries or (type(obj) is weakref.WeakSet and _registry(obj)):
        return True
    if type(obj) in STATE.records:
        return True  # an immutable key of a pure cache (add_pure_caches)
    if isinstance(obj, types.ModuleType):
        namespace = obj.__dict__
        if mode == "w" and name not in namespace:
            fp.add((id(namespace), ORDER, "w"))
        fp.add((id(namespace), name, mode))
        note_namespace(namespace)
        return True
    if name == "__dict__":
        return False  # the instance dict would be written under another identity
    if type(obj) is types.CellType:
        return False  # `cell.cell_contents`: the variable is located under its name
    category = category_of(type(obj))
    if mode != "r":
        if isinstance(obj, type):
            STATE.attributes.clear()
            return False  # a class attribute: changes the lookups of every instance
        if category == BAD or type(obj) in _INTERPRETER_STATE:
            return False  # C-level state (a cell's contents, a frame's locals, ...)
        if name == "__class__":
            name = None
    elif category in (IMM, MUT, VIEW, ITER) or type(obj) in _IMMUTABLE_ATOMS:
        return True  # a method or attribute of a builtin type: those never change
    fp.add((id(obj), name, mode))
    note(obj, attributes=True)
    return True


def item_access(container: Any, key: object, mode: str, fp: Footprint,
          inserting: bool = False) -> bool:
    """Record an item access (``mode`` "r" or "w"); ``key`` may be a mark (unknown key)."""
    if private(container):
        return _unshared(container, fp)
    if id(container) in STATE.registries:
        return True
    category = category_of(type(container))
    if category != MUT:
        if category == BAD:
            if mode == "r":
                read_c_state(fp)
                return True
            return False
        return True  # immutable, or a Python __getitem__ (watched, or foreign and caught)
    item: object = None
    if isinstance(container, SEQUENCES):
        if type(key) is int or type(key) is bool:
            index = int(key)
            item = index + builtin_base(container).__len__(container) if index < 0 else index
    elif not isinstance(key, Mark) and atom_key(key):
        item = key
        if inserting and not builtin_base(container).__contains__(container, key):
            fp.add((id(container), ORDER, "w"))
    if item is None and inserting:
        fp.add((id(container), ORDER, "w"))
    fp.add((id(container), item, mode))
    note(container)
    return True


def shallow(value: object, fp: Footprint) -> bool:
    """Record reading ``value`` as a whole (its size or truth value)."""
    if isinstance(value, Mark):
        return value.known
    if isinstance(value, Fresh):
        return True
    if isinstance(value, Iter):
        return advance(value, fp)
    if id(value) in STATE.registries:
        return True
    category = category_of(type(value))
    if category in (MUT, FUT):
        fp.add((id(value), None, "r"))
        note(value)
    elif category == VIEW:
        return _read_underlying(value, fp)
    elif category == BAD:
        read_c_state(fp)
    return True


def watched_iteration(cls: type) -> bool:
    """Iterating an instance of ``cls`` (a Python class) runs only watched code: its
    ``__iter__`` runs as Python code, and C code then iterates over what it returned,
    watched when ``__iter__`` is a generator function, or recorded when watched code
    returns it (explorer._monitoring._hooks._iterated_later)."""
    method = lookup(cls, "__iter__")
    return method is None or python_generator(method) or (
        type(method) is types.FunctionType and code_kind(method.__code__) in WATCHED)


def iterate(value: object, fp: Footprint) -> bool:
    """Record C code iterating over ``value`` to its end (list(x), x.extend(y), a, b = y)."""
    if isinstance(value, Mark):
        return value.known or value is TUPLES or value is WATCHED_ITERABLES
    if isinstance(value, Fresh):
        return True
    if isinstance(value, Iter):
        return advance(value, fp)
    if id(value) in STATE.registries:
        return True
    category = category_of(type(value))
    if category == ITER:
        return advance(iterator_kind(value), fp)
    if category == PY:
        if isinstance(value, _footprint.SharedDict):
            return True  # iterates over a private copy of its keys
        return watched_iteration(type(value))
    if category == BAD:
        if hasattr(type(value), "__next__"):
            return False  # advancing a C iterator writes its state
        read_c_state(fp)
        return True
    return shallow(value, fp)


def deep(value: object, fp: Footprint, budget: list[int], step: object,
          seen: set[int]) -> bool:
    """Record reading ``value`` and everything it contains (comparison, formatting)."""
    if isinstance(value, Mark):
        return value.known
    if isinstance(value, Fresh):
        return value.step is step and all(
            deep(source, fp, budget, step, seen) for source in value.sources)
    if isinstance(value, Iter):
        if value.obj is not None:
            fp.add((id(value.obj), None, "w"))
            keep(value.obj)
        return value.elements is PURE or all(
            deep(source, fp, budget, step, seen) for source in value.reads)
    category = category_of(type(value))
    if category in (ATOM, PY, ITER):
        return True  # immutable, identity-based, or Python dunders (watched)
    if category == BAD:
        read_c_state(fp)
        return True
    if category == FUT:
        fp.add((id(value), None, "r"))
        note(value)
        return True
    if id(value) in seen:
        return True
    seen.add(id(value))
    parts: list[Any]
    if category == VIEW:
        if not _read_underlying(value, fp):
            return False
        parts = [part for dictionary in gc.get_referents(value) for part in contents(dictionary)]
    else:
        if category == MUT:
            fp.add((id(value), None, "r"))
            note(value)
        parts = contents(value)
    budget[0] -= len(parts)
    if budget[0] < 0:
        return False
    return all(deep(part, fp, budget, step, seen) for part in parts)


def deep_all(values: Any, fp: Footprint) -> bool:
    budget = [1000]
    seen: set[int] = set()
    return all(deep(value, fp, budget, fp, seen) for value in values)


def _read_underlying(view: object, fp: Footprint) -> bool:
    return all(shallow(part, fp) for part in gc.get_referents(view))


_TUPLE_ITERATOR: Final = type(iter(()))


def iterator_kind(iterator: object) -> Iter:
    """What advancing a builtin iterator object does: write it, read what is under it."""
    if type(iterator) is _TUPLE_ITERATOR:
        return Iter(iterator, (), OPAQUE)  # reads only its tuple, which never changes
    reads: list[object] = []
    if not _collect(iterator, reads, 0):
        return Iter(iterator, (OPAQUE,), OPAQUE)
    elements = TUPLES if isinstance(iterator, (enumerate, zip)) else OPAQUE
    return Iter(iterator, tuple(reads), elements)


def _collect(obj: object, reads: list[object], depth: int) -> bool:
    """The containers and iterators a builtin iterator reads and advances, or False."""
    if depth > 8:
        return False
    for part in gc.get_referents(obj):
        category = category_of(type(part))
        if category in (MUT, VIEW):
            reads.append(part)
        elif category == ITER:
            reads.append(Iter(part, (), OPAQUE))  # advanced as well
            if not _collect(part, reads, depth + 1):
                return False
        elif category == IMM:
            if not _collect(part, reads, depth + 1):
                return False
        elif category == BAD or (callable(part) and not isinstance(
                part, types.FunctionType | types.MethodType)):
            return False  # map() or filter() calling C code on each element
    return True


def advance(kind: Iter, fp: Footprint) -> bool:
    """Record advancing an iterator of this kind once."""
    if kind.obj is not None:
        fp.add((id(kind.obj), None, "w"))
        keep(kind.obj)
    for source in kind.reads:
        if isinstance(source, Iter):
            if not advance(source, fp):
                return False
        elif not shallow(source, fp):
            return False
    return True


def lock_taken(lock: object, fp: Footprint) -> None:
    """A thread lock is acquired in the running step: a write of the lock, until the same
    step releases it (:func:`lock_released`).

    A scenario runs on one thread, and nothing else runs within a step: a lock taken and
    given back in one step leaves the lock as it found it, and what the step did depended
    only on the lock's state when it began. Such a pair is a read of the lock (it still
    conflicts with any step that takes the lock and keeps it, or gives back one taken
    earlier). ``STATE.held[id(lock)]`` is ``[the step's footprint, depth, pinned]``;
    pinned: the step also changed the lock in a way no pair undoes, so the write stays.
    """
    key = id(lock)
    held = STATE.held.get(key)
    if held is None or held[0] is not fp:
        STATE.held[key] = [fp, 1, False]
    else:
        held[1] += 1
    fp.add((key, None, "w"))
    note(lock)


def lock_released(lock: object, fp: Footprint) -> None:
    """A thread lock is released in the running step (see :func:`lock_taken`)."""
    key = id(lock)
    held = STATE.held.get(key)
    if held is None or held[0] is not fp or held[1] == 0:
        lock_changed(lock, fp)  # taken in an earlier step (or not at all): a write
        return
    held[1] -= 1
    if held[1] == 0 and not held[2]:  # a pair inside this step: a read
        del STATE.held[key]
        fp.discard((key, None, "w"))
        fp.add((key, None, "r"))
    note(lock)


def lock_changed(lock: object, fp: Footprint) -> None:
    """Any other change of a thread lock in the running step: a write that stays."""
    key = id(lock)
    held = STATE.held.get(key)
    if held is None or held[0] is not fp:
        STATE.held[key] = [fp, 0, True]
    else:
        held[2] = True
    fp.add((key, None, "w"))
    note(lock)


def note_cells() -> None:
    """Remember the closure-variables location, for race explanations."""
    seen = _footprint.seen
    if seen is not None and id(CELLS) not in seen:
        seen[id(CELLS)] = Label("closure variables", True, CELLS, numbered=False)


def note_cell(cell: types.CellType) -> None:
    """Remember a closure cell: alive for the run (:func:`keep`) and, while naming, for
    race explanations (``closure#1.name``)."""
    keep(cell)
    seen = _footprint.seen
    if seen is not None and id(cell) not in seen:
        seen[id(cell)] = Label("closure", True, cell)


def iter_kind(value: object) -> Iter | None:
    """What iterating over ``value`` writes and reads at each step, or None if unknown."""
    if isinstance(value, Iter):
        return value
    if isinstance(value, Fresh):
        return PRIVATE_ITER
    if isinstance(value, Mark):
        if value is PURE:
            return ATOM_ITER  # a string, a range
        return PRIVATE_ITER if value.known else None  # a generator: its code is watched
    category = category_of(type(value))
    if category == ATOM:
        if isinstance(value, (str, bytes, range)):
            return ATOM_ITER
        return PRIVATE_ITER  # a generator: resuming it is watched
    if category == IMM:
        parts: Any = value
        return ATOM_ITER if all(atom_key(part) for part in parts) else PRIVATE_ITER
    if category == MUT:
        return Iter(None, (value,), OPAQUE)
    if category == VIEW:
        items = type(value) is type({}.items())
        return Iter(None, tuple(gc.get_referents(value)), TUPLES if items else OPAQUE)
    if category == ITER:
        return iterator_kind(value)
    if category == PY:
        if isinstance(value, _footprint.SharedDict):
            return PRIVATE_ITER  # iterates over a copy of its keys, recording the read
        if python_generator(lookup(type(value), "__iter__")):
            return PRIVATE_ITER
    return None


