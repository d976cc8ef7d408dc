"""Asyncio ports of the small "CS" programs of SCTBench.

SCTBench (Thomson, Donaldson and Betts, "Concurrency testing using schedule bounding: an
empirical study", PPoPP 2014; TOPC 2016) collects small pthread programs with one known
concurrency bug each; its "CS" family comes from the ESBMC concurrency benchmarks. Each port
below is written from the program's description: threads become tasks, mutexes become
``asyncio.Lock``, and every access to shared state, and every lock acquisition, is preceded
by ``await asyncio.sleep(0)``, so each is a separate step the scheduler can reorder. Each
buggy scenario ends in (or contains) the program's assertion, which fails only under
the interleaving that exposes the bug; each ``*_fixed`` scenario removes the bug, and must
pass under every schedule.

``reorder_N`` and ``twostage_N`` are parameterised by the number of tasks N: N - 1 tasks
of the writing kind and one checking task. (SCTBench's variants split their threads between
the two roles in different ways; one checker against N - 1 writers is the hardest split for
a random walk, since every extra writer is one more task that can close the window the
checker has to hit.) All tasks are started at once, with ``asyncio.gather``, as an asyncio
program would; the C programs start their threads one by one.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

yield_ = functools.partial(asyncio.sleep, 0)
"""A scheduling point before a shared access."""


class Shared:
    """A bag of shared variables."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    if TYPE_CHECKING:  # the variables are dynamic: tell the type checker, change nothing
        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...


# --------------------------------------------------------------------------- account

async def _deposit(s: Shared, lock: asyncio.Lock, amount: int) -> None:
    await yield_()
    async with lock:
        await yield_()
        s.balance += amount
        await yield_()
        s.deposit_done = True


async def _withdraw(s: Shared, lock: asyncio.Lock, amount: int) -> None:
    await yield_()
    async with lock:
        await yield_()
        s.balance -= amount
        await yield_()
        s.withdraw_done = True


async def _check_account(s: Shared, lock: asyncio.Lock, fixed: bool) -> None:
    await yield_()
    async with lock:
        await yield_()
        if s.deposit_done and s.withdraw_done:
            await yield_()
            # SCTBench's checker expects the deposit to have been *subtracted*: it only
            # runs its assertion once both updates are in, so it fails exactly when the
            # checker comes last.
            expected = s.initial + 2 - 4 if fixed else (s.initial - 2) - 4
            assert s.balance == expected, f"balance {s.balance}, expected {expected}"


async def _account(fixed: bool) -> None:
    s = Shared(initial=1, balance=1, deposit_done=False, withdraw_done=False)
    lock = asyncio.Lock()
    await asyncio.gather(_check_account(s, lock, fixed), _deposit(s, lock, 2),
                         _withdraw(s, lock, 4))


async def account() -> None:
    """A balance checker that asserts the wrong total once both updates are in."""
    await _account(fixed=False)


async def account_fixed() -> None:
    await _account(fixed=True)


# --------------------------------------------------------------------------- bluetooth

async def _io_increment(dev: Shared) -> int:
    await yield_()
    if dev.stopping_flag:
        return -1
    await yield_()
    dev.pending_io += 1  # atomic in the original
    return 0


async def _io_decrement(dev: Shared) -> None:
    await yield_()
    dev.pending_io -= 1  # atomic together with the read below in the original
    pending = dev.pending_io
    if pending == 0:
        await yield_()
        dev.stopping_event = True


async def _pnp_add(dev: Shared) -> None:
    status = await _io_increment(dev)
    if status == 0:
        await yield_()
        assert not dev.stopped, "the driver did work after it was stopped"
    await _io_decrement(dev)


async def _pnp_stop(dev: Shared) -> None:
    await yield_()
    dev.stopping_flag = True
    await _io_decrement(dev)
    await yield_()
    if dev.stopping_event:
        await yield_()
        dev.stopped = True


async def _pnp_add_fixed(dev: Shared, lock: asyncio.Lock) -> None:
    await yield_()
    async with lock:  # check the flag and take the reference as one step
        status = await _io_increment(dev)
    if status == 0:
        await yield_()
        assert not dev.stopped, "the driver did work after it was stopped"
    await _io_decrement(dev)


