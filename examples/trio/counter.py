"""Lost update on a shared counter, trio form.

Each sign-in handler reads the counter, awaits a metrics call, and writes the counter back
plus one. Two handlers that interleave at the checkpoint both write the same value, and
one sign-in is lost. The fixed version updates the counter under a ``trio.Lock``.
"""

from __future__ import annotations

import trio


class ActiveUsers:
    def __init__(self) -> None:
        self.count = 0
        self.lock = trio.Lock()


async def report_metric(value: int) -> None:
    await trio.sleep(0)


async def sign_in(users: ActiveUsers) -> None:
    current = users.count
    await report_metric(current + 1)
    users.count = current + 1


async def sign_in_fixed(users: ActiveUsers) -> None:
    async with users.lock:
        current = users.count
        await report_metric(current + 1)
        users.count = current + 1


async def staggered(handler: object, users: ActiveUsers, delay_steps: int) -> None:
    for _ in range(delay_steps):
        await trio.sleep(0)  # parsing, authentication, ...
    await handler(users)  # type: ignore[operator]


async def _sign_ins(handler: object) -> int:
    users = ActiveUsers()
    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(staggered, handler, users, 2 * i)
    return users.count


async def lost_update() -> None:
    """Three users sign in at slightly different moments; the count must reach 3."""
    count = await _sign_ins(sign_in)
    assert count == 3, f"lost update: {count} active users, expected 3"


async def lost_update_fixed() -> None:
    count = await _sign_ins(sign_in_fixed)
    assert count == 3, f"lost update: {count} active users, expected 3"
