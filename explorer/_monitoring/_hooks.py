"""The ``sys.monitoring`` callbacks of automatic footprints.

PY_START, PY_RESUME and PY_THROW fire for all code: user code is analysed the first time it
starts (:func:`install`) and gets local INSTRUCTION, CALL, PY_RETURN and PY_YIELD events;
trusted and helper code is switched off at once (trusted functions that take futures from
user code excepted); foreign code started by user code makes the step UNKNOWN; library
code that trusted code calls for its own ends runs unwatched (:func:`_trusted_business`).
INSTRUCTION
dispatches to the site's handler, CALL to :func:`~explorer._monitoring._calls.describe_call`,
PY_RETURN hands a watched function's return value to the call or await that expects it, and
PY_YIELD a generator's next value to the ``next()`` call that resumed it.

A callback never raises into the scenario: anything unexpected makes the step UNKNOWN.
These run on every watched instruction: they reach the session through
:data:`~explorer._monitoring._state.STATE` and nothing else.
"""

from __future__ import annotations

import asyncio
import sys
import types
from asyncio import tasks
from typing import Any, Final

from explorer import _footprint
from explorer._footprint import UNKNOWN
from explorer._monitoring._calls import describe_call
from explorer._monitoring._dataflow import CodePlan, analyse, unknown_plan
from explorer._monitoring._handlers import HANDLERS, python_result, same_value, stored
from explorer._monitoring._memory import iterate, keep, note
from explorer._monitoring._places import (
    FOREIGN,
    HELPER,
    LIBRARY,
    MODELLED,
    TRUSTED,
    WATCHED,
    code_kind,
    stop_watching_packages,
)
from explorer._monitoring._state import STATE, Footprint, Site
from explorer._monitoring._values import COROUTINE_FLAGS, GENERATOR_FLAGS, OPAQUE, PURE

_mon: Any = getattr(sys, "monitoring", None)  # absent before 3.12, and from 3.11's stubs
_DISABLE: Final[Any] = getattr(_mon, "DISABLE", None)
_running_loop: Final = asyncio._get_running_loop
_current_task: Final = asyncio.current_task
_getframe: Final = sys._getframe


def _future_arguments() -> dict[types.CodeType, str]:
    """Trusted functions that take futures from user code: the locals that hold them."""
    table = {}
    for function, name in ((tasks.gather, "coros_or_futures"), (tasks.wait, "fs"),
                           (tasks.wait_for, "fut"), (tasks.shield, "arg"),
                           (tasks.ensure_future, "coro_or_future"),
                           (tasks.as_completed, "fs")):
        code = getattr(function, "__code__", None)
        if code is not None:
            table[code] = name
    return table


_FUTURE_ARGUMENTS: Final = _future_arguments()


def local_events() -> int:
    """The events set on each code object of user code."""
    events = _mon.events
    return int(events.INSTRUCTION | events.CALL | events.PY_RETURN | events.PY_YIELD)


def install(code: types.CodeType, plan: CodePlan) -> None:
    """Act on ``code`` as ``plan`` says from now on."""
    STATE.codes[id(code)] = plan
    STATE.sites[id(code)] = {
        offset: Site(HANDLERS[spec.kind], spec.offset, spec.capture, spec.where, spec.first,
                     spec.second, spec.third)
        for offset, spec in plan.sites.items()}


def _unknown(fp: Footprint, why: str) -> None:
    fp.add(UNKNOWN)
    debug = STATE.debug
    if debug is not None:
        debug[why] += 1


def settle() -> None:
    """The store ``STATE.pending`` describes (a plain instance attribute given a value
    the analysis could not know) is over: if the attribute holds the object it held
    before, or an equal int, str or bytes, the store changed nothing and is a read, as
    the silent stores of ``_handlers._h_attr_w`` are.

    Called by the first event after the store: until then only instructions that touch
    no shared state ran (any other is a site, whose event comes first), so the value seen
    is the one the store left, or one this same step put back; either way the location
    is as the step found it. Only while that step is still the one recording: otherwise
    the write stays."""
    pending = STATE.pending
    STATE.pending = None
    if pending is None:
        return
    fp, place, obj, name, held = pending
    if _footprint.current is fp:
        now = stored(place, obj, name)
        if now is held or same_value(held, now):
            fp.discard((id(obj), name, "w"))
            fp.add((id(obj), name, "r"))


