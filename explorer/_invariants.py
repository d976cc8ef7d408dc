"""``explorer.always``: invariants checked after every step of a run."""

from __future__ import annotations

import sys
from asyncio import events
from collections.abc import Callable
from typing import Any

from explorer._asyncio._inspect import caller_location
from explorer._asyncio._loop import ControlledLoop
from explorer._errors import UsageError


def always(predicate: Callable[[], object], message: str | None = None) -> None:
    """Check ``predicate()`` after every step of the current run from now on.

    Call it inside a scenario (it is reset for every run). A false result, or an exception
    from the predicate, fails the run as an ``assertion`` at the step that broke it.
    ``message`` names the invariant in the report (default: the predicate's name).
    """
    if not callable(predicate):
        raise UsageError(
            f"explorer.always() takes a zero-argument callable, got "
            f"{type(predicate).__name__}; write explorer.always(lambda: balance >= 0, ...)"
        )
    text = message or getattr(predicate, "__qualname__", None) or repr(predicate)
    loop = events._get_running_loop()
    if isinstance(loop, ControlledLoop):
        loop.add_invariant(predicate, text, caller_location(2))
    else:
        scheduler = _trio_scheduler()
        if scheduler is None:
            raise UsageError(
                "explorer.always() was called outside a controlled run; call it inside "
                "the scenario passed to explorer.explore(), explorer.replay() or "
                "explorer.run()"
            )
        scheduler.invariants.append((predicate, text, caller_location(2)))
        scheduler.slow = True
    if not predicate():
        raise AssertionError(f"invariant does not hold when registered: {text}")


def _trio_scheduler() -> Any:
    """The scheduler of the controlled trio run in progress, if trio is in use at all."""
    if "explorer._trio._patches" not in sys.modules:
        return None
    from explorer._trio._patches import active

    return active()
