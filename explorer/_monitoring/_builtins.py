"""The table of modelled builtins: what a call of a C function or method does.

User code calls C code the hooks cannot see into; a call is modelled only when its callable
is in :data:`RULES`. A rule gets the call's positional arguments (``self`` first for a
method; values may be marks), its keyword arguments and the running step's footprint; it
records what the call reads and writes there and returns what the call returns as far as
known (an object, a mark, a fresh container or an iterator kind), or None when the call
cannot be modelled (the step is then UNKNOWN).

No ``sys.monitoring`` here: the table can be consulted on every supported Python.
"""

from __future__ import annotations

import _thread
import asyncio
import bisect
import collections
import contextvars
import datetime
import heapq
import inspect
import io
import json
import math
import os
import re
import sys
import time
import types
import typing
import weakref
from collections.abc import Callable
from typing import Any, Final

from explorer._monitoring._categories import (
    ATOM,
    GENERIC_GETATTRIBUTE,
    ITER,
    PY,
    THREAD_LOCKS,
    atom_key,
    category_of,
    elements_kind,
    lookup,
    plain_value,
)
from explorer._monitoring._memory import (
    advance,
    attribute_access,
    deep_all,
    item_access,
    iter_kind,
    iterate,
    iterator_kind,
    keep,
    lock_changed,
    lock_released,
    lock_taken,
    note,
    shallow,
)
from explorer._monitoring._state import Footprint
from explorer._monitoring._values import (
    ATOMS,
    OPAQUE,
    PRIVATE_ITER,
    PURE,
    SAFE,
    TUPLES,
    ZIPPED,
    Fresh,
    Iter,
    Mark,
    atom,
    known,
    private,
    python_callable,
)

Rule = Callable[[list[Any], dict[str, Any] | None, Footprint], object]
"""Records a call's effects; returns what it returns, or None: not modelled."""