def on_instruction(code: types.CodeType, offset: int) -> Any:
    """INSTRUCTION: the site's handler (switched off where there is none)."""
    if STATE.pending is not None:
        settle()
    sites = STATE.sites.get(id(code))
    site = sites.get(offset) if sites is not None else None
    if site is None:
        return _DISABLE
    fp = _footprint.current
    if fp is None:  # not recording: a later step must not use a value from before
        if site.capture:
            STATE.values[(id(_getframe(1)), offset)] = OPAQUE
        return None
    if not site.capture and UNKNOWN in fp:
        return None
    try:
        if not site.handler(_getframe(1), site, fp):
            _unknown(fp, site.where)
    except Exception as exc:  # noqa: BLE001  # an unexpected object: a step we cannot model
        _unknown(fp, f"{site.where} (raised {type(exc).__name__}: {exc})")
        if site.capture:
            STATE.values[(id(sys._getframe(1)), offset)] = OPAQUE
    return None


def on_call(code: types.CodeType, offset: int, callable_: object, arg0: object) -> Any:
    """CALL: what the call does, and what it returns if a later instruction uses it."""
    if STATE.pending is not None:
        settle()
    info = STATE.codes.get(id(code))
    call = info.calls.get(offset) if info is not None else None
    if call is None:
        return None
    frame = sys._getframe(1)
    key = (id(frame), offset)
    if call.capture:
        STATE.expect[key] = None  # until the callee is known to be watched code
    fp = _footprint.current
    if fp is None:  # not recording: only what the call returns, for later steps
        if call.capture:
            function: Any = callable_
            if type(function) is types.MethodType:
                function = function.__func__
            STATE.values[key] = python_result(frame, offset, function.__code__) \
                if type(function) is types.FunctionType else OPAQUE
        return None
    if not call.capture and UNKNOWN in fp:
        return None
    try:
        kind = describe_call(frame, call, callable_, arg0, fp)
    except Exception as exc:  # noqa: BLE001  # an unexpected callable: cannot model it
        _unknown(fp, f"{call.where} (raised {type(exc).__name__}: {exc})")
        kind = OPAQUE
    if kind is None:
        name = getattr(callable_, "__qualname__", None) or type(callable_).__name__
        _unknown(fp, f"{call.where} to {name}")
        kind = OPAQUE
    if call.capture:
        STATE.values[key] = kind
    return None


def on_return(code: types.CodeType, offset: int, value: object) -> Any:
    """PY_RETURN of user code: the value is the output of the call (or await) in the
    caller that expected it."""
    if STATE.pending is not None:
        settle()
    frame = sys._getframe(1)
    if STATE.tainted:
        STATE.tainted.discard(id(frame))
    if code.co_name in _ITERATION_PROTOCOL:
        _iterated_later(code, value)
    caller = frame.f_back
    if caller is not None:
        offset = caller.f_lasti
        info = STATE.codes.get(id(caller.f_code))
        if info is not None:
            key = (id(caller), info.aliases.get(offset, offset))
            if STATE.expect.get(key) is code and key not in STATE.yields:
                # (a generator returning ends next(generator, default) with the default,
                # which the call already described)
                STATE.values[key] = PURE if value is None else value
    return None  # (nothing here can raise: plain dict operations)


def on_yield(code: types.CodeType, offset: int, value: object) -> Any:
    """PY_YIELD of user code: for a generator resumed by ``next(generator)``, the value
    is that call's output (explorer._monitoring._calls._next_of_generator)."""
    if STATE.pending is not None:
        settle()
    if not STATE.yields or not code.co_flags & GENERATOR_FLAGS:
        return None  # (no next(generator) call this run, or a coroutine suspending)
    caller = sys._getframe(1).f_back
    if caller is not None:
        offset = caller.f_lasti
        info = STATE.codes.get(id(caller.f_code))
        if info is not None:
            key = (id(caller), info.aliases.get(offset, offset))
            if key in STATE.yields and STATE.expect.get(key) is code:
                STATE.values[key] = PURE if value is None else value
    return None  # (nothing here can raise: plain dict operations)


