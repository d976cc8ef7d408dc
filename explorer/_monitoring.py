"""Automatic footprints (Python 3.12+): what user code reads and writes, for reduction.

``explorer.strategies.DPOR(footprints="auto")`` records, for every step, the attribute, item,
global and closure-variable accesses of the scenario's own code, with ``sys.monitoring``
(PEP 669), so that steps touching different state are recognised as independent without
declaring anything with :func:`explorer.shared`.

Which code is watched
    Code objects are classified once, by file: the explorer, its strategies and asyncio
    are *trusted* (what they do is recorded by the runtime: primitives, task completion,
    callbacks); the rest of the standard library and ``site-packages`` is *foreign*;
    ``enum``, ``abc``, ``typing``, ``_collections_abc`` and ``contextlib`` are
    transparent *helpers*; everything else is *user* code. Only user code gets
    instruction and call events, and only at the instructions that can touch shared state
    (the others are switched off the first time they run), so trusted and foreign code run
    at full speed.

The memory model
    * attributes of Python objects: ``(object, name)``; module globals:
      ``(module.__dict__, name)``; closure variables: ``(closure variables, name)``;
    * items of the builtin containers (``list``, ``dict``, ``set``, ``deque``,
      ``bytearray``, ``defaultdict``, ``OrderedDict``): ``(container, key)``, the whole
      container for size, iteration and structural changes, and a separate *insertion
      order* location written by every insertion of a new key;
    * asyncio futures and tasks: ``(future, whole)``;
    * any other C-level state (objects of extension types): reading it adds a read of one
      sentinel location, and writing it (through a call this module does not model, an
      item or attribute assignment) makes the step's footprint UNKNOWN.

Why it is sound
    A step is recorded precisely only if every instruction it ran in user code is
    modelled, with its operands identified, and every call it made leaves user code only
    for code whose effects are modelled; anything else adds :data:`UNKNOWN`, which is
    dependent on every step that touches anything. Operands are identified without
    reading the value stack: a per-code-object data-flow analysis of the bytecode says, for
    each operand of an instruction that needs one, whether it is a constant, a local
    variable (read back from the frame), or the output of an earlier instrumented
    instruction (computed there, before it ran, only when that is free of side effects,
    and kept per frame); an operand that is none of these makes the step UNKNOWN. Foreign
    Python code entered from user code (directly, or from C code user code called) makes
    the step UNKNOWN; C functions and methods called from user code are looked up in a
    table of modelled builtins, and any other makes the step UNKNOWN.

    Assumptions, stated in docs/reduction.md: ``__hash__`` and ``__eq__`` of dictionary
    keys and set elements defined outside user code do not touch shared state; callables
    that asyncio calls on a task's behalf (``Condition.wait_for`` predicates) are user
    code or do not touch shared state; futures and tasks are asyncio's C implementation.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import dis
import gc
import heapq
import math
import os
import site
import sys
import sysconfig
import types
from collections.abc import Callable
from typing import Any, Final

from explorer import _footprint
from explorer._errors import UsageError
from explorer._footprint import UNKNOWN, Label

SUPPORTED: Final = sys.version_info >= (3, 12)
_PY313: Final = sys.version_info >= (3, 13)
_mon: Any = getattr(sys, "monitoring", None)  # absent before 3.12, and from 3.11's stubs

_TOOL_NAME: Final = "explorer automatic footprints"
# Tool ids to try, in order: sys.monitoring reserves 0-2 and 5 for debuggers, coverage,
# profilers and optimizers, so those come last.
_TOOL_IDS: Final = (3, 4, 2, 5)


def require_auto() -> None:
    """Raise :class:`UsageError` when automatic footprints are not available here."""
    if not SUPPORTED:
        version = ".".join(map(str, sys.version_info[:3]))
        raise UsageError(
            f"footprints='auto' records what each step reads and writes with "
            f"sys.monitoring, which needs Python 3.12 or later; this is Python {version}. "
            "On this version, either declare the state tasks share with "
            "explorer.shared(...) and use explorer.strategies.DPOR(declared=True), or use the "
            "conservative default (strategy='dpor', where every task step counts as "
            "touching everything)"
        )


# --------------------------------------------------------------------------- values

class _Mark:
    """A value this module knows something about without having the object itself.
    Marks that are not ``known`` stand for any object at all."""

    __slots__ = ("known", "name")

    def __init__(self, name: str, *, known: bool = True) -> None:
        self.name = name
        self.known = known

    def __repr__(self) -> str:
        return self.name


_OPAQUE: Final = _Mark("<unknown value>", known=False)
# What trusted code (the explorer, asyncio) returned: any object, but safe to await (a
# coroutine or future of theirs).
_TRUSTED: Final = _Mark("<result of asyncio or explorer code>", known=False)
_PURE: Final = _Mark("<immutable value>")        # an atom: operations on it read nothing
_SAFE: Final = _Mark("<coroutine or future>")    # awaiting it runs only watched code
_CELLS: Final = _Mark("closure variables")       # footprint object for closure cells
_ORDER: Final = _Mark("<insertion order>")       # footprint item: a dict's or set's order
_C_STATE: Final = _Mark("C-level state")         # footprint object read for C state


class _Coro(_Mark):
    """A coroutine or generator of Python code ``code``: awaiting it runs watched code,
    and its return value is what the await gives."""

    __slots__ = ("code",)

    def __init__(self, code: types.CodeType) -> None:
        super().__init__("<coroutine>")
        self.code = code


class _Fresh:
    """A container a builtin created in step ``step``, holding elements of ``sources``:
    only that step can reach it (later steps cannot know where it went)."""

    __slots__ = ("sources", "step")

    def __init__(self, sources: tuple[Any, ...], step: object) -> None:
        self.sources = sources
        self.step = step


class _New(_Mark):
    """A new instance of ``cls`` (a defaultdict's default for a missing key): already
    in the dict, so any object for every purpose but telling its class."""

    __slots__ = ("cls",)

    def __init__(self, cls: type) -> None:
        super().__init__("<new instance>", known=False)
        self.cls = cls


class _Iter:
    """An iterator (or view): advancing it writes ``obj`` (when it is reachable from
    elsewhere) and reads ``reads`` as a whole; ``elements`` is what it produces."""

    __slots__ = ("elements", "obj", "reads")

    def __init__(self, obj: object, reads: tuple[Any, ...], elements: object) -> None:
        self.obj = obj
        self.reads = reads
        self.elements = elements


class _Await:
    """An awaitable over a future: each resumption reads the future."""

    __slots__ = ("future",)

    def __init__(self, future: object) -> None:
        self.future = future


# Elements of items(), enumerate(), zip(), or of a container of tuples and atoms:
# unpacking them reads nothing shared. Any other use: unknown.
_TUPLES: Final = _Mark("<tuples>", known=False)
_FUNCTION: Final = _Mark("<a Python function made here>")  # its code runs watched


def _python_callable(value: object) -> bool:
    return value is _FUNCTION or isinstance(value, (types.FunctionType, types.MethodType))

# Per frame, the outputs of instrumented instructions that later ones use as operands:
# (id(frame), offset) -> value. An instruction whose output is used always writes its
# entry before the instruction that uses it can run (the analysis only links an operand
# to an instruction that produced it on every path), so an entry is never stale.
_VALUES: dict[tuple[int, int], object] = {}
# (id(frame), offset) -> the code object whose return value is that instruction's output
# (a call of a Python function, an await of a coroutine), set before the instruction runs.
_EXPECT: dict[tuple[int, int], types.CodeType | None] = {}
# Frames awaiting something this module cannot see into: every step resuming them is
# UNKNOWN (by id; the id of a frame that returned is removed).
_TAINTED: set[int] = set()


# --------------------------------------------------------------------------- categories

ATOM, IMM, MUT, VIEW, ITER, FUT, PY, BAD = range(8)

_SEQUENCES: Final = (list, collections.deque, bytearray)
_MAPPINGS: Final = (dict, collections.defaultdict, collections.OrderedDict)
_KEYED: Final = (*_MAPPINGS, set)


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
        types.GenericAlias, types.UnionType), ATOM),
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

_CATEGORY: dict[type, int] = {}


def _python_defined(cls: type) -> bool:
    """True for a class made by a ``class`` statement (or ``type()``): one whose own
    attributes are Python functions and plain values, not C methods or slots."""
    if not cls.__flags__ & (1 << 9):  # Py_TPFLAGS_HEAPTYPE
        return False
    own = cls.__dict__
    for name, value in own.items():
        kind = type(value)
        if kind in (types.MethodDescriptorType, types.WrapperDescriptorType,
                    types.ClassMethodDescriptorType, types.BuiltinFunctionType):
            return False
        if kind is types.GetSetDescriptorType and name not in ("__dict__", "__weakref__"):
            return False
        if kind is types.MemberDescriptorType and name not in own.get("__slots__", ()):
            return False
    return True


def _category(tp: type) -> int:
    """How the C level treats instances of ``tp``: the category of the first known class
    in its MRO, if every class before it is defined in Python; BAD otherwise."""
    found = _CATEGORY.get(tp)
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
    _CATEGORY[tp] = result
    return result


def _base(container: object) -> Any:
    """The builtin container type ``container`` is (or derives from): its C methods are
    used here, so that a Python override in a subclass never runs inside a callback."""
    for cls in type(container).__mro__:
        if cls in _BUILTIN_CONTAINERS:
            return cls
    raise TypeError(type(container).__name__)


_BUILTIN_CONTAINERS: Final = frozenset({
    list, dict, set, frozenset, tuple, bytearray, collections.deque,
    collections.defaultdict, collections.OrderedDict})


def _parts(container: Any) -> list[Any]:
    """What a builtin container holds (keys and values of a mapping), read in C."""
    base = _base(container)
    if issubclass(base, dict):
        return [*dict.keys(container), *dict.values(container)]
    return list(base.__iter__(container))


def _atom_key(value: object) -> bool:
    """True when ``value`` can be kept in a footprint as a dict key or set element:
    hashable and compared without running any code."""
    tp = type(value)
    if tp in (int, str, bytes, float, bool, type(None)):
        return value == value  # NaN is not equal to itself
    if tp is tuple:
        return all(_atom_key(item) for item in value)  # type: ignore[attr-defined]
    return tp.__hash__ is object.__hash__ and tp.__eq__ is object.__eq__


# --------------------------------------------------------------------------- recording

def _note(obj: object, attributes: bool = False) -> None:
    """Remember a recorded object, for race explanations (only while naming)."""
    seen = _footprint.seen
    if seen is not None and id(obj) not in seen:
        seen[id(obj)] = Label(type(obj).__name__, attributes, obj) if attributes else obj


def _note_namespace(namespace: dict[str, Any]) -> None:
    seen = _footprint.seen
    if seen is not None and id(namespace) not in seen:
        seen[id(namespace)] = Label(f"module {namespace.get('__name__', '?')}", True,
                                    namespace, numbered=False)


def _read_c_state(fp: set[Any]) -> None:
    fp.add((id(_C_STATE), None, "r"))


def _known(value: object) -> bool:
    """False for a value that may be any object (an unknown mark)."""
    return not isinstance(value, _Mark) or value.known


def _private(value: object) -> bool:
    """A mark or a fresh container: not a real object this module can look at."""
    return isinstance(value, (_Mark, _Fresh, _Iter))


def _unshared(value: object, fp: set[Any]) -> bool:
    """For a mark or fresh container: True if accessing it touches nothing shared (an
    atom, or a container a builtin made, which only this frame's stack holds), False
    if it may be anything."""
    return isinstance(value, _Fresh) or _known(value)


_IMMUTABLE_ATOMS: Final = frozenset({
    int, float, complex, bool, str, bytes, type(None), type(...), type(NotImplemented),
    range, slice, types.BuiltinFunctionType, types.MethodType, types.CodeType, property,
    staticmethod, classmethod, types.MethodDescriptorType, types.WrapperDescriptorType,
    types.MethodWrapperType, types.ClassMethodDescriptorType, types.GetSetDescriptorType,
    types.MemberDescriptorType, types.GenericAlias, types.UnionType})
_INTERPRETER_STATE: Final = frozenset({
    types.CellType, types.FrameType, types.TracebackType, types.CoroutineType,
    types.GeneratorType, types.AsyncGeneratorType})


def _attr(obj: object, name: str | None, mode: str, fp: set[Any]) -> bool:
    """Record an attribute access; False when it cannot be modelled."""
    if _private(obj):
        return _unshared(obj, fp)  # an atom, or an object only this step can reach
    if isinstance(obj, types.ModuleType):
        namespace = obj.__dict__
        if mode == "w" and name not in namespace:
            fp.add((id(namespace), _ORDER, "w"))
        fp.add((id(namespace), name, mode))
        _note_namespace(namespace)
        return True
    if name == "__dict__":
        return False  # the instance dict would be written under another identity
    category = _category(type(obj))
    if mode != "r":
        if isinstance(obj, type):
            _ATTRS.clear()
            return False  # a class attribute: changes the lookups of every instance
        if category == BAD or type(obj) in _INTERPRETER_STATE:
            return False  # C-level state (a cell's contents, a frame's locals, ...)
        if name == "__class__":
            name = None
    elif category in (IMM, MUT, VIEW, ITER) or type(obj) in _IMMUTABLE_ATOMS:
        return True  # a method or attribute of a builtin type: those never change
    fp.add((id(obj), name, mode))
    _note(obj, attributes=True)
    return True


def _item(container: Any, key: object, mode: str, fp: set[Any],
          inserting: bool = False) -> bool:
    """Record an item access (``mode`` "r" or "w"); ``key`` may be a mark (unknown key)."""
    if _private(container):
        return _unshared(container, fp)
    category = _category(type(container))
    if category != MUT:
        if category == BAD:
            if mode == "r":
                _read_c_state(fp)
                return True
            return False
        return True  # immutable, or a Python __getitem__ (watched, or foreign and caught)
    item: object = None
    if isinstance(container, _SEQUENCES):
        if type(key) is int or type(key) is bool:
            index = int(key)
            item = index + _base(container).__len__(container) if index < 0 else index
    elif not isinstance(key, _Mark) and _atom_key(key):
        item = key
        if inserting and not _base(container).__contains__(container, key):
            fp.add((id(container), _ORDER, "w"))
    if item is None and inserting:
        fp.add((id(container), _ORDER, "w"))
    fp.add((id(container), item, mode))
    _note(container)
    return True


def _shallow(value: object, fp: set[Any]) -> bool:
    """Record reading ``value`` as a whole (its size or truth value)."""
    if isinstance(value, _Mark):
        return value.known
    if isinstance(value, _Fresh):
        return True
    if isinstance(value, _Iter):
        return _advance(value, fp)
    category = _category(type(value))
    if category in (MUT, FUT):
        fp.add((id(value), None, "r"))
        _note(value)
    elif category == VIEW:
        return _read_underlying(value, fp)
    elif category == BAD:
        _read_c_state(fp)
    return True


def _iterate(value: object, fp: set[Any]) -> bool:
    """Record C code iterating over ``value`` to its end (list(x), x.extend(y), a, b = y)."""
    if isinstance(value, _Mark):
        return value.known or value is _TUPLES
    if isinstance(value, _Fresh):
        return True
    if isinstance(value, _Iter):
        return _advance(value, fp)
    category = _category(type(value))
    if category == ITER:
        return _advance(_iterator_kind(value), fp)
    if category == PY:
        # Its __iter__ runs as Python code; C code then iterates over what it returned,
        # which is watched only if __iter__ is a generator function.
        if isinstance(value, _footprint.SharedDict):
            return True  # iterates over a private copy of its keys
        method = _lookup(type(value), "__iter__")
        return method is None or _python_generator(method)
    if category == BAD:
        if hasattr(type(value), "__next__"):
            return False  # advancing a C iterator writes its state
        _read_c_state(fp)
        return True
    return _shallow(value, fp)


def _deep(value: object, fp: set[Any], budget: list[int], step: object,
          seen: set[int]) -> bool:
    """Record reading ``value`` and everything it contains (comparison, formatting)."""
    if isinstance(value, _Mark):
        return value.known
    if isinstance(value, _Fresh):
        return value.step is step and all(
            _deep(source, fp, budget, step, seen) for source in value.sources)
    if isinstance(value, _Iter):
        if value.obj is not None:
            fp.add((id(value.obj), None, "w"))
        return value.elements is _PURE or all(
            _deep(source, fp, budget, step, seen) for source in value.reads)
    category = _category(type(value))
    if category in (ATOM, PY, ITER):
        return True  # immutable, identity-based, or Python dunders (watched)
    if category == BAD:
        _read_c_state(fp)
        return True
    if category == FUT:
        fp.add((id(value), None, "r"))
        _note(value)
        return True
    if id(value) in seen:
        return True
    seen.add(id(value))
    parts: list[Any]
    if category == VIEW:
        if not _read_underlying(value, fp):
            return False
        parts = [part for dictionary in gc.get_referents(value) for part in _parts(dictionary)]
    else:
        if category == MUT:
            fp.add((id(value), None, "r"))
            _note(value)
        parts = _parts(value)
    budget[0] -= len(parts)
    if budget[0] < 0:
        return False
    return all(_deep(part, fp, budget, step, seen) for part in parts)


def _deep_all(values: Any, fp: set[Any]) -> bool:
    budget = [1000]
    seen: set[int] = set()
    return all(_deep(value, fp, budget, fp, seen) for value in values)


def _read_underlying(view: object, fp: set[Any]) -> bool:
    return all(_shallow(part, fp) for part in gc.get_referents(view))


def _iterator_kind(iterator: object) -> _Iter:
    """What advancing a builtin iterator object does: write it, read what is under it."""
    reads: list[object] = []
    if not _collect(iterator, reads, 0):
        return _Iter(iterator, (_OPAQUE,), _OPAQUE)
    elements = _TUPLES if isinstance(iterator, (enumerate, zip)) else _OPAQUE
    return _Iter(iterator, tuple(reads), elements)


def _collect(obj: object, reads: list[object], depth: int) -> bool:
    """The containers and iterators a builtin iterator reads and advances, or False."""
    if depth > 8:
        return False
    for part in gc.get_referents(obj):
        category = _category(type(part))
        if category in (MUT, VIEW):
            reads.append(part)
        elif category == ITER:
            reads.append(_Iter(part, (), _OPAQUE))  # advanced as well
            if not _collect(part, reads, depth + 1):
                return False
        elif category == IMM:
            if not _collect(part, reads, depth + 1):
                return False
        elif category == BAD or (callable(part) and not isinstance(
                part, types.FunctionType | types.MethodType)):
            return False  # map() or filter() calling C code on each element
    return True


def _advance(kind: _Iter, fp: set[Any]) -> bool:
    """Record advancing an iterator of this kind once."""
    if kind.obj is not None:
        fp.add((id(kind.obj), None, "w"))
    for source in kind.reads:
        if isinstance(source, _Iter):
            if not _advance(source, fp):
                return False
        elif not _shallow(source, fp):
            return False
    return True


def _lookup(tp: type, name: str, missing: Any = None) -> Any:
    """The attribute ``name`` of ``tp`` as attribute lookup finds it in the MRO."""
    for cls in tp.__mro__:
        namespace = cls.__dict__
        if name in namespace:
            return namespace[name]
    return missing


_GENERATOR_FLAGS: Final = 0x20 | 0x200  # CO_GENERATOR | CO_ASYNC_GENERATOR
_COROUTINE_FLAGS: Final = 0x80 | 0x100  # CO_COROUTINE | CO_ITERABLE_COROUTINE


def _python_generator(function: object) -> bool:
    code = getattr(function, "__code__", None)
    return code is not None and bool(code.co_flags & _GENERATOR_FLAGS)


# (type, name) -> how to read the attribute without running code: ("dict", class value or
# _OPAQUE) for an instance-dict attribute, ("slot", descriptor), or None (code may run).
_ATTRS: dict[tuple[type, str], tuple[str, Any] | None] = {}


def _plain_value(obj: object, name: str) -> object:
    """``getattr(obj, name)`` when it can be had without running any code, else _OPAQUE."""
    if isinstance(obj, types.ModuleType):
        return obj.__dict__.get(name, _OPAQUE)
    tp = type(obj)
    key = (tp, name)
    try:
        how = _ATTRS[key]
    except KeyError:
        how = _ATTRS[key] = _attribute_plan(tp, name)
    if how is None:
        return _OPAQUE
    if how[0] == "slot":
        try:
            return how[1].__get__(obj, tp)
        except AttributeError:
            return _OPAQUE
    try:
        namespace = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return how[1]
    value = namespace.get(name, how[1])
    return value


def _attribute_plan(tp: type, name: str) -> tuple[str, Any] | None:
    if _lookup(tp, "__getattribute__") is not object.__getattribute__ or _category(tp) != PY:
        return None
    found = _lookup(tp, name, _OPAQUE)
    if found is _OPAQUE:
        return None if _lookup(tp, "__getattr__") is not None else ("dict", _OPAQUE)
    kind = type(found)
    if kind is types.MemberDescriptorType:
        return ("slot", found)
    if hasattr(kind, "__set__") or hasattr(kind, "__delete__"):
        return None  # a data descriptor (property): code runs
    if hasattr(kind, "__get__"):
        return ("dict", _OPAQUE)  # a method: bound on access
    return ("dict", found)


# --------------------------------------------------------------------------- code kinds

USER, TRUSTED, HELPER, FOREIGN = 0, 1, 2, 3

_KINDS: dict[int, int] = {}
_KEEP: list[types.CodeType] = []  # code objects whose id is a key somewhere here
_places: tuple[tuple[str, ...], tuple[str, ...], frozenset[str]] | None = None

_HELPER_MODULES: Final = ("enum", "abc", "typing", "_collections_abc", "contextlib")
# Functions of helper modules that change process-wide state: not transparent.
_NOT_HELPERS: Final = frozenset({"_RedirectStream.__enter__", "_RedirectStream.__exit__",
                                 "chdir.__enter__", "chdir.__exit__"})


def _norm(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _directories() -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
    global _places
    if _places is None:
        import explorer
        from explorer import strategies

        trusted = {os.path.dirname(_norm(module.__file__ or ""))
                   for module in (explorer, strategies, asyncio)}
        paths = sysconfig.get_paths()
        foreign = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")
                   if key in paths}
        foreign.update(site.getsitepackages())
        foreign.add(site.getusersitepackages())
        helpers = set()
        for name in _HELPER_MODULES:
            module = sys.modules.get(name) or __import__(name)
            if getattr(module, "__file__", None):
                helpers.add(_norm(module.__file__))  # type: ignore[arg-type]
            helpers.add(f"<frozen {name}>")
        _places = (tuple(d + os.sep for d in sorted(trusted)),
                   tuple(_norm(d) + os.sep for d in sorted(foreign) if d),
                   frozenset(helpers))
    return _places


def code_kind(code: types.CodeType) -> int:
    """USER, TRUSTED, HELPER or FOREIGN, by the file the code object comes from."""
    key = id(code)
    kind = _KINDS.get(key)
    if kind is None:
        kind = _KINDS[key] = _classify(code)
        _KEEP.append(code)
    return kind


def _classify(code: types.CodeType) -> int:
    filename = code.co_filename
    trusted, foreign, helpers = _directories()
    if filename.startswith("<"):
        if filename in helpers and code.co_qualname not in _NOT_HELPERS:
            return HELPER
        return FOREIGN if filename.startswith("<frozen") else USER
    path = _norm(filename)
    if path.startswith(trusted):
        return TRUSTED
    if path in helpers and code.co_qualname not in _NOT_HELPERS:
        return HELPER
    if path.startswith(foreign):
        return FOREIGN
    return USER


# --------------------------------------------------------------------------- analysis

_JUMPS: Final = frozenset(getattr(dis, "hasjump", [*dis.hasjrel, *dis.hasjabs]))
_NO_FALLTHROUGH: Final = frozenset({
    "RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE", "JUMP_FORWARD",
    "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP", "JUMP_NO_INTERRUPT",
    "INTERPRETER_EXIT"})
# Instructions with no effect on shared state whose stack effect is only popping.
_POPPING: Final = frozenset({
    "POP_TOP", "END_FOR", "POP_EXCEPT", "RETURN_VALUE", "RAISE_VARARGS", "RERAISE",
    "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE",
    "END_ASYNC_FOR", "EXIT_INIT_CHECK"})
_NOTHING: Final = frozenset({
    "NOP", "RESUME", "CACHE", "EXTENDED_ARG", "JUMP_FORWARD", "JUMP_BACKWARD",
    "JUMP_BACKWARD_NO_INTERRUPT", "JUMP", "JUMP_NO_INTERRUPT", "KW_NAMES",
    "COPY_FREE_VARS", "MAKE_CELL", "RETURN_CONST", "SETUP_FINALLY", "SETUP_CLEANUP",
    "SETUP_WITH", "POP_BLOCK", "ENTER_EXECUTOR"})
# Instructions that pop their inputs and push opaque outputs, touching nothing shared.
_OPAQUE_OUTPUTS: Final = frozenset({
    "YIELD_VALUE",
    "CLEANUP_THROW", "PUSH_EXC_INFO", "CHECK_EG_MATCH", "CALL_INTRINSIC_2",
    "LOAD_BUILD_CLASS", "LOAD_CLOSURE"})
_PURE_OUTPUTS: Final = frozenset({
    "BUILD_STRING", "BUILD_SLICE", "IS_OP", "LOAD_ASSERTION_ERROR", "CHECK_EXC_MATCH"})
_PURE_INTRINSICS: Final = frozenset({
    "INTRINSIC_STOPITERATION_ERROR", "INTRINSIC_ASYNC_GEN_WRAP", "INTRINSIC_LIST_TO_TUPLE",
    "INTRINSIC_TYPEVAR", "INTRINSIC_PARAMSPEC", "INTRINSIC_TYPEVARTUPLE",
    "INTRINSIC_SUBSCRIPT_GENERIC", "INTRINSIC_TYPEALIAS"})
_BUILDS: Final[dict[str, Callable[[int], int]]] = {
    "BUILD_TUPLE": lambda n: n, "BUILD_LIST": lambda n: n, "BUILD_SET": lambda n: n,
    "BUILD_MAP": lambda n: 2 * n, "BUILD_CONST_KEY_MAP": lambda n: n + 1}
_NULL: Final = ("n",)
_FUNCTION_SRC: Final = ("F",)
_PURE_SRC: Final = ("p",)


class _Unmodelled(Exception):
    """An instruction this analysis does not model: it invalidates the stack."""


def _pure_source(src: Any) -> bool:
    if src is None:
        return False
    if src[0] == "f":
        return all(_pure_source(part) for part in src[1])
    return src[0] in ("c", "p")


def _mentions(src: Any, name: str) -> bool:
    """True when an abstract value is (or holds) the local variable ``name``."""
    if src[0] == "l":
        return bool(src[1] == name)
    return src[0] == "f" and any(part is not None and _mentions(part, name)
                                 for part in src[1])


def _transfer(ins: dis.Instruction, st: list[Any], prev: dis.Instruction | None,
              cleanups: dict[int, int] | None = None) -> tuple[Any, ...] | None:
    """Apply ``ins`` to the abstract stack ``st``; return the site it needs, if any."""
    op = ins.opname
    arg = ins.arg or 0
    off = ins.offset

    def pop(n: int) -> list[Any]:
        if n > len(st):
            raise _Unmodelled(op)
        if n == 0:
            return []
        taken = st[-n:]
        del st[-n:]
        return taken

    def kill(name: str) -> None:
        for i, src in enumerate(st):
            if src is not None and _mentions(src, name):
                st[i] = None

    if op in _NOTHING:
        return None
    if op in _POPPING:
        pop(-dis.stack_effect(ins.opcode, ins.arg, jump=False) if ins.opcode >= dis.HAVE_ARGUMENT
            else -dis.stack_effect(ins.opcode, jump=False))
        return None
    if op == "CLEANUP_THROW" and cleanups and off in cleanups:
        pop(3)  # a throw() into an awaited coroutine that returned: the await's result
        st.extend([None, ("o", cleanups[off])])
        return None
    if op in _OPAQUE_OUTPUTS or op in _PURE_OUTPUTS:
        effect = (dis.stack_effect(ins.opcode, ins.arg, jump=False)
                  if ins.opcode >= dis.HAVE_ARGUMENT else dis.stack_effect(ins.opcode, jump=False))
        pops = {"BUILD_TUPLE": arg, "BUILD_LIST": arg, "BUILD_SET": arg, "BUILD_MAP": 2 * arg,
                "BUILD_CONST_KEY_MAP": arg + 1, "BUILD_STRING": arg, "BUILD_SLICE": arg,
                "IS_OP": 2, "YIELD_VALUE": 1, "CLEANUP_THROW": 3,
                "PUSH_EXC_INFO": 1, "CHECK_EG_MATCH": 2, "CHECK_EXC_MATCH": 2,
                "CALL_INTRINSIC_2": 2, "LOAD_BUILD_CLASS": 0,
                "LOAD_CLOSURE": 0, "LOAD_ASSERTION_ERROR": 0,
                "SET_FUNCTION_ATTRIBUTE": 2}.get(op, 1 - effect if op == "MAKE_FUNCTION" else -1)
        if pops < 0:
            raise _Unmodelled(op)
        taken = pop(pops)
        pushes = pops + effect
        if op == "CHECK_EXC_MATCH":
            st.append(taken[0])
            st.append(_PURE_SRC)
        else:
            st.extend([_PURE_SRC if op in _PURE_OUTPUTS else None] * pushes)
        return None
    if op == "PUSH_NULL":
        st.append(_NULL)
        return None
    if op in _BUILDS:  # a new container holding what it pops
        parts = pop(_BUILDS[op](arg))
        st.append(("f", tuple(parts)) if all(p is not None for p in parts) else None)
        return None
    if op in ("LIST_APPEND", "SET_ADD", "MAP_ADD", "LIST_EXTEND", "SET_UPDATE",
              "DICT_UPDATE", "DICT_MERGE"):
        parts = pop(2 if op == "MAP_ADD" else 1)
        if arg > len(st):
            raise _Unmodelled(op)
        target = st[-arg]
        if target is not None and target[0] == "f" and all(p is not None for p in parts):
            st[-arg] = ("f", (*target[1], *parts))  # the join bounds this in loops
        else:
            st[-arg] = None
        if op in ("LIST_APPEND", "SET_ADD", "MAP_ADD"):
            return None
        (iterable,) = parts
        return None if _pure_source(iterable) else ("extend", iterable)
    if op in ("MAKE_FUNCTION", "SET_FUNCTION_ATTRIBUTE"):  # a new Python function
        pop(2 if op == "SET_FUNCTION_ATTRIBUTE" else 1 - _effect(ins, jump=False))
        st.append(_FUNCTION_SRC)
        return None
    if op == "RETURN_GENERATOR":
        st.append(None)  # the value sent by the first send(), popped at once
        return None
    if op == "LOAD_CONST":
        st.append(("c", arg, ins.argval))
        return None
    if op in ("LOAD_FAST", "LOAD_FAST_CHECK"):
        st.append(("l", ins.argval))
        return None
    if op == "LOAD_FAST_AND_CLEAR":
        kill(ins.argval)
        st.append(None)
        return None
    if op == "LOAD_FAST_LOAD_FAST":
        first, second = ins.argval
        st.append(("l", first))
        st.append(("l", second))
        return None
    if op in ("STORE_FAST", "STORE_FAST_MAYBE_NULL"):
        pop(1)
        kill(ins.argval)
        return None
    if op == "DELETE_FAST":
        kill(ins.argval)
        return None
    if op == "STORE_FAST_LOAD_FAST":
        stored, loaded = ins.argval
        pop(1)
        kill(stored)
        st.append(("l", loaded))
        return None
    if op == "STORE_FAST_STORE_FAST":
        first, second = ins.argval
        pop(2)
        kill(first)
        kill(second)
        return None
    if op == "COPY":
        if arg > len(st):
            raise _Unmodelled(op)
        st.append(st[-arg])
        return None
    if op == "SWAP":
        if arg > len(st):
            raise _Unmodelled(op)
        st[-1], st[-arg] = st[-arg], st[-1]
        return None
    if op == "LOAD_GLOBAL":
        if arg & 1 and not _PY313:
            st.append(_NULL)
        st.append(("o", off))
        if arg & 1 and _PY313:
            st.append(_NULL)
        return ("glob_r", ins.argval)
    if op in ("STORE_GLOBAL", "DELETE_GLOBAL"):
        if op == "STORE_GLOBAL":
            pop(1)
        return ("glob_w", ins.argval)
    if op == "LOAD_DEREF":
        st.append(("o", off))
        return ("cell_r", ins.argval)
    if op in ("STORE_DEREF", "DELETE_DEREF"):
        if op == "STORE_DEREF":
            pop(1)
        return ("cell_w", ins.argval)
    if op == "LOAD_ATTR":
        (receiver,) = pop(1)
        if arg & 1:
            st.extend([("m", ins.argval), ("m", ins.argval)])
            return ("attr_r", receiver, ins.argval, True)
        st.append(("o", off))
        return ("attr_r", receiver, ins.argval, False)
    if op == "STORE_ATTR":
        _value, receiver = pop(2)
        return ("attr_w", receiver, ins.argval)
    if op == "DELETE_ATTR":
        (receiver,) = pop(1)
        return ("attr_w", receiver, ins.argval)
    if op == "LOAD_SUPER_ATTR":
        _super, _cls, receiver = pop(3)
        st.extend([("m", ins.argval), ("m", ins.argval)] if arg & 1 else [None])
        return ("super", receiver, ins.argval)
    if op == "BINARY_SUBSCR":
        container, key = pop(2)
        st.append(("o", off))
        return ("item_r", container, key)
    if op == "STORE_SUBSCR":
        _value, container, key = pop(3)
        return ("item_w", container, key)
    if op == "DELETE_SUBSCR":
        container, key = pop(2)
        return ("item_d", container, key)
    if op == "BINARY_SLICE":
        container, _start, _stop = pop(3)
        st.append(("o", off))
        return ("slice_r", container)
    if op == "STORE_SLICE":
        _value, container, _start, _stop = pop(4)
        return ("slice_w", container)
    if op == "BINARY_OP":
        lhs, rhs = pop(2)
        if _pure_source(lhs) and _pure_source(rhs):
            st.append(_PURE_SRC)
            return None
        st.append(("o", off))
        return ("binop", lhs, rhs, arg)
    if op in ("UNARY_NEGATIVE", "UNARY_INVERT"):
        (operand,) = pop(1)
        if _pure_source(operand):
            st.append(_PURE_SRC)
            return None
        st.append(("o", off))
        return ("unary", operand)
    if op == "UNARY_NOT" or op == "TO_BOOL":
        (operand,) = pop(1)
        st.append(_PURE_SRC)
        if _pure_source(operand) or (op == "UNARY_NOT" and _PY313):
            return None
        return ("truth", operand)
    if op in ("POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE"):
        (operand,) = pop(1)
        if _PY313 or _pure_source(operand):
            return None  # 3.13: the operand is a bool (TO_BOOL or COMPARE_OP made it)
        return ("truth", operand)
    if op == "COMPARE_OP":
        lhs, rhs = pop(2)
        if _pure_source(lhs) and _pure_source(rhs):
            st.append(_PURE_SRC)
            return None
        st.append(("o", off))
        return ("compare", lhs, rhs, bool(_PY313 and arg & 16))
    if op == "CONTAINS_OP":
        item, container = pop(2)
        st.append(_PURE_SRC)
        if _pure_source(container) and _pure_source(item):
            return None
        return ("contains", item, container)
    if op in ("GET_ITER", "GET_YIELD_FROM_ITER"):
        (iterable,) = pop(1)
        st.append(("o", off))
        return ("iter", iterable)
    if op == "FOR_ITER":
        if not st:
            raise _Unmodelled(op)
        iterator = st[-1]
        st.append(("o", off))
        return ("next", iterator)
    if op == "GET_AWAITABLE":
        (awaitable,) = pop(1)
        st.append(("o", off))
        return ("await", awaitable)
    if op == "SEND":
        receiver, _value = pop(2)
        st.extend([receiver, ("o", off)])  # the value sent back, or the await's result
        return ("send", receiver)
    if op == "END_SEND":
        _receiver, result = pop(2)
        st.append(result)
        return None
    if op == "GET_AITER":
        (iterable,) = pop(1)
        st.append(("o", off))
        return ("aiter", iterable)
    if op == "GET_ANEXT":
        if not st:
            raise _Unmodelled(op)
        iterator = st[-1]
        st.append(("o", off))
        return ("anext", iterator)
    if op in ("BEFORE_WITH", "BEFORE_ASYNC_WITH"):
        (manager,) = pop(1)
        st.extend([None, ("o", off) if op == "BEFORE_ASYNC_WITH" else None])
        return ("with", manager)
    if op in ("FORMAT_VALUE", "FORMAT_SIMPLE", "FORMAT_WITH_SPEC", "CONVERT_VALUE"):
        if (op == "FORMAT_VALUE" and arg & 4) or op == "FORMAT_WITH_SPEC":
            value, _spec = pop(2)
        else:
            (value,) = pop(1)
        st.append(_PURE_SRC)
        return None if _pure_source(value) else ("format", value)
    if op in ("UNPACK_SEQUENCE", "UNPACK_EX"):
        (sequence,) = pop(1)
        count = arg if op == "UNPACK_SEQUENCE" else (arg & 0xFF) + (arg >> 8) + 1
        st.extend([None] * count)
        return None if _pure_source(sequence) else ("unpack", sequence)
    if op == "CALL_INTRINSIC_1":
        (operand,) = pop(1)
        name = ins.argrepr
        if name in _PURE_INTRINSICS:
            st.append(None)
            return None
        if name == "INTRINSIC_UNARY_POSITIVE":
            st.append(("o", off))
            return ("unary", operand)
        raise _Unmodelled(op)
    if op in ("CALL", "CALL_KW"):
        kwnames: Any = None
        if op == "CALL_KW":
            (names,) = pop(1)
            kwnames = names[2] if names is not None and names[0] == "c" else "?"
        elif prev is not None and prev.opname == "KW_NAMES":
            kwnames = prev.argval
        taken = pop(arg + 2)
        method = next((s[1] for s in taken[:2] if s is not None and s[0] == "m"), None)
        callee, self_mode = _callee(taken[0], taken[1])
        st.append(("o", off))
        return ("call", method, tuple(taken[2:]), kwnames, False, callee, self_mode)
    if op == "CALL_FUNCTION_EX":
        effect = dis.stack_effect(ins.opcode, ins.arg, jump=False)
        taken = pop(1 - effect)
        callee, _mode = _callee(taken[0], taken[1])
        st.append(("o", off))
        # f(*args): the call turns ``args`` into a tuple, iterating over it.
        return ("call", None, (), None, True, callee, "unknown", taken[2])
    if op == "WITH_EXCEPT_START":  # calls __exit__ with the exception: not modelled
        st.append(None)
        return ("unknown", "an exception leaving a with block")
    raise _Unmodelled(op)


def _callee(first: Any, second: Any) -> tuple[Any, str]:
    """The source of the called object, from the two slots under a call's arguments, and
    whether a ``self`` argument is among them: "none", "yes", "maybe" (a method looked up
    with LOAD_ATTR: known when called) or "unknown"."""
    if _PY313:  # [callable, NULL or self]
        callable_slot, self_slot = first, second
    elif first == _NULL:  # 3.12: [NULL, callable]
        return (None if second is None or second[0] == "m" else second), "none"
    else:  # 3.12: [method, self], or unknown
        callable_slot, self_slot = first, second if first is not None else None
    if self_slot == _NULL:
        mode = "none"
    elif self_slot is None:
        mode = "unknown"
    else:
        mode = "maybe" if self_slot[0] == "m" or (callable_slot is not None and \
            callable_slot[0] == "m") else "yes"
    if callable_slot is None or callable_slot[0] in ("n", "m"):
        return None, mode
    return callable_slot, mode


def _state_join(a: tuple[Any, ...] | None, b: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if a is None:
        return b
    if len(a) != len(b):
        raise _Unmodelled("stack depth")
    return tuple(x if x == y else None for x, y in zip(a, b, strict=True))


class _CodeInfo:
    """What the analysis found for one code object: the sites of instruction events and
    of call events (both by offset)."""

    __slots__ = ("aliases", "calls", "sites")

    def __init__(self, sites: dict[int, tuple[Any, ...]],
                 calls: dict[int, tuple[Any, ...]],
                 aliases: dict[int, int] | None = None) -> None:
        self.sites = sites
        self.calls = calls
        # Where an await stands while suspended (YIELD_VALUE) -> its SEND.
        self.aliases = aliases or {}


def analyse(code: types.CodeType) -> _CodeInfo:
    """Sites of ``code``'s instructions that touch shared state, with their operands."""
    try:
        return _analyse(code)
    except _Unmodelled as exc:  # an instruction this module does not know: all unknown
        everything = {ins.offset: (_h_unknown, ins.offset, False, f"unanalysable ({exc})",
                                   None, None, None)
                      for ins in dis.get_instructions(code) if ins.opname != "RESUME"}
        return _CodeInfo(everything, {})


def _analyse(code: types.CodeType) -> _CodeInfo:
    instructions = list(dis.get_instructions(code))
    position = {ins.offset: i for i, ins in enumerate(instructions)}
    states: list[tuple[Any, ...] | None] = [None] * len(instructions)
    states[0] = ()
    work = [0]
    # The handler of each instruction's exceptions: (its index, depth, pushes lasti).
    handlers: dict[int, tuple[int, int, bool]] = {}
    bytecode: Any = dis.Bytecode(code)  # exception_entries: not in the 3.11 stubs
    for entry in bytecode.exception_entries:
        for offset in range(entry.start, entry.end, 2):
            if offset in position:
                handlers[position[offset]] = (position[entry.target], entry.depth,
                                              bool(entry.lasti))
    # An await's loop: SEND, YIELD_VALUE, and the CLEANUP_THROW that catches the
    # coroutine's return when an exception thrown into it was handled there.
    aliases: dict[int, int] = {}
    cleanups: dict[int, int] = {}
    for i, ins in enumerate(instructions):
        # f_lasti of a caller may point at a cache entry of its instruction (3.12).
        end = instructions[i + 1].offset if i + 1 < len(instructions) else ins.offset + 2
        for cache in range(ins.offset + 2, end, 2):
            aliases[cache] = ins.offset
        if ins.opname == "YIELD_VALUE" and i and instructions[i - 1].opname == "SEND":
            send = instructions[i - 1].offset
            aliases[ins.offset] = send
            handler = handlers.get(i)
            if handler is not None and instructions[handler[0]].opname == "CLEANUP_THROW":
                cleanups[instructions[handler[0]].offset] = send
    unmodelled: dict[int, str] = {}
    while work:
        i = work.pop()
        state = states[i]
        assert state is not None
        ins = instructions[i]
        stack = list(state)
        try:
            _transfer(ins, stack, instructions[i - 1] if i else None, cleanups)
            expected = len(state) + _effect(ins, jump=False)
            if ins.opname == "RETURN_GENERATOR":
                expected = len(state) + 1  # 3.12 counts the value it leaves as 0
            if len(stack) != expected:
                raise _Unmodelled(f"{ins.opname} stack effect")
        except _Unmodelled as exc:
            unmodelled[ins.offset] = str(exc)
            stack = [None] * (len(state) + _effect(ins, jump=False))
        out = tuple(stack)
        successors: list[tuple[int, tuple[Any, ...]]] = []
        if ins.opname not in _NO_FALLTHROUGH and i + 1 < len(instructions):
            successors.append((i + 1, out))
        if ins.opcode in _JUMPS:
            jump = len(state) + _effect(ins, jump=True)
            target = out if jump == len(out) else (None,) * jump
            successors.append((position[ins.argval], target))
        if i in handlers:  # what is below the handler's depth stays as it was
            index, depth, lasti = handlers[i]
            kept = state[:depth] if len(state) >= depth else (None,) * depth
            successors.append((index, kept + (None,) * (2 if lasti else 1)))
        for j, incoming in successors:
            joined = _state_join(states[j], incoming)
            if joined != states[j]:
                states[j] = joined
                work.append(j)
    # Second pass: the sites, with the operands as the fixpoint has them.
    specs: dict[int, tuple[Any, ...]] = {}
    for i, ins in enumerate(instructions):
        state = states[i]
        if state is None:
            continue  # unreachable
        if ins.offset in unmodelled:
            if ins.opname not in _NOTHING:
                specs[ins.offset] = ("unknown", f"{ins.opname} not modelled")
            continue
        spec = _transfer(ins, list(state), instructions[i - 1] if i else None, cleanups)
        if spec is not None:
            specs[ins.offset] = spec
    # An await's SEND is handled by the instruction that made the awaitable (once per
    # await, instead of at every resumption): it says what the await's result will be,
    # and marks the frame while it awaits something unknown (see _started).
    owners: dict[int, tuple[int, int]] = {}  # GET_AWAITABLE / GET_ANEXT -> its SEND
    for offset, spec in list(specs.items()):
        receiver = spec[1] if spec[0] == "send" else None
        if receiver is not None and receiver[0] == "o" and \
                specs.get(receiver[1], ("",))[0] in ("await", "anext"):
            owners[receiver[1]] = (offset, 0)
            del specs[offset]
    used = _used_outputs(specs)
    for owner, (send, _) in owners.items():
        owners[owner] = (send, 1 if send in used else 0)
    sites: dict[int, tuple[Any, ...]] = {}
    calls: dict[int, tuple[Any, ...]] = {}
    lines = {ins.offset: ins.positions.lineno if ins.positions else None
             for ins in instructions}
    for offset, spec in specs.items():
        where = f"{code.co_filename}:{lines.get(offset)} {spec[0]}"
        capture = offset in used
        if spec[0] == "call":
            calls[offset] = (offset, capture, spec[1], spec[2], spec[3], spec[4], where,
                             spec[6])
            if capture or spec[4]:  # also before the call (3.12 has no call event for
                # a Python f(*args)), and the iteration over f(*args)'s arguments
                sites[offset] = (_h_callpre, offset, capture, where, spec[5],
                                 spec[7] if spec[4] else None, None)
        elif offset in owners:  # an await: (awaitable, its SEND, the SEND's result used)
            send, result_used = owners[offset]
            sites[offset] = (_HANDLERS[spec[0]], offset, True, where, spec[1], send,
                             bool(result_used))
        else:
            rest = (*spec[1:], None, None, None)[:3]
            sites[offset] = (_HANDLERS[spec[0]], offset, capture, where, *rest)
    return _CodeInfo(sites, calls, aliases)


def _effect(ins: dis.Instruction, *, jump: bool) -> int:
    if ins.opcode >= dis.HAVE_ARGUMENT:
        return dis.stack_effect(ins.opcode, ins.arg, jump=jump)
    return dis.stack_effect(ins.opcode, jump=jump)


def _used_outputs(specs: dict[int, tuple[Any, ...]]) -> set[int]:
    used: set[int] = set()

    def note(src: Any) -> None:
        if len(src) == 2 and src[0] == "o" and type(src[1]) is int:
            used.add(src[1])
        elif len(src) == 2 and src[0] == "f" and isinstance(src[1], tuple):
            for part in src[1]:
                if isinstance(part, tuple) and part:
                    note(part)

    for spec in specs.values():
        for part in spec[1:]:
            if isinstance(part, tuple) and part and isinstance(part[0], str):
                note(part)
            elif isinstance(part, tuple):
                for src in part:
                    if isinstance(src, tuple) and src:
                        note(src)
    return used


# --------------------------------------------------------------------------- handlers

def _value(src: Any, frame: types.FrameType) -> Any:
    """The value of an operand, as the analysis located it."""
    if src is None:
        return _OPAQUE
    tag = src[0]
    if tag == "o":
        return _VALUES.get((id(frame), src[1]), _OPAQUE)
    if tag == "c":
        return src[2]
    if tag == "l":
        return frame.f_locals.get(src[1], _OPAQUE)
    if tag == "p":
        return _PURE
    if tag == "F":
        return _FUNCTION
    if tag == "f":
        return _Fresh(tuple(_value(part, frame) for part in src[1]), _footprint.current)
    return _OPAQUE


def _keep(frame: types.FrameType, site: tuple[Any, ...], value: object) -> None:
    if site[2]:
        _VALUES[(id(frame), site[1])] = value


Site = tuple[Any, ...]
Handler = Callable[[types.FrameType, Site, set[Any]], bool]


def _h_unknown(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    _keep(frame, site, _OPAQUE)
    return False


def _h_attr_r(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    obj = _value(site[4], frame)
    name = site[5]
    if site[2]:
        _VALUES[(id(frame), site[1])] = _OPAQUE if _private(obj) else _plain_value(obj, name)
    return _attr(obj, name, "r", fp)


def _h_attr_w(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    return _attr(_value(site[4], frame), site[5], "w", fp)


def _h_super(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    obj = _value(site[4], frame)
    return not _private(obj) and _attr(obj, site[5], "r", fp)


def _h_glob_r(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    namespace = frame.f_globals
    name = site[4]
    fp.add((id(namespace), name, "r"))
    _note_namespace(namespace)
    value = namespace.get(name, _OPAQUE)
    if value is _OPAQUE:
        builtins_ = frame.f_builtins
        fp.add((id(builtins_), name, "r"))
        value = builtins_.get(name, _OPAQUE)
    _keep(frame, site, value)
    return True


def _h_glob_w(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    namespace = frame.f_globals
    name = site[4]
    if name not in namespace:
        fp.add((id(namespace), _ORDER, "w"))
    fp.add((id(namespace), name, "w"))
    _note_namespace(namespace)
    return True


def _note_cells() -> None:
    seen = _footprint.seen
    if seen is not None and id(_CELLS) not in seen:
        seen[id(_CELLS)] = Label("closure variables", True, _CELLS, numbered=False)


def _h_cell_r(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    fp.add((id(_CELLS), site[4], "r"))
    _note_cells()
    if site[2]:
        _VALUES[(id(frame), site[1])] = frame.f_locals.get(site[4], _OPAQUE)
    return True


def _h_cell_w(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    fp.add((id(_CELLS), site[4], "w"))
    _note_cells()
    return True


def _h_item_r(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    container = _value(site[4], frame)
    key = _value(site[5], frame)
    tp = type(container)
    inserting = False
    if tp is collections.defaultdict:  # a missing key is inserted
        inserting = isinstance(key, _Mark) or not _atom_key(key) \
            or not dict.__contains__(container, key)
    if site[2]:
        value: object = _OPAQUE
        if tp in (dict, list, tuple, collections.defaultdict) and not inserting \
                and not isinstance(key, _Mark) and _atom_key(key):
            try:
                value = tp.__getitem__(container, key)  # an exact builtin type: C code
            except (KeyError, IndexError, TypeError):
                value = _OPAQUE
        elif inserting and isinstance(container.default_factory, type):
            value = _New(container.default_factory)
        _VALUES[(id(frame), site[1])] = value
    if inserting:
        factory = container.default_factory
        if not (factory is None or _python_callable(factory)
                or (isinstance(factory, type) and _category(factory) in (MUT, IMM, ATOM, PY))):
            return False  # a C callable producing the default value
        return _item(container, key, "w", fp, inserting=True)
    return _item(container, key, "r", fp)


def _h_item_w(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    return _item(_value(site[4], frame), _value(site[5], frame), "w", fp, inserting=True)


def _h_item_d(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    return _item(_value(site[4], frame), _value(site[5], frame), "w", fp)


def _h_slice_r(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    container = _value(site[4], frame)
    _keep(frame, site, _Fresh((container,), fp) if not isinstance(container, _Mark)
          else container)
    return _item(container, _OPAQUE, "r", fp)


def _h_slice_w(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    return _item(_value(site[4], frame), _OPAQUE, "w", fp, inserting=True)


_INPLACE: Final = 13  # BINARY_OP's in-place operators are the plain ones plus 13
_REMAINDER: Final = 6


def _h_binop(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    """An arithmetic or container operator: atoms are free; containers are read (the
    left one written, in place); Python operands run their own (watched) methods."""
    lhs = _value(site[4], frame)
    rhs = _value(site[5], frame)
    inplace = site[6] >= _INPLACE
    changed: object = None  # the left operand, when it is changed in place
    containers = python = False
    for left, value in ((True, lhs), (False, rhs)):
        if isinstance(value, _Mark):
            if not value.known:
                _keep(frame, site, _OPAQUE)
                return False
            continue
        if isinstance(value, (_Fresh, _Iter)):
            if isinstance(value, _Iter) and not _advance(value, fp):
                return False
            containers = True
            continue
        category = _category(type(value))
        if category in (MUT, VIEW, FUT, IMM):
            if not _shallow(value, fp):
                return False
            containers = True
            if left and inplace and category == MUT:
                fp.add((id(value), None, "w"))
                changed = value
        elif category in (PY, ITER):
            python = True  # its Python method runs (watched); what it returns is unknown
        elif category == BAD:
            if left and inplace:
                _keep(frame, site, _OPAQUE)
                return False
            _read_c_state(fp)
            python = True
    if site[6] % _INPLACE == _REMAINDER and isinstance(lhs, (str, bytes)) \
            and not _deep_all((rhs,), fp):
        return False  # "%s" % x formats x
    result: object = _PURE
    if changed is not None:
        result = changed
    elif python:
        result = _OPAQUE
    elif containers:
        result = _Fresh((lhs, rhs), fp)  # a new container holding what they hold
    _keep(frame, site, result)
    return True


def _h_unary(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    value = _value(site[4], frame)
    if isinstance(value, _Mark) or type(value) in (int, float, complex, bool):
        _keep(frame, site, _PURE if _known(value) else _OPAQUE)
        return _known(value)
    _keep(frame, site, _OPAQUE)
    return _shallow(value, fp)


def _h_truth(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    return _shallow(_value(site[4], frame), fp)


def _rich_compare_is_python(value: object) -> bool:
    if _private(value) or _category(type(value)) != PY:
        return False
    tp = type(value)
    return any(isinstance(_lookup(tp, name), types.FunctionType)
               for name in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"))


def _h_compare(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    lhs = _value(site[4], frame)
    rhs = _value(site[5], frame)
    python = _rich_compare_is_python(lhs) or _rich_compare_is_python(rhs)
    _keep(frame, site, _OPAQUE if python else _PURE)
    if python and site[6]:
        return False  # 3.13 turns the result into a bool: the truth of an unknown object
    return _deep_all((lhs, rhs), fp)


def _h_contains(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    item = _value(site[4], frame)
    container = _value(site[5], frame)
    if isinstance(container, _Mark):
        return container.known and _deep_all((item,), fp)
    if isinstance(container, _Fresh):
        return _deep_all((container, item), fp)
    if isinstance(container, _Iter):
        return _advance(container, fp) and _deep_all((item,), fp)
    category = _category(type(container))
    if category == MUT and isinstance(container, _KEYED):
        return _item(container, item, "r", fp)  # a hash lookup of the key
    if category in (MUT, IMM, VIEW):
        if (isinstance(item, _Mark) and item.known) or _category(type(item)) == ATOM:
            return _shallow(container, fp)  # an atom compares equal to atoms only
        return _deep_all((container, item), fp)
    if category == PY:
        if _lookup(type(container), "__contains__") is not None:
            return True  # Python code
        return _iterate(container, fp)
    if category == ITER:
        return _advance(_iterator_kind(container), fp) and _deep_all((item,), fp)
    if category == BAD:
        _read_c_state(fp)
    return category != FUT


_PRIVATE_ITER: Final = _Iter(None, (), _OPAQUE)
_ATOM_ITER: Final = _Iter(None, (), _PURE)


def _iter_kind(value: object) -> _Iter | None:
    """What iterating over ``value`` writes and reads at each step, or None if unknown."""
    if isinstance(value, _Iter):
        return value
    if isinstance(value, _Fresh):
        return _PRIVATE_ITER
    if isinstance(value, _Mark):
        if value is _PURE:
            return _ATOM_ITER  # a string, a range
        return _PRIVATE_ITER if value.known else None  # a generator: its code is watched
    category = _category(type(value))
    if category == ATOM:
        if isinstance(value, (str, bytes, range)):
            return _ATOM_ITER
        return _PRIVATE_ITER  # a generator: resuming it is watched
    if category == IMM:
        parts: Any = value
        return _ATOM_ITER if all(_atom_key(part) for part in parts) else _PRIVATE_ITER
    if category == MUT:
        return _Iter(None, (value,), _OPAQUE)
    if category == VIEW:
        items = type(value) is type({}.items())
        return _Iter(None, tuple(gc.get_referents(value)), _TUPLES if items else _OPAQUE)
    if category == ITER:
        return _iterator_kind(value)
    if category == PY:
        if isinstance(value, _footprint.SharedDict):
            return _PRIVATE_ITER  # iterates over a copy of its keys, recording the read
        if _python_generator(_lookup(type(value), "__iter__")):
            return _PRIVATE_ITER
    return None


def _h_iter(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    kind = _iter_kind(_value(site[4], frame))
    _keep(frame, site, kind if kind is not None else _OPAQUE)
    return kind is not None


_ATOMS: Final = frozenset({int, str, bytes, float, bool, type(None), complex})


def _atom(value: object) -> bool:
    return type(value) in _ATOMS or value is _PURE


def _elements_kind(container: object) -> object:
    """_PURE when a (small) container holds atoms only, _TUPLES when tuples and atoms."""
    if type(container) not in (list, tuple, collections.deque, set, frozenset) \
            or len(container) > 64:  # type: ignore[arg-type]
        return _OPAQUE
    kind: object = _PURE
    for element in container:  # type: ignore[attr-defined]
        if type(element) in _ATOMS:
            continue
        if type(element) is not tuple:
            return _OPAQUE
        kind = _TUPLES
    return kind


def _h_next(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    src = site[4]
    value = _value(src, frame)
    if src is not None and src[0] == "o":  # GET_ITER's (or a call's) output
        kind = value if isinstance(value, _Iter) else None
    else:  # an iterator held in a variable (a generator expression's argument)
        kind = None if _private(value) else _iter_kind(value)
    if site[2]:
        elements: object = _OPAQUE
        if kind is not None:
            elements = kind.elements
            if elements is _OPAQUE and len(kind.reads) == 1:
                elements = _elements_kind(kind.reads[0])  # what it holds now
        _VALUES[(id(frame), site[1])] = elements
    return kind is not None and _advance(kind, fp)


def _h_await(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    value = _value(site[4], frame)
    kind: object = _OPAQUE
    if value is _SAFE or value is _TRUSTED or isinstance(value, _Coro):
        kind = value if isinstance(value, _Coro) else _SAFE
    elif isinstance(value, types.CoroutineType):
        kind = _Coro(value.cr_code)
    elif isinstance(value, types.GeneratorType):
        kind = _Coro(value.gi_code)
    elif not _private(value):
        category = _category(type(value))
        if category == FUT:
            fp.add((id(value), None, "r"))
            _note(value)
            kind = _Await(value)
        elif category == PY and _python_generator(_lookup(type(value), "__await__")):
            kind = _SAFE
    _keep(frame, site, kind)
    if site[5] is not None:
        _awaiting(frame, site, kind)
    return kind is not _OPAQUE


def _awaiting(frame: types.FrameType, site: Site, kind: object) -> None:
    """Before the first SEND of an await. Resuming the awaitable in later steps runs
    watched code (a coroutine) or reads a future (recorded by the wake-up); an unknown
    awaitable marks the frame, so that every step resuming it is UNKNOWN."""
    if kind is _OPAQUE:
        _TAINTED.add(id(frame))
    else:
        _TAINTED.discard(id(frame))
    if site[6]:  # the await's result: unknown, unless watched code returns it
        key = (id(frame), site[5])
        _VALUES[key] = _OPAQUE
        _EXPECT[key] = kind.code if isinstance(kind, _Coro) else None


def _h_send(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    kind = _value(site[4], frame)
    if site[2]:  # the await's result: unknown, unless watched code returns it
        key = (id(frame), site[1])
        _VALUES[key] = _OPAQUE
        _EXPECT[key] = kind.code if isinstance(kind, _Coro) else None
    if kind is _SAFE or isinstance(kind, _Coro):
        return True
    if isinstance(kind, _Await):
        fp.add((id(kind.future), None, "r"))
        return True
    return False


def _h_aiter(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    value = _value(site[4], frame)
    ok = isinstance(value, types.AsyncGeneratorType) or (isinstance(value, _Coro) and bool(
        value.code.co_flags & 0x200))  # CO_ASYNC_GENERATOR: an async generator of watched code
    _keep(frame, site, _SAFE if ok else _OPAQUE)
    return ok


def _h_anext(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    ok = _value(site[4], frame) is _SAFE
    _keep(frame, site, _SAFE if ok else _OPAQUE)
    if site[5] is not None:
        _awaiting(frame, site, _SAFE if ok else _OPAQUE)
    return ok


def _h_with(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    """with / async with: the manager's methods must be Python code (watched, or foreign
    and caught); for async with, what __aenter__ returns is awaited next."""
    manager = _value(site[4], frame)
    cls = manager.cls if isinstance(manager, _New) else type(manager)
    ok = (isinstance(manager, _New) or not _private(manager)) and _category(cls) == PY
    if site[2]:
        enter = _lookup(cls, "__aenter__") if ok else None
        code = getattr(enter, "__code__", None)
        safe = code is not None and code.co_flags & _COROUTINE_FLAGS
        _VALUES[(id(frame), site[1])] = _SAFE if safe else _OPAQUE
    return ok


def _h_format(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    return _deep_all((_value(site[4], frame),), fp)


def _h_iterate(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    return _iterate(_value(site[4], frame), fp)


def _python_result(frame: types.FrameType, offset: int, code: types.CodeType) -> object:
    """What a call of Python code ``code`` returns, as far as known now; watched code's
    return value replaces it when it returns (see :func:`_on_return`)."""
    kind = code_kind(code)
    if kind == TRUSTED:
        _EXPECT[(id(frame), offset)] = None
        return _TRUSTED
    if code.co_flags & (_COROUTINE_FLAGS | _GENERATOR_FLAGS):
        _EXPECT[(id(frame), offset)] = None  # it returns the coroutine, not its value
        return _Coro(code) if kind == USER else _SAFE
    _EXPECT[(id(frame), offset)] = code if kind == USER else None
    return _OPAQUE


def _h_callpre(frame: types.FrameType, site: Site, fp: set[Any]) -> bool:
    """Before a call whose result is used: what a Python callee returns (the call event
    that follows, if any, refines it; 3.12 has none for a Python ``f(*args)``)."""
    if site[5] is not None and not _iterate(_value(site[5], frame), fp):
        return False  # f(*args) iterates over args
    if not site[2]:
        return True
    callee = _value(site[4], frame)
    tp = type(callee)
    if tp is types.FunctionType or tp is types.MethodType:
        code = (callee.__func__ if tp is types.MethodType else callee).__code__
        kind = _python_result(frame, site[1], code)
    else:
        kind = _OPAQUE
        _EXPECT[(id(frame), site[1])] = None
    _VALUES[(id(frame), site[1])] = kind
    return True


_HANDLERS: dict[str, Handler] = {
    "unknown": _h_unknown, "attr_r": _h_attr_r, "attr_w": _h_attr_w, "super": _h_super,
    "glob_r": _h_glob_r, "glob_w": _h_glob_w, "cell_r": _h_cell_r, "cell_w": _h_cell_w,
    "item_r": _h_item_r, "item_w": _h_item_w, "item_d": _h_item_d, "slice_r": _h_slice_r,
    "slice_w": _h_slice_w, "binop": _h_binop, "unary": _h_unary, "truth": _h_truth,
    "compare": _h_compare, "contains": _h_contains, "iter": _h_iter, "next": _h_next,
    "await": _h_await, "send": _h_send, "aiter": _h_aiter, "anext": _h_anext,
    "with": _h_with, "format": _h_format, "extend": _h_iterate, "unpack": _h_iterate,
}


# --------------------------------------------------------------------------- calls

Rule = Callable[[list[Any], dict[str, Any] | None, set[Any]], object]


def _r_nothing(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
    return _PURE


def _r_shallow(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
    values = [*args, *(kw or {}).values()]
    return _PURE if all(_shallow(value, fp) for value in values) else None


def _r_deep(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
    return _PURE if _deep_all([*args, *(kw or {}).values()], fp) else None


def _r_copy(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
    """A builtin that builds a new container from its arguments' elements."""
    if kw:
        return None
    if not all(_iterate(value, fp) for value in args):
        return None
    return _Fresh(tuple(args), fp)


def _sorting(result: object) -> Rule:
    """sorted, min, max, sum, any, all: iterate over and compare, add or test elements."""
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
        for name, value in (kw or {}).items():
            if name not in ("key", "reverse", "default", "start"):
                return None
            if name == "key" and not (value is None or _python_callable(value)):
                return None  # a C key function would read the elements unseen
        if not all(_iterate(value, fp) for value in args) or not _deep_all(args, fp):
            return None
        if result is _Fresh:
            return _Fresh(tuple(args), fp)
        if result is _OPAQUE and (all(_atom(value) for value in args) or (len(args) == 1
                                  and _elements_kind(args[0]) is _PURE)):
            return _PURE  # the sum, least or greatest of atoms
        return result

    return rule


def _lazy(elements: object, *, function: bool = False) -> Rule:
    """enumerate, zip, reversed, iter, map, filter, dict views: an iterator that reads its
    sources each time it advances (``function``: the first argument is called on each
    element, and must be Python code, which is watched)."""
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
        if kw:
            return None
        sources = args
        if function:
            if not args or not _python_callable(args[0]):
                return None
            sources = args[1:]
        reads: list[object] = []
        for value in sources:
            kind = _iter_kind(value)
            if kind is None:
                return None
            reads.extend(kind.reads)
            if kind.obj is not None:
                reads.append(_Iter(kind.obj, (), _OPAQUE))
        return _Iter(None, tuple(reads), elements)

    return rule


def _r_len(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
    return _r_shallow(args, kw, fp)


def _r_next(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
    if not args:
        return None
    it = args[0]
    if isinstance(it, types.GeneratorType):
        return _OPAQUE  # resuming it is watched
    if isinstance(it, _Iter):
        return it.elements if _advance(it, fp) else None
    if not isinstance(it, (_Mark, _Fresh)) and _category(type(it)) == ITER:
        kind = _iterator_kind(it)
        return kind.elements if _advance(kind, fp) else None
    if not isinstance(it, (_Mark, _Fresh)) and _category(type(it)) == PY:
        return _OPAQUE
    return None


def _r_getattr(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
    if kw or len(args) < 2 or type(args[1]) is not str:
        return None
    return _OPAQUE if _attr(args[0], args[1], "r", fp) else None


def _r_setattr(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
    if kw or len(args) < 2 or type(args[1]) is not str:
        return None
    return _PURE if _attr(args[0], args[1], "w", fp) else None


def _mapping_rule(mode: str, *, keyed: bool = True, result: object = _OPAQUE,
                  inserting: bool = False, reads_args: bool = False) -> Rule:
    """A method reading or writing one key (or index) of a container; with ``result``
    _OPAQUE it returns the item (or its second argument when the key is missing)."""
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
        if kw or not args:
            return None
        container = args[0]
        key = args[1] if keyed and len(args) > 1 else _OPAQUE
        if not _item(container, key, mode, fp, inserting=inserting):
            return None
        if reads_args and not all(_iterate(value, fp) for value in args[1:]):
            return None
        if result is _OPAQUE and type(container) in (dict, collections.OrderedDict) \
                and not isinstance(key, _Mark) and _atom_key(key):
            value = dict.get(container, key, args[2] if len(args) > 2 else
                             None if mode == "r" else _OPAQUE)
            return _PURE if value is None else value  # (None would mean "unknown")
        return result

    return rule


def _whole(mode: str, *, result: object = _OPAQUE, reads_args: bool = False,
           compares: str | None = None) -> Rule:
    """A container method touching the whole container (``mode``), optionally iterating
    over its arguments, or comparing (``compares``) an argument with the elements
    ("argument") or the elements with each other ("elements": sorting, heaps)."""
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
        if not args:
            return None
        for name, value in (kw or {}).items():
            if name not in ("key", "reverse") or not (
                    value is None or type(value) is bool or _python_callable(value)):
                return None  # a C key function would read the elements unseen
        container = args[0]
        if not _item(container, _OPAQUE, mode, fp, inserting=mode == "w"):
            return None
        if reads_args and not all(_iterate(value, fp) for value in args[1:]):
            return None
        # Comparisons with atoms read nothing else; others may read what elements hold.
        against_atoms = compares == "argument" and all(
            _known(value) and (isinstance(value, _Mark) or _category(type(value)) == ATOM)
            for value in args[1:])
        if compares is not None and not against_atoms and not _deep_all(args, fp):
            return None
        if result is _Fresh:
            return _Fresh((container,), fp)
        return result

    return rule


def _immutable_method(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
    """A method of str, bytes, int, float, tuple, frozenset: reads its arguments."""
    return _PURE if _deep_all([*args, *(kw or {}).values()], fp) else None


def _future_rule(mode: str, result: object = _OPAQUE) -> Rule:
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
        if not args or isinstance(args[0], (_Mark, _Fresh, _Iter)):
            return None
        fp.add((id(args[0]), None, mode))
        _note(args[0])
        return result

    return rule


def _build_rules() -> dict[object, Rule]:
    rules: dict[object, Rule] = {}
    fn: Any
    cls: Any
    for fn in (isinstance, issubclass, id, callable, type, hash):
        rules[fn] = _r_nothing
    for fn in (abs, round, divmod, pow, chr, ord, bin, hex, oct, int, float, complex, bool,
               math.floor, math.ceil, math.sqrt, math.isclose, math.isnan, math.isfinite,
               math.fabs, math.log, math.exp, math.gcd, math.prod, math.fsum):
        rules[fn] = _r_shallow
    for fn in (str, repr, ascii, format):
        rules[fn] = _r_deep
    for fn in (len,):
        rules[fn] = _r_len
    for fn in (list, tuple, set, frozenset, dict, collections.deque, bytearray, bytes,
               collections.OrderedDict):
        rules[fn] = _r_copy
    rules[sorted] = _sorting(_Fresh)
    for fn in (min, max, sum):
        rules[fn] = _sorting(_OPAQUE)
    for fn in (any, all):
        rules[fn] = _sorting(_PURE)
    for fn in (enumerate, zip):
        rules[fn] = _lazy(_TUPLES)
    for fn in (reversed, iter):
        rules[fn] = _lazy(_OPAQUE)
    rules[map] = _lazy(_OPAQUE, function=True)
    rules[filter] = _lazy(_OPAQUE, function=True)
    rules[range] = _r_shallow
    rules[slice] = _r_shallow
    rules[next] = _r_next
    rules[getattr] = _r_getattr
    rules[hasattr] = lambda args, kw, fp: _PURE if _r_getattr(args, kw, fp) is not None else None
    rules[setattr] = _r_setattr
    rules[delattr] = lambda args, kw, fp: _r_setattr([*args, None], kw, fp)
    rules[object.__setattr__] = _r_setattr
    rules[object.__getattribute__] = _r_getattr
    rules[object.__delattr__] = rules[delattr]
    for fn in (object, super, property, staticmethod, classmethod):
        rules[fn] = lambda args, kw, fp: _OPAQUE
    # The running loop and the current task: the objects themselves (no effect).
    rules[asyncio.get_running_loop] = lambda args, kw, fp: asyncio.get_running_loop()
    rules[asyncio.get_event_loop] = lambda args, kw, fp: asyncio.get_running_loop()
    rules[asyncio.current_task] = lambda args, kw, fp: asyncio.current_task() if not args \
        else _OPAQUE
    # dict and its relatives
    for cls in (dict, collections.defaultdict, collections.OrderedDict):
        rules[cls.get] = _mapping_rule("r")
        rules[cls.__getitem__] = _mapping_rule("r")
        rules[cls.__contains__] = _mapping_rule("r", result=_PURE)
        rules[cls.setdefault] = _mapping_rule("w", inserting=True)
        rules[cls.__setitem__] = _mapping_rule("w", inserting=True)
        rules[cls.pop] = _mapping_rule("w")
        rules[cls.__delitem__] = _mapping_rule("w")
        rules[cls.popitem] = _whole("w", result=_Fresh)
        rules[cls.clear] = _whole("w")
        rules[cls.update] = _whole("w", reads_args=True)
        rules[cls.copy] = _whole("r", result=_Fresh)
        rules[cls.__len__] = _whole("r", result=_PURE)
        rules[cls.keys] = _view_rule(False)
        rules[cls.values] = _view_rule(False)
        rules[cls.items] = _view_rule(True)
        rules[cls.__iter__] = _view_rule(False)
    rules[collections.OrderedDict.move_to_end] = _whole("w")
    # list, deque, bytearray, set
    for cls in (list, collections.deque, bytearray):
        for name in ("append", "appendleft", "insert", "pop", "popleft", "clear", "reverse",
                     "rotate"):
            if hasattr(cls, name):
                rules[getattr(cls, name)] = _whole("w")
        for name in ("extend", "extendleft", "__iadd__"):
            if hasattr(cls, name):
                rules[getattr(cls, name)] = _whole("w", reads_args=True)
        for name in ("remove",):
            rules[getattr(cls, name)] = _whole("w", compares="argument")
        for name in ("index", "count", "__contains__"):
            rules[getattr(cls, name)] = _whole("r", result=_PURE, compares="argument")
        for name in ("copy",):
            if hasattr(cls, name):
                rules[getattr(cls, name)] = _whole("r", result=_Fresh)
        rules[cls.__len__] = _whole("r", result=_PURE)
        rules[cls.__iter__] = _lazy(_OPAQUE)
        rules[cls.__getitem__] = _mapping_rule("r")
        rules[cls.__setitem__] = _mapping_rule("w")
    rules[list.sort] = _whole("w", compares="elements")
    for name in ("add",):
        rules[getattr(set, name)] = _mapping_rule("w", result=_PURE, inserting=True)
    for name in ("discard", "remove"):
        rules[getattr(set, name)] = _mapping_rule("w", result=_PURE)
    rules[set.__contains__] = _mapping_rule("r", result=_PURE)
    for name in ("pop", "clear"):
        rules[getattr(set, name)] = _whole("w")
    for name in ("update", "intersection_update", "difference_update",
                 "symmetric_difference_update"):
        rules[getattr(set, name)] = _whole("w", reads_args=True)
    for name in ("union", "intersection", "difference", "symmetric_difference", "copy"):
        rules[getattr(set, name)] = _whole("r", result=_Fresh, reads_args=True)
    for name in ("issubset", "issuperset", "isdisjoint", "__len__"):
        rules[getattr(set, name)] = _whole("r", result=_PURE, reads_args=True)
    rules[set.__iter__] = _lazy(_OPAQUE)
    for cls in (str, bytes, int, float, complex, bool, tuple, frozenset):
        for name, value in vars(cls).items():
            if isinstance(value, (types.MethodDescriptorType, types.WrapperDescriptorType,
                                  types.ClassMethodDescriptorType)) and name not in (
                    "__getattribute__", "__setattr__", "__delattr__", "__init__",
                    "__new__", "__init_subclass__", "__reduce__", "__reduce_ex__"):
                rules[value] = _immutable_method
    # heapq and bisect keep lists ordered by comparing elements
    for fn in (heapq.heappush, heapq.heappop, heapq.heapify, heapq.heapreplace,
               heapq.heappushpop, bisect.insort_left, bisect.insort_right):
        rules[fn] = _whole("w", compares="elements")
    for fn in (bisect.bisect_left, bisect.bisect_right):
        rules[fn] = _whole("r", result=_PURE, compares="elements")
    # asyncio's futures and tasks (their C implementation)
    for cls in (asyncio.Future, asyncio.Task):
        for name in ("done", "cancelled", "result", "exception", "get_loop", "get_coro",
                     "get_name", "get_context", "get_stack", "print_stack", "cancelling",
                     "__await__", "__iter__"):
            method = cls.__dict__.get(name)
            if method is not None:
                rules[method] = _future_rule("r", _PURE if name in ("done", "cancelled")
                                             else _OPAQUE)
        for name in ("set_result", "set_exception", "cancel", "add_done_callback",
                     "remove_done_callback", "uncancel", "set_name"):
            method = cls.__dict__.get(name)
            if method is not None:
                rules[method] = _future_rule("w")
    return rules


def _view_rule(items: bool) -> Rule:
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: set[Any]) -> object:
        if kw or not args or not _item(args[0], _OPAQUE, "r", fp):
            return None
        container = args[0]
        if isinstance(container, (_Mark, _Fresh, _Iter)):
            return _PRIVATE_ITER
        return _Iter(None, (container,), _TUPLES if items else _OPAQUE)

    return rule


_RULES: dict[object, Rule] = {}
_NOT_CALLED: Final = object()


def _on_call_site(frame: types.FrameType, call: tuple[Any, ...], callable_: object,
                  arg0: object, fp: set[Any]) -> object:
    """Record what a call from user code does; return the kind of value it returns
    (None: the step is UNKNOWN)."""
    tp = type(callable_)
    if tp is types.FunctionType or tp is types.MethodType:
        # Python code: user code is watched, foreign code is caught when it starts.
        function: Any = callable_.__func__ if tp is types.MethodType else callable_  # type: ignore[attr-defined]
        return _python_result(frame, call[0], function.__code__)
    if isinstance(callable_, type):
        return _construct(frame, call, callable_, arg0, fp)
    rule = _RULES.get(callable_) if tp in _HASHABLE_CALLABLES else None
    receiver: object = _NOT_CALLED
    if rule is None and tp in (types.BuiltinMethodType, types.MethodWrapperType):
        owner = callable_.__self__  # type: ignore[attr-defined]
        if owner is not None and not isinstance(owner, (types.ModuleType, type)):
            descriptor = _lookup(type(owner), callable_.__name__)  # type: ignore[attr-defined]
            if descriptor is not None and type(descriptor) in _HASHABLE_CALLABLES:
                rule = _RULES.get(descriptor)
                receiver = owner
    if rule is None:
        if tp is _functools_partial:
            inner = callable_.func  # type: ignore[attr-defined]
            return _OPAQUE if isinstance(inner, (types.FunctionType, types.MethodType)) else None
        if _category(tp) == PY and isinstance(_lookup(tp, "__call__"), types.FunctionType):
            return _OPAQUE  # an instance of a Python class with a Python __call__
        return None
    args = _arguments(frame, call, callable_, arg0, receiver)
    if args is None:
        return None
    return rule(args[0], args[1], fp)


_functools_partial: Any = None
_HASHABLE_CALLABLES: Final = frozenset({
    types.BuiltinFunctionType, types.MethodDescriptorType, types.WrapperDescriptorType,
    types.ClassMethodDescriptorType})


def _arguments(frame: types.FrameType, call: tuple[Any, ...], callable_: object,
               arg0: object, receiver: object
               ) -> tuple[list[Any], dict[str, Any] | None] | None:
    """The call's positional arguments (``self`` first for a method) and keywords."""
    _offset, _capture, _method, sources, kwnames, is_ex, _where, self_mode = call
    if is_ex or self_mode == "unknown":
        return None  # f(*args, **kwargs), or arguments the analysis could not place
    values = [_value(src, frame) for src in sources]
    missing = arg0 is _mon.MISSING
    if self_mode == "yes" or (self_mode == "maybe" and not missing and type(callable_) in (
            types.MethodDescriptorType, types.WrapperDescriptorType) \
            and isinstance(arg0, callable_.__objclass__)):  # type: ignore[attr-defined]
        values.insert(0, arg0)  # obj.method(...): self comes first
    elif values and not missing:
        values[0] = arg0  # exact, whatever the analysis knew
    if receiver is not _NOT_CALLED:
        values.insert(0, receiver)  # a bound builtin method
    keywords: dict[str, Any] | None = None
    if kwnames is not None:
        if not isinstance(kwnames, tuple):
            return None
        count = len(kwnames)
        if count:
            if count > len(values):
                return None
            keywords = dict(zip(kwnames, values[-count:], strict=True))
            values = values[:-count]
    return values, keywords


def _construct(frame: types.FrameType, call: tuple[Any, ...], cls: type, arg0: object,
               fp: set[Any]) -> object:
    rule = _RULES.get(cls)
    if rule is not None:
        args = _arguments(frame, call, cls, arg0, _NOT_CALLED)
        if args is None:
            return None
        return rule(args[0], args[1], fp)
    meta_call = _lookup(type(cls), "__call__")
    if meta_call is not type.__call__:
        return _OPAQUE if isinstance(meta_call, types.FunctionType) else None
    category = _category(cls)
    if category in (PY, FUT):
        # __new__ and __init__ are Python (watched, or foreign and caught) or object's.
        return _OPAQUE
    base = next((c for c in cls.__mro__ if c in _RULES), None)
    if base is not None and category in (MUT, IMM, ATOM):
        args = _arguments(frame, call, cls, arg0, _NOT_CALLED)
        if args is None:
            return None
        return _OPAQUE if _RULES[base](args[0], args[1], fp) is not None else None
    if category == ATOM:
        return _OPAQUE
    return None


# --------------------------------------------------------------------------- callbacks

_current_task: Final = asyncio.current_task
_getframe: Final = sys._getframe
_codes: dict[int, _CodeInfo] = {}
_SITES: dict[int, dict[int, Site]] = {}  # id(code) -> _codes[id(code)].sites
_enabled: list[types.CodeType] = []
_tool: int | None = None
_unavailable = False  # no tool id was free in this session
_CACHE_LIMIT: Final = 4096
# Trusted functions that take futures from user code: the locals that hold them.
_FUTURE_ARGUMENTS: dict[Any, str] = {}
_LOCAL_EVENTS = 0
_DISABLE: Any = None
debug: collections.Counter[str] | None = None
"""When a Counter: why steps became UNKNOWN (site descriptions), for tuning and tests."""


def _unknown(fp: set[Any], why: str) -> None:
    fp.add(UNKNOWN)
    if debug is not None:
        debug[why] += 1


def _on_instruction(code: types.CodeType, offset: int) -> Any:
    sites = _SITES.get(id(code))
    site = sites.get(offset) if sites is not None else None
    if site is None:
        return _DISABLE
    fp = _footprint.current
    if fp is None:  # not recording: a later step must not use a value from before
        if site[2]:
            _VALUES[(id(_getframe(1)), offset)] = _OPAQUE
        return None
    if not site[2] and UNKNOWN in fp:
        return None
    try:
        if not site[0](_getframe(1), site, fp):
            _unknown(fp, site[3])
    except Exception as exc:  # noqa: BLE001  # an unexpected object: a step we cannot model
        _unknown(fp, f"{site[3]} (raised {type(exc).__name__}: {exc})")
        if site[2]:
            _VALUES[(id(sys._getframe(1)), offset)] = _OPAQUE
    return None


def _on_call(code: types.CodeType, offset: int, callable_: object, arg0: object) -> Any:
    info = _codes.get(id(code))
    call = info.calls.get(offset) if info is not None else None
    if call is None:
        return None
    frame = sys._getframe(1)
    key = (id(frame), offset)
    if call[1]:
        _EXPECT[key] = None  # until the callee is known to be watched code
    fp = _footprint.current
    if fp is None:  # not recording: only what the call returns, for later steps
        if call[1]:
            function: Any = callable_
            if type(function) is types.MethodType:
                function = function.__func__
            _VALUES[key] = _python_result(frame, offset, function.__code__) \
                if type(function) is types.FunctionType else _OPAQUE
        return None
    if not call[1] and UNKNOWN in fp:
        return None
    try:
        kind = _on_call_site(frame, call, callable_, arg0, fp)
    except Exception as exc:  # noqa: BLE001  # an unexpected callable: cannot model it
        _unknown(fp, f"{call[6]} (raised {type(exc).__name__}: {exc})")
        kind = _OPAQUE
    if kind is None:
        name = getattr(callable_, "__qualname__", None) or type(callable_).__name__
        _unknown(fp, f"{call[6]} to {name}")
        kind = _OPAQUE
    if call[1]:
        _VALUES[key] = kind
    return None


def _on_return(code: types.CodeType, offset: int, value: object) -> Any:
    """PY_RETURN of user code: the value is the output of the call (or await) in the
    caller that expected it."""
    frame = sys._getframe(1)
    if _TAINTED:
        _TAINTED.discard(id(frame))
    caller = frame.f_back
    if caller is not None:
        offset = caller.f_lasti
        info = _codes.get(id(caller.f_code))
        if info is not None:
            key = (id(caller), info.aliases.get(offset, offset))
            if _EXPECT.get(key) is code:
                _VALUES[key] = _PURE if value is None else value
    return None  # (nothing here can raise: plain dict operations)


def _on_start(code: types.CodeType, offset: int) -> Any:
    """PY_START and PY_RESUME: set user code up, and check foreign code."""
    try:
        return _started(code)
    except Exception:  # noqa: BLE001  # never break the scenario: the step is unknown
        _broken(code)
        return None


def _on_throw(code: types.CodeType, offset: int, exception: BaseException) -> Any:
    try:
        _started(code)  # PY_THROW cannot be switched off: whatever it says
    except Exception:  # noqa: BLE001
        _broken(code)
    return None


def _broken(code: types.CodeType) -> None:
    """This module failed on ``code``: every step that runs it is UNKNOWN."""
    fp = _footprint.current
    if fp is not None:
        _unknown(fp, f"internal error on {code.co_qualname}")
    if code_kind(code) == USER:
        info = _codes[id(code)] = _CodeInfo(
            {ins.offset: (_h_unknown, ins.offset, False, "broken", None, None, None)
             for ins in dis.get_instructions(code)}, {})
        _SITES[id(code)] = info.sites


def _started(code: types.CodeType) -> Any:
    # Called by the two callbacks above: the frame of ``code`` is two levels up.
    kind = code_kind(code)
    if kind == USER:
        if id(code) not in _codes:
            info = _codes[id(code)] = analyse(code)
            _SITES[id(code)] = info.sites
            _enabled.append(code)
            _mon.set_local_events(_tool, code, _LOCAL_EVENTS)
        flags = code.co_flags
        if flags & (_GENERATOR_FLAGS | _COROUTINE_FLAGS):
            fp = _footprint.current
            if fp is not None:
                frame = sys._getframe(2)
                if flags & _GENERATOR_FLAGS:  # resuming a generator moves it on: a write
                    fp.add((id(frame), None, "w"))
                if _TAINTED and id(frame) in _TAINTED:
                    _unknown(fp, f"{code.co_qualname} awaits an unknown awaitable")
                # A task's step reads whether the task was cancelled (task.cancel() writes
                # it), whichever way the step then goes.
                task = _current_task()
                if task is not None:
                    fp.add((id(task), None, "r"))
            return None
        return _DISABLE
    if kind == TRUSTED:
        name = _FUTURE_ARGUMENTS.get(code)
        if name is None:
            return _DISABLE
        fp = _footprint.current
        if fp is not None:
            _futures_passed(sys._getframe(2).f_locals.get(name), fp)
        return None
    if kind == HELPER:
        return _DISABLE
    fp = _footprint.current
    if fp is not None and UNKNOWN not in fp:
        _foreign(code, sys._getframe(2), fp)
    return None


def _foreign(code: types.CodeType, frame: types.FrameType, fp: set[Any]) -> None:
    """Foreign code started or resumed in a step: fine when trusted code called it (that
    is the trusted code's business), UNKNOWN when user code did (directly, through C
    code, or through helpers)."""
    if code.co_flags & (_GENERATOR_FLAGS | _COROUTINE_FLAGS):
        _unknown(fp, f"foreign coroutine or generator {code.co_qualname}")
        return
    caller = frame.f_back
    while caller is not None:
        kind = code_kind(caller.f_code)
        if kind == TRUSTED:
            return
        if kind != HELPER:
            _unknown(fp, f"foreign code {code.co_filename}:{code.co_qualname}")
            return
        caller = caller.f_back
    _unknown(fp, f"foreign code {code.co_qualname} with no caller")


def _futures_passed(value: object, fp: set[Any]) -> None:
    """A trusted function was given futures (gather, wait, wait_for, shield): it reads
    their state and adds callbacks to them."""
    values: Any
    if isinstance(value, (tuple, list, set, frozenset)):
        values = value
        if not isinstance(value, (tuple, frozenset)):
            fp.add((id(value), None, "r"))
    else:
        values = (value,)
    for item in values:
        if isinstance(item, asyncio.Future):
            fp.add((id(item), None, "w"))
            _note(item)


def _setup_tables() -> None:
    global _functools_partial, _LOCAL_EVENTS, _DISABLE
    if _RULES:
        return
    import functools

    _functools_partial = functools.partial
    _RULES.update(_build_rules())
    events = _mon.events
    _LOCAL_EVENTS = events.INSTRUCTION | events.CALL | events.PY_RETURN
    _DISABLE = _mon.DISABLE
    from asyncio import tasks

    for function, name in ((tasks.gather, "coros_or_futures"), (tasks.wait, "fs"),
                           (tasks.wait_for, "fut"), (tasks.shield, "arg"),
                           (tasks.ensure_future, "coro_or_future"),
                           (tasks.as_completed, "fs")):
        code = getattr(function, "__code__", None)
        if code is not None:
            _FUTURE_ARGUMENTS[code] = name


# --------------------------------------------------------------------------- lifecycle

def activate() -> bool:
    """Start (or keep) watching user code, and forget the previous run's values.

    Returns False when no ``sys.monitoring`` tool id is free: footprints are then not
    recorded automatically, and the caller must treat task code as touching everything.
    """
    global _tool, _unavailable
    require_auto()
    _VALUES.clear()
    _EXPECT.clear()
    _TAINTED.clear()
    if len(_CATEGORY) > _CACHE_LIMIT:  # classes made by each run would pile up
        _CATEGORY.clear()
        _ATTRS.clear()
    if _tool is not None:
        return True
    if _unavailable:
        return False
    _setup_tables()
    for tool in _TOOL_IDS:
        if _mon.get_tool(tool) is None:
            _mon.use_tool_id(tool, _TOOL_NAME)
            _tool = tool
            break
    else:
        import warnings

        from explorer._errors import HealthWarning

        _unavailable = True  # until the session ends: one warning
        warnings.warn(HealthWarning(
            "footprints='auto' found no free sys.monitoring tool id (a debugger, coverage "
            "tool or profiler holds them all): task code counts as touching everything, "
            "as in the conservative mode"), stacklevel=3)
        return False
    events = _mon.events
    _mon.register_callback(_tool, events.PY_START, _on_start)
    _mon.register_callback(_tool, events.PY_RESUME, _on_start)
    _mon.register_callback(_tool, events.PY_THROW, _on_throw)
    _mon.register_callback(_tool, events.INSTRUCTION, _on_instruction)
    _mon.register_callback(_tool, events.CALL, _on_call)
    _mon.register_callback(_tool, events.PY_RETURN, _on_return)
    # Locations switched off by an earlier session (ours or another tool's under this id)
    # must fire again: the code they belong to has to be set up anew.
    _mon.restart_events()
    _mon.set_events(_tool, events.PY_START | events.PY_RESUME | events.PY_THROW)
    return True


def deactivate() -> None:
    """Stop watching: remove every event this module set (end of a session)."""
    global _tool, _unavailable
    _unavailable = False
    if _tool is None:
        return
    tool, _tool = _tool, None
    events = _mon.events
    _mon.set_events(tool, 0)
    for code in _enabled:
        _mon.set_local_events(tool, code, 0)
    for event in (events.PY_START, events.PY_RESUME, events.PY_THROW, events.INSTRUCTION,
                  events.CALL, events.PY_RETURN):
        _mon.register_callback(tool, event, None)
    _mon.free_tool_id(tool)
    _codes.clear()
    _SITES.clear()
    _enabled.clear()
    _VALUES.clear()
    _EXPECT.clear()
    _TAINTED.clear()
    _ATTRS.clear()
    _CATEGORY.clear()
    _KINDS.clear()
    _KEEP.clear()
