"""The simulated network of the asyncio runtime: servers and clients started inside a
scenario talk in memory, with real transport semantics, explored schedules, and escapes
for anything not served in the scenario."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import pytest

import explorer
from explorer._network import FIRST_PORT, Address, Network, canonical_host, name_address

# ---------------------------------------------------------------- addresses (neutral)


def test_loopback_and_wildcard_spellings_are_one_host() -> None:
    for host in ("localhost", "127.0.0.1", "127.1.2.3", "::1", "0.0.0.0", "::", "", None):
        assert canonical_host(host) == "127.0.0.1"
    assert canonical_host("DB.Internal.") == "db.internal"
    assert canonical_host("10.1.2.3") == "10.1.2.3"


def test_port_zero_counts_up_per_host_and_resets_with_the_run() -> None:
    network: Network[str] = Network()
    first = network.listen("127.0.0.1", 0, "a")
    second = network.listen("localhost", 0, "b")
    named = network.listen("db.internal", 0, "c")
    assert (first.port, second.port, named.port) == (FIRST_PORT, FIRST_PORT + 1, FIRST_PORT)
    with pytest.raises(OSError, match="already in use"):
        network.listen("0.0.0.0", FIRST_PORT, "d")
    network.reset()
    assert network.listen("127.0.0.1", 0, "a") == first


def test_a_served_name_resolves_to_a_fixed_address_and_reaches_its_listener() -> None:
    network: Network[str] = Network()
    assert network.resolve("db.internal") is None  # not served: the caller refuses it
    network.listen("db.internal", 5432, "db")
    ip = network.resolve("db.internal")
    assert ip == name_address("db.internal") and ip is not None and ip.startswith("10.")
    assert network.lookup(ip, 5432).listener == "db"
    assert network.lookup("db.internal", 5432).listener == "db"
    missing = network.lookup("db.internal", 5433)
    assert missing.listener is None and not missing.closed
    network.unlisten(Address("db.internal", 5432))
    assert network.lookup("db.internal", 5432).closed


# ---------------------------------------------------------------- streams


class _Echo:
    """A line echo server's handler that keeps its tasks, so a scenario can await them
    (a scenario must not return while a handler still runs)."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Future[Any]] = []

    async def __call__(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        self.tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        while line := await reader.readline():
            writer.write(b"echo " + line)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def finished(self) -> None:
        await asyncio.gather(*self.tasks)


def test_streams_echo_with_peer_and_socket_names() -> None:
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        echo = _Echo()
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        _, port = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection("localhost", port)
        writer.write(b"one\n")
        writer.write(b"two\n")
        await writer.drain()
        seen["lines"] = [await reader.readline(), await reader.readline()]
        seen["peer"] = writer.get_extra_info("peername")
        seen["sock"] = writer.get_extra_info("sockname")
        seen["socket"] = writer.get_extra_info("socket").getpeername()
        writer.write_eof()
        seen["eof"] = await reader.read()
        writer.close()
        await writer.wait_closed()
        await echo.finished()
        server.close()
        await server.wait_closed()

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    assert seen["lines"] == [b"echo one\n", b"echo two\n"]
    assert seen["peer"] == seen["socket"] == ("127.0.0.1", FIRST_PORT)
    assert seen["sock"][0] == "127.0.0.1" and seen["sock"][1] != FIRST_PORT
    assert seen["eof"] == b""


def test_ports_are_the_same_in_every_run_of_a_schedule() -> None:
    ports: list[tuple[int, int]] = []

    async def scenario() -> None:
        first = await asyncio.start_server(_Echo(), "0.0.0.0", 0)
        second = await asyncio.start_server(_Echo(), "127.0.0.1", 0)
        ports.append((first.sockets[0].getsockname()[1], second.sockets[0].getsockname()[1]))
        first.close()
        second.close()

    assert explorer.run(scenario).passed
    assert explorer.run(scenario).passed
    assert ports == [(FIRST_PORT, FIRST_PORT + 1)] * 2


# A seat-booking service over a line protocol: LIST names the free seats; HOLD checks
# that a seat is free and answers AVAILABLE; PAY books it. The buggy server checks at
# HOLD but books at PAY, so two clients whose HOLDs both arrive before either PAY both
# book the seat. Alice holds at once; Bob lists the seats first, so in the stock order
# Alice has paid before Bob's HOLD arrives: the race needs Bob's requests to overtake
# hers across network round trips, with no sleep anywhere. The fixed server holds the
# seat at HOLD, atomically with the check.


def _booking_scenario(fixed: bool) -> Any:
    async def scenario() -> None:
        booked: dict[str, str] = {}
        held: dict[str, str] = {}
        handlers: list[asyncio.Future[Any]] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = (await reader.readline()).decode().split()
            if request[:1] == ["LIST"]:
                free_seats = [s for s in ("12A", "12B") if s not in booked and s not in held]
                writer.write((" ".join(free_seats) + "\n").encode())
                request = (await reader.readline()).decode().split()
            if len(request) != 3:  # the client went away
                return
            _, seat, client = request
            free = seat not in booked and (seat not in held or not fixed)
            if free and fixed:
                held[seat] = client
            writer.write(b"AVAILABLE\n" if free else b"TAKEN\n")
            await writer.drain()
            if free and await reader.readline() == b"PAY\n":
                booked[seat] = client
                writer.write(f"BOOKED {client}\n".encode())
                await writer.drain()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handlers.append(asyncio.current_task())  # type: ignore[arg-type]
            try:
                await serve(reader, writer)
            finally:
                writer.close()
                await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 7000)

        async def book(client: str, browse: bool) -> bool:
            reader, writer = await asyncio.open_connection("127.0.0.1", 7000)
            try:
                if browse:
                    writer.write(b"LIST\n")
                    await writer.drain()
                    if b"12A" not in await reader.readline():
                        return False
                writer.write(f"HOLD 12A {client}\n".encode())
                await writer.drain()
                if await reader.readline() != b"AVAILABLE\n":
                    return False
                writer.write(b"PAY\n")
                await writer.drain()
                return await reader.readline() == f"BOOKED {client}\n".encode()
            finally:
                writer.close()
                await writer.wait_closed()

        async with server:
            results = await asyncio.gather(book("alice", False), book("bob", True))
        await asyncio.gather(*handlers)
        assert results.count(True) <= 1, f"seat 12A was sold twice: {results}"

    return scenario


