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

import asyncio
import bisect
import collections
import heapq
import math
import types
from collections.abc import Callable
from typing import Any, Final

from explorer._monitoring._categories import ATOM, ITER, PY, atom_key, category_of, elements_kind
from explorer._monitoring._memory import (
    advance,
    attribute_access,
    deep_all,
    item_access,
    iter_kind,
    iterate,
    iterator_kind,
    note,
    shallow,
)
from explorer._monitoring._state import Footprint
from explorer._monitoring._values import (
    OPAQUE,
    PRIVATE_ITER,
    PURE,
    TUPLES,
    Fresh,
    Iter,
    Mark,
    atom,
    known,
    python_callable,
)

Rule = Callable[[list[Any], dict[str, Any] | None, Footprint], object]
"""Records a call's effects; returns what it returns, or None: not modelled."""

def _r_nothing(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
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
    if kw or len(args) < 2 or type(args[1]) is not str:
        return None
    return OPAQUE if attribute_access(args[0], args[1], "r", fp) else None


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


def _immutable_method(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
    """A method of str, bytes, int, float, tuple, frozenset: reads its arguments."""
    return PURE if deep_all([*args, *(kw or {}).values()], fp) else None


def _future_rule(mode: str, result: object = OPAQUE) -> Rule:
    def rule(args: list[Any], kw: dict[str, Any] | None, fp: Footprint) -> object:
        if not args or isinstance(args[0], (Mark, Fresh, Iter)):
            return None
        fp.add((id(args[0]), None, mode))
        note(args[0])
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
    rules[sorted] = _sorting(Fresh)
    for fn in (min, max, sum):
        rules[fn] = _sorting(OPAQUE)
    for fn in (any, all):
        rules[fn] = _sorting(PURE)
    for fn in (enumerate, zip):
        rules[fn] = _lazy(TUPLES)
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