async def _pnp_stop_fixed(dev: Shared, lock: asyncio.Lock) -> None:
    await yield_()
    async with lock:
        await yield_()
        dev.stopping_flag = True
    await _io_decrement(dev)
    await yield_()
    if dev.stopping_event:
        await yield_()
        dev.stopped = True


async def bluetooth_driver() -> None:
    """A stop request races an I/O request that checked the stopping flag too early."""
    dev = Shared(pending_io=1, stopping_flag=False, stopping_event=False, stopped=False)
    stopper = asyncio.ensure_future(_pnp_stop(dev))
    await _pnp_add(dev)
    await stopper


async def bluetooth_driver_fixed() -> None:
    dev = Shared(pending_io=1, stopping_flag=False, stopping_event=False, stopped=False)
    lock = asyncio.Lock()
    stopper = asyncio.ensure_future(_pnp_stop_fixed(dev, lock))
    await _pnp_add_fixed(dev, lock)
    await stopper


# --------------------------------------------------------------------------- circular buffer

_ROUNDS = 7
_BUFFER = 10


async def _buffer_sender(s: Shared, lock: asyncio.Lock) -> None:
    for i in range(_ROUNDS):
        await yield_()
        async with lock:
            await yield_()
            if s.send:
                await yield_()
                if s.next < len(s.buffer):
                    s.buffer[s.next] = i
                    s.next = (s.next + 1) % len(s.buffer)
                s.send, s.receive = False, True


async def _buffer_receiver(s: Shared, lock: asyncio.Lock, fixed: bool) -> None:
    i = 0
    while i < _ROUNDS:
        await yield_()
        async with lock:
            await yield_()
            if s.receive:
                await yield_()
                value = s.buffer[s.first] if s.next > 0 and s.first < len(s.buffer) else -1
                s.first += 1
                assert value == i, f"received {value} in round {i}"
                s.receive, s.send = False, True
                i += 1
            elif not fixed:
                i += 1  # the bug: an empty round still counts as a round
        if fixed:
            await yield_()


async def _circular_buffer(fixed: bool) -> None:
    s = Shared(buffer=[0] * _BUFFER, first=0, next=0, send=True, receive=False)
    lock = asyncio.Lock()
    await asyncio.gather(_buffer_sender(s, lock), _buffer_receiver(s, lock, fixed))


async def circular_buffer() -> None:
    """A receiver counts rounds in which nothing was sent, and loses step with the sender."""
    await _circular_buffer(fixed=False)


async def circular_buffer_fixed() -> None:
    # The fixed receiver counts only rounds that received; it polls until all arrived.
    s = Shared(buffer=[0] * _BUFFER, first=0, next=0, send=True, receive=False)
    lock = asyncio.Lock()
    await asyncio.gather(_buffer_sender_all(s, lock), _buffer_receiver(s, lock, True))


async def _buffer_sender_all(s: Shared, lock: asyncio.Lock) -> None:
    i = 0
    while i < _ROUNDS:
        await yield_()
        async with lock:
            await yield_()
            if s.send:
                await yield_()
                s.buffer[s.next] = i
                s.next = (s.next + 1) % len(s.buffer)
                s.send, s.receive = False, True
                i += 1
        await yield_()


# --------------------------------------------------------------------------- lazy01

async def _lazy_add(s: Shared, lock: asyncio.Lock, amount: int) -> None:
    await yield_()
    async with lock:
        await yield_()
        s.data += amount


async def _lazy_check(s: Shared, lock: asyncio.Lock, limit: int) -> None:
    await yield_()
    async with lock:
        await yield_()
        assert s.data < limit, f"data reached {s.data}"


async def lazy01() -> None:
    """A checker that assumes it runs before both updates."""
    s = Shared(data=0)
    lock = asyncio.Lock()
    await asyncio.gather(_lazy_add(s, lock, 1), _lazy_add(s, lock, 2),
                         _lazy_check(s, lock, 3))