def _r_nothing(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    return PURE


def _r_type(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """``type(obj)``: the class itself (C code reading the object's header only); the
    three-argument form makes a new class, which only this step holds."""
    if len(args) == 1 and not kw and not private(args[0]):
        return type(args[0])
    return PURE


def _r_shallow(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    values = [*args, *(kw or {}).values()]
    return PURE if all(shallow(value, fp) for value in values) else None


def _r_deep(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    return PURE if deep_all([*args, *(kw or {}).values()], fp) else None


def _r_copy(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """A builtin that builds a new container from its arguments' elements."""
    if kw:
        return None
    if not all(iterate(value, fp) for value in args):
        return None
    return Fresh(tuple(args), fp)


def _sorting(result: object) -> Rule:
    """sorted, min, max, sum, any, all: iterate over and compare, add or test elements."""
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
        for name, value in (kw or {}).items():
            if name not in ("key", "reverse", "default", "start"):
                return None
            if name == "key" and not (value is None or python_callable(value)):
                return None  # a C key function would read the elements unseen
        if not all(iterate(value, fp) for value in args) or not deep_all(args, fp):
            return None
        if result is Fresh:
            return Fresh(tuple(args), fp)
        if result is OPAQUE and (all(atom(value) for value in args) or (len(args) == 1
                                  and elements_kind(args[0]) is PURE)):
            return PURE  # the sum, least or greatest of atoms
        return result

    return rule


def _lazy(elements: object, *, function: bool = False) -> Rule:
    """enumerate, zip, reversed, iter, map, filter, dict views: an iterator that reads its
    sources each time it advances (``function``: the first argument is called on each
    element, and must be Python code, which is watched)."""
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
        if kw:
            return None
        sources = args
        if function:
            if not args or not python_callable(args[0]):
                return None
            sources = args[1:]
        reads: list[object] = []
        for value in sources:
            kind = iter_kind(value)
            if kind is None:
                return None
            reads.extend(kind.reads)
            if kind.obj is not None:
                reads.append(Iter(kind.obj, (), OPAQUE))
        return Iter(None, tuple(reads), elements)

    return rule


_enumerate_or_zip: Final = _lazy(TUPLES)


def _zipped(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """enumerate() and zip(): tuples of their sources' elements. Over lists only (each
    then is one of the iterator's reads; no generator, iterator or mark whose elements
    are not known), the loop that takes an element checks what the lists hold at that
    moment (ZIPPED, see explorer._monitoring._handlers._h_next)."""
    result = _enumerate_or_zip(args, kw, fp)
    if isinstance(result, Iter) and args and all(type(value) is list for value in args) \
            and len(result.reads) == len(args):
        return Iter(None, result.reads, ZIPPED)
    return result


def _r_len(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    return _r_shallow(args, kw, fp)


def _r_next(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    if not args:
        return None
    it = args[0]
    if isinstance(it, types.GeneratorType):
        return OPAQUE  # resuming it is watched
    if isinstance(it, Iter):
        return it.elements if advance(it, fp) else None
    if not isinstance(it, (Mark, Fresh)) and category_of(type(it)) == ITER:
        kind = iterator_kind(it)
        return kind.elements if advance(kind, fp) else None
    if not isinstance(it, (Mark, Fresh)) and category_of(type(it)) == PY:
        return OPAQUE
    return None


def _r_getattr(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """``getattr(obj, name[, default])``: reads ``(obj, name)``; the value when it can be
    had without running code (as for ``obj.name``), or the default when the attribute
    is plainly absent (no class attribute, no ``__getattr__``, not in the instance)."""
    if kw or not 2 <= len(args) <= 3 or type(args[1]) is not str:
        return None
    obj, name = args[0], args[1]
    if not attribute_access(obj, name, "r", fp):
        return None
    if private(obj):
        return OPAQUE
    value = plain_value(obj, name)
    if value is OPAQUE and len(args) == 3 and _absent(obj, name):
        value = args[2]
    return PURE if value is None else value  # (None would mean "not modelled")


def _absent(obj: object, name: str) -> bool:
    """Whether ``getattr(obj, name)`` raises AttributeError without running code."""
    tp = type(obj)
    if category_of(tp) != PY or lookup(tp, "__getattribute__") not in GENERIC_GETATTRIBUTE \
            or lookup(tp, "__getattr__") is not None or lookup(tp, name, OPAQUE) is not OPAQUE:
        return False
    try:
        namespace = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return True  # no instance dict, no slot of that name
    return type(namespace) is dict and name not in namespace


def _r_setattr(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    if kw or len(args) < 2 or type(args[1]) is not str:
        return None
    return PURE if attribute_access(args[0], args[1], "w", fp) else None


def _mapping_rule(mode: str, *, keyed: bool = True, result: object = OPAQUE,
                  inserting: bool = False, reads_args: bool = False) -> Rule:
    """A method reading or writing one key (or index) of a container; with ``result``
    OPAQUE it returns the item (or its second argument when the key is missing)."""
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
        if kw or not args:
            return None
        container = args[0]
        key = args[1] if keyed and len(args) > 1 else OPAQUE
        if not item_access(container, key, mode, fp, inserting=inserting):
            return None
        if reads_args and not all(iterate(value, fp) for value in args[1:]):
            return None
        if result is OPAQUE and type(container) in (dict, collections.OrderedDict) \
                and not isinstance(key, Mark) and atom_key(key):
            value = dict.get(container, key, args[2] if len(args) > 2 else
                             None if mode == "r" else OPAQUE)
            return PURE if value is None else value  # (None would mean "unknown")
        return result

    return rule


def _whole(mode: str, *, result: object = OPAQUE, reads_args: bool = False,
           compares: str | None = None) -> Rule:
    """A container method touching the whole container (``mode``), optionally iterating
    over its arguments, or comparing (``compares``) an argument with the elements
    ("argument") or the elements with each other ("elements": sorting, heaps)."""
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
        if not args:
            return None
        for name, value in (kw or {}).items():
            if name not in ("key", "reverse") or not (
                    value is None or type(value) is bool or python_callable(value)):
                return None  # a C key function would read the elements unseen
        container = args[0]
        if not item_access(container, OPAQUE, mode, fp, inserting=mode == "w"):
            return None
        if reads_args and not all(iterate(value, fp) for value in args[1:]):
            return None
        # Comparisons with atoms read nothing else; others may read what elements hold.
        against_atoms = compares == "argument" and all(
            known(value) and (isinstance(value, Mark) or category_of(type(value)) == ATOM)
            for value in args[1:])
        if compares is not None and not against_atoms and not deep_all(args, fp):
            return None
        if result is Fresh:
            return Fresh((container,), fp)
        return result

    return rule


def _popped(rule: Rule, end: int) -> Rule:
    """``pop``/``popleft`` of a list or deque: ``rule`` (a write of the whole container);
    what it returns is the element it removes, read now by the container's own C
    ``__getitem__`` (no code runs, nothing changes), so that ``waiters.popleft().set()``
    is a call on a known object."""
    def rule_popping(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
        result = rule(args, kw, fp)
        if result is None or kw:
            return result
        container = args[0]
        position = end if len(args) == 1 else args[1] if len(args) == 2 else None
        getitem = list.__getitem__ if isinstance(container, list) else \
            collections.deque.__getitem__ if isinstance(container, collections.deque) else None
        if getitem is None or type(position) is not int:
            return result
        try:
            return getitem(container, position)
        except IndexError:  # the pop raises it too
            return result

    return rule_popping


def _immutable_method(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """A method of str, bytes, int, float, tuple, frozenset: reads its arguments."""
    return PURE if deep_all([*args, *(kw or {}).values()], fp) else None


_STR_READERS: Final = frozenset({"format", "format_map", "translate", "maketrans", "join"})


def _str_method(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """A method of str other than those in _STR_READERS, on a str."""
    if not args or not (type(args[0]) is str or args[0] is PURE):
        return _immutable_method(args, kw, fp)  # a subclass, or an unbound call
    return PURE


def _private_iterator(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """``pattern.finditer(string)``: a new iterator over matches of immutable strings."""
    return PRIVATE_ITER if deep_all([*args, *(kw or {}).values()], fp) else None


def _substitute(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """``pattern.sub(repl, string)``: a Python ``repl`` runs watched; a C one is unknown."""
    values = [*args, *(kw or {}).values()]
    if any(callable(value) and not python_callable(value) for value in values[1:]):
        return None
    return PURE if deep_all([value for value in values if not python_callable(value)],
                            fp) else None


def _new_list(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """``re.findall``, ``re.split``: read immutable arguments, return a new list."""
    return Fresh((), fp) if deep_all([*args, *(kw or {}).values()], fp) else None


_JSON_OPTIONS: Final = frozenset({"skipkeys", "ensure_ascii", "check_circular", "allow_nan",
                                  "indent", "separators", "sort_keys"})


def _json_dumps(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """``json.dumps(obj, ...)``: reads ``obj`` and everything in it; with a ``default``
    or an encoder class, code this rule cannot see runs (not modelled)."""
    if len(args) != 1 or any(name not in _JSON_OPTIONS for name in kw or {}):
        return None
    return PURE if deep_all([args[0], *(kw or {}).values()], fp) else None


def _json_loads(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """``json.loads(text)``: reads the text, returns new containers."""
    if len(args) != 1 or kw:
        return None
    return Fresh((), fp) if deep_all(args, fp) else None


def _context_variable(mode: str) -> Rule:
    """``var.get()``, ``var.set(value)``, ``var.reset(token)``: the variable's value in
    the running task's context (a step of a task runs in that task's context: asyncio
    runs each step with ``context=task's context``, and a ``Context.run`` from watched
    code is not modelled); outside a task, the variable as a whole."""
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
        if not args or isinstance(args[0], (Mark, Fresh, Iter)):
            return None
        task = asyncio.current_task()
        get_context = getattr(task, "get_context", None)  # (3.12+, as this package)
        context = get_context() if get_context is not None else None
        if context is None:
            fp.add((id(args[0]), None, mode))
            note(args[0])
        else:
            fp.add((id(context), id(args[0]), mode))
            keep(context)
            keep(args[0])
        if mode == "r" and not kw and len(args) <= 2 and not any(
                isinstance(value, (Mark, Fresh, Iter)) for value in args):
            value = args[0].get(*args[1:])  # C code with no effect: the value itself
            return PURE if value is None else value  # (None would mean "not modelled")
        return OPAQUE

    return rule


def _getenv(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """``os.getenv(key, default)``: reads one variable of ``os.environ`` (writing one
    runs frozen code from the step: UNKNOWN)."""
    if kw or not args or type(args[0]) is not str:
        return None
    fp.add((id(os.environ), args[0], "r"))
    data = getattr(os.environ, "_data", None)  # the bytes it holds (POSIX), read in C
    if os.name != "posix" or type(data) is not dict or len(args) > 2 or (
            len(args) == 2 and not atom(args[1])):
        return OPAQUE
    encoding = sys.getfilesystemencoding()
    raw = data.get(args[0].encode(encoding, "surrogateescape"))
    if raw is None:
        return PURE if len(args) == 1 or args[1] is None else args[1]
    return raw.decode(encoding, "surrogateescape") if type(raw) is bytes else OPAQUE


FILES: Final = Mark("the file system")
"""Footprint object for the status of files, by path."""


def _file_status(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """``os.stat(path)``, ``os.path.exists(path)`` (``isfile``, ``isdir``): read the
    status of one path (inspect and linecache check source files on every request in
    FastAPI). Nothing a step can do to a file is modelled (``open``, ``os.write``,
    ``os.replace`` are not in this table): a step that changes a file is UNKNOWN, and
    conflicts with these reads."""
    if kw or len(args) != 1 or type(args[0]) not in (str, bytes):
        return None
    fp.add((id(FILES), args[0], "r"))
    return OPAQUE


def _getblock(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """``inspect.getblock(lines)`` (``inspect.getsource``/``getsourcelines``, which
    FastAPI runs on each endpoint's first request): reads the list of lines and returns
    a new list of some of them. Its code (a ``BlockFinder`` of its own, fed by the C
    tokenizer reading ``iter(lines)``) touches nothing else and calls no code of the
    scenario's, as long as every line is an exact ``str`` (then nothing can run a
    ``__str__`` or a subclass's method); it runs unwatched."""
    if kw or len(args) != 1 or type(args[0]) not in (list, tuple):
        return None
    lines = args[0]
    if len(lines) > 100_000 or any(type(line) is not str for line in lines):
        return None
    if type(lines) is list:
        fp.add((id(lines), None, "r"))
        keep(lines)
    return Fresh((), fp)


def _plain_data(value: object, budget: list[int]) -> bool:
    """True for atoms and builtin containers of plain data (nothing whose attributes C
    code could read unseen)."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    tp = type(value)
    if tp in ATOMS:
        return True
    if tp in (list, tuple, set, frozenset):
        return all(_plain_data(item, budget) for item in value)  # type: ignore[attr-defined]
    if tp is dict:
        return all(_plain_data(key, budget) and _plain_data(item, budget)
                   for key, item in value.items())  # type: ignore[attr-defined]
    return False


def _validate_plain(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """pydantic-core's ``validate_python``/``to_python``/``to_json`` (compiled code): a
    validator or serializer is immutable once built; given plain data it reads that data
    and makes new objects (Python validators it calls run watched). Objects of other
    types could have attributes read unseen (``from_attributes``): not modelled."""
    values = [*args[1:], *(kw or {}).values()]
    if any(isinstance(value, (Mark, Fresh, Iter)) for value in values):
        return None
    if not all(_plain_data(value, [10_000]) for value in values):
        return None
    return OPAQUE if deep_all(values, fp) else None  # new objects (inputs may pass through)


def _pydantic_rules() -> dict[object, Rule]:
    core = sys.modules.get("pydantic_core")  # only if the scenario's code loaded it
    if core is None:
        return {}
    rules: dict[object, Rule] = {}
    for cls, names in ((getattr(core, "SchemaValidator", None), ("validate_python",)),
                       (getattr(core, "SchemaSerializer", None), ("to_python", "to_json"))):
        for name in names:
            method = getattr(cls, name, None) if cls is not None else None
            if method is not None:
                rules[method] = _validate_plain
    return rules


def _future_rule(mode: str, result: object = OPAQUE) -> Rule:
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
        if not args or isinstance(args[0], (Mark, Fresh, Iter)):
            return None
        fp.add((id(args[0]), None, mode))
        note(args[0])
        return result

    return rule


def _lock_rule(effect: Callable[[object, Footprint], None]) -> Rule:
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
        if not args or isinstance(args[0], (Mark, Fresh, Iter)):
            return None
        effect(args[0], fp)
        return OPAQUE

    return rule


def _build_rules() -> dict[object, Rule]:
    rules: dict[object, Rule] = {}
    fn: Any
    cls: Any
    for fn in (isinstance, issubclass, id, callable, type, hash):
        rules[fn] = _r_nothing
    rules[type] = _r_type
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
    rules[sorted] = _sorting(Fresh)
    for fn in (min, max, sum):
        rules[fn] = _sorting(OPAQUE)
    for fn in (any, all):
        rules[fn] = _sorting(PURE)
    for fn in (enumerate, zip):
        rules[fn] = _zipped
    for fn in (reversed, iter):
        rules[fn] = _lazy(OPAQUE)
    rules[map] = _lazy(OPAQUE, function=True)
    rules[filter] = _lazy(OPAQUE, function=True)
    rules[range] = _r_shallow
    rules[slice] = _r_shallow
    rules[next] = _r_next
    rules[getattr] = _r_getattr
    rules[hasattr] = lambda args, kw, fp: PURE if _r_getattr(args, kw, fp) is not None else None
    rules[setattr] = _r_setattr
    rules[delattr] = lambda args, kw, fp: _r_setattr([*args, None], kw, fp)
    rules[object.__setattr__] = _r_setattr
    rules[object.__getattribute__] = _r_getattr
    rules[object.__delattr__] = rules[delattr]
    for fn in (object, super, property, staticmethod, classmethod):
        rules[fn] = lambda args, kw, fp: OPAQUE
    # The running loop and the current task: the objects themselves (no effect).
    rules[asyncio.get_running_loop] = lambda args, kw, fp: asyncio.get_running_loop()
    rules[asyncio.get_event_loop] = lambda args, kw, fp: asyncio.get_running_loop()
    rules[asyncio.current_task] = lambda args, kw, fp: asyncio.current_task() if not args \
        else OPAQUE
    # dict and its relatives
    for cls in (dict, collections.defaultdict, collections.OrderedDict):
        rules[cls.get] = _mapping_rule("r")
        rules[cls.__getitem__] = _mapping_rule("r")
        rules[cls.__contains__] = _mapping_rule("r", result=PURE)
        rules[cls.setdefault] = _mapping_rule("w", inserting=True)
        rules[cls.__setitem__] = _mapping_rule("w", inserting=True)
        rules[cls.pop] = _mapping_rule("w")
        rules[cls.__delitem__] = _mapping_rule("w")
        rules[cls.popitem] = _whole("w", result=Fresh)
        rules[cls.clear] = _whole("w")
        rules[cls.update] = _whole("w", reads_args=True)
        rules[cls.copy] = _whole("r", result=Fresh)
        rules[cls.__len__] = _whole("r", result=PURE)
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
            rules[getattr(cls, name)] = _whole("r", result=PURE, compares="argument")
        for name in ("copy",):
            if hasattr(cls, name):
                rules[getattr(cls, name)] = _whole("r", result=Fresh)
        rules[cls.__len__] = _whole("r", result=PURE)
        rules[cls.__iter__] = _lazy(OPAQUE)
        rules[cls.__getitem__] = _mapping_rule("r")
        rules[cls.__setitem__] = _mapping_rule("w")
    rules[list.sort] = _whole("w", compares="elements")
    for popper, end in ((list.pop, -1), (collections.deque.pop, -1),
                        (collections.deque.popleft, 0)):
        rules[popper] = _popped(rules[popper], end)
    for name in ("add",):
        rules[getattr(set, name)] = _mapping_rule("w", result=PURE, inserting=True)
    for name in ("discard", "remove"):
        rules[getattr(set, name)] = _mapping_rule("w", result=PURE)
    rules[set.__contains__] = _mapping_rule("r", result=PURE)
    for name in ("pop", "clear"):
        rules[getattr(set, name)] = _whole("w")
    for name in ("update", "intersection_update", "difference_update",
                 "symmetric_difference_update"):
        rules[getattr(set, name)] = _whole("w", reads_args=True)
    for name in ("union", "intersection", "difference", "symmetric_difference", "copy"):
        rules[getattr(set, name)] = _whole("r", result=Fresh, reads_args=True)
    for name in ("issubset", "issuperset", "isdisjoint", "__len__"):
        rules[getattr(set, name)] = _whole("r", result=PURE, reads_args=True)
    rules[set.__iter__] = _lazy(OPAQUE)
    for cls in (str, bytes, int, float, complex, bool, tuple, frozenset):
        for name, value in vars(cls).items():
            if isinstance(value, (types.MethodDescriptorType, types.WrapperDescriptorType,
                                  types.ClassMethodDescriptorType)) and name not in (
                    "__getattribute__", "__setattr__", "__delattr__", "__init__",
                    "__new__", "__init_subclass__", "__reduce__", "__reduce_ex__"):
                rules[value] = _immutable_method
    # A str method takes str, int or tuple-of-str arguments (anything else raises before
    # reading it), so what it reads is immutable whatever the analysis knows of them; the
    # exceptions format or look up their arguments.
    for name, value in vars(str).items():
        plain = not name.startswith("__") and name not in _STR_READERS
        if isinstance(value, (types.MethodDescriptorType, types.WrapperDescriptorType)) \
                and (plain or name in ("__getitem__", "__contains__", "__len__", "__add__",
                                       "__mul__")):
            rules[value] = _str_method
    # sep.join(parts) iterates over parts, whose elements must be str (bytes): immutable.
    for cls in (str, bytes):
        rules[cls.join] = lambda args, kw, fp: PURE if not kw and len(args) == 2 and iterate(
            args[1], fp) else None
    # Compiled patterns and their matches are immutable: a method reads its arguments.
    for cls in (re.Pattern, re.Match, datetime.date, datetime.datetime, datetime.time,
                datetime.timedelta, datetime.timezone):
        for name, value in vars(cls).items():
            if isinstance(value, types.MethodDescriptorType) and not name.startswith("__"):
                rules[value] = _immutable_method
    for name in ("finditer", "scanner"):
        rules[getattr(re.Pattern, name)] = _private_iterator
    for name in ("sub", "subn"):
        rules[getattr(re.Pattern, name)] = _substitute
    # The module functions of re (a helper: its code runs unwatched) and of json (a
    # modelled module: its code runs unwatched only when a rule describes the call).
    for fn in (re.compile, re.escape, re.match, re.fullmatch, re.search):
        rules[fn] = _immutable_method  # a pattern, a match, None or a string: immutable
    for fn in (re.findall, re.split):
        rules[fn] = _new_list
    rules[re.finditer] = _private_iterator
    for fn in (re.sub, re.subn):
        rules[fn] = _substitute
    # object.__new__(cls) in a Python __new__ (anyio's backend classes): allocates an
    # instance of a Python class, runs no code and touches nothing.
    rules[object.__new__] = lambda args, kw, fp: OPAQUE if not kw and len(args) == 1 \
        and isinstance(args[0], type) and category_of(args[0]) == PY else None
    # tuple.__new__(cls, iterable): a named tuple's constructor makes a new tuple.
    rules[tuple.__new__] = lambda args, kw, fp: Fresh(tuple(args[1:]), fp) if not kw and all(
        iterate(value, fp) for value in args[1:]) else None
    # Context variables: each task runs in its own context (asyncio copies it when the
    # task is made), so a variable's value is per (context, variable).
    for method, mode in ((contextvars.ContextVar.get, "r"), (contextvars.ContextVar.set, "w"),
                         (contextvars.ContextVar.reset, "w")):
        rules[method] = _context_variable(mode)
    # Process settings that a step can change only through calls not modelled here.
    rules[sys.getrecursionlimit] = _r_nothing
    rules[os.getenv] = _getenv  # (frozen code: runs unwatched when this rule describes it)
    for fn in (os.stat, os.path.exists, os.path.isfile, os.path.isdir):
        rules[fn] = _file_status
    # typing's introspection of annotations (a helper module): types, tuples of types.
    for fn in (typing.get_origin, typing.get_args):
        rules[fn] = lambda args, kw, fp: PURE
    # Thread locks (http.cookiejar guards its jar with one). A scenario runs on one
    # thread, so they never block another task; every operation counts as writing the
    # lock, which orders any two steps that use one.
    rules[weakref.ref] = lambda args, kw, fp: OPAQUE  # a new reference (WeakSet.add)
    # Clocks: within a step the (virtual) time does not move, and no step writes it.
    for fn in (time.time, time.monotonic, time.perf_counter, time.time_ns,
               time.monotonic_ns, time.perf_counter_ns):
        rules[fn] = _r_nothing
    # Resuming an async generator, a generator or a coroutine runs its code: watched
    # (user or library code), or caught when it resumes (foreign code).
    for name in ("__anext__", "asend", "athrow", "aclose"):
        rules[getattr(types.AsyncGeneratorType, name)] = lambda args, kw, fp: SAFE
    for cls in (types.GeneratorType, types.CoroutineType):
        for name in ("send", "throw", "close"):
            rules[getattr(cls, name)] = lambda args, kw, fp: OPAQUE
    for fn in (_thread.allocate_lock, _thread.RLock):
        rules[fn] = lambda args, kw, fp: OPAQUE  # a new lock: no other step can reach it
    # Taking and giving back a thread lock in one step reads it (see lock_taken).
    lock_rules = {"acquire": lock_taken, "__enter__": lock_taken, "acquire_lock": lock_taken,
                  "release": lock_released, "__exit__": lock_released,
                  "release_lock": lock_released, "_release_save": lock_changed,
                  "_acquire_restore": lock_changed}
    for cls in THREAD_LOCKS:
        for name, effect in lock_rules.items():
            method = cls.__dict__.get(name)
            if method is not None:
                rules[method] = _lock_rule(effect)
        for name in ("locked", "_is_owned"):
            method = cls.__dict__.get(name)
            if method is not None:
                rules[method] = _future_rule("r")
    # In-memory streams (C objects): every method reads or writes the buffer and position;
    # each counts as writing the stream. What they return is bytes, str or a number.
    for cls in (io.BytesIO, io.StringIO):
        for name, value in vars(cls).items():
            if isinstance(value, types.MethodDescriptorType) and not name.startswith("__"):
                rules[value] = _future_rule("w")
    rules[json.dumps] = _json_dumps
    rules[json.loads] = _json_loads
    rules[inspect.getblock] = _getblock
    # heapq and bisect keep lists ordered by comparing elements
    for fn in (heapq.heappush, heapq.heappop, heapq.heapify, heapq.heapreplace,
               heapq.heappushpop, bisect.insort_left, bisect.insort_right):
        rules[fn] = _whole("w", compares="elements")
    for fn in (bisect.bisect_left, bisect.bisect_right):
        rules[fn] = _whole("r", result=PURE, compares="elements")
    # asyncio's futures and tasks (their C implementation)
    for cls in (asyncio.Future, asyncio.Task):
        for name in ("done", "cancelled", "result", "exception", "get_loop", "get_coro",
                     "get_name", "get_context", "get_stack", "print_stack", "cancelling",
                     "__await__", "__iter__"):
            method = cls.__dict__.get(name)
            if method is not None:
                rules[method] = _future_rule("r", PURE if name in ("done", "cancelled")
                                             else OPAQUE)
        for name in ("set_result", "set_exception", "cancel", "add_done_callback",
                     "remove_done_callback", "uncancel", "set_name"):
            method = cls.__dict__.get(name)
            if method is not None:
                rules[method] = _future_rule("w")
    return rules


def _view_rule(items: bool) -> Rule:
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
        if kw or not args or not item_access(args[0], OPAQUE, "r", fp):
            return None
        container = args[0]
        if isinstance(container, (Mark, Fresh, Iter)):
            return PRIVATE_ITER
        return Iter(None, (container,), TUPLES if items else OPAQUE)

    return rule


RULES: Final[dict[object, Rule]] = _build_rules()
"""The modelled builtins: callable (a function, or a method descriptor) -> its rule."""


def add_library_rules() -> None:
    """Add the rules of compiled libraries the scenario has loaded (pydantic-core), at the
    start of a session: they are looked up by their callables, which exist only once the
    library is imported."""
    RULES.update(_pydantic_rules())
