"""The instruction handlers: what each watched instruction of user code reads and writes.

One handler per kind of :class:`~explorer._monitoring._dataflow.SitePlan`: called by the
INSTRUCTION hook just before the instruction runs, with the frame and the site, it adds the
instruction's accesses to the running step's footprint and returns False when it cannot
model them (the step is then UNKNOWN). A handler whose site is ``capture`` also stores
what the instruction will produce (a real object when that can be had without running any
code, a mark otherwise) in the session's ``values``, where later operands find it.
"""

from __future__ import annotations

import collections
import collections.abc
import contextlib
import os
import sys
import types
from typing import Any, Final

from explorer import _footprint
from explorer._monitoring._categories import (
    ATOM,
    BAD,
    FUT,
    GENERIC_GETATTRIBUTE,
    IMM,
    ITER,
    KEYED,
    MUT,
    PY,
    THREAD_LOCKS,
    VIEW,
    atom_key,
    category_of,
    elements_kind,
    lookup,
    plain_value,
    python_generator,
)
from explorer._monitoring._cells import by_cell, cell_at
from explorer._monitoring._memory import (
    advance,
    attribute_access,
    deep_all,
    item_access,
    iter_kind,
    iterate,
    iterator_kind,
    lock_released,
    lock_taken,
    note,
    note_cell,
    note_cells,
    note_namespace,
    read_c_state,
    shallow,
    watched_iteration,
)
from explorer._monitoring._places import TRUSTED, WATCHED, code_kind
from explorer._monitoring._state import STATE, Footprint, Handler, Site
from explorer._monitoring._values import (
    ASYNC_GENERATOR_FLAG,
    CELLS,
    COROUTINE_FLAGS,
    FUNCTION,
    GENERATOR_FLAGS,
    OPAQUE,
    ORDER,
    PURE,
    SAFE,
    TRUSTED_RESULT,
    TUPLES,
    WATCHED_ITERABLES,
    ZIPPED,
    Await,
    Coro,
    Fresh,
    Iter,
    Mark,
    New,
    atom,
    known,
    private,
    python_callable,
)


def operand(src: Any, frame: types.FrameType) -> Any:
    """The value of an operand, as the analysis located it."""
    if src is None:
        return OPAQUE
    tag = src[0]
    if tag == "o":
        return STATE.values.get((id(frame), src[1]), OPAQUE)
    if tag == "c":
        return src[2]
    if tag == "l":
        return frame.f_locals.get(src[1], OPAQUE)
    if tag == "p":
        return PURE
    if tag == "F":
        return FUNCTION
    if tag == "f":
        return Fresh(tuple(operand(part, frame) for part in src[1]), _footprint.current)
    if tag == "j":  # one of these (a stale one is harmless: all must be atoms)
        return PURE if all(atom(operand(part, frame)) for part in src[1]) else OPAQUE
    return OPAQUE


def keep_output(frame: types.FrameType, site: Site, value: object) -> None:
    """Store the instruction's output, if a later one uses it."""
    if site.capture:
        STATE.values[(id(frame), site.offset)] = value


