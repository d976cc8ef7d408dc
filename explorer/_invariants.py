"""``explorer.always``: invariants checked after every step of a run.

Runtime-neutral: the invariant goes to the run in progress on this thread, whichever
runtime drives it, through the active-run registry of :mod:`explorer._runtime`.
"""

from __future__ import annotations

from collections.abc import Callable

from explorer._errors import UsageError
from explorer._locations import caller_location
from explorer._runtime import active_run


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
    run = active_run()
    if run is None:
        raise UsageError(
            "explorer.always() was called outside a controlled run; call it inside "
            "the scenario passed to explorer.explore(), explorer.replay() or "
            "explorer.run()"
        )
    run.add_invariant(predicate, text, caller_location(2))
    if not predicate():
        raise AssertionError(f"invariant does not hold when registered: {text}")
