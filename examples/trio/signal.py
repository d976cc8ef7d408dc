"""Lost wake-up: a cancelled consumer swallows the notification meant for another, trio
form.

``Signal.notify_one`` wakes the first waiting consumer. A woken consumer writes an audit
record (a checkpoint) before it takes the item. If its client gives up at that moment, the
consumer is cancelled there and leaves without passing the wake-up on (and the same
happens when it is cancelled after being chosen but before it ran), so the other consumer
waits forever although an item is available. The fixed version hands the notification on
whenever a woken consumer is cancelled.
"""

from __future__ import annotations

from collections import deque

import trio


class Signal:
    def __init__(self, *, pass_on_cancel: bool) -> None:
        self._waiters: deque[trio.Event] = deque()
        self.pass_on_cancel = pass_on_cancel

    async def wait(self) -> None:
        event = trio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except trio.Cancelled:
            if self.pass_on_cancel and event.is_set():
                self.notify_one()  # chosen, but cancelled before it ran: pass it on
            raise
        finally:
            if event in self._waiters:
                self._waiters.remove(event)

    def notify_one(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()


async def consume(items: list[int], signal: Signal, taken: list[int]) -> None:
    while True:
        while not items:
            await signal.wait()
        try:
            await trio.lowlevel.checkpoint()  # write the audit record
        except trio.Cancelled:
            if signal.pass_on_cancel:
                signal.notify_one()  # we were woken but will not consume: pass it on
            raise
        if items:
            taken.append(items.pop())
            return


async def _scenario(pass_on_cancel: bool) -> None:
    items: list[int] = []
    taken: list[int] = []
    signal = Signal(pass_on_cancel=pass_on_cancel)
    impatient, patient = trio.CancelScope(), trio.CancelScope()
    impatient_done = trio.Event()

    async def consumer(scope: trio.CancelScope, done: trio.Event | None) -> None:
        with scope:
            await consume(items, signal, taken)
        if done is not None:
            done.set()

    async def produce() -> None:
        await trio.sleep(0)
        items.append(1)
        signal.notify_one()

    async def give_up() -> None:
        for _ in range(4):  # the client waits a little, then disconnects
            await trio.sleep(0)
        impatient.cancel()  # the impatient client disconnects

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer, impatient, impatient_done)
        nursery.start_soon(consumer, patient, None)
        async with trio.open_nursery() as events:
            events.start_soon(produce)
            events.start_soon(give_up)
        await impatient_done.wait()
        if taken:  # the impatient consumer got the item before it gave up
            patient.cancel()
        # Otherwise the item is still there, and the patient consumer must get it.
    assert taken == [1]


async def lost_wakeup() -> None:
    """One item, two consumers, one of which is cancelled: the item must be consumed."""
    await _scenario(pass_on_cancel=False)


async def lost_wakeup_fixed() -> None:
    await _scenario(pass_on_cancel=True)
