"""Calls from user code: find the callee's rule and its arguments, and apply it.

The CALL hook gives the callable and its first argument; the analysis's
:class:`~explorer._monitoring._dataflow.CallPlan` locates the rest. A Python callee
runs watched (user code) or is caught when it starts (foreign code); a class is
constructed through its rule or its Python ``__new__``/``__init__``; a C callable is
looked up in :data:`explorer._monitoring._builtins.RULES`.
"""

from __future__ import annotations

import enum
import functools
import io
import sys
import types
import weakref
from typing import Any, Final

from explorer._monitoring._builtins import RULES
from explorer._monitoring._categories import (
    ATOM,
    FUT,
    IMM,
    MUT,
    PY,
    THREAD_LOCKS,
    atom_key,
    category_of,
    lookup,
)
from explorer._monitoring._dataflow import CallPlan
from explorer._monitoring._handlers import operand, python_result
from explorer._monitoring._places import WATCHED, code_kind
from explorer._monitoring._state import STATE, Footprint
from explorer._monitoring._values import OPAQUE, PURE, TRUSTED_RESULT, Fresh, New

_NOT_CALLED: Final = object()
# asyncio methods that return a bool or a count (what they read, the runtime records).
_TRUSTED_PREDICATES: Final = frozenset({
    "Event.is_set", "Lock.locked", "Semaphore.locked", "Queue.empty", "Queue.full",
    "Queue.qsize", "iscoroutinefunction"})
# Functions cached with functools.lru_cache whose result depends on their (immutable)
# arguments only: whether the cache hits changes nothing but what code runs.
_PURE_CACHED: Final = frozenset({
    "urllib.parse.urlsplit",
    # FastAPI classifies an endpoint or dependency by its code flags, which never change.
    "fastapi.dependencies.models._is_gen_callable_cached",
    "fastapi.dependencies.models._is_async_gen_callable_cached",
    "fastapi.dependencies.models._is_coroutine_callable_cached"})
_LRU_CACHE_WRAPPER: Final = type(functools.lru_cache(lambda: None))
# C classes whose new instances only the step that made them can reach (and whose
# methods have rules): construction is the object, whatever the arguments.
_NEW_C_OBJECTS: Final = frozenset({weakref.ref, io.BytesIO, io.StringIO})
_MISSING: Final = getattr(getattr(sys, "monitoring", None), "MISSING", object())
"""What the CALL event gives as the first argument of a call without one."""

def describe_call(frame: types.FrameType, call: CallPlan, callable_: object,
                  arg0: object, fp: Footprint) -> object:
    """Record what a call from user code does; return the kind of value it returns
    (None: the step is UNKNOWN)."""
    tp = type(callable_)
    if tp is types.FunctionType or tp is types.MethodType:
        # Python code: user code is watched, foreign code is caught when it starts.
        function: Any = callable_.__func__ if tp is types.MethodType else callable_  # type: ignore[attr-defined]
        modelled = RULES.get(function) if tp is types.FunctionType else None
        if modelled is not None:
            # A Python function of a modelled module (json) or a helper (re): its rule
            # says what it touches, and its code runs unwatched.
            args = _arguments(frame, call, callable_, arg0, _NOT_CALLED)
            result = modelled(args[0], args[1], fp) if args is not None else None
            if result is not None:
                STATE.approved = function.__code__
            return result
        result = python_result(frame, call.offset, function.__code__)
        if result is TRUSTED_RESULT and function.__qualname__ in _TRUSTED_PREDICATES:
            return PURE  # a bool or a count (the runtime records what it read)
        return result
    if callable_ is dict and call.star and call.sources and call.sources[0] is not None \
            and call.sources[0][0] == "c" and call.sources[0][2] == ():
        # dict(**kwargs, key=value): the keyword dict is one the call built (its ** were
        # read where they were merged into it); the copy is new.
        return Fresh((), fp)
    if callable_ is next and type(arg0) is types.GeneratorType:
        return _next_of_generator(frame, call, arg0)
    if isinstance(callable_, type):
        return _construct(frame, call, callable_, arg0, fp)
    if tp is weakref.ref:  # dereferencing: the object itself, or None (C, no effect)
        referent = callable_()  # type: ignore[operator]
        return PURE if referent is None else referent
    rule = RULES.get(callable_) if tp in _HASHABLE_CALLABLES else None
    receiver: object = _NOT_CALLED
    if rule is None and tp in (types.BuiltinMethodType, types.MethodWrapperType):
        owner = callable_.__self__  # type: ignore[attr-defined]
        if owner is not None and not isinstance(owner, (types.ModuleType, type)):
            descriptor = lookup(type(owner), callable_.__name__)  # type: ignore[attr-defined]
            if tp is types.MethodWrapperType and type(descriptor) is not \
                    types.WrapperDescriptorType:
                # super().__setattr__(...) past a Python override: the slot it wraps
                descriptor = _wrapped_slot(owner, callable_)
            if descriptor is not None and type(descriptor) in _HASHABLE_CALLABLES:
                rule = RULES.get(descriptor)
                receiver = owner
    if rule is None:
        wrapped = getattr(callable_, "__wrapped__", None) \
            if tp is _LRU_CACHE_WRAPPER else None
        if type(wrapped) is types.FunctionType and \
                f"{wrapped.__module__}.{wrapped.__qualname__}" in _PURE_CACHED:
            # A cached pure function: a hit runs nothing, a miss runs it (watched).
            return python_result(frame, call.offset, wrapped.__code__)
        if tp is functools.partial:
            inner = callable_.func  # type: ignore[attr-defined]
            if type(inner) is types.MethodType:
                inner = inner.__func__
            if type(inner) is types.FunctionType:
                return python_result(frame, call.offset, inner.__code__)
            return None
        method = lookup(tp, "__call__") if category_of(tp) == PY else None
        if type(method) is types.FunctionType:
            # An instance of a Python class with a Python __call__ (an ASGI app, a
            # middleware): that function runs, watched; an awaited result is its coroutine.
            return python_result(frame, call.offset, method.__code__)
        return None
    if type(receiver) in THREAD_LOCKS:  # (the exit of a with block: arguments not placed)
        return rule([receiver], None, fp)  # their rules need only the lock
    args = _arguments(frame, call, callable_, arg0, receiver)
    if args is None:
        return None
    return rule(args[0], args[1], fp)


