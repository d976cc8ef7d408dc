"""trio's networking over the simulated network: servers and clients started inside a
trio scenario talk over in-memory connections, each delivery of bytes is a task step the
strategy orders, and an address nothing in the scenario serves is an escape.

The scenarios use trio's own high-level API as users write it (``serve_tcp``,
``open_tcp_listeners``, ``open_tcp_stream``, ``SocketStream``), and, through real libraries,
anyio's ``connect_tcp`` on the trio backend and httpx's ``AsyncClient`` with its default
transport.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import h11
import httpx
import pytest
import trio
import trio.testing

import explorer
from explorer import strategies
from explorer._trio._network import BUFFER
from tests.conftest import ROOT

# ---------------------------------------------------------------- helpers


class Lines:
    """Reads newline-terminated messages from a trio stream (what a user writes on top of
    ``receive_some``, which returns however many bytes have arrived)."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.pending = b""

    async def read(self) -> bytes | None:
        while b"\n" not in self.pending:
            data = await self.stream.receive_some(1024)
            if not data:
                return None
            self.pending += data
        line, _, self.pending = self.pending.partition(b"\n")
        return line


async def ask(stream: trio.SocketStream, lines: Lines, request: bytes) -> bytes:
    await stream.send_all(request + b"\n")
    answer = await lines.read()
    assert answer is not None, f"the server closed the connection before answering {request!r}"
    return answer


