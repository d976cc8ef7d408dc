"""The simulated network of the controlled asyncio loop: in-memory servers and transports.

Invariant enforced here: no byte and no lookup leaves the process. Every server the
scenario starts (``loop.create_server``, ``create_unix_server`` and what is built on them:
``asyncio.start_server``, aiohttp's ``TCPSite``, ``uvicorn.Server.serve()``) listens on an
address of the run's :class:`~explorer._network.Network`; every client connection
(``loop.create_connection``, ``create_unix_connection``, ``sock_connect`` on a socket that
is not connected yet, and what is built on them: ``asyncio.open_connection``, anyio's
``connect_tcp``, httpx's default transport, aiohttp's connector) is a pair of
:class:`SimTransport` ends joined in memory. An address nothing in the run serves is
refused as an escape; one that was served and closed is refused with
``ConnectionRefusedError``, as a real peer does.

Semantics kept from real sockets: write buffering, flow control at the usual water marks
(``pause_writing`` above 64 KiB not yet delivered, ``resume_writing`` at 16 KiB, changed
with ``set_write_buffer_limits``), ``pause_reading``/``resume_reading`` (bytes wait with
the writer meanwhile), ``write_eof`` and half-close (``eof_received``'s return value
honoured), ``close`` after flushing, ``abort`` (unsent bytes dropped; the peer sees a
reset if its own bytes were still on their way, else the end of the stream), ``connection_lost``
exactly once, ``get_extra_info("peername" / "sockname" / "socket")``, both ``Protocol``
and ``BufferedProtocol``.

Scheduling: connecting, accepting and every delivery of bytes (or of an EOF, or a reset)
to a reader run as loop callbacks that the strategy may reorder against every task and
against the network callbacks of other connections (:meth:`NetworkLoop._call_io`). A
connection's bytes in one direction keep their order: one delivery at a time is queued
per direction, and it carries what is pending when it runs, which is what a stock loop
reading a loopback socket sees for writes made before the reader's turn. How much one
delivery carries is an explored choice (:meth:`SimTransport._chunk`) when faults are on
(a network that delivers in pieces is one more imperfection) and two or more writes are
pending: option 0 delivers everything, option 1 stops at the end of the first pending
write. A split inside one write is never offered: on loopback a message written at once
arrives at once in practice, and offering it would report code that reads a small request
with one ``read(n)`` as broken on every run. With faults off (the default) no delivery is
a decision, so default schedules stay free of within-step choices, which ``dpor`` cannot
reduce over (it refuses faults for that reason) and which must be made the same way in
every mode of a run.

Ordering within a connection end: an event of an end (its ``connection_made``, a delivery
of bytes, its EOF, its ``connection_lost``) never overtakes the task steps and callbacks
that the previous such callback of its protocol queued (a task started in
``connection_made``, a reader woken by ``data_received``): a real loop queues that work
before the next poll can report the socket again, so it always runs first. The next event
is held behind that work (:meth:`SimTransport._event` records it; ``_call_io`` and
``_call_held`` hold behind it), and an EOF that follows bytes whose callback queued work
is a delivery of its own. Work queued by other tasks, and other connections' events, are
still overtaken in any order.
The in-memory link has no kernel buffer: a delivery hands the bytes to the reader's
protocol, and back-pressure comes from the reader pausing (a ``StreamReader`` past twice
its limit), as it does on a real transport once the socket buffers are full.

The methods a fault hooks into are small and named: :meth:`NetworkLoop._connect` (a
connection attempt reaching a listener), :meth:`SimServer._accept` (the server taking
it), :meth:`SimTransport._deliver` (one delivery to the peer), :meth:`SimTransport._reset`
(the peer's reset arriving) and :meth:`SimTransport._lose` (``connection_lost``).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from explorer._errors import EscapeError
from explorer._faults import fault_at
from explorer._network import (
    UNIX,
    Address,
    Lookup,
    Network,
    canonical_host,
    ip_literal,
    unserved_fix,
)
from explorer._patching import Patches
from explorer._runtime import Candidate

if TYPE_CHECKING:
    from asyncio import events

TLS_FIX: Final = (
    "TLS is not simulated: in-memory connections carry plain bytes; connect without ssl "
    "(http:// rather than https://, redis:// rather than rediss://) in the scenario"
)
SOCKET_FIX: Final = (
    "only sockets the controlled loop connected itself (loop.sock_connect on a fresh "
    "socket) or listening sockets of its own servers (server.sockets) can be used here; "
    "pass host and port instead of sock=, so the connection is made in memory"
)
_RESET: Final = "Connection reset by peer"
WRITE_HIGH_WATER: Final = 64 * 1024
"""asyncio's default high-water mark of a write buffer (the low one is a quarter)."""