def _wrapped_slot(owner: object, wrapper: Any) -> object:
    """The slot wrapper of ``owner``'s classes that ``wrapper`` is bound from, or None
    (method wrappers compare equal when they wrap the same slot of the same object)."""
    for cls in type(owner).__mro__:
        slot = cls.__dict__.get(wrapper.__name__)
        if type(slot) is types.WrapperDescriptorType and slot.__get__(owner) == wrapper:
            return slot
    return None


_HASHABLE_CALLABLES: Final = frozenset({
    types.BuiltinFunctionType, types.MethodDescriptorType, types.WrapperDescriptorType,
    types.ClassMethodDescriptorType})


def _next_of_generator(frame: types.FrameType, call: CallPlan,
                       generator: types.GeneratorType[Any, Any, Any]) -> object:
    """``next(generator[, default])``: resuming the generator runs its code (watched, or
    caught as foreign when it starts); what the call returns is the value it yields
    (handed over by the PY_YIELD event, see explorer._monitoring._hooks.on_yield), or
    the default when it returns instead. Until one of those happens: unknown."""
    args = _arguments(frame, call, next, generator, _NOT_CALLED)
    if args is None or args[1] or not 1 <= len(args[0]) <= 2:
        return None
    code = generator.gi_code
    if code_kind(code) not in WATCHED or generator.gi_frame is None:
        return OPAQUE
    STATE.expect[(id(frame), call.offset)] = code
    STATE.yields.add((id(frame), call.offset))
    # The default stands only where the generator's events are on (set up the first
    # time it started): otherwise a value it yields would not replace it.
    return args[0][1] if len(args[0]) == 2 and id(code) in STATE.codes else OPAQUE


def _arguments(frame: types.FrameType, call: CallPlan, callable_: object,
               arg0: object, receiver: object
               ) -> tuple[list[Any], dict[str, Any] | None] | None:
    """The call's positional arguments (``self`` first for a method) and keywords."""
    _offset, _capture, _method, sources, kwnames, is_ex, _where, self_mode = call
    if is_ex or self_mode == "unknown":
        return None  # f(*args, **kwargs), or arguments the analysis could not place
    values = [operand(src, frame) for src in sources]
    missing = arg0 is _MISSING
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


def _enum_member(frame: types.FrameType, call: CallPlan, cls: Any,
                 arg0: object) -> object:
    """``Color(value)``: the member with that value (looked up in the class's own map,
    which does not change once the class is made), or None when not that simple."""
    args = _arguments(frame, call, cls, arg0, _NOT_CALLED)
    if args is None or args[1] or len(args[0]) != 1 or not atom_key(args[0][0]):
        return None
    members = cls.__dict__.get("_value2member_map_")
    return members.get(args[0][0]) if type(members) is dict else None


def _construct(frame: types.FrameType, call: CallPlan, cls: type, arg0: object,
               fp: Footprint) -> object:
    if cls in THREAD_LOCKS or cls in _NEW_C_OBJECTS:
        return OPAQUE  # a new lock or reference: only this step has it
    if isinstance(cls, enum.EnumType):
        member = _enum_member(frame, call, cls, arg0)
        if member is not None:
            return member
    rule = RULES.get(cls)
    if rule is not None:
        args = _arguments(frame, call, cls, arg0, _NOT_CALLED)
        if args is None:
            return None
        return rule(args[0], args[1], fp)
    meta_call = lookup(type(cls), "__call__")
    if meta_call is not type.__call__:
        return OPAQUE if isinstance(meta_call, types.FunctionType) else None
    category = category_of(cls)
    if category in (PY, FUT):
        # __new__ and __init__ are Python (watched, or foreign and caught) or object's:
        # a new instance, of which only its class is known here (enough for a with).
        plain = category == PY and lookup(cls, "__new__") is object.__new__
        return New(cls) if plain else OPAQUE
    base = next((c for c in cls.__mro__ if c in RULES), None)
    if base is not None and category in (MUT, IMM, ATOM):
        args = _arguments(frame, call, cls, arg0, _NOT_CALLED)
        if args is None:
            return None
        return OPAQUE if RULES[base](args[0], args[1], fp) is not None else None
    if category == ATOM:
        return OPAQUE
    return None


