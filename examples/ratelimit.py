"""Rate limiter bypass: a token bucket read and written back across an await.

Each request reads the number of tokens left, awaits the bucket's backing store, and
writes back one token less if there was one. Two requests that both read before either
writes back both see the same token and both are admitted, so a client gets more requests
through than its bucket holds. The fixed version takes the token under the bucket's lock,
from the read to the write-back.
"""

from __future__ import annotations

import asyncio


class TokenBucket:
    def __init__(self, tokens: int) -> None:
        self.capacity = tokens
        self.tokens = tokens
        self.lock = asyncio.Lock()


async def store_round_trip() -> None:
    await asyncio.sleep(0)


async def parse_request(steps: int) -> None:
    for _ in range(steps):
        await asyncio.sleep(0)


async def take_token(bucket: TokenBucket) -> bool:
    tokens = bucket.tokens
    await store_round_trip()
    if tokens == 0:
        return False
    bucket.tokens = tokens - 1
    return True


async def take_token_fixed(bucket: TokenBucket) -> bool:
    async with bucket.lock:
        tokens = bucket.tokens
        await store_round_trip()
        if tokens == 0:
            return False
        bucket.tokens = tokens - 1
        return True


async def request(bucket: TokenBucket, parse_steps: int, *, fixed: bool) -> bool:
    await parse_request(parse_steps)
    return await (take_token_fixed if fixed else take_token)(bucket)


async def _scenario(*, fixed: bool) -> None:
    bucket = TokenBucket(2)
    admitted = await asyncio.gather(*(request(bucket, 2 * i, fixed=fixed) for i in range(3)))
    assert sum(admitted) <= bucket.capacity, (
        f"{sum(admitted)} requests admitted by a bucket of {bucket.capacity} tokens")


async def burst() -> None:
    """Three requests against a bucket of two tokens: at most two may be admitted."""
    await _scenario(fixed=False)


async def burst_fixed() -> None:
    await _scenario(fixed=True)
