"""Held-out (user terms): a per-user quota kept in Redis through redis-py's asyncio client
(a fakeredis server), read with ``GET`` then written back with ``SET``.

Two requests of one user may both pass the check: the second reads the quota while the
first is between its read and its write. ``fixed`` counts with ``INCR``, which Redis runs
atomically."""

from __future__ import annotations

import asyncio
from typing import Any

import fakeredis

QUOTA = 1


async def allow(redis: Any, user: str) -> bool:
    used = await redis.get(f"quota:{user}")
    used = int(used or 0)
    if used >= QUOTA:
        return False
    await redis.set(f"quota:{user}", used + 1)
    return True


async def allow_fixed(redis: Any, user: str) -> bool:
    used = await redis.incr(f"quota:{user}")
    return bool(used <= QUOTA)


async def buggy() -> None:
    redis = fakeredis.FakeAsyncRedis()
    await redis.set("quota:ann", 0)
    granted = await asyncio.gather(allow(redis, "ann"), allow(redis, "ann"))
    assert granted.count(True) <= QUOTA, granted


async def fixed() -> None:
    redis = fakeredis.FakeAsyncRedis()
    await redis.set("quota:ann", 0)
    granted = await asyncio.gather(allow_fixed(redis, "ann"), allow_fixed(redis, "ann"))
    assert granted.count(True) <= QUOTA, granted