def _h_unknown(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    keep_output(frame, site, OPAQUE)
    return False


_TYPE_NAMES: Final[dict[str, Any]] = {
    name: type.__dict__[name] for name in ("__name__", "__qualname__", "__module__")}


def _h_attr_r(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    obj = operand(site.first, frame)
    name = site.second
    if site.capture:
        key = (id(frame), site.offset)
        value = OPAQUE if private(obj) else plain_value(obj, name)
        if value is OPAQUE and isinstance(obj, type) and name in _TYPE_NAMES:
            # A class's name or module, through type's own C getter (no Python code): a
            # string, unless a class body set something else.
            found = _TYPE_NAMES[name].__get__(obj, type(obj))
            value = found if atom(found) else OPAQUE
        elif value is OPAQUE and type(obj) is os.stat_result:
            found = getattr(obj, name, OPAQUE)  # an immutable record of numbers (C members)
            value = found if atom(found) else OPAQUE
        STATE.values[key] = value
        if value is OPAQUE and not private(obj):
            # A property whose getter is watched code: what it returns is the value.
            getter = getattr(lookup(type(obj), name), "fget", None) \
                if type(lookup(type(obj), name)) is property else None
            if type(getter) is types.FunctionType and code_kind(getter.__code__) in WATCHED \
                    and lookup(type(obj), "__getattribute__") in GENERIC_GETATTRIBUTE:
                STATE.expect[key] = getter.__code__
    return attribute_access(obj, name, "r", fp)


def _h_attr_w(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    obj = operand(site.first, frame)
    name = site.second
    place = _plain_place(obj, name) if site.third is not None else None
    if place is not None:
        value = operand(site.third, frame)
        held = stored(place, obj, name)
        if not private(value) and (held is value or same_value(held, value)):
            # Stores the value the attribute holds: the state does not change, and what
            # the step did depended on that value, so it is a read (docs/reduction.md,
            # "Silent stores").
            return attribute_access(obj, name, "r", fp)
        if private(value) and held is not ABSENT and (id(obj), name, "w") not in fp:
            # The value is not known here (a call's result): the step's next event looks
            # whether the attribute still holds the same value (_hooks.settle).
            STATE.pending = (fp, place, obj, name, held)
    return attribute_access(obj, name, "w", fp)


def stored(place: Any, obj: object, name: object) -> object:
    """What a plain store's place (:func:`_plain_place`, or a dict for its items) holds
    under ``name`` now, ABSENT if nothing; runs no Python code."""
    if type(place) is dict:
        return place.get(name, ABSENT)
    try:
        return place.__get__(obj, type(obj))  # a slot's member descriptor: C code
    except (AttributeError, TypeError):
        return ABSENT


def _plain_place(obj: object, name: str) -> Any:
    """Where ``obj.name = value`` stores, when the store is a plain one
    (``object.__setattr__`` of an instance attribute): a slot's member descriptor, or the
    instance dict when no data descriptor is on the class. None otherwise."""
    if private(obj) or isinstance(obj, type) \
            or category_of(type(obj)) != PY \
            or type(obj).__setattr__ is not object.__setattr__:
        return None
    slot = lookup(type(obj), name)
    if type(slot) is types.MemberDescriptorType:
        return slot  # the data descriptor object.__setattr__ stores through
    if type(lookup(type(obj), "__dict__")) is not types.GetSetDescriptorType:
        return None
    try:
        namespace = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return None
    if type(namespace) is not dict:
        return None
    descriptor = lookup(type(obj), name)
    if descriptor is not None and (hasattr(type(descriptor), "__set__")
                                   or hasattr(type(descriptor), "__delete__")):
        return None
    return namespace


def same_value(held: object, value: object) -> bool:
    """An equal int, str or bytes of the exact type is the same value: Python leaves the
    identity of equal immutable values to the implementation ("Objects, values and types"
    in the language reference), so no program may depend on which one it holds. Floats
    are left out: 0.0 == -0.0 and nan != nan."""
    return type(held) is type(value) and type(value) in _SAME_VALUE and held == value


ABSENT: Final = object()  # nothing stored under that name
_SAME_VALUE: Final = frozenset({int, str, bytes})


def _h_super(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    obj = operand(site.first, frame)
    return not private(obj) and attribute_access(obj, site.second, "r", fp)


def _h_glob_r(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    namespace = frame.f_globals
    name = site.first
    fp.add((id(namespace), name, "r"))
    note_namespace(namespace)
    value = namespace.get(name, OPAQUE)
    if value is OPAQUE:
        builtins_ = frame.f_builtins
        fp.add((id(builtins_), name, "r"))
        value = builtins_.get(name, OPAQUE)
    keep_output(frame, site, value)
    return True


def _h_glob_w(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    namespace = frame.f_globals
    name = site.first
    if name not in namespace:
        fp.add((id(namespace), ORDER, "w"))
    fp.add((id(namespace), name, "w"))
    note_namespace(namespace)
    return True


def _h_cell_r(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    if by_cell():
        # Located by cell: each call of a function that makes a closure has cells of its
        # own, so two requests' `response_started` flags are two locations.
        cell = cell_at(frame, site.second)
        if cell is None:
            keep_output(frame, site, OPAQUE)
            return False
        fp.add((id(cell), site.first, "r"))
        note_cell(cell)
        if site.capture:
            try:
                value: object = cell.cell_contents
            except ValueError:  # empty: the instruction raises NameError
                value = OPAQUE
            STATE.values[(id(frame), site.offset)] = value
        return True
    fp.add((id(CELLS), site.first, "r"))
    note_cells()
    if site.capture:
        STATE.values[(id(frame), site.offset)] = frame.f_locals.get(site.first, OPAQUE)
    return True


def _h_cell_w(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    if by_cell():
        cell = cell_at(frame, site.second)
        if cell is None:
            return False
        fp.add((id(cell), site.first, "w"))
        note_cell(cell)
        return True
    fp.add((id(CELLS), site.first, "w"))
    note_cells()
    return True


def _h_item_r(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    container = operand(site.first, frame)
    key = operand(site.second, frame)
    tp = type(container)
    inserting = False
    if tp is collections.defaultdict:  # a missing key is inserted
        inserting = isinstance(key, Mark) or not atom_key(key) \
            or not dict.__contains__(container, key)
    if site.capture:
        value: object = OPAQUE
        if tp in (dict, list, tuple, collections.defaultdict, str, bytes) and not inserting \
                and not isinstance(key, Mark) and atom_key(key):
            try:
                value = tp.__getitem__(container, key)  # an exact builtin type: C code
            except (KeyError, IndexError, TypeError):
                value = OPAQUE
        elif inserting and isinstance(container.default_factory, type):
            value = New(container.default_factory)
        STATE.values[(id(frame), site.offset)] = value
    if inserting:
        factory = container.default_factory
        if not (factory is None or python_callable(factory)
                or (isinstance(factory, type) and category_of(factory) in (MUT, IMM, ATOM, PY))):
            return False  # a C callable producing the default value
        return item_access(container, key, "w", fp, inserting=True)
    return item_access(container, key, "r", fp)


def _h_item_w(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    container = operand(site.first, frame)
    key = operand(site.second, frame)
    if type(container) is dict and not isinstance(key, Mark) and atom_key(key) \
            and key in container and (id(container), key, "w") not in fp \
            and id(container) not in STATE.registries:
        # The value stored is not known here: the step's next event looks whether the
        # item still holds the same value (_hooks.settle), as for attributes.
        STATE.pending = (fp, container, container, key, container[key])
    return item_access(container, key, "w", fp, inserting=True)


def _h_item_d(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    return item_access(operand(site.first, frame), operand(site.second, frame), "w", fp)


def _h_slice_r(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    container = operand(site.first, frame)
    keep_output(frame, site, Fresh((container,), fp) if not isinstance(container, Mark)
          else container)
    return item_access(container, OPAQUE, "r", fp)


def _h_slice_w(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    return item_access(operand(site.first, frame), OPAQUE, "w", fp, inserting=True)


_INPLACE: Final = 13  # BINARY_OP's in-place operators are the plain ones plus 13
_REMAINDER: Final = 6


def _h_binop(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    """An arithmetic or container operator: atoms are free; containers are read (the
    left one written, in place); Python operands run their own (watched) methods."""
    lhs = operand(site.first, frame)
    rhs = operand(site.second, frame)
    inplace = site.third >= _INPLACE
    changed: object = None  # the left operand, when it is changed in place
    containers = python = False
    for left, value in ((True, lhs), (False, rhs)):
        if isinstance(value, Mark):
            if not value.known:
                keep_output(frame, site, OPAQUE)
                return False
            continue
        if isinstance(value, (Fresh, Iter)):
            if isinstance(value, Iter) and not advance(value, fp):
                return False
            containers = True
            continue
        category = category_of(type(value))
        if category in (MUT, VIEW, FUT, IMM):
            if not shallow(value, fp):
                return False
            containers = True
            if left and inplace and category == MUT:
                fp.add((id(value), None, "w"))
                changed = value
        elif category in (PY, ITER):
            python = True  # its Python method runs (watched); what it returns is unknown
        elif category == BAD:
            if left and inplace:
                keep_output(frame, site, OPAQUE)
                return False
            read_c_state(fp)
            python = True
    if site.third % _INPLACE == _REMAINDER and isinstance(lhs, (str, bytes)) \
            and not deep_all((rhs,), fp):
        return False  # "%s" % x formats x
    result: object = PURE
    if changed is not None:
        result = changed
    elif python:
        result = OPAQUE
    elif containers:
        result = Fresh((lhs, rhs), fp)  # a new container holding what they hold
    keep_output(frame, site, result)
    return True


def _h_unary(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    value = operand(site.first, frame)
    if isinstance(value, Mark) or type(value) in (int, float, complex, bool):
        keep_output(frame, site, PURE if known(value) else OPAQUE)
        return known(value)
    keep_output(frame, site, OPAQUE)
    return shallow(value, fp)


def _h_truth(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    return shallow(operand(site.first, frame), fp)


def _rich_compare_is_python(value: object) -> bool:
    if private(value) or category_of(type(value)) != PY:
        return False
    tp = type(value)
    return any(isinstance(lookup(tp, name), types.FunctionType)
               for name in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"))


def _h_compare(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    lhs = operand(site.first, frame)
    rhs = operand(site.second, frame)
    python = _rich_compare_is_python(lhs) or _rich_compare_is_python(rhs)
    keep_output(frame, site, OPAQUE if python else PURE)
    if python and site.third:
        return False  # 3.13 turns the result into a bool: the truth of an unknown object
    return deep_all((lhs, rhs), fp)


def _environ_lookup() -> types.CodeType | None:
    """The code ``NAME in os.environ`` runs unwatched, when it is the one expected."""
    environ = type(os.environ)
    getitem = getattr(environ, "__getitem__", None)
    if environ.__contains__ is not collections.abc.Mapping.__contains__ \
            or type(getitem) is not types.FunctionType:
        return None
    return getitem.__code__


_ENVIRON_LOOKUP: Final = _environ_lookup()


def _h_contains(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    item = operand(site.first, frame)
    container = operand(site.second, frame)
    if isinstance(container, Mark):
        return container.known and deep_all((item,), fp)
    if isinstance(container, Fresh):
        if atom(item):  # an atom compares equal to atoms only: no element is read
            return True
        return deep_all((container, item), fp)
    if isinstance(container, Iter):
        return advance(container, fp) and deep_all((item,), fp)
    if container is os.environ and type(item) is str and _ENVIRON_LOOKUP is not None:
        # ``"NAME" in os.environ``: Mapping.__contains__ (a helper) calls _Environ's
        # __getitem__, frozen code that reads one variable (as os.getenv does).
        fp.add((id(os.environ), item, "r"))
        STATE.approved = _ENVIRON_LOOKUP  # that call, once, runs without making it UNKNOWN
        return True
    category = category_of(type(container))
    if category == MUT and isinstance(container, KEYED):
        return item_access(container, item, "r", fp)  # a hash lookup of the key
    if category in (MUT, IMM, VIEW):
        if (isinstance(item, Mark) and item.known) or category_of(type(item)) == ATOM:
            return shallow(container, fp)  # an atom compares equal to atoms only
        return deep_all((container, item), fp)
    if category == PY:
        if lookup(type(container), "__contains__") is not None:
            return True  # Python code
        return iterate(container, fp)
    if category == ITER:
        return advance(iterator_kind(container), fp) and deep_all((item,), fp)
    if category == BAD:
        read_c_state(fp)
    return category != FUT



def _h_iter(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    value = operand(site.first, frame)
    kind = iter_kind(value)
    keep_output(frame, site, kind if kind is not None else OPAQUE)
    if kind is None and not private(value) and category_of(type(value)) == PY:
        method = lookup(type(value), "__iter__")
        if type(method) is types.FunctionType and code_kind(method.__code__) in WATCHED:
            # A Python __iter__, watched: the iterator it returns is the output (set when
            # it returns), and advancing that is recorded where the loop does it.
            if site.capture:
                STATE.expect[(id(frame), site.offset)] = method.__code__
            return True
    return kind is not None



def _h_next(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    src = site.first
    value = operand(src, frame)
    if src is not None and src[0] == "o":  # GET_ITER's (or a call's) output
        kind = value if isinstance(value, Iter) else (
            iter_kind(value) if not private(value) else None)  # what a Python __iter__ gave
    else:  # an iterator held in a variable (a generator expression's argument)
        kind = None if private(value) else iter_kind(value)
    if site.capture:
        elements: object = OPAQUE
        if kind is not None:
            elements = kind.elements
            if elements is OPAQUE and len(kind.reads) == 1:
                elements = elements_kind(kind.reads[0])  # what it holds now
                if elements is OPAQUE and _watched_iterables(kind.reads[0]):
                    elements = WATCHED_ITERABLES
            elif elements is ZIPPED:  # enumerate or zip over lists: what they hold now
                elements = PURE if all(elements_kind(source) is PURE
                                       for source in kind.reads) else TUPLES
        STATE.values[(id(frame), site.offset)] = elements
    return kind is not None and advance(kind, fp)


def _watched_iterables(container: object) -> bool:
    """A (small) list or tuple, each element of which is an instance of a Python class
    that iterates in watched code (Starlette's ``Middleware`` records)."""
    if type(container) not in (list, tuple) or len(container) > 64:  # type: ignore[arg-type]
        return False
    return all(category_of(type(element)) == PY and watched_iteration(type(element))
               for element in container)  # type: ignore[attr-defined]


def _h_await(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    value = operand(site.first, frame)
    kind: object = OPAQUE
    if value is SAFE or value is TRUSTED_RESULT or isinstance(value, Coro):
        kind = value if isinstance(value, Coro) else SAFE
    elif isinstance(value, types.CoroutineType):
        kind = Coro(value.cr_code)
    elif isinstance(value, types.GeneratorType):
        kind = Coro(value.gi_code)
    elif not private(value):
        category = category_of(type(value))
        if category == FUT:
            fp.add((id(value), None, "r"))
            note(value)
            kind = Await(value)
        elif category == PY and python_generator(lookup(type(value), "__await__")):
            kind = SAFE
    keep_output(frame, site, kind)
    if site.second is not None:
        _awaiting(frame, site, kind)
    return kind is not OPAQUE


def _awaiting(frame: types.FrameType, site: Site, kind: object) -> None:
    """Before the first SEND of an await. Resuming the awaitable in later steps runs
    watched code (a coroutine) or reads a future (recorded by the wake-up); an unknown
    awaitable marks the frame, so that every step resuming it is UNKNOWN."""
    if kind is OPAQUE:
        STATE.tainted.add(id(frame))
    else:
        STATE.tainted.discard(id(frame))
    if site.third:  # the await's result: unknown, unless watched code returns it
        key = (id(frame), site.second)
        STATE.values[key] = PURE if isinstance(kind, Coro) and (
            kind.code in _ATOM_AEXITS or _trusted_exit(kind.code)) else OPAQUE
        STATE.expect[key] = kind.code if isinstance(kind, Coro) else None


def _h_send(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    kind = operand(site.first, frame)
    if site.capture:  # the await's result: unknown, unless watched code returns it
        key = (id(frame), site.offset)
        STATE.values[key] = OPAQUE
        STATE.expect[key] = kind.code if isinstance(kind, Coro) else None
    if kind is SAFE or isinstance(kind, Coro):
        return True
    if isinstance(kind, Await):
        fp.add((id(kind.future), None, "r"))
        return True
    return False


def _h_aiter(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    value = operand(site.first, frame)
    ok = isinstance(value, types.AsyncGeneratorType) or (isinstance(value, Coro) and bool(
        value.code.co_flags & ASYNC_GENERATOR_FLAG))  # an async generator of watched code
    if not ok and not private(value) and category_of(type(value)) == PY:
        # An object whose __aiter__ is an async generator function: iterating it runs
        # that generator (watched, or caught when it resumes if foreign).
        method = lookup(type(value), "__aiter__")
        code = getattr(method, "__code__", None) if type(method) is types.FunctionType \
            else None
        ok = code is not None and bool(code.co_flags & ASYNC_GENERATOR_FLAG)
    keep_output(frame, site, SAFE if ok else OPAQUE)
    return ok


def _h_anext(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    ok = operand(site.first, frame) is SAFE
    keep_output(frame, site, SAFE if ok else OPAQUE)
    if site.second is not None:
        _awaiting(frame, site, SAFE if ok else OPAQUE)
    return ok


def _h_with(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    """with / async with: the manager's methods must be Python code (watched, or foreign
    and caught); for async with, what __aenter__ returns is awaited next."""
    manager = operand(site.first, frame)
    if type(manager) in THREAD_LOCKS:  # with lock: acquires it (C code); the exit's call
        lock_taken(manager, fp)  # releases it
        keep_output(frame, site, OPAQUE)
        STATE.values[(id(frame), site.offset + 1)] = manager
        return True
    cls = manager.cls if isinstance(manager, New) else type(manager)
    ok = (isinstance(manager, New) or not private(manager)) and category_of(cls) == PY
    # For an exception leaving the block (_h_with_exit): kept under offset + 1.
    STATE.values[(id(frame), site.offset + 1)] = manager if ok else OPAQUE
    if site.capture:
        enter = lookup(cls, "__aenter__") if ok else None
        code = getattr(enter, "__code__", None)
        safe = code is not None and code.co_flags & COROUTINE_FLAGS
        STATE.values[(id(frame), site.offset)] = SAFE if safe else OPAQUE
    return ok


# contextlib (helper code: no return event) managers whose __exit__ returns an atom:
# a bool (a @contextmanager generator's), None (nullcontext).
_ATOM_EXITS: Final[frozenset[object]] = frozenset({
    contextlib._GeneratorContextManager.__exit__, contextlib.nullcontext.__exit__})
# ... and the coroutines of those whose __aexit__ does (an AsyncExitStack's: a bool).
_ATOM_AEXITS: Final = frozenset({contextlib.AsyncExitStack.__aexit__.__code__,
                                 contextlib._AsyncGeneratorContextManager.__aexit__.__code__,
                                 contextlib.nullcontext.__aexit__.__code__})


def _trusted_exit(code: types.CodeType) -> bool:
    """An ``__aexit__`` (or ``__exit__``) of trusted code: every one in asyncio, trio,
    outcome and the explorer returns None or a bool (docs/reduction.md, "Managers of
    trusted code"), so testing its result reads nothing."""
    return code.co_name in ("__exit__", "__aexit__") and code_kind(code) == TRUSTED


def _h_with_exit(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    """An exception leaves a ``with`` block: the interpreter calls the manager's
    ``__exit__`` with it, with no call event. The with site kept the manager (in this
    frame, where the block was entered): a thread lock is released (C code); the
    ``__exit__`` of a class whose methods are Python code is Python code, which runs
    watched (or is caught as foreign code called from watched code when it starts). What
    it returns is tested for truth next: an atom from contextlib's ``@contextmanager`` and
    ``nullcontext`` managers, the return value of watched code (handed over when it
    returns), unknown otherwise."""
    manager = operand(site.first, frame)
    if type(manager) in THREAD_LOCKS:
        lock_released(manager, fp)
        keep_output(frame, site, PURE)  # (None)
        return True
    if not isinstance(manager, New) and private(manager):
        return False
    cls = manager.cls if isinstance(manager, New) else type(manager)
    exit_ = lookup(cls, "__aexit__" if site.second else "__exit__") \
        if category_of(cls) == PY else None
    if type(exit_) is not types.FunctionType:
        return False
    if site.second:  # async with: __aexit__ made a coroutine, awaited next
        if not exit_.__code__.co_flags & COROUTINE_FLAGS:
            return False
        keep_output(frame, site, Coro(exit_.__code__))
        return True
    if exit_ in _ATOM_EXITS or code_kind(exit_.__code__) == TRUSTED:
        # (trusted code's __exit__ methods return None or a bool: docs/reduction.md,
        # "Managers of trusted code")
        keep_output(frame, site, PURE)
        return True
    keep_output(frame, site, OPAQUE)
    if site.capture and code_kind(exit_.__code__) in WATCHED:
        STATE.expect[(id(frame), site.offset)] = exit_.__code__
    return True


def _h_format(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    return deep_all((operand(site.first, frame),), fp)


def _h_iterate(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    return iterate(operand(site.first, frame), fp)


def _h_unpack(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    """``a, (b, c) = value``: iterating ``value``; its parts are PURE when it is (a tuple
    of atoms, an element of a list of them), so a nested unpacking of one reads nothing."""
    value = operand(site.first, frame)
    keep_output(frame, site, PURE if value is PURE or (
        type(value) is tuple and elements_kind(value) is PURE) else OPAQUE)
    return iterate(value, fp)


def _context_managers() -> dict[types.CodeType, type]:
    """The wrappers contextlib's decorators make (one code object each), and the class
    of manager they return."""
    def function() -> Any:
        return None
    return {contextlib.contextmanager(function).__code__: contextlib._GeneratorContextManager,
            contextlib.asynccontextmanager(function).__code__:
                contextlib._AsyncGeneratorContextManager}


_CONTEXT_MANAGERS: Final = _context_managers()

# Trusted functions that return a new instance of one trusted manager class each (the
# function's module and name, the class's module and name): ``async with
# trio.open_nursery():`` and ``with trio.move_on_after(1):`` enter a manager whose
# methods are trusted code (docs/reduction.md, "Managers of trusted code").
_MANAGER_FACTORIES: Final = (
    ("trio._core._run", "open_nursery", "trio._core._run", "NurseryManager"),
    ("trio._timeouts", "move_on_after", "trio._core._run", "CancelScope"),
    ("trio._timeouts", "move_on_at", "trio._core._run", "CancelScope"),
    ("asyncio.timeouts", "timeout", "asyncio.timeouts", "Timeout"),
    ("asyncio.timeouts", "timeout_at", "asyncio.timeouts", "Timeout"))
_MANAGER_FACTORY_NAMES: Final = frozenset(entry[1] for entry in _MANAGER_FACTORIES)
_MANAGERS_MADE: Final[dict[types.CodeType, type]] = {}


def _trusted_manager(code: types.CodeType) -> type | None:
    """The class of the manager trusted function ``code`` returns, if it is one of
    :data:`_MANAGER_FACTORIES` (looked up in the modules already imported: none is
    imported for this)."""
    made = _MANAGERS_MADE.get(code)
    if made is not None:
        return made
    for module, name, class_module, class_name in _MANAGER_FACTORIES:
        function = getattr(sys.modules.get(module), name, None)
        cls = getattr(sys.modules.get(class_module), class_name, None)
        if getattr(function, "__code__", None) is code and isinstance(cls, type):
            _MANAGERS_MADE[code] = cls
            return cls
    return None


def python_result(frame: types.FrameType, offset: int, code: types.CodeType) -> object:
    """What a call of Python code ``code`` returns, as far as known now; watched code's
    return value replaces it when it returns (see :func:`_on_return`)."""
    kind = code_kind(code)
    if kind == TRUSTED:
        STATE.expect[(id(frame), offset)] = None
        manager = _trusted_manager(code) if code.co_name in _MANAGER_FACTORY_NAMES else None
        return TRUSTED_RESULT if manager is None else New(manager)
    made = _CONTEXT_MANAGERS.get(code)
    if made is not None:  # a @contextmanager function: a new manager of that class
        STATE.expect[(id(frame), offset)] = None
        return New(made)
    if code.co_flags & (COROUTINE_FLAGS | GENERATOR_FLAGS):
        STATE.expect[(id(frame), offset)] = None  # it returns the coroutine, not its value
        return Coro(code) if kind in WATCHED else SAFE
    STATE.expect[(id(frame), offset)] = code if kind in WATCHED else None
    return OPAQUE


def _h_callpre(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    """Before a call whose result is used: what a Python callee returns (the call event
    that follows, if any, refines it; 3.12 has none for a Python ``f(*args)``)."""
    if site.second is not None and not iterate(operand(site.second, frame), fp):
        return False  # f(*args) iterates over args
    if not site.capture:
        return True
    callee = operand(site.first, frame)
    tp = type(callee)
    if tp is types.FunctionType or tp is types.MethodType:
        code = (callee.__func__ if tp is types.MethodType else callee).__code__
        kind = python_result(frame, site.offset, code)
    else:
        kind = OPAQUE
        STATE.expect[(id(frame), site.offset)] = None
    STATE.values[(id(frame), site.offset)] = kind
    return True


def _h_import(frame: types.FrameType, site: Site, fp: Footprint) -> bool:
    """``import x`` of a module already imported: reads ``sys.modules["x"]``, runs no code
    (a module not yet imported, or being imported, runs the import machinery: UNKNOWN)."""
    name = site.first
    fromlist = operand(site.second, frame)
    level = operand(site.third, frame)
    if type(level) is int and level > 0 and type(name) is str and fromlist:
        # ``from .sibling import x`` (anyio imports inside functions): the name relative
        # to the module's package, as the import system resolves it (no code runs).
        package = frame.f_globals.get("__package__")
        bits = package.rsplit(".", level - 1) if type(package) is str and package else []
        if len(bits) == level:
            name, level = f"{bits[0]}.{name}" if name else bits[0], 0
            # The import system checks __package__ against ``__spec__.parent``, a
            # property of frozen code reading the (immutable) spec's name: that call,
            # once, runs without making the step UNKNOWN.
            parent = type(frame.f_globals.get("__spec__")).__dict__.get("parent")
            getter = getattr(parent, "fget", None) if type(parent) is property else None
            if type(getter) is types.FunctionType:
                STATE.approved = getter.__code__
    module = sys.modules.get(name) if level == 0 and type(name) is str else None
    spec = getattr(module, "__spec__", None) if isinstance(module, types.ModuleType) else None
    if module is None or isinstance(fromlist, (Mark, Fresh, Iter)) or (
            spec is not None and getattr(spec, "_initializing", False)):
        keep_output(frame, site, OPAQUE)
        return False
    fp.add((id(sys.modules), name, "r"))
    value = module if fromlist else sys.modules.get(name.partition(".")[0])
    keep_output(frame, site, value if value is not None else OPAQUE)
    return True


HANDLERS: dict[str, Handler] = {
    "unknown": _h_unknown, "attr_r": _h_attr_r, "attr_w": _h_attr_w, "super": _h_super,
    "glob_r": _h_glob_r, "glob_w": _h_glob_w, "cell_r": _h_cell_r, "cell_w": _h_cell_w,
    "item_r": _h_item_r, "item_w": _h_item_w, "item_d": _h_item_d, "slice_r": _h_slice_r,
    "slice_w": _h_slice_w, "binop": _h_binop, "unary": _h_unary, "truth": _h_truth,
    "compare": _h_compare, "contains": _h_contains, "iter": _h_iter, "next": _h_next,
    "await": _h_await, "send": _h_send, "aiter": _h_aiter, "anext": _h_anext,
    "with": _h_with, "with_exit": _h_with_exit, "format": _h_format, "extend": _h_iterate,
    "unpack": _h_unpack,
    "callpre": _h_callpre, "import": _h_import,
}
"""The handler of each kind of site the analysis plans."""


