"""Services: schedules per second of scenarios that use a database driver and the network,
under the explorer, beside the same scenarios on a stock asyncio loop with the real thing.

- **FastAPI + SQLAlchemy (aiosqlite)**: the fixed ``orm-lost-update`` gallery example (two
  orders through FastAPI, each a read and an atomic ``UPDATE`` through SQLAlchemy's async
  ORM, on a SQLite file). Under the explorer aiosqlite's worker runs inline, one step per
  statement; on the stock loop aiosqlite starts its real worker thread per connection.
- **Network, streams**: a line-echo server started with ``asyncio.start_server`` on
  ``127.0.0.1`` port 0 and two clients with ``asyncio.open_connection``. Under the explorer
  the connections are in-memory transports of the simulated network; on the stock loop
  they are real loopback sockets.

Both columns run the same scenario function, in the same process, in alternating rounds
(:func:`benchmarks.throughput.measure`); the explorer side uses the ``random`` strategy.
Numbers are measurements of this machine; no test asserts them.
"""

from __future__ import annotations

import asyncio

from benchmarks import throughput

LINES = 3


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.close()


async def _client(port: int, name: str) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = []
    for number in range(LINES):
        writer.write(f"{name} line {number}\n".encode())
        await writer.drain()
        replies.append(await reader.readline())
    writer.close()
    await writer.wait_closed()
    return replies


async def two_clients_echo() -> None:
    """Two clients of one streams server, three request/reply lines each."""
    handlers: list[asyncio.Future[None]] = []

    def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Keep the connection handlers, to wait for them: before Python 3.12 the server's
        # wait_closed() does not, and a scenario must not return with tasks pending.
        handlers.append(asyncio.ensure_future(_echo(reader, writer)))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        first, second = await asyncio.gather(_client(port, "a"), _client(port, "b"))
        await asyncio.gather(*handlers)
    assert first == [f"A LINE {n}\n".encode() for n in range(LINES)], first
    assert second == [f"B LINE {n}\n".encode() for n in range(LINES)], second


def section(schedules: int, rounds: int) -> list[str]:
    """The "Services" section of BENCHMARKS.md (``--only services``)."""
    try:
        from examples.services import orm_lost_update
    except ImportError as exc:
        return ["## Services", "", f"Skipped: the `services` extra is not installed ({exc})."]
    rows = [
        throughput.measure("FastAPI + SQLAlchemy async ORM over aiosqlite, two orders",
                           orm_lost_update.lost_stock_update_fixed, schedules, rounds),
        throughput.measure("asyncio streams: one server, two clients, 3 lines each",
                           two_clients_echo, schedules, rounds),
    ]
    stock = ["aiosqlite's real worker threads", "real loopback sockets"]
    lines = [
        "## Services",
        "",
        f"Random strategy, {schedules} schedules per round; {rounds} alternating rounds, "
        "median. Stock means the same scenario on one reused stock asyncio loop with the "
        "real thing: aiosqlite's worker threads, or loopback sockets. Under the explorer "
        "SQLite runs inline without fsync (`synchronous = OFF`, see docs/services.md) "
        "and without thread hand-offs; the stock runs keep SQLite's default (a sync per "
        "commit), part of the difference in the first row.",
        "",
        "| scenario | explorer schedules/s | steps/s | stock runs/s | stock uses | "
        "explorer / stock |",
        "|---|---:|---:|---:|---|---:|",
    ]
    lines += [f"| {row.scenario} | {row.schedules_per_second:,.0f} | "
              f"{row.steps_per_second:,.0f} | {row.stock_runs_per_second:,.0f} | {real} | "
              f"{row.ratio:.2f}x |" for row, real in zip(rows, stock, strict=True)]
    return lines
