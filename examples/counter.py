"""Lost update on a shared counter of active users.

Each request handler reads the counter, awaits a metrics call, and writes the counter
back plus one. Two handlers that interleave at the await both write the same value, and
one sign-in is lost. The fixed version updates the counter under a lock.
"""

from __future__ import annotations

import asyncio


class ActiveUsers:
    def __init__(self) -> None:
        self.count = 0
        self.lock = asyncio.Lock()


async def report_metric(value: int) -> None:
    await asyncio.sleep(0)


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
        await asyncio.sleep(0)  # parsing, authentication, ...
    await handler(users)  # type: ignore[operator]


async def lost_update() -> None:
    """Three users sign in at slightly different moments; the count must reach 3."""
    users = ActiveUsers()
    await asyncio.gather(*(staggered(sign_in, users, 2 * i) for i in range(3)))
    assert users.count == 3, f"lost update: {users.count} active users, expected 3"


async def lost_update_fixed() -> None:
    users = ActiveUsers()
    await asyncio.gather(*(staggered(sign_in_fixed, users, 2 * i) for i in range(3)))
    assert users.count == 3, f"lost update: {users.count} active users, expected 3"