_ITERATION_PROTOCOL: Final = frozenset({"__iter__", "__reversed__", "keys", "values",
                                        "items"})


def _iterated_later(code: types.CodeType, value: object) -> None:
    """A Python ``__iter__`` (or a mapping's ``keys``) returned ``value``, which the C code
    that called it (``dict(mapping)``, ``list(obj)``) iterates unseen: record reading what
    it iterates over now. See ``iterate`` in :mod:`explorer._monitoring._memory`."""
    fp = _footprint.current
    if fp is None or UNKNOWN in fp:
        return
    try:
        if not iterate(value, fp):
            _unknown(fp, f"{code.co_qualname} returned an iterator that cannot be modelled")
    except Exception as exc:  # noqa: BLE001  # an unexpected object: a step we cannot model
        _unknown(fp, f"{code.co_qualname} returned {type(exc).__name__}")


def on_start(code: types.CodeType, offset: int) -> Any:
    """PY_START: set user code up, and check foreign code."""
    try:
        return _started(code, False)
    except Exception:  # noqa: BLE001  # never break the scenario: the step is unknown
        _broken(code)
        return None


def on_resume(code: types.CodeType, offset: int) -> Any:
    """PY_RESUME: as PY_START, for a frame that ran before."""
    try:
        return _started(code, True)
    except Exception:  # noqa: BLE001
        _broken(code)
        return None


def on_throw(code: types.CodeType, offset: int, exception: BaseException) -> Any:
    """PY_THROW: as PY_START."""
    if type(exception) is GeneratorExit and code_kind(code) == MODELLED:
        # A generator of modelled code closed when dropped (inspect.getblock leaves its
        # tokenizer mid-way, and it is closed as the caller's frame goes on): its clean-up
        # is part of the code the rule that entered it described.
        return None
    try:
        _started(code, True)  # PY_THROW cannot be switched off: whatever it says
    except Exception:  # noqa: BLE001
        _broken(code)
    return None


def _broken(code: types.CodeType) -> None:
    """This package failed on ``code``: every step that runs it is UNKNOWN."""
    fp = _footprint.current
    if fp is not None:
        _unknown(fp, f"internal error on {code.co_qualname}")
    if code_kind(code) in WATCHED:
        install(code, unknown_plan(code, "broken"))


# Plans outlive a session: a plan is a function of the code object alone, and the same
# standard-library and framework code is met by every exploration of a process (a test
# suite runs hundreds). Keyed by id with the code object kept, so an id is never reused;
# bounded, since each run can make new code (dataclasses, SQLAlchemy's generated methods).
_PLANS: Final[dict[int, tuple[types.CodeType, CodePlan]]] = {}
_PLANS_LIMIT: Final = 20_000


def _plan(code: types.CodeType) -> CodePlan:
    """The analysis of ``code``, computed once per process."""
    entry = _PLANS.get(id(code))
    if entry is not None and entry[0] is code:
        return entry[1]
    plan = analyse(code)
    if len(_PLANS) >= _PLANS_LIMIT:
        _PLANS.clear()
    _PLANS[id(code)] = (code, plan)
    return plan


def _package_step_ended() -> None:
    """The latest step that ran web-stack package code is over (another one runs it now,
    or the run ended): count it, and whether it was recorded precisely."""
    last = STATE.package_step
    if last is not None:
        STATE.package_steps += 1
        if UNKNOWN not in last:
            STATE.package_precise += 1


# Watching the web stack pays when at least one in this many of the steps that run its
# code is recorded precisely (measured: the web gallery 3 to 4 in 7; the services
# gallery, whose requests go on into database and Redis drivers, 0 to 7 in 83, with
# the same schedule counts whether watched or not, at up to 3 times the cost).
_PAYS: Final = 10


