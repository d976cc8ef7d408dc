"""Connection pool misuse: one connection handed to two handlers at once.

``acquire`` looks at the last idle connection, awaits a health check on it, and only then
takes it off the idle list. A second handler that acquires while the first is awaiting the
health check sees the same connection still idle and checks it too; both handlers then
run their queries on one connection, interleaving their statements. The fixed version
takes the connection off the idle list before the health check, so no other handler can
see it (a connection that fails the check is replaced by a fresh one).
"""

from __future__ import annotations

import asyncio


class Connection:
    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.holder: str | None = None

    async def ping(self) -> bool:
        await asyncio.sleep(0)
        return True

    async def execute(self, holder: str, statement: str) -> None:
        assert self.holder is None, (
            f"connection {self.ident} used by {holder} while {self.holder} is using it")
        self.holder = holder
        await asyncio.sleep(0)  # the server runs the statement
        self.holder = None


class Pool:
    def __init__(self, size: int) -> None:
        self.idle = [Connection(ident) for ident in range(size)]
        self.available = asyncio.Semaphore(size)

    async def acquire(self) -> Connection:
        await self.available.acquire()
        connection = self.idle[-1]
        healthy = await connection.ping()
        self.idle.pop()
        return connection if healthy else Connection(connection.ident)

    async def acquire_fixed(self) -> Connection:
        await self.available.acquire()
        connection = self.idle.pop()
        healthy = await connection.ping()
        return connection if healthy else Connection(connection.ident)

    def release(self, connection: Connection) -> None:
        self.idle.append(connection)
        self.available.release()


async def handle(pool: Pool, name: str, arrival: int, *, fixed: bool) -> None:
    for _ in range(arrival):
        await asyncio.sleep(0)  # parse the request
    connection = await (pool.acquire_fixed if fixed else pool.acquire)()
    try:
        await connection.execute(name, "BEGIN")
        await connection.execute(name, f"UPDATE orders SET handler = '{name}'")
        await connection.execute(name, "COMMIT")
    finally:
        pool.release(connection)


async def _scenario(*, fixed: bool) -> None:
    pool = Pool(2)
    await asyncio.gather(handle(pool, "checkout", 0, fixed=fixed),
                         handle(pool, "refund", 2, fixed=fixed))


async def shared_connection() -> None:
    """Two handlers on a pool of two connections: each must get a connection of its own."""
    await _scenario(fixed=False)


async def shared_connection_fixed() -> None:
    await _scenario(fixed=True)