async def lazy01_fixed() -> None:
    s = Shared(data=0)
    lock = asyncio.Lock()
    await asyncio.gather(_lazy_add(s, lock, 1), _lazy_add(s, lock, 2),
                         _lazy_check(s, lock, 4))


# --------------------------------------------------------------------------- queue

_QUEUE = 20


async def _queue_producer(s: Shared, lock: asyncio.Lock) -> None:
    await yield_()
    async with lock:
        await yield_()
        s.items.append(0)
        s.stored[0] = 0
    value = 0
    for i in range(_QUEUE - 1):
        await yield_()
        async with lock:
            await yield_()
            if s.enqueue_flag:
                await yield_()
                value += 1
                s.items.append(value)
                s.stored[i + 1] = value
                s.enqueue_flag, s.dequeue_flag = False, True


async def _queue_consumer(s: Shared, lock: asyncio.Lock) -> None:
    for i in range(_QUEUE):
        await yield_()
        async with lock:
            await yield_()
            if s.dequeue_flag:
                await yield_()
                value = s.items.pop(0)
                assert value == s.stored[i], f"dequeued {value}, stored[{i}] is {s.stored[i]}"
                s.dequeue_flag, s.enqueue_flag = False, True


async def _queue_consumer_fixed(s: Shared, lock: asyncio.Lock) -> None:
    # Counts what it took instead of trusting its loop index.
    taken = 0
    for _ in range(_QUEUE):
        await yield_()
        async with lock:
            await yield_()
            if s.dequeue_flag:
                await yield_()
                value = s.items.pop(0)
                assert value == taken, f"dequeued {value} as item {taken}"
                taken += 1
                s.dequeue_flag, s.enqueue_flag = False, True


async def queue() -> None:
    """A consumer indexes the producer's record by its own loop counter."""
    s = Shared(items=[], stored=[0] * _QUEUE, enqueue_flag=True, dequeue_flag=False)
    lock = asyncio.Lock()
    await asyncio.gather(_queue_producer(s, lock), _queue_consumer(s, lock))


async def queue_fixed() -> None:
    s = Shared(items=[], stored=[0] * _QUEUE, enqueue_flag=True, dequeue_flag=False)
    lock = asyncio.Lock()
    await asyncio.gather(_queue_producer(s, lock), _queue_consumer_fixed(s, lock))


# --------------------------------------------------------------------------- reorder_N

async def _setter(s: Shared, atomic: bool) -> None:
    await yield_()
    s.a = 1
    if not atomic:
        await yield_()
    s.b = -1


async def _checker(s: Shared) -> None:
    # Evaluated like the C condition !((a == 0 && b == 0) || (a == 1 && b == -1)),
    # one shared read per step, in the same order.
    await yield_()
    if s.a == 0:
        await yield_()
        if s.b == 0:
            return
    await yield_()
    if s.a == 1:
        await yield_()
        if s.b == -1:
            return
    raise AssertionError("the checker saw a half-done update of (a, b)")


async def _reorder(n: int, atomic: bool) -> None:
    s = Shared(a=0, b=0)
    await asyncio.gather(*(_setter(s, atomic) for _ in range(n - 1)), _checker(s))


async def reorder(n: int) -> None:
    """n - 1 setters write a = 1 then b = -1; one checker must never see a alone."""
    await _reorder(n, atomic=False)


async def reorder_fixed(n: int) -> None:
    await _reorder(n, atomic=True)


# --------------------------------------------------------------------------- stack

_STACK = 10


async def _pusher(s: Shared, lock: asyncio.Lock) -> None:
    for i in range(_STACK):
        await yield_()
        async with lock:
            await yield_()
            assert len(s.stack) < _STACK, "stack overflow"
            s.stack.append(i)
            await yield_()
            s.flag = True


async def _popper(s: Shared, lock: asyncio.Lock, fixed: bool) -> None:
    for _ in range(_STACK):
        await yield_()
        async with lock:
            await yield_()
            if s.flag:
                await yield_()
                if fixed and not s.stack:
                    continue
                assert s.stack, "stack underflow"
                s.stack.pop()


async def stack() -> None:
    """A popper trusts a flag that says the stack was *once* non-empty."""
    s = Shared(stack=[], flag=False)
    lock = asyncio.Lock()
    await asyncio.gather(_pusher(s, lock), _popper(s, lock, False))