def end_of_run() -> None:
    """A run of the session ended: after the first, stop watching the installed web-stack
    packages if hardly any step that ran their code was recorded precisely.

    Watching them costs a callback per instruction of a request's path through the
    framework, and pays only through steps that end precise. When nearly all of those
    steps end UNKNOWN anyway (the request goes on into a database driver, which is
    foreign), the cost buys nothing: their code becomes FOREIGN for the rest of the session, as
    every installed package other than the web stack is. That is as sound as watching
    them (a step running foreign code from user code is UNKNOWN), only coarser; the
    first run decides, so that every later run of the session is recorded the same way.
    """
    _package_step_ended()
    STATE.package_step = None
    STATE.runs += 1
    if STATE.runs != 1 or STATE.packages_off \
            or STATE.package_precise * _PAYS >= STATE.package_steps:
        return
    tool = STATE.tool
    for code in stop_watching_packages():
        STATE.codes.pop(id(code), None)
        STATE.sites.pop(id(code), None)
        if tool is not None:
            _mon.set_local_events(tool, code, 0)
    switched = {id(code) for code in STATE.enabled if code_kind(code) == FOREIGN}
    STATE.enabled[:] = [code for code in STATE.enabled if id(code) not in switched]


def _set_up(code: types.CodeType, kind: int, resumed: bool) -> bool:
    """Analyse ``code`` and switch its events on; False when that waits.

    User code is set up the first time it runs. Library code waits for the first time it
    runs in a step that is being recorded precisely: watching costs a callback per
    instruction, and code that only ever runs outside steps or in UNKNOWN ones (an ORM
    under a database driver) gains nothing from it. A frame of it that started before
    (resumed now) ran unwatched: what it awaits is not known, so every step resuming it is
    UNKNOWN until it returns.
    """
    fp = _footprint.current
    if kind == LIBRARY and (fp is None or UNKNOWN in fp):
        caller = sys._getframe(3).f_back
        while caller is not None and code_kind(caller.f_code) == HELPER:
            caller = caller.f_back  # (contextlib's __enter__ starting a generator)
        if fp is None or caller is None or id(caller.f_code) not in STATE.codes:
            return False  # (called from watched code, it is set up: later steps use it)
    if kind == LIBRARY and _trusted_business(code, sys._getframe(3)):
        return False  # runs unwatched this time; set up if watched code calls it later
    install(code, _plan(code))
    STATE.enabled.append(code)
    _mon.set_local_events(STATE.tool, code, local_events())
    if resumed:
        STATE.tainted.add(id(sys._getframe(3)))  # (frames: this, _started, the callback)
    return True


# Trusted functions that call, within the step, a callable the scenario handed them (an
# async function to spawn, a function to capture, a callback, an abort function): what
# those run is the scenario's business, not theirs.
_HANDS_OVER: Final = frozenset({
    "coroutine_or_error", "capture", "acapture", "Task._attempt_abort", "Handle._run",
    "BaseEventLoop.create_task", "BaseEventLoop.call_exception_handler"})


def _trusted_business(code: types.CodeType, frame: types.FrameType) -> bool:
    """Library code started in ``frame`` by trusted code for its own purposes (trio's
    parking lot asking ``inspect.getcoroutinestate`` whether a lock's owner has
    finished): a module-level function (neither a method, which may be a protocol or
    callback the scenario handed over, nor a generator or coroutine, which trusted code
    resumes on the scenario's behalf) whose nearest caller, past helpers and library
    functions this rule left unwatched, is trusted code other than :data:`_HANDS_OVER`.
    What it does is then the trusted code's business, recorded by the runtime, as for
    foreign code in :func:`_foreign` (docs/reduction.md, "Under trio")."""
    if not _own_business_shape(code):
        return False
    caller = frame.f_back
    while caller is not None:
        kind = code_kind(caller.f_code)
        if kind == TRUSTED:
            return caller.f_code.co_qualname not in _HANDS_OVER
        if kind != HELPER and not (kind == LIBRARY and id(caller.f_code) not in STATE.codes
                                   and _own_business_shape(caller.f_code)):
            return False
        caller = caller.f_back
    return False


