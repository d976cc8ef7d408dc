"""Cache stampede: concurrent misses all recompute the same expensive value.

A request looks the report up in the cache and, on a miss, computes it (an await on the
database) and stores it. Requests that arrive while the first computation is still
awaiting the database miss too, and each starts its own computation. The fixed version
is single-flight: the first miss registers a shared future for the key, later requests
await that future, and only the first one computes.
"""

from __future__ import annotations

import asyncio


class ReportCache:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.inflight: dict[str, asyncio.Future[int]] = {}
        self.computations = 0

    async def compute(self, key: str) -> int:
        self.computations += 1
        await asyncio.sleep(0)  # aggregate query
        await asyncio.sleep(0)  # render
        return len(key)

    async def get(self, key: str) -> int:
        if key in self.values:
            return self.values[key]
        value = await self.compute(key)
        self.values[key] = value
        return value

    async def get_fixed(self, key: str) -> int:
        if key in self.values:
            return self.values[key]
        if key in self.inflight:
            return await self.inflight[key]
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.inflight[key] = future
        try:
            value = await self.compute(key)
        except Exception as exc:
            future.set_exception(exc)
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            del self.inflight[key]
        self.values[key] = value
        future.set_result(value)
        return value


async def request(cache: ReportCache, arrival: int, *, fixed: bool) -> int:
    for _ in range(arrival):
        await asyncio.sleep(0)  # routing, authentication, ...
    return await (cache.get_fixed if fixed else cache.get)("daily-report")


async def _scenario(*, fixed: bool) -> None:
    cache = ReportCache()
    values = await asyncio.gather(*(request(cache, 3 * i, fixed=fixed) for i in range(3)))
    assert len(set(values)) == 1
    assert cache.computations == 1, f"report computed {cache.computations} times"


async def stampede() -> None:
    """Three requests for the same cold report: it must be computed exactly once."""
    await _scenario(fixed=False)


async def stampede_fixed() -> None:
    await _scenario(fixed=True)