async def serving(handler: Callable[[trio.SocketStream], Awaitable[None]],
                  body: Callable[[int], Awaitable[None]], host: str | None = None,
                  port: int = 0) -> None:
    """Start ``handler`` with serve_tcp, run ``body(port)``, then stop the server."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, handler, port) if host is None \
            else await nursery.start(
                lambda task_status: trio.serve_tcp(handler, port, host=host,
                                                   task_status=task_status))
        await body(listeners[0].socket.getsockname()[1])
        nursery.cancel_scope.cancel()


def _run(scenario: Callable[[], Awaitable[None]]) -> explorer.RunResult:
    result = explorer.run(scenario, runtime="trio")
    assert result.passed, result.outcome.message
    return result


# ---------------------------------------------------------------- echo


async def shout(stream: trio.SocketStream) -> None:
    async for data in stream:
        await stream.send_all(data.upper())


async def echo_two_clients() -> None:
    answers: dict[str, bytes] = {}

    async def body(port: int) -> None:
        async def client(word: str) -> None:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(word.encode())
                received = b""
                while len(received) < len(word):
                    received += await stream.receive_some(100)
                answers[word] = received

        async with trio.open_nursery() as clients:
            clients.start_soon(client, "hello")
            clients.start_soon(client, "world")

    await serving(shout, body)
    assert answers == {"hello": b"HELLO", "world": b"WORLD"}


@pytest.mark.slow
def test_an_echo_server_and_two_clients_pass_every_explored_schedule() -> None:
    result = explorer.explore(echo_two_clients, runtime="trio", max_schedules=300)
    assert result.failure is None
    assert result.distinct > 50  # deliveries interleave: the schedules differ


def test_port_zero_names_and_peers_are_deterministic() -> None:
    seen: list[tuple[Any, ...]] = []

    async def scenario() -> None:
        async def handler(stream: trio.SocketStream) -> None:
            seen.append(("server", stream.socket.getsockname(), stream.socket.getpeername()))
            await stream.aclose()

        async def body(port: int) -> None:
            stream = await trio.open_tcp_stream("localhost", port)
            seen.append(("client", stream.socket.getsockname(), stream.socket.getpeername()))
            assert await stream.receive_some(10) == b""  # the handler closed its end
            await stream.aclose()

        await serving(handler, body)

    _run(scenario)
    first = list(seen)
    seen.clear()
    _run(scenario)
    assert seen == first
    ends = dict((who, (mine, peer)) for who, mine, peer in first)
    assert ends["client"][1] == ends["server"][0] == ("127.0.0.1", 40000)
    assert ends["server"][1] == ends["client"][0]


# ---------------------------------------------------------------- a booking race over TCP

# One seat, two users; bob loads the page a little later than ada, so in the stock order
# ada has booked before bob asks. The buggy client asks whether a seat is free, then books
# it in a second request; the server books whatever it is asked to. If bob's question
# arrives between ada's question and her booking, both hear "1": the seat is sold twice.
# The fixed protocol checks and books in one request, which the server handles without an
# await in between.


def booking_server(seats: dict[str, Any], *, atomic: bool
                   ) -> Callable[[trio.SocketStream], Awaitable[None]]:
    async def handle(stream: trio.SocketStream) -> None:
        lines = Lines(stream)
        while (request := await lines.read()) is not None:
            verb, _, name = request.decode().partition(" ")
            if verb == "AVAILABLE":
                answer = str(seats["left"])
            elif atomic and seats["left"] == 0:
                answer = "FULL"
            else:
                seats["left"] -= 1
                seats["holders"].append(name)
                answer = "BOOKED"
            await stream.send_all(answer.encode() + b"\n")

    return handle


async def book(port: int, name: str, *, atomic: bool, rendering: int = 0) -> None:
    for _ in range(rendering):
        await trio.sleep(0)  # the page loads
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        lines = Lines(stream)
        if atomic or await ask(stream, lines, b"AVAILABLE") != b"0":
            await ask(stream, lines, b"BOOK " + name.encode())


async def _booking(atomic: bool) -> None:
    seats: dict[str, Any] = {"left": 1, "holders": []}

    async def body(port: int) -> None:
        async with trio.open_nursery() as clients:
            clients.start_soon(lambda: book(port, "ada", atomic=atomic))
            clients.start_soon(lambda: book(port, "bob", atomic=atomic, rendering=6))

    await serving(booking_server(seats, atomic=atomic), body)
    assert len(seats["holders"]) <= 1, f"one seat sold to {seats['holders']}"


async def booking_buggy() -> None:
    await _booking(atomic=False)


async def booking_fixed() -> None:
    await _booking(atomic=True)


@pytest.mark.slow
def test_the_booking_race_over_tcp_is_found_by_the_default_strategy() -> None:
    assert explorer.run(booking_buggy, runtime="trio").passed  # the stock order is fine
    result = explorer.explore(booking_buggy, runtime="trio", max_schedules=2000, seed=0,
                              raise_on_failure=False)
    failure = result.failure
    assert failure is not None and failure.kind == "assertion"
    assert "one seat sold to" in failure.outcome.message
    # The shrunk schedule replays to the same failure.
    replayed = explorer.run(booking_buggy, schedule=failure.schedule, runtime="trio")
    assert replayed.outcome.kind == "assertion"


@pytest.mark.slow
def test_the_fixed_booking_protocol_passes() -> None:
    assert explorer.explore(booking_fixed, runtime="trio", max_schedules=300,
                            seed=0).failure is None
    systematic = explorer.explore(booking_fixed, runtime="trio", strategy="systematic",
                                  deviation_bound=2, max_schedules=100_000)
    assert systematic.failure is None
    assert systematic.exhausted


@pytest.mark.slow
def test_a_network_schedule_gives_the_same_trace_every_time() -> None:
    # Unshrunk: any failing schedule will do, and shrinking it costs more than the check.
    failure = explorer.explore(booking_buggy, runtime="trio", max_schedules=2000, seed=0,
                               shrink=False, raise_on_failure=False).failure
    assert failure is not None
    hashes = {explorer.run(booking_buggy, schedule=failure.schedule, runtime="trio").trace.hash()
              for _ in range(3)}
    assert len(hashes) == 1
    # A fresh process with another hash seed: same ports, same deliveries, same trace.
    child = (
        "import sys, explorer\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.test_trio_network import booking_buggy\n"
        f"print(explorer.run(booking_buggy, schedule={str(failure.schedule)!r}, "
        "runtime='trio').trace.hash())\n"
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          check=True, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "7"})
    assert proc.stdout.split() == list(hashes)


# ---------------------------------------------------------------- stream semantics


def test_half_close_eof_and_close() -> None:
    async def scenario() -> None:
        async def handler(stream: trio.SocketStream) -> None:
            request = b""
            while data := await stream.receive_some(3):  # several small reads, then EOF
                request += data
            await stream.send_all(b"got " + request)
            await stream.aclose()
            with pytest.raises(trio.ClosedResourceError):
                await stream.receive_some(10)

        async def body(port: int) -> None:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"question")
            await stream.send_eof()
            with pytest.raises(trio.ClosedResourceError):
                await stream.send_all(b"more")
            reply = b""
            while data := await stream.receive_some(100):
                reply += data
            assert reply == b"got question"
            assert await stream.receive_some(100) == b""  # EOF stays EOF
            await stream.aclose()

        await serving(handler, body)

    _run(scenario)


def test_sending_to_a_closed_peer_breaks_and_closing_wakes_a_blocked_receiver() -> None:
    async def scenario() -> None:
        accepted: list[trio.SocketStream] = []
        closed = trio.Event()

        async def handler(stream: trio.SocketStream) -> None:
            accepted.append(stream)
            if len(accepted) == 2:
                await trio.sleep_forever()  # keeps the second connection open
            await stream.aclose()
            closed.set()

        async def body(port: int) -> None:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await closed.wait()
            with pytest.raises(trio.BrokenResourceError):
                await stream.send_all(b"anyone there?")
            await stream.aclose()

            other = await trio.open_tcp_stream("127.0.0.1", port)
            async with trio.open_nursery() as nursery:
                async def receive() -> None:
                    with pytest.raises(trio.ClosedResourceError):
                        await other.receive_some(10)

                nursery.start_soon(receive)
                await trio.testing.wait_all_tasks_blocked()
                await other.aclose()

        await serving(handler, body)
        assert len(accepted) == 2

    _run(scenario)


def test_send_all_waits_while_the_peer_does_not_read() -> None:
    async def scenario() -> None:
        payload = bytes(range(256)) * (3 * BUFFER // 256)
        sent = trio.Event()
        received = bytearray()

        async def handler(stream: trio.SocketStream) -> None:
            await trio.testing.wait_all_tasks_blocked()
            assert not sent.is_set(), "send_all finished although nobody read"
            while len(received) < len(payload):
                received.extend(await stream.receive_some(50_000))
            await stream.aclose()

        async def body(port: int) -> None:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(payload)
            sent.set()
            await stream.wait_send_all_might_not_block()
            assert await stream.receive_some(10) == b""
            await stream.aclose()

        await serving(handler, body)
        assert bytes(received) == payload

    _run(scenario)


def test_connecting_after_the_server_stopped_is_refused() -> None:
    async def scenario() -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        waiting = await trio.open_tcp_stream("127.0.0.1", port)  # in the backlog
        await listeners[0].aclose()
        with pytest.raises(trio.BrokenResourceError) as reset:
            await waiting.receive_some(10)
        assert isinstance(reset.value.__cause__, ConnectionResetError)
        await waiting.aclose()
        with pytest.raises(OSError, match="all attempts to connect") as info:
            await trio.open_tcp_stream("127.0.0.1", port)
        assert isinstance(info.value.__cause__.exceptions[0],  # type: ignore[union-attr]
                          ConnectionRefusedError)

    _run(scenario)


def test_a_unix_socket_server_and_client() -> None:
    async def scenario() -> None:
        sock = trio.socket.socket(socket.AF_UNIX)
        await sock.bind("/run/app.sock")
        sock.listen()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, shout, [trio.SocketListener(sock)])
            stream = await trio.open_unix_socket("/run/app.sock")
            await stream.send_all(b"ping")
            assert await stream.receive_some(10) == b"PING"
            await stream.aclose()
            nursery.cancel_scope.cancel()

    _run(scenario)


def test_both_wildcards_share_one_port() -> None:
    async def scenario() -> None:
        first = await trio.open_tcp_listeners(8080, host="0.0.0.0")
        second = await trio.open_tcp_listeners(8080, host="::")  # IPv6 beside IPv4, as trio
        assert second[0].socket.getsockname()[:2] == ("::1", 8080)
        with pytest.raises(OSError, match="address already in use"):
            await trio.open_tcp_listeners(8080, host="127.0.0.1")
        stream = await trio.open_tcp_stream("127.0.0.1", 8080)
        accepted = await first[0].accept()  # the IPv4 listener gets the connection
        assert accepted.socket.getpeername() == stream.socket.getsockname()
        await stream.send_all(b"hi")
        buffer = bytearray(10)
        assert await accepted.socket.recv_into(buffer) == 2 and buffer[:2] == b"hi"
        for resource in (stream, accepted, *first, *second):
            await resource.aclose()

    _run(scenario)


# ---------------------------------------------------------------- partial-order reduction


async def two_connections(finals: list[tuple[Any, ...]]) -> None:
    """Two connections to one listener, each a sender of two chunks and a receiver that
    reads until EOF: which connection each task accepts, and how the chunks are grouped
    into receives, depend on the schedule."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    received: dict[str, tuple[bytes, ...]] = {}

    async def connection(name: str) -> None:
        client = trio.socket.socket()
        await client.connect(("127.0.0.1", port))
        server = await listener.accept()

        async def sender() -> None:
            await client.send(name.encode())
            await client.send(b"!")
            client.shutdown(trio.socket.SHUT_WR)

        async def receiver() -> None:
            parts = []
            while data := await server.receive_some(10):
                parts.append(data)
            received[name] = tuple(parts)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            nursery.start_soon(receiver)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection, "x")
        nursery.start_soon(connection, "y")
    finals.append(tuple(sorted(received.items())))