class SimSocket:
    """What ``server.sockets`` and ``get_extra_info("socket")`` return: the few socket
    methods frameworks read (names, family, options), none that does I/O."""

    def __init__(self, sockname: Address, peername: Address | None = None) -> None:
        self._sockname = sockname
        self._peername = peername
        self.family = socket.AF_UNIX if sockname.port == UNIX else socket.AF_INET
        self.type = socket.SOCK_STREAM
        self.proto = 0 if sockname.port == UNIX else socket.IPPROTO_TCP
        self._options: dict[tuple[int, int], object] = {}

    def getsockname(self) -> tuple[str, int] | str:
        address = self._sockname
        return address.host if address.port == UNIX else address.sockaddr()

    def getpeername(self) -> tuple[str, int] | str:
        address = self._peername
        if address is None:
            raise OSError(107, "Transport endpoint is not connected")
        return address.host if address.port == UNIX else address.sockaddr()

    def fileno(self) -> int:
        return -1  # no descriptor: code that would poll it must go through the loop

    def setsockopt(self, level: int, option: int, value: object, *rest: object) -> None:
        self._options[(level, option)] = value  # kept for getsockopt; no effect in memory

    def getsockopt(self, level: int, option: int, *rest: object) -> object:
        return self._options.get((level, option), 0)

    def setblocking(self, flag: bool) -> None:
        return None

    def settimeout(self, value: float | None) -> None:
        return None

    def gettimeout(self) -> float | None:
        return 0.0

    def close(self) -> None:
        return None

    def detach(self) -> int:
        return -1

    def __repr__(self) -> str:
        peer = f", raddr={self._peername}" if self._peername is not None else ""
        return f"<explorer simulated socket laddr={self._sockname}{peer}>"


