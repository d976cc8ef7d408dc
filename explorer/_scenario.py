"""What a scenario is before anything runs it: its name, its binding, its decorators.

Invariant: nothing here runs a scenario or imports the engine. The name a scenario gets
(:func:`scenario_name`) is the one corpus entries record and replays match by, so the
engine (which saves entries) and the corpus replay (which matches them) both take it from
here, and neither imports the other to get it. ``@reproduce`` and ``@pin`` only attach
schedules to the function (:data:`REPRODUCE_ATTR`, :data:`PINS_ATTR`); the engine reads
them when it explores.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, TypeVar

from explorer._errors import UsageError
from explorer._runtime import Scenario

if TYPE_CHECKING:  # imported by the two decorators: a plain exploration parses no schedule
    from explorer._schedule import Schedule

REPRODUCE_ATTR: Final = "__explorer_reproduce__"
PINS_ATTR: Final = "__explorer_pins__"

_F = TypeVar("_F", bound=Callable[..., Any])


def unwrapped(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The function a ``functools.partial`` (however nested) wraps; ``fn`` otherwise."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def scenario_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a scenario (of the wrapped function, for a partial)."""
    fn = unwrapped(fn)
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}.{name}"


def bind(fn: Any, args: tuple[Any, ...]) -> Scenario:
    """A zero-argument scenario that calls ``fn(*args)`` afresh for every run; a
    :class:`UsageError` if ``fn`` cannot be one (a coroutine object, a sync function)."""
    if inspect.iscoroutine(fn):
        fn.close()
        raise UsageError(
            "explore() got a coroutine object, but it runs the scenario once per schedule "
            "and needs the function itself: write explore(main), not explore(main())"
        )
    if not callable(fn):
        raise UsageError(f"the scenario must be an async function, got {type(fn).__name__}")
    if inspect.isgeneratorfunction(fn) or (
        inspect.isfunction(fn) and not inspect.iscoroutinefunction(fn)
        and fn.__name__ != "<lambda>"  # a lambda may return a coroutine: checked per run
    ):
        raise UsageError(
            f"{scenario_name(fn)} is not an async function; define it with 'async def' "
            "so that its awaits can be scheduled"
        )

    def scenario() -> Coroutine[Any, Any, Any]:
        return fn(*args)  # type: ignore[no-any-return]

    return scenario


def reproduce(schedule: Schedule | str) -> Callable[[_F], _F]:
    """Make ``explore`` run only ``schedule`` on the decorated scenario."""
    from explorer._schedule import Schedule

    parsed = Schedule.coerce(schedule)

    def decorate(fn: _F) -> _F:
        setattr(fn, REPRODUCE_ATTR, parsed)
        return fn

    return decorate


def pin(*schedules: Schedule | str) -> Callable[[_F], _F]:
    """Make ``explore`` run these schedules first, every time, on the decorated scenario."""
    from explorer._schedule import Schedule

    if not schedules:
        raise UsageError("explorer.pin() needs at least one schedule string, like "
                         "@explorer.pin('v1:3=1')")
    parsed = tuple(Schedule.coerce(s) for s in schedules)

    def decorate(fn: _F) -> _F:
        setattr(fn, PINS_ATTR, (*getattr(fn, PINS_ATTR, ()), *parsed))
        return fn

    return decorate
