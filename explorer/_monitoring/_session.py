"""A session of automatic footprints: take a ``sys.monitoring`` tool id, register the
callbacks, and give everything back at the end.

:func:`activate` is called before each run of a session (the first call sets up), and
:func:`deactivate` once at its end; between sessions no event of this package is set.
``require_auto`` (defined in :mod:`explorer._footprint`, so that strategies can check it
without loading this package) is re-exported here.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Final

from explorer._errors import HealthWarning
from explorer._footprint import AUTO_SUPPORTED, require_auto
from explorer._monitoring import _hooks
from explorer._monitoring._builtins import add_library_rules
from explorer._monitoring._memory import add_pure_caches
from explorer._monitoring._state import STATE

SUPPORTED: Final = AUTO_SUPPORTED
_mon: Any = getattr(sys, "monitoring", None)  # absent before 3.12, and from 3.11's stubs

_TOOL_NAME: Final = "explorer automatic footprints"
# Tool ids to try, in order: sys.monitoring reserves 0-2 and 5 for debuggers, coverage,
# profilers and optimizers, so those come last.
_TOOL_IDS: Final = (3, 4, 2, 5)


def _events() -> tuple[tuple[int, Any], ...]:
    events = _mon.events
    return ((events.PY_START, _hooks.on_start), (events.PY_RESUME, _hooks.on_resume),
            (events.PY_THROW, _hooks.on_throw), (events.INSTRUCTION, _hooks.on_instruction),
            (events.CALL, _hooks.on_call), (events.PY_RETURN, _hooks.on_return),
            (events.PY_YIELD, _hooks.on_yield))


def activate() -> bool:
    """Start (or keep) watching user code, and forget the previous run's values.

    Returns False when no ``sys.monitoring`` tool id is free: footprints are then not
    recorded automatically, and the caller must treat task code as touching everything.
    """
    require_auto()
    if STATE.tool is not None:  # a run of this session ended
        _hooks.end_of_run()
    STATE.start_run()
    add_library_rules()  # a library the previous run imported (pydantic-core)
    add_pure_caches()
    if STATE.tool is not None:
        return True
    if STATE.unavailable:
        return False
    for tool in _TOOL_IDS:
        if _mon.get_tool(tool) is None:
            _mon.use_tool_id(tool, _TOOL_NAME)
            STATE.tool = tool
            break
    else:
        STATE.unavailable = True  # until the session ends: one warning
        warnings.warn(HealthWarning(
            "footprints='auto' found no free sys.monitoring tool id (a debugger, coverage "
            "tool or profiler holds them all): task code counts as touching everything, "
            "as in the conservative mode"), stacklevel=3)
        return False
    for event, callback in _events():
        _mon.register_callback(tool, event, callback)
    # Locations switched off by an earlier session (ours or another tool's under this id)
    # must fire again: the code they belong to has to be set up anew.
    _mon.restart_events()
    events = _mon.events
    _mon.set_events(tool, events.PY_START | events.PY_RESUME | events.PY_THROW)
    return True


def deactivate() -> None:
    """Stop watching: remove every event this package set (end of a session)."""
    tool = STATE.tool
    if tool is None:
        STATE.unavailable = False
        return
    STATE.tool = None
    _mon.set_events(tool, 0)
    for code in STATE.enabled:
        _mon.set_local_events(tool, code, 0)
    for event, _callback in _events():
        _mon.register_callback(tool, event, None)
    _mon.free_tool_id(tool)
    STATE.reset()