class SimTransport(asyncio.Transport):
    """One end of an in-memory stream connection (module docstring).

    Bytes written here wait in ``_outgoing`` until a delivery hands them to the peer's
    protocol; that is the write buffer flow control measures."""

    _protocol: asyncio.BaseProtocol

    def __init__(self, loop: NetworkLoop, sockname: Address, peername: Address,
                 server: SimServer | None = None) -> None:
        super().__init__({"sockname": _sockaddr(sockname), "peername": _sockaddr(peername),
                          "socket": SimSocket(sockname, peername)})
        self._loop = loop
        self._sim_loop = loop
        self._high_water = WRITE_HIGH_WATER
        self._low_water = WRITE_HIGH_WATER // 4
        self._writing_paused = False  # pause_writing was called, resume_writing not yet
        self._sockname = sockname
        self._peername = peername
        self._server = server
        self._process = f"net {sockname}>{peername}"  # who delivers this end's bytes
        self.peer: SimTransport | None = None
        self._outgoing = bytearray()
        self._writes: collections.deque[int] = collections.deque()  # sizes, for splits
        self._eof_queued = False  # write_eof or close: the peer gets an EOF after the bytes
        self._eof_sent = False
        self._delivery: events.Handle | None = None
        self._connected = False  # connection_made has run
        self._reading = True
        self._closing = False
        self._lost = False  # connection_lost has been scheduled
        self._real_socket: socket.socket | None = None  # from loop.sock_connect, closed at end
        loop._net_objects.append(self)
        self._faulted = False  # an injected fault struck this connection (see _fault)
        self._unanswered = False  # what this end writes never arrives (fault unanswered)
        # What this end's latest protocol event queued, which its next event waits for,
        # and where the queue ended when the event in progress began (module docstring).
        self._fence: tuple[events.Handle, ...] = ()
        self._event_mark: int | None = None

    # -------------------------------------------------------------- attaching a protocol

    def _attach(self, protocol: asyncio.BaseProtocol,
                waiter: asyncio.Future[None] | None = None) -> None:
        """Give this end its protocol: ``connection_made`` runs as a callback, then data
        may flow in (as a real transport registers its reader after it)."""
        self._protocol = protocol
        loop = self._sim_loop
        loop.call_soon(self._made)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter)

    def _made(self) -> None:
        if self._closing:
            return
        self._event(self._protocol.connection_made, self)
        self._connected = True
        if self.peer is not None:
            self.peer._schedule_delivery()

    def _event(self, callback: Callable[..., object], *args: Any) -> object:
        """Run one callback of this end's protocol that the peer's side causes (made,
        bytes, EOF) and keep what it queued: this end's next event waits for it."""
        loop = self._sim_loop
        mark = self._event_mark = loop._queue_mark()
        born = len(loop.tasks)
        try:
            return callback(*args)
        finally:
            self._event_mark = None
            self._fence = loop._queued_since(mark)
            if self._server is not None and len(loop.tasks) > born:
                loop.served.extend(loop.tasks[born:])  # the server's: asyncio.run ends them

    def _fence_now(self) -> tuple[events.Handle, ...]:
        """What an event of this end queued now must wait for: the latest event's work,
        and, inside an event, what it queued so far."""
        if self._event_mark is None:
            return self._fence
        return self._fence + self._sim_loop._queued_since(self._event_mark)

    # -------------------------------------------------------------- writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not "
                            f"{type(data).__name__!r}")
        if self._eof_queued and not self._closing:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data or self._closing or self.peer is None:
            return  # a write after close or a reset goes nowhere, as on a real transport
        self._outgoing += data
        self._writes.append(len(data))
        self._schedule_delivery()
        self._maybe_pause_protocol()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._eof_queued or self._closing:
            return
        self._eof_queued = True
        self._schedule_delivery()

    def get_write_buffer_size(self) -> int:
        return len(self._outgoing)

    # -------------------------------------------------------------- delivering

    def _schedule_delivery(self) -> None:
        """Queue one delivery of this end's pending bytes (or EOF) to the peer, if the peer
        can take it and none is queued: one per direction keeps the order."""
        peer = self.peer
        if self._delivery is not None or peer is None:
            return
        if not self._outgoing and not (self._eof_queued and not self._eof_sent):
            return
        if not peer._closing and not (peer._connected and peer._reading):
            return  # resumed by the peer's connection_made or resume_reading
        if peer._event_mark is not None:
            return  # queued when the peer's event ends (by _made or _deliver), behind it
        self._delivery = self._sim_loop._call_io(self._deliver, process=self._process,
                                                 after=peer._fence)

    def _chunk(self) -> int:
        """How many pending bytes the next delivery carries (module docstring): all of
        them, or, as an explored choice when several writes are pending, the first."""
        pending = len(self._outgoing)
        writes = self._writes
        if len(writes) < 2 or not self._sim_loop.faults:
            # Offered only with faults on (module docstring): never under dpor, which
            # refuses faults, and the same in every mode of a run, so replays match.
            return pending
        first = writes[0]
        where = str(self._peername)
        options = (
            Candidate(None, "callback", None, f"deliver {pending} bytes", where),
            Candidate(None, "callback", None,
                      f"deliver the first write ({first} of {pending} bytes)", where),
        )
        return first if self._sim_loop.decide(options) else pending

    def _consume(self, size: int) -> bytes:
        """Take ``size`` bytes off the front of what is pending, and their writes."""
        data = bytes(self._outgoing[:size])
        del self._outgoing[:size]
        writes = self._writes
        while writes and size >= writes[0]:
            size -= writes.popleft()
        if size and writes:
            writes[0] -= size
        return data

    def _deliver(self) -> None:
        """One delivery to the peer: pending bytes, then the EOF once they are all out."""
        self._delivery = None
        peer = self.peer
        if peer is None:
            return
        size = self._chunk()
        if self._unanswered:
            self._swallow()
            return
        if size and self._sim_loop.faults and self._fault():
            return
        if size:
            peer._receive(self._consume(size))
            self._maybe_resume_protocol()
        if self._outgoing or (size and peer._fence):
            # More bytes, or an EOF that must wait for what these bytes' callback queued
            # (a real loop reports it at a later poll): a delivery of its own.
            self._schedule_delivery()
            return
        if self._eof_queued and not self._eof_sent:
            self._eof_sent = True
            peer._receive_eof()
        if self._closing:
            self._lose(None)

    def _fault(self) -> bool:
        """Ask whether an injected fault (:mod:`explorer._faults`) strikes this delivery,
        and apply it; True when nothing is delivered. A connection is asked until its
        first fault: ``reset`` for the client's bytes (lost, and both ends reset: the
        server never saw them), ``dropped`` or ``unanswered`` for the server's (it has
        processed the request: its response is lost and both ends reset, or it is held
        forever, so the client waits until its own timeout)."""
        peer = self.peer
        if self._faulted or peer is None:
            return False
        responding = self._server is not None  # this is the server's end
        address = self._sockname if responding else self._peername
        kind = fault_at(self._sim_loop, "respond" if responding else "deliver",
                        _named(self._sim_loop, address))
        if kind is None:
            return False
        self._faulted = peer._faulted = True
        if kind == "unanswered":
            self._unanswered = True
            self._swallow()
        else:
            self._reset()
            peer._reset()
        return True

    def _swallow(self) -> None:
        """``unanswered``: what this end writes vanishes and nothing, not even an EOF,
        reaches the peer; this end's own close completes (its bytes left the host)."""
        self._outgoing.clear()
        self._writes.clear()
        self._maybe_resume_protocol()
        if self._closing:
            self._lose(None)

    def _receive(self, data: bytes) -> None:
        """Bytes from the peer reach this end's protocol (dropped once it is closed)."""
        if not self._closing:
            self._event(self._hand_over, data)

    def _hand_over(self, data: bytes) -> None:
        protocol = self._protocol
        if isinstance(protocol, asyncio.BufferedProtocol):
            view = memoryview(data)
            while view:
                buffer = memoryview(protocol.get_buffer(len(view))).cast("B")
                if not buffer:
                    raise RuntimeError("get_buffer() returned an empty buffer")
                n = min(len(buffer), len(view))
                buffer[:n] = view[:n]
                protocol.buffer_updated(n)
                view = view[n:]
        else:
            protocol.data_received(data)  # type: ignore[attr-defined]

    def _receive_eof(self) -> None:
        if self._closing:
            return
        keep_open = self._event(self._protocol.eof_received)  # type: ignore[attr-defined]
        if not keep_open:  # connection_lost, after what eof_received queued (_lose)
            self.close()

    # -------------------------------------------------------------- reading

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if self._reading:
            return
        self._reading = True
        if self.peer is not None:
            self.peer._schedule_delivery()

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    # -------------------------------------------------------------- closing

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading, flush what was written, send the EOF, then ``connection_lost``."""
        if self._closing:
            return
        self._closing = True
        if self.peer is None or (not self._outgoing and self._eof_sent):
            self._lose(None)
            return
        # If the peer reads nothing now, the bytes stay queued and the close completes once
        # it reads again (as a real close waits for the kernel to take the buffer).
        self._eof_queued = True
        self._schedule_delivery()

    def abort(self) -> None:
        """Close at once, dropping what was not delivered. As a real socket closed with
        data still unread: if the peer's bytes are on their way here, the peer sees a
        reset; otherwise it sees the end of the stream (after a ``close()`` whose bytes
        are out, anyio's ``aclose`` aborts, and the peer reads a clean EOF)."""
        if self._lost:
            return
        self._closing = True
        self._outgoing.clear()
        self._writes.clear()
        if self._delivery is not None:
            self._delivery.cancel()
            self._delivery = None
        peer = self.peer
        if peer is not None and not peer._lost and peer._outgoing:
            self.peer = peer.peer = None
            self._sim_loop._call_io(peer._reset, process=self._process)
        elif peer is not None and not self._eof_sent:
            self._eof_queued = True
            self._schedule_delivery()
        self._lose(None)

    def _reset(self, exc: Exception | None = None) -> None:
        """The peer reset the connection: what this end had not delivered is dropped and
        its protocol loses the connection with ``ConnectionResetError``."""
        if self._lost:
            return
        self.peer = None
        self._closing = True
        self._outgoing.clear()
        self._writes.clear()
        if self._delivery is not None:
            self._delivery.cancel()
            self._delivery = None
        self._lose(exc if exc is not None else ConnectionResetError(104, _RESET))

    def _retire(self) -> None:
        """Its run is over: closing, writing or reading it later does nothing."""
        self._closing = self._lost = True
        self.peer = None
        self._server = None
        self._delivery = None
        self._outgoing.clear()
        self._writes.clear()

    def _lose(self, exc: Exception | None) -> None:
        """Schedule ``connection_lost(exc)``, once; the server forgets the connection."""
        if self._lost:
            return
        self._lost = True
        self._closing = True
        # A plain callback, as on a real loop; held behind this end's latest event's work.
        self._sim_loop._call_held(self._connection_lost, exc, after=self._fence_now())

    def _connection_lost(self, exc: Exception | None) -> None:
        try:
            if self._connected:
                self._protocol.connection_lost(exc)
        finally:
            if self._real_socket is not None:
                self._real_socket.close()
                self._real_socket = None
            if self._server is not None:
                self._server._detach(self)
                self._server = None

    # -------------------------------------------------------------- the rest of the API

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    # -------------------------------------------------------------- write flow control

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """As asyncio's: ``high`` defaults to 64 KiB (or 4 * ``low``), ``low`` to high / 4."""
        if high is None:
            high = WRITE_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water = high
        self._low_water = low
        self._maybe_pause_protocol()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def _maybe_pause_protocol(self) -> None:
        """``pause_writing`` once the bytes not yet delivered exceed the high-water mark."""
        if self._writing_paused or len(self._outgoing) <= self._high_water:
            return
        self._writing_paused = True
        self._tell_protocol("pause_writing")

    def _maybe_resume_protocol(self) -> None:
        """``resume_writing`` once they are down to the low-water mark."""
        if self._writing_paused and len(self._outgoing) <= self._low_water:
            self._writing_paused = False
            self._tell_protocol("resume_writing")

    def _tell_protocol(self, name: str) -> None:
        try:
            getattr(self._protocol, name)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - reported as asyncio reports it
            self._sim_loop.call_exception_handler({
                "message": f"protocol.{name}() failed", "exception": exc,
                "transport": self, "protocol": self._protocol,
            })

    def __repr__(self) -> str:
        state = "closing" if self._closing else "open"
        return f"<SimTransport {self._sockname} -> {self._peername} {state}>"


def _named(loop: NetworkLoop, address: Address) -> str:
    """How a fault names a connection: its server's address, by host name if it has one."""
    return str(Address(loop.network.host_name(address.host), address.port))


def _sockaddr(address: Address) -> tuple[str, int] | str:
    return address.host if address.port == UNIX else address.sockaddr()


def _set_result_unless_cancelled(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.set_result(None)


class SimServer(asyncio.AbstractServer):
    """A server of the scenario, listening on addresses of the run's network."""

    def __init__(self, loop: NetworkLoop, protocol_factory: Callable[[], asyncio.BaseProtocol],
                 backlog: int) -> None:
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._backlog = max(backlog, 1)
        self.addresses: list[Address] = []
        self._sockets: list[SimSocket] = []
        self._serving = False
        self._closed = False
        self._pending: collections.deque[SimTransport] = collections.deque()
        self._connections: set[SimTransport] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._serving_forever: asyncio.Future[None] | None = None
        loop._net_objects.append(self)

    def _retire(self) -> None:
        """Its run is over: nothing it does later reaches the loop or the network."""
        self._closed = True
        self._serving = False
        self._pending.clear()
        self._connections.clear()
        self._waiters.clear()
        self._serving_forever = None

    @property
    def sockets(self) -> tuple[SimSocket, ...]:
        return () if self._closed else tuple(self._sockets)

    def _listen(self, address: Address) -> None:
        self.addresses.append(address)
        self._sockets.append(SimSocket(address))

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving and not self._closed

    # -------------------------------------------------------------- accepting

    def _enqueue(self, end: SimTransport) -> None:
        """A connection attempt reached this listener: accept it when serving (as a loop
        callback), else it waits in the backlog."""
        if self._serving:
            # One process per connection: accepts of different connections are
            # independent candidates (dpor tells processes apart by this name).
            self._loop._call_io(self._accept, end, process=f"accept {end._peername}")
        else:
            self._pending.append(end)

    def _accept(self, end: SimTransport) -> None:
        """The server takes one connection: its protocol is made and attached."""
        if self._closed or end._closing:
            if end.peer is not None:
                end.peer._reset()
            return
        protocol = self._protocol_factory()
        self._connections.add(end)
        end._server = self
        end._attach(protocol)

    def _detach(self, end: SimTransport) -> None:
        self._connections.discard(end)
        if self._closed and not self._connections:
            self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -------------------------------------------------------------- lifecycle

    async def start_serving(self) -> None:
        if self._closed:
            raise RuntimeError(f"server {self!r} is closed")
        if not self._serving:
            self._serving = True
            while self._pending:
                self._enqueue(self._pending.popleft())
        await asyncio.sleep(0)

    async def serve_forever(self) -> None:
        if self._serving_forever is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on "
                               "serve_forever()")
        if self._closed:
            raise RuntimeError(f"server {self!r} is closed")
        await self.start_serving()
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None

    def close(self) -> None:
        """Stop listening (connecting is refused from now on); connections stay open."""
        if self._closed:
            return
        self._closed = True
        self._serving = False
        network = self._loop.network
        for address in self.addresses:
            network.unlisten(address)
        while self._pending:
            end = self._pending.popleft()
            if end.peer is not None:
                self._loop._call_io(end.peer._reset, process=end._process)
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()
        if not self._connections:
            self._wake()

    def close_clients(self) -> None:
        for end in list(self._connections):
            end.close()

    def abort_clients(self) -> None:
        for end in list(self._connections):
            end.abort()

    async def wait_closed(self) -> None:
        """Python 3.12+: until closed and every connection is lost; 3.11 returned at once
        once the server was closed, and so does this on 3.11."""
        if self._closed and (not self._connections or sys.version_info < (3, 12)):
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    def __repr__(self) -> str:
        where = ", ".join(str(a) for a in self.addresses)
        return f"<SimServer {where}{' closed' if self._closed else ''}>"


class NetworkLoop(asyncio.AbstractEventLoop):
    """The networking methods of the controlled loop (a base class of it).

    The loop provides :meth:`_call_io` (a callback the strategy may reorder) and
    :meth:`_escape`; everything else is here."""

    network: Network[SimServer]

    def _init_network(self) -> None:
        self.network = Network()
        # Real sockets this run connected in memory with sock_connect, until a transport
        # takes them (create_connection(sock=...)): weak, so a dropped socket is forgotten.
        self._linked: weakref.WeakKeyDictionary[socket.socket, SimTransport] = \
            weakref.WeakKeyDictionary()
        self._real_sockets: list[socket.socket] = []
        # The transports and servers of the run, made inert when it ends (_reset_network).
        self._net_objects: list[SimTransport | SimServer] = []
        # Tasks servers' protocols started; the end of the run cancels them (_shutdown).
        self.served: list[asyncio.Task[Any]] = []
        self.pending_at_stop: list[asyncio.Task[Any]] = []

    def _reset_network(self) -> None:
        """A run ended or begins: forget the addresses, close the real sockets it linked,
        make its transports and servers inert (a StreamWriter the garbage collector closes
        later must find its transport closed, not queue callbacks into another run)."""
        self.network.reset()
        if self._linked:  # a weak mapping's clear() is slow even when it is empty
            self._linked.clear()
        for sock in self._real_sockets:
            sock.close()
        self._real_sockets.clear()
        for thing in self._net_objects:
            thing._retire()
        self._net_objects.clear()
        self.served.clear()
        self.pending_at_stop.clear()

    def _call_io(self, callback: Callable[..., object], *args: Any,
                 process: str, after: tuple[events.Handle, ...] = ()) -> events.Handle:
        raise NotImplementedError  # provided by the controlled loop

    def _call_held(self, callback: Callable[..., object], *args: Any,
                   after: tuple[events.Handle, ...]) -> events.Handle:
        raise NotImplementedError  # provided by the controlled loop

    def _queue_mark(self) -> int:
        raise NotImplementedError  # provided by the controlled loop

    def _queued_since(self, mark: int) -> tuple[events.Handle, ...]:
        raise NotImplementedError  # provided by the controlled loop

    def _escape(self, what: str, fix: str) -> EscapeError:
        raise NotImplementedError  # provided by the controlled loop

    tasks: list[asyncio.Task[Any]]  # the run's tasks: the controlled loop's
    faults: frozenset[str]  # the fault kinds of the run (explorer._faults): the loop's

    def decide(self, options: Sequence[Candidate]) -> int:
        raise NotImplementedError  # provided by the controlled loop (a fault's decision)

    # -------------------------------------------------------------- resolving

    async def getaddrinfo(  # type: ignore[override]  # a plainer list than typeshed's
            self, host: bytes | str | None, port: bytes | str | int | None, *,
            family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[tuple[socket.AddressFamily, socket.SocketKind, int, str,
                    tuple[str, int] | tuple[str, int, int, int]]]:
        """Served names, the local host and IP literals resolve (after one scheduling
        point, as a lookup answered by a resolver thread); any other name is an escape."""
        address = self.network.resolve(host)
        number = _service_port(port)
        if address is None:
            name = canonical_host(host)
            raise self._escape(f"loop.getaddrinfo({host!r}, {port!r})",
                               unserved_fix(Address(name, number) if number else name))
        await asyncio.sleep(0)
        return _addrinfo(address, number, family, type, proto)

    async def getnameinfo(self, sockaddr: tuple[str, int] | tuple[str, int, int, int],
                          flags: int = 0) -> tuple[str, str]:
        host = self.network.host_name(str(sockaddr[0]))
        await asyncio.sleep(0)
        if flags & socket.NI_NUMERICHOST:
            host = str(sockaddr[0])
        return host, str(sockaddr[1])

    # -------------------------------------------------------------- servers

    async def create_server(  # type: ignore[override]  # returns a SimServer
            self, protocol_factory: Callable[[], asyncio.BaseProtocol],
            host: str | Iterable[str] | None = None, port: int | str | None = None, *,
            sock: Any = None, backlog: int = 100, ssl: Any = None,
            start_serving: bool = True, **options: Any) -> SimServer:
        """Listen on ``host:port`` in memory (every host of a list); port 0 is assigned
        deterministically. ``options`` (family, flags, reuse_address, reuse_port,
        keep_alive, timeouts) have no effect in memory."""
        if ssl is not None:
            raise self._escape("loop.create_server(ssl=...)", TLS_FIX)
        server = SimServer(self, protocol_factory, backlog)
        if sock is not None:
            raise self._escape(f"loop.create_server(sock={sock!r})", SOCKET_FIX)
        hosts = [host] if host is None or isinstance(host, str) else list(host)
        try:
            for one in hosts:
                server._listen(self.network.listen(one, port, server))
        except BaseException:
            server.close()
            raise
        if start_serving:
            await server.start_serving()
        return server

    async def create_unix_server(  # type: ignore[override]  # returns a SimServer
            self, protocol_factory: Callable[[], asyncio.BaseProtocol],
            path: str | bytes | None = None, *, sock: Any = None, backlog: int = 100,
            ssl: Any = None, start_serving: bool = True, **options: Any) -> SimServer:
        """Listen on the Unix socket ``path`` in memory (no file is created)."""
        if ssl is not None:
            raise self._escape("loop.create_unix_server(ssl=...)", TLS_FIX)
        if sock is not None or path is None:
            raise self._escape(f"loop.create_unix_server(sock={sock!r})", SOCKET_FIX)
        server = SimServer(self, protocol_factory, backlog)
        server._listen(self.network.listen_unix(_path(path), server))
        if start_serving:
            await server.start_serving()
        return server

    # -------------------------------------------------------------- clients

    async def create_connection(  # type: ignore[override]  # SimTransport, any protocol
            self, protocol_factory: Callable[[], asyncio.BaseProtocol],
            host: str | None = None, port: int | str | None = None, *,
            ssl: Any = None, sock: Any = None, local_addr: Any = None,
            server_hostname: str | None = None, **options: Any
            ) -> tuple[SimTransport, asyncio.BaseProtocol]:
        """Connect in memory to the server listening on ``host:port`` (or finish a
        connection ``loop.sock_connect`` made on ``sock``); ``options`` (family, flags,
        happy eyeballs, timeouts) have no effect in memory."""
        if ssl:
            raise self._escape(f"loop.create_connection({host!r}, {port!r}, ssl=...)",
                               TLS_FIX)
        if sock is not None:
            end = self._linked.pop(sock, None)
            if end is None:
                raise self._escape(f"loop.create_connection(sock={sock!r})", SOCKET_FIX)
        else:
            end = await self._connect(self.network.lookup(host, port),
                                      f"loop.create_connection({host!r}, {port!r})")
        return await self._start(end, protocol_factory)

    async def create_unix_connection(  # type: ignore[override]  # as create_connection
            self, protocol_factory: Callable[[], asyncio.BaseProtocol],
            path: str | bytes | None = None, *, ssl: Any = None, sock: Any = None,
            **options: Any) -> tuple[SimTransport, asyncio.BaseProtocol]:
        """Connect in memory to the server listening on the Unix socket ``path``."""
        if ssl:
            raise self._escape(f"loop.create_unix_connection({path!r}, ssl=...)", TLS_FIX)
        if sock is not None or path is None:
            raise self._escape(f"loop.create_unix_connection(sock={sock!r})", SOCKET_FIX)
        lookup = self.network.lookup_unix(_path(path))
        end = await self._connect(lookup, f"loop.create_unix_connection({path!r})")
        return await self._start(end, protocol_factory)

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """Connect ``sock`` in memory (no real connect): a following
        ``create_connection(sock=sock)`` gets the transport (aiohttp's connector, through
        aiohappyeyeballs, connects this way)."""
        if sock in self._linked:
            raise OSError(106, "Transport endpoint is already connected")
        if isinstance(address, (str, bytes)):
            lookup = self.network.lookup_unix(_path(address))
        else:
            lookup = self.network.lookup(address[0], address[1])
        end = await self._connect(lookup, f"loop.sock_connect({address!r})")
        end._real_socket = sock
        self._real_sockets.append(sock)
        self._linked[sock] = end

    async def _connect(self, lookup: Lookup[SimServer], call: str) -> SimTransport:
        """A connection attempt: refused as an escape if nothing in the run ever served
        the address, with ``ConnectionRefusedError`` if its server closed; else the client
        end, connected once the attempt reaches the listener (a scheduling point)."""
        server = lookup.listener
        address = lookup.address
        if server is None:
            if lookup.closed:
                raise ConnectionRefusedError(111, f"Connect call failed {address}: the "
                                                  "scenario's server there is closed")
            raise self._escape(call, unserved_fix(address))
        local = (Address(address.host, UNIX) if address.port == UNIX
                 else self.network.ephemeral())
        client = SimTransport(self, local, address)
        served = SimTransport(self, address, local)
        client.peer, served.peer = served, client
        arrived: asyncio.Future[None] = self.create_future()
        self._call_io(_set_result_unless_cancelled, arrived, process=client._process)
        try:
            await arrived
        except BaseException:
            client.peer = served.peer = None
            raise
        if self.faults and fault_at(self, "connect", _named(self, address)) == "refused":
            client.peer = served.peer = None  # an injected fault (explorer._faults)
            raise ConnectionRefusedError(111, f"Connect call failed {address}: refused "
                                              "(a fault injected by the explorer)")
        if server._closed:  # it closed while the attempt was on its way
            client.peer = served.peer = None
            raise ConnectionRefusedError(111, f"Connect call failed {address}: the "
                                              "scenario's server there closed")
        server._enqueue(served)
        return client

    async def _start(self, end: SimTransport,
                     protocol_factory: Callable[[], asyncio.BaseProtocol]
                     ) -> tuple[SimTransport, asyncio.BaseProtocol]:
        protocol = protocol_factory()
        waiter: asyncio.Future[None] = self.create_future()
        end._attach(protocol, waiter)
        try:
            await waiter
        except BaseException:
            end.abort()
            raise
        return end, protocol

    async def start_tls(self, transport: Any, protocol: Any, sslcontext: Any, *,
                        server_side: bool = False, server_hostname: str | None = None,
                        ssl_handshake_timeout: float | None = None,
                        ssl_shutdown_timeout: float | None = None) -> Any:
        raise self._escape("loop.start_tls()", TLS_FIX)


def _path(path: str | bytes) -> str:
    return path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else str(path)


def _service_port(port: bytes | str | int | None) -> int:
    if isinstance(port, bytes):
        port = port.decode("ascii", "replace")
    if isinstance(port, str) and not port.isdigit():
        try:
            return socket.getservbyname(port, "tcp")  # /etc/services: a local file
        except OSError:
            raise socket.gaierror(socket.EAI_SERVICE, f"Servname not supported: {port!r}"
                                  ) from None
    return int(port or 0)


def _addrinfo(address: str, port: int, family: int, kind: int, proto: int
              ) -> list[tuple[socket.AddressFamily, socket.SocketKind, int, str,
                              tuple[str, int] | tuple[str, int, int, int]]]:
    """``getaddrinfo``'s answer for a resolved address: IPv4, or the IPv6 loopback when
    only IPv6 is asked for the local host."""
    kinds = [socket.SOCK_STREAM] if kind in (0, socket.SOCK_STREAM) else [
        socket.SocketKind(kind)]
    protos = {socket.SOCK_STREAM: socket.IPPROTO_TCP, socket.SOCK_DGRAM: socket.IPPROTO_UDP}
    if family == socket.AF_INET6:
        if address != "127.0.0.1":
            raise socket.gaierror(socket.EAI_ADDRFAMILY if hasattr(socket, "EAI_ADDRFAMILY")
                                  else socket.EAI_NONAME,
                                  "Address family for hostname not supported")
        return [(socket.AF_INET6, k, proto or protos.get(k, 0), "", ("::1", port, 0, 0))
                for k in kinds]
    return [(socket.AF_INET, k, proto or protos.get(k, 0), "", (address, port))
            for k in kinds]


@contextmanager
def resolving(loop: NetworkLoop, in_run: Callable[[], bool]) -> Iterator[None]:
    """Answer ``socket.getaddrinfo`` for the local host and the names served in the run
    (code that resolves synchronously, or through ``run_in_executor``, which runs inline
    here), until the block exits. IP literals and everything outside a run go to the
    function installed before (the escape guard, which refuses other names)."""
    patch = Patches()
    guarded = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                    flags: int = 0) -> Any:
        if in_run() and ip_literal(_as_host(host)) is None:
            address = loop.network.resolve(host)
            if address is not None:
                return _addrinfo(address, _service_port(port), family, type, proto)
        return guarded(host, port, family, type, proto, flags)

    getaddrinfo.__doc__ = guarded.__doc__
    try:
        patch(socket, "getaddrinfo", getaddrinfo)
        yield
    finally:
        patch.restore()


def _as_host(host: object) -> str:
    if isinstance(host, bytes):
        return host.decode("ascii", "replace")
    return host if isinstance(host, str) else ""