@pytest.mark.slow
def test_reduction_with_declared_footprints_keeps_every_network_outcome() -> None:
    def final_states(strategy: Any, budget: int) -> tuple[set[tuple[Any, ...]], bool]:
        finals: list[tuple[Any, ...]] = []
        result = explorer.explore(two_connections, finals, runtime="trio",
                                  strategy=strategy, max_schedules=budget, seed=0)
        return set(finals), result.exhausted

    reduced, exhausted = final_states(strategies.DPOR(declared=True), 20_000)
    sampled, _ = final_states("random", 1000)  # reaches all 8 from 300 schedules on
    assert exhausted
    assert sampled <= reduced, sampled - reduced
    assert len(reduced) == 8  # 2 ways to pair the accepts x 2 groupings per connection


# ---------------------------------------------------------------- named hosts


def test_a_server_on_a_host_name_is_reached_by_that_name() -> None:
    async def scenario() -> None:
        async def body(port: int) -> None:
            assert port == 5432
            addresses = await trio.socket.getaddrinfo("db.internal", 5432)
            assert addresses[0][4][0].startswith("10.")  # a fixed address for the name
            stream = await trio.open_tcp_stream("db.internal", 5432)
            await stream.send_all(b"select")
            assert await stream.receive_some(10) == b"SELECT"
            await stream.aclose()

        await serving(shout, body, host="db.internal", port=5432)

    _run(scenario)


