"""How the C level treats a type: the category table automatic footprints model values by.

A type's *category* says what operations on its instances can touch without running
Python code: nothing (ATOM, IMM), the container's own items (MUT), the containers under a
view (VIEW), the iterator's position and what it reads (ITER), a future's state (FUT), or
only Python methods, which are watched (PY); BAD is any other C-level state.
Classification is cached per type on the session state.

No ``sys.monitoring`` here; runs on every supported Python.
"""

from __future__ import annotations

import _thread
import asyncio
import collections
import datetime
import enum
import re
import types
from typing import Any, Final

from explorer._monitoring._state import STATE
from explorer._monitoring._values import ATOMS, GENERATOR_FLAGS, OPAQUE, PURE, TUPLES

ATOM, IMM, MUT, VIEW, ITER, FUT, PY, BAD = range(8)

SEQUENCES: Final = (list, collections.deque, bytearray)
THREAD_LOCKS: Final = (type(_thread.allocate_lock()), _thread.RLock)
MAPPINGS: Final = (dict, collections.defaultdict, collections.OrderedDict)
KEYED: Final = (*MAPPINGS, set)


class _OldStyleIterable:
    def __getitem__(self, index: int) -> int:
        raise IndexError(index)


_KNOWN: dict[Any, int] = {
    **dict.fromkeys((
        int, float, complex, bool, str, bytes, type(None), type(...), type(NotImplemented),
        range, slice, type, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
        types.ModuleType, types.CodeType, types.CoroutineType, types.GeneratorType,
        types.AsyncGeneratorType, property, staticmethod, classmethod,
        types.MethodDescriptorType, types.WrapperDescriptorType, types.MethodWrapperType,
        types.ClassMethodDescriptorType, types.GetSetDescriptorType,
        types.MemberDescriptorType, types.CellType, types.FrameType, types.TracebackType,
        types.GenericAlias, types.UnionType,
        # Compiled patterns and matches: immutable C objects over immutable strings.
        re.Pattern, re.Match,
        # Dates, times and durations: immutable C objects.
        datetime.date, datetime.datetime, datetime.time, datetime.timedelta,
        datetime.timezone), ATOM),
    **dict.fromkeys((tuple, frozenset), IMM),
    **dict.fromkeys((list, dict, set, bytearray, collections.deque, collections.defaultdict,
                     collections.OrderedDict), MUT),
    **dict.fromkeys((
        type({}.keys()), type({}.values()), type({}.items()),
        type(collections.OrderedDict().keys()), type(collections.OrderedDict().values()),
        type(collections.OrderedDict().items())), VIEW),
    **dict.fromkeys((
        type(iter([])), type(reversed([])), type(iter(())), type(iter(set())), type(iter({})),
        type(iter({}.values())), type(iter({}.items())), type(reversed({})),
        type(reversed({}.values())), type(reversed({}.items())),
        type(iter(collections.deque())), type(reversed(collections.deque())),
        type(iter(bytearray())), type(iter("")), type(iter("\u0100")), type(iter(b"")),
        type(iter(range(0))), type(iter(range(2 ** 70))), enumerate, zip, map, filter,
        reversed, type(iter(collections.OrderedDict())), type(iter(int, 0)),
        type(iter(_OldStyleIterable()))), ITER),
    asyncio.Future: FUT, asyncio.Task: FUT,
    object: PY, BaseException: PY,
}

_CLASS_LEVEL: Final = frozenset({"__class_getitem__", "__init_subclass__"})
_OBJECT_SLOTS: Final = dict(vars(object))


def _slot_names(cls: type) -> set[str]:
    """The attributes ``cls.__slots__`` makes, private names mangled as the class
    statement mangles them (``__slots__ = ("__original",)`` in ``class Lock`` makes
    ``_Lock__original``: anyio's backends)."""
    slots = cls.__dict__.get("__slots__", ())
    names = {slots} if isinstance(slots, str) else set(slots)
    owner = cls.__name__.lstrip("_")
    return names | {f"_{owner}{name}" for name in names
                    if name.startswith("__") and not name.endswith("__") and owner}


def _python_defined(cls: type) -> bool:
    """True for a class made by a ``class`` statement (or ``type()``): one whose own
    attributes are Python functions and plain values, not C methods or slots."""
    if not cls.__flags__ & (1 << 9):  # Py_TPFLAGS_HEAPTYPE
        return False
    own = cls.__dict__
    for name, value in own.items():
        kind = type(value)
        if kind is types.ClassMethodDescriptorType and name in _CLASS_LEVEL:
            continue  # typing.Generic (C since 3.12): class-level hooks, no instance state
        if value is _OBJECT_SLOTS.get(name):
            continue  # __eq__ = object.__eq__ (Starlette's HTTPConnection): object's own
        if kind in (types.MethodDescriptorType, types.WrapperDescriptorType,
                    types.ClassMethodDescriptorType, types.BuiltinFunctionType):
            return False
        if kind is types.GetSetDescriptorType and name not in ("__dict__", "__weakref__"):
            return False
        if kind is types.MemberDescriptorType and name not in _slot_names(cls):
            return False
    return True


def category_of(tp: type) -> int:
    """How the C level treats instances of ``tp``: the category of the first known class
    in its MRO, if every class before it is defined in Python; BAD otherwise."""
    found = STATE.categories.get(tp)
    if found is not None:
        return found
    result = BAD
    for cls in tp.__mro__:
        known = _KNOWN.get(cls)
        if known is not None:
            result = known
            break
        if issubclass(cls, BaseException) and not cls.__flags__ & (1 << 9):
            result = PY  # the builtin exceptions: C state is their args, read-only here
            break
        if not _python_defined(cls):
            break
    STATE.categories[tp] = result
    return result


