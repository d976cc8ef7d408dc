"""Calls from user code: find the callee's rule and its arguments, and apply it.

The CALL hook gives the callable and its first argument; the analysis's
:class:`~explorer._monitoring._dataflow.CallPlan` locates the rest. A Python callee
runs watched (user code) or is caught when it starts (foreign code); a class is
constructed through its rule or its Python ``__new__``/``__init__``; a C callable is
looked up in :data:`explorer._monitoring._builtins.RULES`.
"""

from __future__ import annotations

import functools
import sys
import types
from typing import Any, Final

from explorer._monitoring._builtins import RULES
from explorer._monitoring._categories import ATOM, FUT, IMM, MUT, PY, category_of, lookup
from explorer._monitoring._dataflow import CallPlan
from explorer._monitoring._handlers import operand, python_result
from explorer._monitoring._state import Footprint
from explorer._monitoring._values import OPAQUE

_NOT_CALLED: Final = object()
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
        return python_result(frame, call.offset, function.__code__)
    if isinstance(callable_, type):
        return _construct(frame, call, callable_, arg0, fp)
    rule = RULES.get(callable_) if tp in _HASHABLE_CALLABLES else None
    receiver: object = _NOT_CALLED
    if rule is None and tp in (types.BuiltinMethodType, types.MethodWrapperType):
        owner = callable_.__self__  # type: ignore[attr-defined]
        if owner is not None and not isinstance(owner, (types.ModuleType, type)):
            descriptor = lookup(type(owner), callable_.__name__)  # type: ignore[attr-defined]
            if descriptor is not None and type(descriptor) in _HASHABLE_CALLABLES:
                rule = RULES.get(descriptor)
                receiver = owner
    if rule is None:
        if tp is functools.partial:
            inner = callable_.func  # type: ignore[attr-defined]
            return OPAQUE if isinstance(inner, (types.FunctionType, types.MethodType)) else None
        if category_of(tp) == PY and isinstance(lookup(tp, "__call__"), types.FunctionType):
            return OPAQUE  # an instance of a Python class with a Python __call__
        return None
    args = _arguments(frame, call, callable_, arg0, receiver)
    if args is None:
        return None
    return rule(args[0], args[1], fp)


_HASHABLE_CALLABLES: Final = frozenset({
    types.BuiltinFunctionType, types.MethodDescriptorType, types.WrapperDescriptorType,
    types.ClassMethodDescriptorType})


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


def _construct(frame: types.FrameType, call: CallPlan, cls: type, arg0: object,
               fp: Footprint) -> object:
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
        # __new__ and __init__ are Python (watched, or foreign and caught) or object's.
        return OPAQUE
    base = next((c for c in cls.__mro__ if c in RULES), None)
    if base is not None and category in (MUT, IMM, ATOM):
        args = _arguments(frame, call, cls, arg0, _NOT_CALLED)
        if args is None:
            return None
        return OPAQUE if RULES[base](args[0], args[1], fp) is not None else None
    if category == ATOM:
        return OPAQUE
    return None