async def stack_fixed() -> None:
    s = Shared(stack=[], flag=False)
    lock = asyncio.Lock()
    await asyncio.gather(_pusher(s, lock), _popper(s, lock, True))


# --------------------------------------------------------------------------- token ring

async def _ring_step(s: Shared, target: str, update: Callable[[Shared], int],
                     flag: str) -> None:
    await yield_()
    setattr(s, target, update(s))  # one atomic section in the original
    setattr(s, flag, True)


async def _ring_check(s: Shared) -> None:
    await yield_()
    if s.f1 and s.f2 and s.f3:
        assert s.x1 == s.x2 == s.x3, f"token values differ: {s.x1}, {s.x2}, {s.x3}"


async def _token_ring(stages: list[Coroutine[Any, Any, None]], s: Shared) -> None:
    await asyncio.gather(*stages, _ring_check(s))


async def token_ring() -> None:
    """Three stages pass a token value around; the checker expects them to agree."""
    s = Shared(x1=1, x2=2, x3=1, f1=False, f2=False, f3=False)
    await _token_ring([_ring_step(s, "x1", lambda s: (s.x3 + 1) % 4, "f1"),
                       _ring_step(s, "x2", lambda s: s.x1, "f2"),
                       _ring_step(s, "x3", lambda s: s.x2, "f3")], s)


async def token_ring_fixed() -> None:
    # Each stage waits for its predecessor, so the token goes round once, in order.
    s = Shared(x1=1, x2=2, x3=1, f1=False, f2=False, f3=False)
    first, second = asyncio.Event(), asyncio.Event()

    async def after(event: asyncio.Event | None, step: Coroutine[Any, Any, None],
                    done: asyncio.Event | None) -> None:
        if event is not None:
            await event.wait()
        await step
        if done is not None:
            done.set()

    await _token_ring([
        after(None, _ring_step(s, "x1", lambda s: (s.x3 + 1) % 4, "f1"), first),
        after(first, _ring_step(s, "x2", lambda s: s.x1, "f2"), second),
        after(second, _ring_step(s, "x3", lambda s: s.x2, "f3"), None),
    ], s)


# --------------------------------------------------------------------------- twostage_N

async def _two_stage_writer(s: Shared, lock1: asyncio.Lock, lock2: asyncio.Lock) -> None:
    await yield_()
    async with lock1:
        await yield_()
        s.data1 = 1
    await yield_()
    async with lock2:
        await yield_()
        s.data2 = s.data1 + 1


async def _two_stage_writer_fixed(s: Shared, lock1: asyncio.Lock,
                                  lock2: asyncio.Lock) -> None:
    await yield_()
    async with lock1:  # both stages inside the first lock: readers see both or neither
        await yield_()
        s.data1 = 1
        await yield_()
        async with lock2:
            await yield_()
            s.data2 = s.data1 + 1


async def _two_stage_reader(s: Shared, lock1: asyncio.Lock, lock2: asyncio.Lock) -> None:
    await yield_()
    async with lock1:
        await yield_()
        if s.data1 == 0:
            return
        t1 = s.data1
    await yield_()
    async with lock2:
        await yield_()
        t2 = s.data2
    assert t2 == t1 + 1, f"stage two shows {t2} for stage one's {t1}"


async def _two_stage_reader_fixed(s: Shared, lock1: asyncio.Lock,
                                  lock2: asyncio.Lock) -> None:
    await yield_()
    async with lock1:
        await yield_()
        if s.data1 == 0:
            return
        t1 = s.data1
        await yield_()
        async with lock2:
            await yield_()
            t2 = s.data2
    assert t2 == t1 + 1, f"stage two shows {t2} for stage one's {t1}"


async def twostage(n: int = 2) -> None:
    """n - 1 writers publish a value in two locked stages; a reader checks they agree."""
    s = Shared(data1=0, data2=0)
    lock1, lock2 = asyncio.Lock(), asyncio.Lock()
    await asyncio.gather(*(_two_stage_writer(s, lock1, lock2) for _ in range(n - 1)),
                         _two_stage_reader(s, lock1, lock2))