def builtin_base(container: object) -> Any:
    """The builtin container type ``container`` is (or derives from): its C methods are
    used here, so that a Python override in a subclass never runs inside a callback."""
    for cls in type(container).__mro__:
        if cls in _BUILTIN_CONTAINERS:
            return cls
    raise TypeError(type(container).__name__)


_BUILTIN_CONTAINERS: Final = frozenset({
    list, dict, set, frozenset, tuple, bytearray, collections.deque,
    collections.defaultdict, collections.OrderedDict})


def contents(container: Any) -> list[Any]:
    """What a builtin container holds (keys and values of a mapping), read in C."""
    base = builtin_base(container)
    if issubclass(base, dict):
        return [*dict.keys(container), *dict.values(container)]
    return list(base.__iter__(container))


def atom_key(value: object) -> bool:
    """True when ``value`` can be kept in a footprint as a dict key or set element:
    hashable and compared without running any code."""
    tp = type(value)
    if tp in (int, str, bytes, float, bool, type(None)):
        return value == value  # NaN is not equal to itself
    if tp is tuple:
        return all(atom_key(item) for item in value)  # type: ignore[attr-defined]
    return tp.__hash__ is object.__hash__ and tp.__eq__ is object.__eq__


def lookup(tp: type, name: str, missing: Any = None) -> Any:
    """The attribute ``name`` of ``tp`` as attribute lookup finds it in the MRO."""
    for cls in tp.__mro__:
        namespace = cls.__dict__
        if name in namespace:
            return namespace[name]
    return missing


def python_generator(function: object) -> bool:
    """A function (or method) whose code is a generator or async generator."""
    code = getattr(function, "__code__", None)
    return code is not None and bool(code.co_flags & GENERATOR_FLAGS)


_NAMED: Final = frozenset({type, types.FunctionType, types.BuiltinFunctionType,
                          types.MethodType})
_NAMES: Final = frozenset({"__name__", "__qualname__", "__class__"})
_CLASS_SLOT: Final = object.__dict__["__class__"]
GENERIC_GETATTRIBUTE: Final = (object.__getattribute__, tuple.__getattribute__)
_TUPLE_FIELD: Final = type(collections.namedtuple("_Pair", "first").first)  # type: ignore[attr-defined]  # a field descriptor
# Objects whose attributes are C getters or their own __dict__: getattr runs no code.
_PLAIN_ATTRIBUTES: Final = frozenset({types.FunctionType, types.CodeType})


def plain_value(obj: object, name: str) -> object:
    """``getattr(obj, name)`` when it can be had without running any code, else OPAQUE."""
    if isinstance(obj, types.ModuleType):
        return obj.__dict__.get(name, OPAQUE)
    tp = type(obj)
    if tp in _NAMED and name in _NAMES:
        return getattr(obj, name)  # C getters of immutable names: no code runs
    if tp is type and name == "__mro__":  # (changing it writes a class attribute: UNKNOWN)
        return obj.__mro__  # type: ignore[attr-defined]
    if tp in _PLAIN_ATTRIBUTES:
        return getattr(obj, name, OPAQUE)
    if isinstance(obj, enum.EnumType):  # a member, kept in the class's own namespace
        member = obj.__dict__.get(name, OPAQUE)
        return member if isinstance(member, obj) else OPAQUE
    if name == "__class__" and lookup(tp, name) is _CLASS_SLOT \
            and lookup(tp, "__getattribute__") is object.__getattribute__:
        return tp
    key = (tp, name)
    try:
        how = STATE.attributes[key]
    except KeyError:
        how = STATE.attributes[key] = _attribute_plan(tp, name)
    if how is None:
        return OPAQUE
    if how[0] == "slot":
        try:
            return how[1].__get__(obj, tp)
        except AttributeError:
            return OPAQUE
    try:
        namespace = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return how[1]
    value = namespace.get(name, how[1])
    return value


def _attribute_plan(tp: type, name: str) -> tuple[str, Any] | None:
    """How to read ``name`` of ``tp``'s instances without running code: ("dict", class
    value or OPAQUE) for an instance-dict attribute, ("slot", descriptor), or None (code
    may run)."""
    if lookup(tp, "__getattribute__") not in GENERIC_GETATTRIBUTE:
        return None
    category = category_of(tp)
    if category == IMM and type(lookup(tp, name)) is _TUPLE_FIELD:
        return ("slot", lookup(tp, name))  # a named tuple's field: an item of the tuple
    if category != PY:
        return None
    found = lookup(tp, name, OPAQUE)
    if found is OPAQUE:
        return None if lookup(tp, "__getattr__") is not None else ("dict", OPAQUE)
    kind = type(found)
    if kind is types.MemberDescriptorType:
        return ("slot", found)
    if hasattr(kind, "__set__") or hasattr(kind, "__delete__"):
        return None  # a data descriptor (property): code runs
    if hasattr(kind, "__get__"):
        return ("dict", OPAQUE)  # a method: bound on access
    return ("dict", found)


def elements_kind(container: object) -> object:
    """PURE when a (small) container holds atoms only, or tuples of atoms (a tuple of
    atoms is as immutable as an atom: comparing, hashing or unpacking it reads nothing
    shared); TUPLES when it holds tuples and atoms."""
    if type(container) not in (list, tuple, collections.deque, set, frozenset) \
            or len(container) > 64:  # type: ignore[arg-type]
        return OPAQUE
    kind: object = PURE
    for element in container:  # type: ignore[attr-defined]
        if type(element) in ATOMS:
            continue
        if type(element) is not tuple:
            return OPAQUE
        if kind is PURE and (len(element) > 16
                             or not all(type(part) in ATOMS for part in element)):
            kind = TUPLES
    return kind
