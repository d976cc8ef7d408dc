"""Lost wake-up: a cancelled waiter swallows the notification meant for another.

``Signal.notify_one`` hands the wake-up to the first waiter. If that waiter is cancelled
after it was chosen but before it ran, it leaves without passing the wake-up on, and the
remaining consumer waits forever although an item is available. The fixed version hands
the notification to the next waiter when a notified waiter is cancelled.
"""

from __future__ import annotations

import asyncio
import collections


class Signal:
    def __init__(self, *, pass_on_cancel: bool) -> None:
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._pass_on_cancel = pass_on_cancel

    async def wait(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if self._pass_on_cancel and future.done() and not future.cancelled():
                self.notify_one()  # we were chosen, but will not consume: pass it on
            raise
        finally:
            if future in self._waiters:
                self._waiters.remove(future)

    def notify_one(self) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                return


async def consume(items: list[int], signal: Signal, taken: list[int]) -> None:
    while not items:
        await signal.wait()
    taken.append(items.pop())


async def _scenario(pass_on_cancel: bool) -> None:
    items: list[int] = []
    taken: list[int] = []
    signal = Signal(pass_on_cancel=pass_on_cancel)
    impatient = asyncio.create_task(consume(items, signal, taken))
    patient = asyncio.create_task(consume(items, signal, taken))

    async def produce() -> None:
        await asyncio.sleep(0)
        items.append(1)
        signal.notify_one()

    async def give_up() -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        impatient.cancel()  # the impatient client disconnects

    await asyncio.gather(produce(), give_up())
    await asyncio.gather(impatient, return_exceptions=True)
    if taken:  # the impatient consumer got the item before it gave up
        patient.cancel()
    # Otherwise the item is still there, and the patient consumer must get it.
    await asyncio.gather(patient, return_exceptions=True)
    assert taken == [1]


async def lost_wakeup() -> None:
    """One item, two consumers, one of which is cancelled: the item must be consumed."""
    await _scenario(pass_on_cancel=False)


async def lost_wakeup_fixed() -> None:
    await _scenario(pass_on_cancel=True)