def _own_business_shape(code: types.CodeType) -> bool:
    """A plain module-level function."""
    return not code.co_flags & (GENERATOR_FLAGS | COROUTINE_FLAGS) \
        and "." not in code.co_qualname and not code.co_qualname.startswith("<")


def _started(code: types.CodeType, resumed: bool = False) -> Any:
    # Called by the two callbacks above: the frame of ``code`` is two levels up.
    kind = code_kind(code)
    if kind in WATCHED:
        if kind == LIBRARY and _footprint.current is not STATE.package_step \
                and id(code) in STATE.packaged:
            _package_step_ended()
            STATE.package_step = _footprint.current
        if id(code) not in STATE.codes and not _set_up(code, kind, resumed):
            return None  # library code outside a precisely recorded step: not yet
        flags = code.co_flags
        if flags & (GENERATOR_FLAGS | COROUTINE_FLAGS):
            fp = _footprint.current
            if fp is not None:
                frame = sys._getframe(2)
                if flags & GENERATOR_FLAGS:  # resuming a generator moves it on: a write
                    fp.add((id(frame), None, "w"))
                    keep(frame)
                if STATE.tainted and id(frame) in STATE.tainted:
                    _unknown(fp, f"{code.co_qualname} awaits an unknown awaitable")
                # A task's step reads whether the task was cancelled (task.cancel() writes
                # it), whichever way the step then goes. Under trio there is no asyncio
                # loop (current_task would raise): its runtime records that read itself.
                loop = _running_loop()
                task = _current_task(loop) if loop is not None else None
                if task is not None:
                    fp.add((id(task), None, "r"))
                    keep(task)
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
    if kind == MODELLED:
        # Not switched off: each start is checked. A rule described the call that
        # entered it (STATE.approved), or modelled code called it: fine.
        if STATE.approved is code:
            STATE.approved = None
            return None
        fp = _footprint.current
        if fp is not None and UNKNOWN not in fp:
            caller = sys._getframe(2).f_back
            if caller is not None and code_kind(caller.f_code) in WATCHED:
                _unknown(fp, f"{code.co_qualname} called without a rule")
        return None
    if STATE.approved is code:  # frozen code a rule described (os.getenv)
        STATE.approved = None
        return None
    fp = _footprint.current
    if fp is not None and UNKNOWN not in fp:
        _foreign(code, sys._getframe(2), fp)
    return None


def _foreign(code: types.CodeType, frame: types.FrameType, fp: Footprint) -> None:
    """Foreign code started or resumed in a step: fine when trusted code called it (that
    is the trusted code's business), UNKNOWN when user code did (directly, through C
    code, or through helpers)."""
    if code.co_flags & (GENERATOR_FLAGS | COROUTINE_FLAGS):
        _unknown(fp, f"foreign coroutine or generator {code.co_qualname}")
        return
    caller = frame.f_back
    while caller is not None:
        kind = code_kind(caller.f_code)
        if kind in (TRUSTED, FOREIGN, MODELLED):
            return  # trusted code's business, or inside a call a rule described (or one
            # that already made the step UNKNOWN)
        if kind != HELPER:
            _unknown(fp, f"foreign code {code.co_filename}:{code.co_qualname}")
            return
        caller = caller.f_back
    _unknown(fp, f"foreign code {code.co_qualname} with no caller")


def _futures_passed(value: object, fp: Footprint) -> None:
    """A trusted function was given futures (gather, wait, wait_for, shield): it reads
    their state and adds callbacks to them."""
    values: Any
    if isinstance(value, (tuple, list, set, frozenset)):
        values = value
        if not isinstance(value, (tuple, frozenset)):
            fp.add((id(value), None, "r"))
            keep(value)
    else:
        values = (value,)
    for item in values:
        if isinstance(item, asyncio.Future):
            fp.add((id(item), None, "w"))
            note(item)
