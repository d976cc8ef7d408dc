"""The end of a run for the tasks servers started: cancelled and run out, as ``asyncio.run``
ends them.

A server started with ``asyncio.start_server`` runs each connection's handler in a task of
its own, which the scenario holds no reference to: before Python 3.12, ``Server.wait_closed()``
does not wait for those tasks, and no public API lets the scenario await them. So a handler
still busy with its connection when the scenario returns (closing its writer, waiting for a
peer's end of stream) is normal, and ``asyncio.run`` deals with it: after the loop stops it
cancels every pending task and runs the loop until they are done (``Runner.close``,
``_cancel_all_tasks``); an error one of them raises then, other than the cancellation, is
reported ("unhandled exception during asyncio.run() shutdown").

Contract, applied by :meth:`ControlledLoop.drive` after the run's last iteration:

- the tasks a server's protocol started for a connection (``NetworkLoop.served``: those
  created while a server-side protocol callback ran) and still pending are cancelled and
  run to the end, in stock order, with no decision and no fault, the clock moving to the
  next timer when nothing is ready; the steps are counted, not traced;
- the other tasks pending where the loop stopped are judged as before (``leaked_task``),
  even if they happen to finish while the handlers are being cancelled
  (:attr:`~explorer._asyncio._network.NetworkLoop.pending_at_stop`);
- a handler that is still not done after :data:`SHUTDOWN_STEPS` steps (it swallowed its
  cancellation and goes on) is a leaked task: ``asyncio.run`` would wait for it forever;
- an error a handler raises while cancelled is a failure of the run, as a task's
  exception nobody retrieved is.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Final, Protocol

from explorer._asyncio._handles import count_callbacks

SHUTDOWN_STEPS: Final = 10_000
"""At most this many steps to let cancelled connection handlers finish."""


class _Loop(Protocol):
    """What this module uses of the controlled loop."""

    tasks: list[asyncio.Task[Any]]
    served: list[asyncio.Task[Any]]
    pending_at_stop: list[asyncio.Task[Any]]
    _ready: deque[Any]
    _invariants: list[Any]
    _ended: int
    _ncallbacks: int

    def _advance_clock(self) -> bool: ...

    def _check_invariants(self) -> None: ...


def cancel_served(loop: _Loop) -> None:
    """Cancel the pending tasks servers started and run the loop until they are done."""
    if not loop.served:
        return
    handlers = [task for task in loop.served if not task.done()]
    if not handlers:
        return
    owned = {id(task) for task in handlers}
    loop.pending_at_stop = [task for task in loop.tasks
                            if not task.done() and id(task) not in owned]
    for task in handlers:
        task.cancel()
    ready = loop._ready
    steps = 0
    try:
        while steps < SHUTDOWN_STEPS and not all(task.done() for task in handlers):
            if not ready:
                if not loop._advance_clock():
                    return  # nothing left that could finish them
                continue
            handle = ready.popleft()
            if handle._cancelled:
                continue
            steps += 1
            handle._run()
            if loop._invariants:
                loop._check_invariants()
    finally:
        loop._ended += steps
        loop._ncallbacks = count_callbacks(ready)
