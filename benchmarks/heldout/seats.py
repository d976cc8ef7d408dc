"""A seat-booking server over a line protocol, on asyncio streams.

The server (``asyncio.start_server(handle, "127.0.0.1", 0)``) answers ``BOOK <seat>
<name>`` with ``OK`` or ``TAKEN``. Before it marks a seat as booked it records the
booking in an audit trail, and awaits that. Two clients (``asyncio.open_connection``) book
seat 7 at the same time. The audit trail comes in two forms, each a scenario of its own:

- ``buggy`` / ``fixed``: a ledger service reached over the network (started inside the
  scenario with ``asyncio.start_server`` on ``127.0.0.1`` port 0, its address handed to the
  booking server): the handler opens a connection, sends ``RECORD <line>`` and waits for
  ``ACK``.
- ``buggy_file`` / ``fixed_file``: a local log file, appended to off the event loop with
  ``asyncio.to_thread``, as blocking file I/O should be.

The race (``buggy``): the handler checks that seat 7 is free, then awaits the audit
record; the other connection's handler runs meanwhile, finds the seat still free and
awaits its own audit record: both handlers mark the seat and both clients are told ``OK``
(a double booking).

The fix (``fixed``): an ``asyncio.Lock`` held across the check, the audit record and the
booking, so the second handler checks only after the first booked.

The invariant: exactly one client is told ``OK``, the other ``TAKEN``, and the seat
belongs to the one told ``OK``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable

SEAT = 7
SEATS = range(1, 11)
CLIENTS = ("ada", "grace")


Audit = Callable[[str], Awaitable[None]]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Ledger:
    """The audit ledger service: ``RECORD <text>`` is appended and answered ``ACK``."""

    def __init__(self) -> None:
        self.records: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                self.records.append(line.decode().removeprefix("RECORD ").strip())
                writer.write(b"ACK\n")
                await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()


def ledger_audit(host: str, port: int) -> Audit:
    async def audit(line: str) -> None:
        await record_in_ledger(host, port, line)

    return audit


async def record_in_ledger(host: str, port: int, line: str) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"RECORD {line}\n".encode())
        await writer.drain()
        if await reader.readline() != b"ACK\n":
            raise RuntimeError("the ledger did not acknowledge the record")
    finally:
        writer.close()
        await writer.wait_closed()


def file_audit(path: str) -> Audit:
    def append(line: str) -> None:
        with open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")

    async def audit(line: str) -> None:
        await asyncio.to_thread(append, line)

    return audit


class BookingServer:
    def __init__(self, audit: Audit, *, locked: bool) -> None:
        self.audit = audit
        self.seats: dict[int, str] = {}
        self.lock: contextlib.AbstractAsyncContextManager[object] = (
            asyncio.Lock() if locked else contextlib.nullcontext())

    async def book(self, seat: int, name: str) -> bool:
        async with self.lock:
            if seat in self.seats:
                return False
            await self.audit(f"booking seat {seat} for {name}")
            self.seats[seat] = name
            return True

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                command, *args = line.decode().split()
                if command == "BOOK" and len(args) == 2:
                    booked = await self.book(int(args[0]), args[1])
                    writer.write(b"OK\n" if booked else b"TAKEN\n")
                elif command == "LIST":
                    free = [str(n) for n in SEATS if n not in self.seats]
                    writer.write(f"FREE {' '.join(free)}\n".encode())
                else:
                    writer.write(b"ERROR unknown command\n")
                await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()


async def book(port: int, seat: int, name: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"BOOK {seat} {name}\n".encode())
        await writer.drain()
        return (await reader.readline()).decode().strip()
    finally:
        writer.close()
        await writer.wait_closed()


async def list_free(port: int) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"LIST\n")
        await writer.drain()
        return (await reader.readline()).decode().split()[1:]
    finally:
        writer.close()
        await writer.wait_closed()


async def browse_then_book(port: int, seat: int, name: str) -> str:
    """A client that lists the free seats first (one request), then books its seat if it
    was free (a second request, on a connection of its own)."""
    if str(seat) not in await list_free(port):
        return "TAKEN"
    return await book(port, seat, name)


@contextlib.asynccontextmanager
async def serving(handle: Handler, *, strict: bool) -> AsyncIterator[asyncio.Server]:
    """Serve ``handle`` on 127.0.0.1, port 0, and close the server at the end.

    The plain way (``strict=False``) closes the server and awaits ``wait_closed()``, as most
    code does. ``strict`` also awaits the connection handlers, which ``wait_closed()`` does
    not before Python 3.12 (the cleanup docs/services.md advises).
    """
    handlers: list[asyncio.Future[None]] = []

    def start(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.ensure_future(handle(reader, writer)))

    server = await asyncio.start_server(start if strict else handle, "127.0.0.1", 0)
    try:
        yield server
    finally:
        server.close()
        await server.wait_closed()
        if strict:
            await asyncio.gather(*handlers)


async def _clients(booking: BookingServer, extra: Callable[[], Awaitable[None]] | None, *,
                   strict: bool, browse: bool) -> list[str]:
    async with serving(booking.handle, strict=strict) as server:
        port = server.sockets[0].getsockname()[1]
        first, second = CLIENTS
        replies = await asyncio.gather(
            book(port, SEAT, first),
            (browse_then_book if browse else book)(port, SEAT, second))
        if extra is not None:
            await extra()
    return list(replies)


def _check(booking: BookingServer, replies: list[str]) -> None:
    assert sorted(replies) == ["OK", "TAKEN"], f"replies {replies}: seat {SEAT} double-booked"
    assert booking.seats[SEAT] == CLIENTS[replies.index("OK")], booking.seats


async def _theatre(*, locked: bool, strict: bool = False, browse: bool = False,
                   extra: Callable[[], Awaitable[None]] | None = None) -> None:
    ledger = Ledger()
    async with serving(ledger.handle, strict=strict) as ledger_server:
        host, port = ledger_server.sockets[0].getsockname()[:2]
        booking = BookingServer(ledger_audit(host, port), locked=locked)
        replies = await _clients(booking, extra, strict=strict, browse=browse)
    _check(booking, replies)
    assert len(ledger.records) == replies.count("OK"), ledger.records


async def _file_theatre(*, locked: bool, strict: bool = False) -> None:
    with tempfile.TemporaryDirectory() as directory:
        booking = BookingServer(file_audit(os.path.join(directory, "audit.log")),
                                locked=locked)
        replies = await _clients(booking, None, strict=strict, browse=False)
    _check(booking, replies)


async def buggy() -> None:
    """Two clients book one seat; the server checks, awaits the ledger's ACK, then books."""
    await _theatre(locked=False)