def test_seat_booking_race_is_found_by_the_default_strategy() -> None:
    result = explorer.explore(_booking_scenario(fixed=False), max_schedules=2000,
                              seed=1, raise_on_failure=False)
    assert result.failure is not None
    assert result.failure.outcome.kind == "assertion"
    assert "sold twice" in result.failure.outcome.message


def test_fixed_seat_booking_passes_default_and_systematic_search() -> None:
    scenario = _booking_scenario(fixed=True)
    assert explorer.explore(scenario, max_schedules=300, seed=1).failure is None
    assert explorer.explore(scenario, strategy="systematic", deviation_bound=2,
                            max_schedules=20_000).failure is None


def test_same_schedule_gives_the_same_trace() -> None:
    scenario = _booking_scenario(fixed=False)
    result = explorer.explore(scenario, max_schedules=2000, seed=1, raise_on_failure=False)
    assert result.failure is not None
    schedule = result.failure.schedule
    first = explorer.run(scenario, schedule=schedule)
    second = explorer.run(scenario, schedule=schedule)
    assert first.trace is not None and second.trace is not None
    assert first.trace.hash() == second.trace.hash()
    assert first.outcome.kind == "assertion"


def test_a_delivery_may_stop_at_a_write_boundary() -> None:
    """Two writes made in one step arrive together in the stock schedule; with faults on,
    that the first may arrive alone is an explored choice, which finds a reader that
    assumes one read returns a whole request."""

    async def scenario() -> None:
        got: list[bytes] = []
        handlers: list[asyncio.Future[Any]] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handlers.append(asyncio.current_task())  # type: ignore[arg-type]
            got.append(await reader.read(100))
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"header;")
        writer.write(b"body")
        await writer.drain()
        while not got:
            await asyncio.sleep(0)
        writer.close()
        await writer.wait_closed()
        await asyncio.gather(*handlers)
        server.close()
        assert got == [b"header;body"], f"the request arrived in parts: {got}"

    assert explorer.run(scenario).passed
    assert explorer.explore(scenario, strategy="systematic", deviation_bound=1).failure is None
    result = explorer.explore(scenario, strategy="systematic", deviation_bound=1,
                              faults={"reset"}, raise_on_failure=False)
    assert result.failure is not None
    assert "[b'header;']" in result.failure.outcome.message