def test_an_alias_sends_a_named_client_to_a_local_server() -> None:
    async def scenario() -> None:
        async def body(port: int) -> None:
            explorer.alias("payments.example", 443, to=("127.0.0.1", port))
            stream = await trio.open_tcp_stream("payments.example", 443)
            await stream.send_all(b"charge")
            assert await stream.receive_some(10) == b"CHARGE"
            await stream.aclose()

        await serving(shout, body)

    _run(scenario)


# ---------------------------------------------------------------- injected faults

# A payment client that retries once when the connection breaks, against a server that
# charges before it answers. A response dropped after the charge makes the retry charge
# twice; the fixed client sends an idempotency key, which the server remembers.


def payment_server(charges: list[str], seen: set[str]
                   ) -> Callable[[trio.SocketStream], Awaitable[None]]:
    async def handle(stream: trio.SocketStream) -> None:
        lines = Lines(stream)
        try:
            while (request := await lines.read()) is not None:
                key = request.decode()
                if key not in seen:
                    seen.add(key)
                    charges.append(key.partition("#")[0])
                await stream.send_all(b"CHARGED\n")
        except trio.BrokenResourceError:
            pass  # the client went away

    return handle


async def _payments(idempotent: bool) -> None:
    charges: list[str] = []

    async def body(port: int) -> None:
        key = "order-7#key-1" if idempotent else "order-7"
        for attempt in range(2):
            try:
                with trio.fail_after(5):
                    stream = await trio.open_tcp_stream("127.0.0.1", port)
                    async with stream:
                        await ask(stream, Lines(stream),
                                  key.encode() if idempotent else f"{key}#{attempt}".encode())
                return
            except (OSError, trio.BrokenResourceError, trio.TooSlowError):
                continue

    await serving(payment_server(charges, set()), body)
    assert len(charges) <= 1, f"charged {len(charges)} times for one order"