async def fixed() -> None:
    """The same, with the check, the ledger record and the booking under an asyncio.Lock."""
    await _theatre(locked=True)


async def buggy_file() -> None:
    """As ``buggy``, with the audit line appended to a file through asyncio.to_thread."""
    await _file_theatre(locked=False)


async def fixed_file() -> None:
    """As ``fixed``, with the audit line appended to a file through asyncio.to_thread."""
    await _file_theatre(locked=True)


async def buggy_strict() -> None:
    """``buggy``, awaiting the servers' connection handlers before returning."""
    await _theatre(locked=False, strict=True)


async def fixed_strict() -> None:
    """``fixed``, awaiting the servers' connection handlers before returning."""
    await _theatre(locked=True, strict=True)


async def buggy_file_strict() -> None:
    """``buggy_file``, awaiting the server's connection handlers before returning."""
    await _file_theatre(locked=False, strict=True)


async def fixed_file_strict() -> None:
    """``fixed_file``, awaiting the server's connection handlers before returning."""
    await _file_theatre(locked=True, strict=True)


async def buggy_browse() -> None:
    """``buggy``, the second client listing the free seats before it books."""
    await _theatre(locked=False, browse=True)


async def fixed_browse() -> None:
    """``fixed``, the second client listing the free seats before it books."""
    await _theatre(locked=True, browse=True)


async def buggy_browse_strict() -> None:
    """``buggy_browse``, awaiting the servers' connection handlers before returning."""
    await _theatre(locked=False, browse=True, strict=True)


async def fixed_browse_strict() -> None:
    """``fixed_browse``, awaiting the servers' connection handlers before returning."""
    await _theatre(locked=True, browse=True, strict=True)


async def _call_payment_gateway() -> None:
    # A payment gateway nothing in the scenario serves (discard port on the local host).
    _reader, writer = await asyncio.open_connection("127.0.0.1", 9)
    writer.close()
    await writer.wait_closed()


async def unserved() -> None:
    """The fixed theatre, then a connection to 127.0.0.1:9, which nothing serves."""
    await _theatre(locked=True, extra=_call_payment_gateway)


async def _call_named_service() -> None:
    # A service configured by name, which nothing in the scenario serves.
    _reader, writer = await asyncio.open_connection("payments.internal", 9000)
    writer.close()
    await writer.wait_closed()


async def unserved_name() -> None:
    """The fixed theatre, then a connection to payments.internal:9000, which nothing serves."""
    await _theatre(locked=True, extra=_call_named_service)
