"""Telling a real Ctrl-C from a scenario that raises ``KeyboardInterrupt``.

Contract: inside :func:`watching` (entered by ``explore``, ``run`` and ``replay``), a SIGINT
delivered to the main thread sets a flag, then does what the handler it replaced did
(Python's default raises :class:`KeyboardInterrupt`). Runtimes treat a
``KeyboardInterrupt`` or ``SystemExit`` coming out of scenario code as the scenario's
failure unless :func:`requested` is true; a real one is re-raised once the run has unwound,
and ``explore`` turns it into :class:`ExplorationInterrupted`, saying what was run and found.

A Ctrl-C can land while the garbage collector runs a finaliser or a weak reference's
callback (between any two bytecodes), where an exception cannot propagate: Python reports
it as unraisable and goes on. While watching, that report is dropped (the flag is set all
the same, and a runtime raises :class:`KeyboardInterrupt` at the end of a run whenever it
is): the run in progress ends, then the exploration stops as after any other Ctrl-C.

Nothing is installed outside the main thread or when SIGINT is ignored (worker processes
ignore it: their parent stops them).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sys import UnraisableHookArgs

_requested = False
_depth = 0


class ExplorationInterrupted(KeyboardInterrupt):
    """A real Ctrl-C stopped an exploration; the message says what was run and found so
    far. A :class:`KeyboardInterrupt`, so pytest and other callers stop as usual."""


def requested() -> bool:
    """Whether a real SIGINT arrived during the outermost :func:`watching` (false again
    once it has ended)."""
    return _requested


@contextmanager
def watching() -> Iterator[None]:
    """Note real SIGINTs for the duration (reentrant; only the outermost installs)."""
    global _depth, _requested
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread
        return
    previous = signal.getsignal(signal.SIGINT)
    if _depth or not callable(previous):  # nested, or SIG_IGN / SIG_DFL: leave it alone
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    _requested = False
    signal.signal(signal.SIGINT, _handler(previous))
    previous_hook = sys.unraisablehook
    hook = sys.unraisablehook = _unraisable(previous_hook)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        _requested = False
        signal.signal(signal.SIGINT, previous)
        if sys.unraisablehook is hook:  # else somebody replaced it since: theirs stays
            sys.unraisablehook = previous_hook


def _handler(previous: Callable[[int, FrameType | None], Any]
             ) -> Callable[[int, FrameType | None], Any]:
    def on_sigint(signum: int, frame: FrameType | None) -> Any:
        global _requested
        _requested = True
        return previous(signum, frame)

    return on_sigint


def _unraisable(previous: Callable[[UnraisableHookArgs], Any]
                ) -> Callable[[UnraisableHookArgs], Any]:
    def on_unraisable(unraisable: UnraisableHookArgs) -> Any:
        if _requested and isinstance(unraisable.exc_value, KeyboardInterrupt):
            # The real Ctrl-C, swallowed by a finaliser or a weak reference's callback
            # (module docstring): not an error to report. Delivering it again from here
            # would raise it in this hook (the handler runs at the next call's check).
            return None
        return previous(unraisable)

    return on_unraisable