async def payments_buggy() -> None:
    await _payments(idempotent=False)


async def payments_fixed() -> None:
    await _payments(idempotent=True)


def test_without_faults_nothing_fails_and_no_decision_is_added() -> None:
    result = explorer.explore(payments_buggy, runtime="trio", max_schedules=200)
    assert result.failure is None
    stock = explorer.run(payments_buggy, runtime="trio")
    assert stock.passed and not any(stock.decisions)


def test_a_dropped_response_and_a_retry_charge_twice() -> None:
    failure = explorer.explore(payments_buggy, runtime="trio", faults=True, seed=0,
                               max_schedules=2000, raise_on_failure=False).failure
    assert failure is not None and failure.kind == "assertion"
    assert "charged 2 times" in failure.outcome.message
    story = str(failure)
    # The answer to the first charge is lost after the server charged: dropped, or never
    # coming (the client's timeout fires); shrinking keeps whichever is simpler.
    assert "127.0.0.1:40000" in story
    assert "was dropped after the server processed" in story or "never came" in story


def test_the_idempotency_key_survives_every_fault() -> None:
    assert explorer.explore(payments_fixed, runtime="trio", faults=True,
                            max_schedules=300).failure is None
    systematic = explorer.explore(payments_fixed, runtime="trio", faults=True,
                                  strategy="systematic", deviation_bound=2,
                                  max_schedules=100_000)
    assert systematic.failure is None and systematic.exhausted


def test_refused_reset_and_unanswered_faults_reach_trio_code() -> None:
    outcomes: list[str] = []

    async def scenario() -> None:
        async def body(port: int) -> None:
            try:
                with trio.fail_after(5):
                    stream = await trio.open_tcp_stream("127.0.0.1", port)
                    await stream.send_all(b"hello")
                    assert await stream.receive_some(10) == b"HELLO"
                    await stream.aclose()
                outcomes.append("answered")
            except OSError as exc:  # open_tcp_stream wraps the refusal
                cause = exc.__cause__
                inner = cause.exceptions[0] if isinstance(cause, ExceptionGroup) else exc
                outcomes.append(type(inner).__name__)
            except trio.BrokenResourceError as exc:
                outcomes.append(type(exc.__cause__).__name__)
            except trio.TooSlowError:
                outcomes.append("timed out")

        await serving(shout, body)

    systematic = explorer.explore(scenario, runtime="trio", faults=True,
                                  strategy="systematic", deviation_bound=1)
    assert systematic.failure is None
    assert set(outcomes) == {"answered", "ConnectionRefusedError", "ConnectionResetError",
                             "timed out"}


# ---------------------------------------------------------------- escapes