async def twostage_fixed(n: int = 2) -> None:
    s = Shared(data1=0, data2=0)
    lock1, lock2 = asyncio.Lock(), asyncio.Lock()
    await asyncio.gather(*(_two_stage_writer_fixed(s, lock1, lock2) for _ in range(n - 1)),
                         _two_stage_reader_fixed(s, lock1, lock2))


# --------------------------------------------------------------------------- wronglock

async def _wronglock_a(s: Shared, lock: asyncio.Lock) -> None:
    await yield_()
    async with lock:
        await yield_()
        x = s.data
        await yield_()
        s.data += 1
        await yield_()
        assert s.data == x + 1, f"data moved from {x} to {s.data} under our lock"


async def _wronglock_b(s: Shared, lock: asyncio.Lock) -> None:
    await yield_()
    async with lock:
        await yield_()
        s.data += 1


async def _wronglock(fixed: bool, writers: int = 7) -> None:
    s = Shared(data=0)
    data_lock, this_lock = asyncio.Lock(), asyncio.Lock()
    other = data_lock if fixed else this_lock
    await asyncio.gather(_wronglock_a(s, data_lock),
                         *(_wronglock_b(s, other) for _ in range(writers)))


async def wronglock() -> None:
    """One task guards a counter with one lock, seven others update it under another."""
    await _wronglock(fixed=False)


async def wronglock_fixed() -> None:
    await _wronglock(fixed=True)


# --------------------------------------------------------------------------- the C originals' shape
#
# The C programs start their threads one by one: ``main`` creates every thread of the first
# kind in a loop, then every thread of the second kind, then joins them all in creation
# order; ``pthread_create`` is a scheduling point of the C harnesses. The ports below keep
# that shape: ``create_task`` followed by a bare yield for each task (the creation point),
# then one ``await`` per task in order. The tasks run the same bodies as the ``gather``
# ports above. A search cannot rely on every task being ready from the start: at every
# creation point, the tasks already created can run ahead, and a random walk lets the
# early writers finish long before the checkers exist.


async def _spawn_in_order(*kinds: tuple[int, Callable[[], Coroutine[Any, Any, None]]]) -> None:
    """Create ``count`` tasks of each kind one by one, a scheduling point after each
    creation, then join them in creation order (the C harnesses' ``main``)."""
    tasks: list[asyncio.Task[None]] = []
    for count, body in kinds:
        for _ in range(count):
            tasks.append(asyncio.create_task(body()))
            await yield_()
    for task in tasks:
        await task


async def _reorder_c(setters: int, checkers: int, atomic: bool) -> None:
    s = Shared(a=0, b=0)
    await _spawn_in_order((setters, lambda: _setter(s, atomic)),
                          (checkers, lambda: _checker(s)))


async def reorder_c(setters: int, checkers: int) -> None:
    """SCTBench's reorder_X_bad in its own shape: ``setters`` setters then ``checkers``
    checkers created one by one, a checker must not see ``a`` set without ``b``."""
    await _reorder_c(setters, checkers, atomic=False)


async def reorder_c_fixed(setters: int, checkers: int) -> None:
    await _reorder_c(setters, checkers, atomic=True)


async def _twostage_c(writers: int, readers: int, fixed: bool) -> None:
    s = Shared(data1=0, data2=0)
    lock1, lock2 = asyncio.Lock(), asyncio.Lock()
    writer = _two_stage_writer_fixed if fixed else _two_stage_writer
    reader = _two_stage_reader_fixed if fixed else _two_stage_reader
    await _spawn_in_order((writers, lambda: writer(s, lock1, lock2)),
                          (readers, lambda: reader(s, lock1, lock2)))


async def twostage_c(writers: int, readers: int) -> None:
    """SCTBench's twostage_bad in its own shape: ``writers`` writers then ``readers``
    readers created one by one; a reader must never see stage two out of step with one."""
    await _twostage_c(writers, readers, fixed=False)


async def twostage_c_fixed(writers: int, readers: int) -> None:
    await _twostage_c(writers, readers, fixed=True)