# ---------------------------------------------------------------- transport semantics


class _Recorder(asyncio.Protocol):
    """A protocol that records what its transport tells it."""

    def __init__(self, keep_open: bool = True) -> None:
        self.events: list[str] = []
        self.data = bytearray()
        self.keep_open = keep_open
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[BaseException | None] = \
            asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self.events.append("eof")
        return self.keep_open

    def pause_writing(self) -> None:
        assert self.transport is not None
        self.events.append(f"pause@{self.transport.get_write_buffer_size()}")

    def resume_writing(self) -> None:
        assert self.transport is not None
        self.events.append(f"resume@{self.transport.get_write_buffer_size()}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(f"lost:{type(exc).__name__ if exc else None}")
        self.lost.set_result(exc)


async def _pair(keep_open: bool = True) -> tuple[_Recorder, _Recorder, asyncio.AbstractServer]:
    loop = asyncio.get_running_loop()
    servers: list[_Recorder] = []

    def factory() -> _Recorder:
        servers.append(_Recorder(keep_open))
        return servers[-1]

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, client = await loop.create_connection(lambda: _Recorder(keep_open), "127.0.0.1", port)
    while not servers or servers[0].transport is None:
        await asyncio.sleep(0)
    return client, servers[0], server


def test_flow_control_pauses_and_resumes_at_the_water_marks() -> None:
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        client, served, server = await _pair()
        assert client.transport is not None and served.transport is not None
        seen["limits"] = client.transport.get_write_buffer_limits()
        served.transport.pause_reading()  # the server reads nothing for now
        client.transport.write(b"x" * 40_000)
        client.transport.write(b"y" * 40_000)  # 80,000 > 64 KiB pending: pause
        for _ in range(5):
            await asyncio.sleep(0)
        seen["paused"] = list(client.events)
        served.transport.resume_reading()
        while len(served.data) < 80_000:
            await asyncio.sleep(0)
        seen["resumed"] = list(client.events)
        client.transport.set_write_buffer_limits(high=10)  # low = 2
        client.transport.write(b"z" * 11)
        seen["small"] = list(client.events)
        client.transport.close()
        served.transport.close()
        await client.lost
        await served.lost
        server.close()

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    assert seen["limits"] == (16 * 1024, 64 * 1024)
    assert seen["paused"] == ["made", "pause@80000"]
    assert seen["resumed"] == ["made", "pause@80000", "resume@0"]
    assert seen["small"][-1] == "pause@11"


def test_drain_blocks_until_the_reader_reads() -> None:
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        release = asyncio.Event()
        got = bytearray()

        async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await release.wait()
            while chunk := await reader.read(65536):
                got.extend(chunk)
            writer.close()

        server = await asyncio.start_server(slow, "127.0.0.1", 0, limit=1024)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        # The first 200,000 bytes reach the server's StreamReader, which stops reading
        # past twice its limit; the next ones stay in the client's write buffer.
        writer.write(b"a" * 200_000)
        await writer.drain()
        writer.write(b"b" * 200_000)
        drain = asyncio.create_task(writer.drain())
        for _ in range(20):
            await asyncio.sleep(0)
        seen["blocked"] = not drain.done()
        release.set()
        await drain
        writer.close()
        await writer.wait_closed()
        while len(got) < 400_000:
            await asyncio.sleep(0)
        seen["got"] = len(got)
        server.close()

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    assert seen == {"blocked": True, "got": 400_000}


def test_eof_received_return_value_decides_half_close() -> None:
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        for keep_open in (True, False):
            client, served, server = await _pair(keep_open)
            assert client.transport is not None and served.transport is not None
            client.transport.write(b"request")
            client.transport.write_eof()
            while "eof" not in served.events:
                await asyncio.sleep(0)
            if keep_open:  # half-closed: the server can still answer
                served.transport.write(b"answer")
                served.transport.close()
                await served.lost
                while "eof" not in client.events:
                    await asyncio.sleep(0)
                client.transport.close()
                await client.lost
            else:  # the transport closed itself: the client sees EOF, then closes
                await served.lost
                client.transport.close()
                await client.lost
            seen[keep_open] = (bytes(served.data), bytes(client.data), served.events,
                               client.events)
            server.close()

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    assert seen[True] == (b"request", b"answer", ["made", "eof", "lost:None"],
                          ["made", "eof", "lost:None"])
    assert seen[False][0] == b"request"
    assert seen[False][2] == ["made", "eof", "lost:None"]


def test_abort_drops_unsent_bytes_and_resets_a_peer_whose_bytes_are_unread() -> None:
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        client, served, server = await _pair()
        assert client.transport is not None and served.transport is not None
        served.transport.write(b"never delivered")
        served.transport.abort()  # nothing unread: the client sees the end of the stream
        await served.lost
        while "eof" not in client.events:
            await asyncio.sleep(0)
        seen["quiet"] = (list(client.events), bytes(client.data))
        client.transport.close()
        await client.lost

        client, served, server2 = await _pair()
        assert client.transport is not None and served.transport is not None
        served.transport.pause_reading()
        client.transport.write(b"unread")  # on its way when the server aborts
        served.transport.abort()
        seen["reset"] = await client.lost
        seen["events"] = client.events
        server.close()
        server2.close()

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    assert seen["quiet"] == (["made", "eof"], b"")
    assert isinstance(seen["reset"], ConnectionResetError)
    assert seen["events"] == ["made", "lost:ConnectionResetError"]


def test_buffered_protocol_receives_into_its_buffer() -> None:
    seen: dict[str, Any] = {}

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buffer = bytearray(4)  # smaller than one write: filled in several calls
            self.got = bytearray()
            self.done = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buffer

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buffer[:nbytes]

        def eof_received(self) -> None:
            self.done.set_result(bytes(self.got))

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        protocols: list[Buffered] = []

        def factory() -> Buffered:
            protocols.append(Buffered())
            return protocols[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello buffered world")
        writer.write_eof()
        while not protocols:
            await asyncio.sleep(0)
        seen["got"] = await protocols[0].done
        writer.close()
        await writer.wait_closed()
        server.close()

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    assert seen["got"] == b"hello buffered world"


def test_unix_socket_server_and_client() -> None:
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        echo = _Echo()
        server = await asyncio.start_unix_server(echo, "/run/app.sock")
        reader, writer = await asyncio.open_unix_connection("/run/app.sock")
        writer.write(b"ping\n")
        seen["line"] = await reader.readline()
        seen["name"] = server.sockets[0].getsockname()
        writer.close()
        await writer.wait_closed()
        await echo.finished()
        server.close()

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    assert seen == {"line": b"echo ping\n", "name": "/run/app.sock"}


# ---------------------------------------------------------------- order within a connection


class _Watchful(asyncio.Protocol):
    """Starts a task in ``connection_made`` and in every ``data_received`` (as aiohttp's
    server starts its request loop in ``connection_made``), and notes any later event of
    its connection that arrives before that task's first step: a real loop runs the step
    first, since it is queued before the next poll can report the socket again."""

    def __init__(self, out_of_order: list[str], tasks: list[asyncio.Task[None]]) -> None:
        self.out_of_order = out_of_order
        self.tasks = tasks
        self.waiting: str | None = None  # the event whose task has not started yet
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def _event(self, name: str, start: bool = True) -> None:
        if self.waiting is not None:
            self.out_of_order.append(f"{name} before the task of {self.waiting}")
        if start:
            self.waiting = name
            self.tasks.append(asyncio.get_running_loop().create_task(self._started()))

    async def _started(self) -> None:
        self.waiting = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._event("connection_made")

    def data_received(self, data: bytes) -> None:
        self._event(f"data_received({data!r})")

    def eof_received(self) -> None:
        self._event("eof_received", start=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._event("connection_lost", start=False)
        self.lost.set_result(None)


def _watched_exchange(out_of_order: list[str]) -> Any:
    """A client and a server of :class:`_Watchful` protocols: the client sends two writes
    and its end of stream; the server answers once and closes."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = []
        served: list[_Watchful] = []

        class Answering(_Watchful):
            transport: asyncio.Transport | None = None

            def data_received(self, data: bytes) -> None:
                super().data_received(data)
                if self.transport is not None and data.endswith(b"two"):
                    self.transport.write(b"answer")
                    self.transport.close()

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                assert isinstance(transport, asyncio.Transport)
                self.transport = transport
                served.append(self)

        server = await loop.create_server(lambda: Answering(out_of_order, tasks),
                                          "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, client = await loop.create_connection(
            lambda: _Watchful(out_of_order, tasks), "127.0.0.1", port)
        transport.write(b"one")
        await asyncio.sleep(0)
        transport.write(b"two")
        transport.write_eof()
        await client.lost
        while not served:
            await asyncio.sleep(0)
        await served[0].lost
        server.close()
        await asyncio.gather(*tasks)
        assert not out_of_order, out_of_order

    return scenario


def test_a_connections_events_never_overtake_the_tasks_its_callbacks_started() -> None:
    out_of_order: list[str] = []
    scenario = _watched_exchange(out_of_order)
    searched = explorer.explore(scenario, strategy="systematic", deviation_bound=2,
                                max_schedules=20_000)
    assert searched.failure is None and searched.exhausted, searched.coverage
    # Resets strike while bytes are on their way: connection_lost then comes early, but
    # still after the tasks the earlier events started. (The scenario waits for both
    # ends to close, so it has no use for refused connections or unanswered responses.)
    faults = {"reset", "dropped"}
    with_faults = explorer.explore(scenario, strategy="systematic", deviation_bound=2,
                                   faults=faults, max_schedules=20_000)
    assert with_faults.failure is None and with_faults.exhausted, with_faults.coverage
    assert explorer.explore(scenario, max_schedules=300, faults=faults, seed=1).failure is None
    assert out_of_order == []


def test_a_delivery_still_overtakes_a_task_its_connection_did_not_start() -> None:
    """Work queued by other code is not waited for: a delivery runs before or after an
    unrelated task's first step, in either order, whichever was queued first."""
    seen: set[tuple[str, bool]] = set()

    def scenario(task_first: bool) -> Any:
        async def run() -> None:
            loop = asyncio.get_running_loop()
            ran: list[str] = []
            served: list[_Recorder] = []

            class Noting(_Recorder):
                def data_received(self, data: bytes) -> None:
                    super().data_received(data)
                    seen.add(("task first" if task_first else "write first", bool(ran)))

            def factory() -> _Recorder:
                served.append(Noting())
                return served[-1]

            async def unrelated() -> None:
                ran.append("ran")

            server = await loop.create_server(factory, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            transport, client = await loop.create_connection(_Recorder, "127.0.0.1", port)
            while not served or served[0].transport is None:
                await asyncio.sleep(0)
            if task_first:
                task = asyncio.create_task(unrelated())
                transport.write(b"x")
            else:
                transport.write(b"x")
                task = asyncio.create_task(unrelated())
            await task
            while not served[0].data:
                await asyncio.sleep(0)
            transport.close()
            assert served[0].transport is not None
            served[0].transport.close()
            await client.lost
            await served[0].lost
            server.close()

        return run

    for task_first in (True, False):
        result = explorer.explore(scenario(task_first), strategy="systematic",
                                  deviation_bound=1)
        assert result.failure is None and result.exhausted, result.coverage
    assert seen == {("task first", True), ("task first", False),
                    ("write first", True), ("write first", False)}


# ---------------------------------------------------------------- names and refusals


def test_a_server_on_a_name_serves_clients_configured_by_name() -> None:
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        echo = _Echo()
        server = await asyncio.start_server(echo, "db.internal", 5432)
        infos = await loop.getaddrinfo("db.internal", 5432, type=socket.SOCK_STREAM)
        seen["ip"] = infos[0][4][0]
        for host in ("db.internal", seen["ip"]):
            reader, writer = await asyncio.open_connection(host, 5432)
            writer.write(b"select 1\n")
            seen[host] = await reader.readline()
            writer.close()
            await writer.wait_closed()
        # Synchronous resolution (what a driver may do in run_in_executor) agrees.
        seen["sync"] = socket.getaddrinfo("db.internal", 5432)[0][4]
        await echo.finished()
        server.close()

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    assert seen["ip"] == name_address("db.internal")
    assert seen["db.internal"] == seen[seen["ip"]] == b"echo select 1\n"
    assert seen["sync"] == (seen["ip"], 5432)


def test_alias_reaches_a_server_listening_elsewhere() -> None:
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        echo = _Echo()
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        explorer.alias("cache.internal", 6379, to=server.sockets[0].getsockname())
        reader, writer = await asyncio.open_connection("cache.internal", 6379)
        writer.write(b"PING\n")
        seen["line"] = await reader.readline()
        writer.close()
        await writer.wait_closed()
        await echo.finished()
        server.close()

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    assert seen["line"] == b"echo PING\n"


def test_alias_outside_a_run_says_where_to_call_it() -> None:
    with pytest.raises(explorer.UsageError, match="inside the scenario"):
        explorer.alias("cache.internal", 6379, to=("127.0.0.1", 40000))


@pytest.fixture
def real_listener() -> Any:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    yield listener
    listener.close()


def test_an_unserved_address_is_an_escape_and_nothing_leaves(real_listener: Any) -> None:
    port = real_listener.getsockname()[1]

    async def scenario() -> None:
        await asyncio.open_connection("127.0.0.1", port)

    result = explorer.run(scenario)
    assert result.outcome.kind == "escape"
    assert f"127.0.0.1:{port}" in result.outcome.message
    assert "start the server inside the scenario" in result.outcome.message
    with pytest.raises(BlockingIOError):
        real_listener.accept()  # the real listener was never reached


def test_an_unserved_name_is_an_escape_before_any_lookup() -> None:
    async def scenario() -> None:
        await asyncio.get_running_loop().getaddrinfo("payments.example", 443)

    result = explorer.run(scenario)
    assert result.outcome.kind == "escape"
    assert "payments.example:443" in result.outcome.message
    assert 'explorer.alias("payments.example", 443' in result.outcome.message


def test_a_closed_server_refuses_connections() -> None:
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        server = await asyncio.start_server(_Echo(), "127.0.0.1", 8080)
        server.close()
        await server.wait_closed()
        try:
            await asyncio.open_connection("127.0.0.1", 8080)
        except ConnectionRefusedError as exc:
            seen["refused"] = str(exc)

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    assert "127.0.0.1:8080" in seen["refused"]


async def _idle_connection(handler: Any, out: dict[str, Any]) -> None:
    """One request answered, then the client closes without waiting and the scenario
    returns after closing the server: the handler may still be waiting for the client's
    end of stream (what ``wait_closed()`` leaves behind before Python 3.12)."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello\n")
    out["reply"] = await reader.readline()
    writer.close()
    server.close()


def test_a_connection_handler_left_waiting_is_cancelled_as_asyncio_run_does() -> None:
    out: dict[str, Any] = {}
    cancelled: list[bool] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(line)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        finally:
            writer.close()

    result = explorer.explore(_idle_connection, handler, out, strategy="systematic",
                              deviation_bound=2)
    assert result.ok and result.exhausted
    assert out["reply"] == b"hello\n"
    assert cancelled  # some schedules end with the handler still waiting


async def _swallows_cancellation(reader: asyncio.StreamReader,
                                 writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readline())
    writer.close()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:  # swallowed: asyncio.run would wait for it forever
        await asyncio.Event().wait()


def test_a_connection_handler_that_ignores_its_cancellation_is_leaked() -> None:
    result = explorer.run(_idle_connection, _swallows_cancellation, {})
    assert result.outcome.kind == "leaked_task", result.outcome
    assert "_swallows_cancellation" in result.outcome.message


def test_an_error_a_connection_handler_raises_when_cancelled_is_a_failure() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        try:
            await asyncio.Event().wait()
        finally:
            writer.close()
            raise OSError("audit log unavailable at shutdown")

    result = explorer.run(_idle_connection, handler, {})
    assert result.outcome.kind == "exception", result.outcome
    assert "audit log unavailable at shutdown" in result.outcome.message


def test_a_task_of_the_scenario_pending_at_the_stop_stays_a_leak() -> None:
    # A task the scenario itself started is its own to await, even when it finishes
    # while the connection handlers are being cancelled.
    async def scenario() -> None:
        closing = asyncio.Event()

        async def handler(reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            try:
                await asyncio.Event().wait()
            finally:
                writer.close()
                closing.set()

        async def forgotten() -> None:
            await closing.wait()

        asyncio.get_running_loop().create_task(forgotten())
        await _idle_connection(handler, {})

    result = explorer.run(scenario)
    assert result.outcome.kind == "leaked_task", result.outcome
    assert "forgotten" in result.outcome.message


def test_tls_is_refused_with_the_fix() -> None:
    async def scenario() -> None:
        import ssl

        await asyncio.start_server(_Echo(), "127.0.0.1", 0)
        await asyncio.open_connection("127.0.0.1", FIRST_PORT,
                                      ssl=ssl.create_default_context())

    result = explorer.run(scenario)
    assert result.outcome.kind == "escape"
    assert "TLS is not simulated" in result.outcome.message


# ---------------------------------------------------------------- real libraries


def _aiohttp_shop(fixed: bool) -> Any:
    """An aiohttp application selling its last item, and an aiohttp client buying it
    twice at once: the buggy handler reads the stock, awaits (a payment call), then
    writes it back, so both requests can sell the same item."""
    from aiohttp import ClientSession, web

    async def scenario() -> None:
        stock = {"items": 1}
        lock = asyncio.Lock()

        async def buy(request: web.Request) -> web.Response:
            async with lock if fixed else contextlib.nullcontext():
                left = stock["items"]
                await asyncio.sleep(0)  # the payment provider is called here
                if left <= 0:
                    return web.json_response({"ok": False}, status=409)
                stock["items"] = left - 1
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/buy", buy)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with ClientSession() as session:
            try:
                async def one() -> int:
                    async with session.post(f"http://localhost:{port}/buy") as response:
                        return response.status

                statuses = await asyncio.gather(one(), one())
            finally:
                await runner.cleanup()
        assert sorted(statuses) == [200, 409], f"the last item was sold twice: {statuses}"

    return scenario


def test_aiohttp_server_and_client_race_is_found() -> None:
    result = explorer.explore(_aiohttp_shop(fixed=False), max_schedules=2000, seed=1,
                              raise_on_failure=False)
    assert result.failure is not None
    assert "sold twice" in result.failure.outcome.message


@pytest.mark.slow
def test_aiohttp_fixed_passes_default_and_systematic_search() -> None:
    scenario = _aiohttp_shop(fixed=True)
    assert explorer.explore(scenario, max_schedules=300, seed=1).failure is None
    assert explorer.explore(scenario, strategy="systematic", deviation_bound=2,
                            max_schedules=20_000).failure is None


def test_httpx_default_transport_against_uvicorn_in_the_scenario() -> None:
    import httpcore  # noqa: F401 - see below
    import httpx
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    # httpx imports httpcore lazily, at the first AsyncClient(); httpcore imports trio if
    # it is installed, and trio's import runs a subprocess (ldconfig), which a run
    # refuses: import it before the run, as an application's own imports would.
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        visits = {"count": 0}

        async def visit(request: Request) -> JSONResponse:
            visits["count"] += 1
            return JSONResponse({"count": visits["count"], "host": request.url.hostname})

        app = Starlette(routes=[Route("/visit", visit, methods=["POST"])])
        config = uvicorn.Config(app, host="api.internal", port=8000, log_level="error",
                                lifespan="off")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url="http://api.internal:8000") as client:
            responses = await asyncio.gather(client.post("/visit"), client.post("/visit"))
        server.should_exit = True
        await serving
        seen["bodies"] = sorted(r.json()["count"] for r in responses)
        seen["host"] = responses[0].json()["host"]

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    assert seen == {"bodies": [1, 2], "host": "api.internal"}
    assert explorer.explore(scenario, max_schedules=50, seed=1).failure is None


def test_anyio_connect_tcp_reaches_a_streams_server() -> None:
    import anyio

    seen: dict[str, Any] = {}

    async def scenario() -> None:
        echo = _Echo()
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with await anyio.connect_tcp("localhost", port) as stream:
            seen["peer"] = stream.extra(anyio.abc.SocketAttribute.remote_address)
            await stream.send(b"anyio\n")
            seen["reply"] = await stream.receive()
        await echo.finished()
        server.close()

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    assert seen["reply"] == b"echo anyio\n"
    assert seen["peer"] == ("127.0.0.1", FIRST_PORT)