@pytest.fixture
def real_listener() -> Iterator[socket.socket]:
    """A real listener on 127.0.0.1, made outside any scenario."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.setblocking(False)
        yield sock


def _escape(scenario: Callable[[], Awaitable[None]]) -> explorer.RunResult:
    result = explorer.run(scenario, runtime="trio")
    assert result.outcome.kind == "escape", result.outcome.message
    return result


def test_an_unserved_address_is_an_escape_and_nothing_connects(
        real_listener: socket.socket) -> None:
    port = real_listener.getsockname()[1]

    async def scenario() -> None:
        await trio.open_tcp_stream("127.0.0.1", port)

    outcome = _escape(scenario).outcome
    message = outcome.message
    # located at the user's call, though trio connects in a task of its own
    assert outcome.location is not None and outcome.location.function.endswith(".scenario")
    assert f"127.0.0.1:{port}" in message
    assert "start the server inside the scenario" in message
    assert "explorer.alias" in message
    with pytest.raises(BlockingIOError):
        real_listener.accept()


def test_an_unserved_name_is_an_escape_before_any_lookup() -> None:
    async def scenario() -> None:
        await trio.open_tcp_stream("api.example.com", 443)

    message = _escape(scenario).outcome.message
    assert "'api.example.com'" in message and "explorer.alias" in message


def test_udp_is_an_escape() -> None:
    async def scenario() -> None:
        trio.socket.socket(type=socket.SOCK_DGRAM)

    assert "only TCP and Unix stream sockets" in _escape(scenario).outcome.message


# ---------------------------------------------------------------- real libraries


def test_anyio_connect_tcp_on_the_trio_backend() -> None:
    async def scenario() -> None:
        async def body(port: int) -> None:
            async with await anyio.connect_tcp("localhost", port) as client:
                await client.send(b"anyio")
                assert await client.receive() == b"ANYIO"
                remote = client.extra(anyio.abc.SocketAttribute.remote_address)
                assert remote == ("127.0.0.1", port)

        await serving(shout, body)

    _run(scenario)


async def http_handler(stream: trio.SocketStream) -> None:
    """A minimal HTTP/1.1 server (h11 over the trio stream): answers each request with its
    method and path."""
    connection = h11.Connection(h11.SERVER)
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await stream.receive_some(4096))
            continue
        if isinstance(event, h11.Request):
            body = f"{event.method.decode()} {event.target.decode()}".encode()
            await stream.send_all(connection.send(h11.Response(
                status_code=200, headers=[("content-length", str(len(body)))])) or b"")
            await stream.send_all(connection.send(h11.Data(data=body)) or b"")
            await stream.send_all(connection.send(h11.EndOfMessage()) or b"")
        elif isinstance(event, h11.EndOfMessage):
            connection.start_next_cycle()
        else:
            await stream.aclose()
            return


@pytest.mark.skipif(shutil.which("openssl") is None, reason="makes its certificate with "
                    "the openssl command")
def test_tls_with_trio_ssl_streams(tmp_path: Path) -> None:
    """trio's TLS is computed in memory over any stream, so it runs over the simulated one:
    both ends do a real handshake with a certificate made for the test."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"),
                    "-subj", "/CN=api.internal", "-addext", "subjectAltName=DNS:api.internal"],
                   check=True, capture_output=True)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))

    async def handler(stream: trio.SocketStream) -> None:
        secure = trio.SSLStream(stream, server_context, server_side=True)
        await secure.send_all((await secure.receive_some(100)).upper())
        await secure.aclose()

    async def scenario() -> None:
        async def body(port: int) -> None:
            stream = await trio.open_ssl_over_tcp_stream("api.internal", port,
                                                         ssl_context=client_context)
            await stream.send_all(b"secret")
            assert await stream.receive_some(100) == b"SECRET"
            await stream.aclose()

        await serving(handler, body, host="api.internal", port=443)

    _run(scenario)


def test_httpx_default_transport_under_trio() -> None:
    async def scenario() -> None:
        async def body(port: int) -> None:
            async with httpx.AsyncClient(base_url=f"http://api.internal:{port}") as client:
                first, second = await client.get("/a"), await client.post("/b")
            assert (first.text, second.text) == ("GET /a", "POST /b")

        await serving(http_handler, body, host="api.internal")

    _run(scenario)
