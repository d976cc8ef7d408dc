"""trio's sockets over the simulated network of a controlled run.

trio lets a run replace how it makes sockets and resolves names
(``trio.socket.set_custom_socket_factory`` and ``set_custom_hostname_resolver``, both
per-run). A controlled run installs one :class:`TrioNetwork` as both, so everything
built on ``trio.socket`` — ``trio.open_tcp_stream``, ``open_tcp_listeners``,
``serve_tcp``, ``serve_listeners``, ``open_unix_socket``, anyio's ``connect_tcp`` on the
trio backend, httpx/httpcore on trio — runs unchanged over in-memory connections, with
addresses named, assigned and refused by the runtime-neutral
:class:`explorer._network.Network`.

Contract of a :class:`SimulatedSocket` (a ``trio.socket.SocketType``):

- Every operation is a checkpoint as trio's own socket operations are: a cancellation
  check before it acts, and a schedule point after it completes, so each send, receive,
  accept and connect is a task step the strategy orders.
- A byte stream per direction, in order, buffered up to :data:`BUFFER` bytes: ``send``
  takes what fits and blocks while the buffer is full (trio's ``send_all`` then waits,
  as under back-pressure); ``recv(n)`` takes up to ``n`` buffered bytes, blocks while
  there are none, and returns ``b""`` after the peer's EOF (``shutdown(SHUT_WR)``, or
  ``close``). Waking a blocked receiver is a task wake-up, so every delivery of bytes to
  a waiting receiver is a scheduling point; order across connections is the strategy's.
- How many bytes one receive returns is decided by the schedule, with no choice of its
  own: every send is a checkpoint that wakes the receiver, so the receiver may run
  between two sends and take the first alone, or after both and take them together (as
  a real socket returns what the kernel holds). A send is never split: on loopback a
  message sent at once arrives at once in practice.
- After the peer closed, sending raises ``BrokenPipeError`` (trio's ``SocketStream``
  turns it into ``BrokenResourceError``); an operation on a closed socket raises
  ``OSError(EBADF)`` (``ClosedResourceError``), and a task blocked on a socket that
  another task closes gets ``trio.ClosedResourceError``, as with trio's
  ``notify_closing``.
- ``connect`` to an address that something of the scenario listens on completes at once
  (the listener's backlog is unbounded, and closing the listener resets the connections
  it did not accept); to an address served earlier in the run and closed since:
  ``ConnectionRefusedError``; to an address nothing in the scenario served: an escape
  naming the address and how to serve it, before anything leaves the process. A name
  that nothing serves is refused the same way when it is resolved.
- Only stream sockets (``SOCK_STREAM``) of ``AF_INET``, ``AF_INET6`` and ``AF_UNIX``
  are simulated; making any other socket in a user task is an escape.
- With faults on (:mod:`explorer._faults`), the fault sites are
  :meth:`TrioNetwork.refuse_by_fault` (a connection attempt) and
  :meth:`SimulatedSocket._lost_by_fault` (a send: a client's, or a server's response),
  each a decision of the run's scheduler, at most one fault per connection.
"""

from __future__ import annotations

import errno
import itertools
import socket as stdlib_socket
import sys
from collections import deque
from collections.abc import Awaitable
from types import FrameType
from typing import Any, Final, Literal, TypeAlias

import trio
import trio.lowlevel
from trio._core import _run as trio_run
from trio.lowlevel import ParkingLot, cancel_shielded_checkpoint, checkpoint_if_cancelled

from explorer import _footprint
from explorer._faults import fault_at
from explorer._locations import frame_location, is_user_file
from explorer._network import LOCALHOST, UNIX, Address, Network
from explorer._runtime import Location
from explorer._trio import _patches as patches
from explorer._trio._inspect import task_location

_RUN_LOOP: Final = trio_run.unrolled_run.__code__  # where every task's stack begins

BUFFER: Final = 65536
"""Bytes one direction of a connection holds before ``send`` blocks (a socket buffer)."""

_FAKE_FILENO: Final = 1 << 20
"""Simulated sockets report descriptors from here on: positive (trio and anyio read a
negative one as closed), and far above the real ones a process holds."""

_SIMULATED_FAMILIES: Final = frozenset({stdlib_socket.AF_INET, stdlib_socket.AF_INET6,
                                       stdlib_socket.AF_UNIX})


_AddressInfo: TypeAlias = (
    tuple[Literal[stdlib_socket.AddressFamily.AF_INET], stdlib_socket.SocketKind, int, str,
          tuple[str, int]]
    | tuple[Literal[stdlib_socket.AddressFamily.AF_INET6], stdlib_socket.SocketKind, int, str,
            tuple[str, int, int, int] | tuple[int, bytes]]
)
"""One answer of ``getaddrinfo``, as trio's ``HostnameResolver`` declares it."""


class _Pipe:
    """One direction of a connection: the bytes in flight, and who waits on them."""

    __slots__ = ("buffer", "eof", "readable", "reader_gone", "reset", "swallowed",
                 "writable")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False  # the writer shut down its sending side, or closed
        self.reader_gone = False  # the reader closed: what is sent now goes nowhere
        self.reset = False  # the connection was reset (an injected fault)
        self.swallowed = False  # nothing sent this way arrives, not even EOF (a fault)
        self.readable = ParkingLot()  # receivers waiting for bytes or EOF
        self.writable = ParkingLot()  # senders waiting for room

    def __repr__(self) -> str:
        return f"<pipe of {len(self.buffer)} bytes{' eof' if self.eof else ''}>"

    def finish(self) -> None:
        """The writer's EOF (a shutdown or a close) reaches the reader after the bytes."""
        if not self.swallowed:
            self.eof = True
            self.readable.unpark_all()

    def break_(self) -> None:
        """A reset: every waiter on this direction wakes to the error."""
        self.reset = True
        self.buffer.clear()
        self.readable.unpark_all()
        self.writable.unpark_all()


class _Link:
    """What both ends of one connection share: who serves it (for stories) and whether
    it had its injected fault (one per connection at most)."""

    __slots__ = ("faulted", "server")

    def __init__(self, server: str) -> None:
        self.server = server
        self.faulted = False


class TrioNetwork(trio.abc.SocketFactory, trio.abc.HostnameResolver):
    """The simulated network of one controlled trio run: its socket factory and name
    resolver, over the run's :class:`~explorer._network.Network` of addresses."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.addresses: Network[SimulatedSocket] = scheduler.network
        self._filenos = itertools.count(_FAKE_FILENO)

    def escape(self, what: str, fix: str) -> BaseException:
        """The escape for a user task reaching outside the simulated network, located at
        the user's line that led there."""
        err = patches.escape(self.scheduler, what, fix)
        err.location = _user_site()
        return err

    def fileno(self) -> int:
        return next(self._filenos)

    # ------------------------------------------------------------ SocketFactory

    def socket(self, family: stdlib_socket.AddressFamily | int = stdlib_socket.AF_INET,
               type: stdlib_socket.SocketKind | int = stdlib_socket.SOCK_STREAM,
               proto: int = 0) -> trio.socket.SocketType:
        base_type = int(type) & ~(getattr(stdlib_socket, "SOCK_NONBLOCK", 0)
                                  | getattr(stdlib_socket, "SOCK_CLOEXEC", 0))
        if family not in _SIMULATED_FAMILIES or base_type != stdlib_socket.SOCK_STREAM:
            raise self.escape(
                f"trio.socket.socket(family={family!r}, type={type!r})",
                "only TCP and Unix stream sockets are simulated in a controlled run "
                "(UDP, raw and other sockets would reach the real network); talk to the "
                "code under test over TCP inside the scenario, or fake that protocol")
        return SimulatedSocket(self, stdlib_socket.AddressFamily(family),
                               stdlib_socket.SocketKind.SOCK_STREAM, proto)

    # ------------------------------------------------------------ HostnameResolver

    async def getaddrinfo(
        self, host: bytes | None, port: bytes | str | int | None, family: int = 0,
        type: int = 0, proto: int = 0, flags: int = 0,
    ) -> list[_AddressInfo]:
        """Names only (trio answers IP literals itself, without a lookup): the local
        host and the names something in the scenario serves resolve; any other name is
        an escape, before a DNS query is made. A passive lookup (the address a server is
        about to bind) answers the name itself: binding there makes the name a host."""
        await trio.lowlevel.checkpoint()
        text = host.decode("ascii", "replace") if isinstance(host, bytes) else host or ""
        resolved = text if flags & stdlib_socket.AI_PASSIVE else self.addresses.resolve(text)
        if resolved is None:
            raise self.escape(f"trio.socket.getaddrinfo({text!r}, {port!r})",
                              serve_fix(text))
        if family not in (0, stdlib_socket.AF_INET):
            raise stdlib_socket.gaierror(stdlib_socket.EAI_FAMILY,
                                         f"{text!r} has only an IPv4 address here")
        number = int(port) if isinstance(port, int | str) and str(port).isdigit() else 0
        return [(stdlib_socket.AddressFamily.AF_INET, stdlib_socket.SOCK_STREAM,
                 stdlib_socket.IPPROTO_TCP, "", (resolved, number))]

    async def getnameinfo(self, sockaddr: tuple[str, int] | tuple[str, int, int, int],
                          flags: int) -> tuple[str, str]:
        await trio.lowlevel.checkpoint()
        return (self.addresses.host_name(str(sockaddr[0])), str(sockaddr[1]))

    # ------------------------------------------------------------ addresses

    def bind(self, sock: SimulatedSocket, address: Any) -> None:
        if sock.family == stdlib_socket.AF_UNIX:
            sock.local = self.addresses.listen_unix(_unix_path(address), sock)
            return
        host, port = _host_port(address)
        try:
            sock.local = self.addresses.listen(host, port, sock)
        except OSError:
            # trio binds both wildcards (0.0.0.0 and ::) for one port; both are the
            # local host here, so the second one shares the address with the first and
            # never receives a connection.
            taken = self.addresses.lookup(host, port).listener
            if taken is None or taken.family == sock.family:
                raise
            sock.local = taken.local
            sock.shadow = True

    def unbind(self, sock: SimulatedSocket) -> None:
        local = sock.local
        if isinstance(local, Address) and not sock.shadow and \
                self.addresses.serves(local) and self._listening_on(local) is sock:
            self.addresses.unlisten(local)

    def _listening_on(self, address: Address) -> SimulatedSocket | None:
        if address.port == UNIX:
            return self.addresses.lookup_unix(address.host).listener
        return self.addresses.lookup(address.host, address.port).listener

    def listener(self, sock: SimulatedSocket, address: Any) -> tuple[SimulatedSocket, Address]:
        """The listening socket a connection to ``address`` reaches, or the refusal:
        ``ConnectionRefusedError`` where a server of the run stopped (or does not listen
        yet), an escape where nothing of the run ever served."""
        if sock.family == stdlib_socket.AF_UNIX:
            lookup = self.addresses.lookup_unix(_unix_path(address))
        else:
            lookup = self.addresses.lookup(*_host_port(address))
        listener = lookup.listener
        if listener is not None and listener.listening:
            return listener, lookup.address
        if listener is not None or lookup.closed:
            raise ConnectionRefusedError(errno.ECONNREFUSED,
                                         f"Connection refused by "
                                         f"{lookup.address}: nothing listens there now")
        raise self.escape(f"connect({str(lookup.address)!r})", serve_fix(lookup.address))

    def refuse_by_fault(self, link: _Link) -> None:
        """With faults on, a connection attempt may be refused (an injected fault)."""
        scheduler = self.scheduler
        if scheduler.faults and fault_at(scheduler, "connect", link.server) == "refused":
            link.faulted = True
            raise ConnectionRefusedError(errno.ECONNREFUSED,
                                         f"Connection refused by {link.server} "
                                         "(a fault injected by the explorer)")

    def named(self, address: Address | str | None) -> str:
        """How a connection's server reads in a fault's story (``db.internal:5432``)."""
        if not isinstance(address, Address) or address.port == UNIX:
            return str(address)
        return str(Address(self.addresses.host_name(address.host), address.port))


def serve_fix(address: Address | str) -> str:
    """How to serve ``address`` from a trio scenario (the fix of the escape for an
    address, or a bare host name, that nothing in the scenario serves)."""
    if isinstance(address, Address) and address.port == UNIX:
        return (f"nothing in the scenario listens on the Unix socket {address.host!r}, and "
                "connections never leave the process; bind and listen on that path inside "
                "the scenario (a trio.socket.socket(AF_UNIX) wrapped in "
                "trio.SocketListener, served with trio.serve_listeners)")
    host, port = (address.host, str(address.port)) if isinstance(address, Address) else \
        (address, "PORT")
    return (f"nothing in the scenario listens on {host}:{port}, and connections never leave "
            "the process; start the server inside the scenario (for example 'await "
            f"nursery.start(functools.partial(trio.serve_tcp, handler, {port}, "
            f"host={host!r}))'), or, if a server of the scenario listens elsewhere, call "
            f"explorer.alias({host!r}, {port}, to=(its host, its port)) before connecting")


def _user_site() -> Location | None:
    """The user's line that led to the running network operation: on the running task's
    stack, else where its nearest ancestor task waits (``open_tcp_stream`` connects in
    tasks of its own, whose stacks hold only trio's code)."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_code is not _RUN_LOOP:
        if is_user_file(frame.f_code.co_filename):
            return frame_location(frame)
        frame = frame.f_back
    task: Any = trio.lowlevel.current_task()
    while task.parent_nursery is not None and task.parent_nursery.parent_task is not None:
        task = task.parent_nursery.parent_task
        location = task_location(task)
        if location is not None:
            return location
    return None


def install(runner: Any, network: TrioNetwork) -> None:
    """Make ``network`` the socket factory and name resolver of ``runner``'s run: what
    ``trio.socket.set_custom_socket_factory`` and ``set_custom_hostname_resolver`` do
    from inside a run, done before its first task starts."""
    from trio import _socket

    runner._locals[_socket._socket_factory] = network
    runner._locals[_socket._resolver] = network


def _host_port(address: Any) -> tuple[object, object]:
    if not isinstance(address, tuple) or len(address) < 2:
        raise OSError(errno.EINVAL, f"an IP socket address is a (host, port) tuple, got "
                                    f"{address!r}")
    return address[0], address[1]


def _unix_path(address: Any) -> str:
    if isinstance(address, bytes):
        return address.decode("utf-8", "surrogateescape")
    if isinstance(address, str):
        return address
    raise OSError(errno.EINVAL, f"a Unix socket address is a path, got {address!r}")


class SimulatedSocket(trio.socket.SocketType):
    """A trio socket over the simulated network (see the module docstring)."""

    def __init__(self, network: TrioNetwork, family: stdlib_socket.AddressFamily,
                 kind: stdlib_socket.SocketKind, proto: int) -> None:
        self._network = network
        self._family = family
        self._kind = kind
        self._proto = proto
        self._fileno = network.fileno()
        self._options: dict[tuple[int, int], int | bytes] = {}
        self._closed = False
        self._shut_wr = False
        self.local: Address | str | None = None
        self.remote: Address | str | None = None
        self.shadow = False  # a second wildcard bind that shares the first's address
        self.listening = False
        self._backlog: deque[tuple[SimulatedSocket, Any]] = deque()
        self._accepting = ParkingLot()
        self._inbound: _Pipe | None = None
        self._outbound: _Pipe | None = None
        self._link: _Link | None = None
        self._serving = False  # the server's end of a connection (it sends responses)
        # What libraries read as the "raw" socket (anyio: ``_sock``) answers the same
        # questions: names, family, descriptor.
        self._sock = self

    # ------------------------------------------------------------ plain attributes

    @property
    def family(self) -> stdlib_socket.AddressFamily:
        return self._family

    @property
    def type(self) -> stdlib_socket.SocketKind:
        return self._kind

    @property
    def proto(self) -> int:
        return self._proto

    @property
    def did_shutdown_SHUT_WR(self) -> bool:
        return self._shut_wr

    def fileno(self) -> int:
        return -1 if self._closed else self._fileno

    def detach(self) -> int:
        raise self._network.escape(
            "socket.detach() on a simulated socket",
            "a simulated socket has no operating-system descriptor to hand out; keep "
            "using the trio socket (or the stream wrapping it)")

    def dup(self) -> trio.socket.SocketType:
        raise self._network.escape(
            "socket.dup() on a simulated socket",
            "a simulated socket has no operating-system descriptor to duplicate; share "
            "the trio socket object itself")

    def get_inheritable(self) -> bool:
        return False

    def set_inheritable(self, inheritable: bool) -> None:
        pass

    def getsockname(self) -> Any:
        if self._closed:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if self.local is None:
            return "" if self._family == stdlib_socket.AF_UNIX else \
                self._sockaddr(Address("0.0.0.0", 0))
        return self._sockaddr(self.local)

    def getpeername(self) -> Any:
        if self._closed:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if self.remote is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return self._sockaddr(self.remote)

    def _sockaddr(self, address: Address | str) -> Any:
        if isinstance(address, str):  # an unnamed Unix client end
            return address
        if address.port == UNIX:
            return address.host
        if self._family == stdlib_socket.AF_INET6:
            host = "::1" if address.host == LOCALHOST else f"::ffff:{address.host}"
            return (host, address.port, 0, 0)
        return address.sockaddr()

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        if (level, optname) == (stdlib_socket.SOL_SOCKET, stdlib_socket.SO_ACCEPTCONN):
            return int(self.listening)
        if (level, optname) == (stdlib_socket.SOL_SOCKET, stdlib_socket.SO_ERROR):
            return 0
        if (level, optname) == (stdlib_socket.SOL_SOCKET, stdlib_socket.SO_TYPE):
            return int(self._kind)
        value = self._options.get((level, optname), 0)
        if buflen is not None and isinstance(value, int):
            return value.to_bytes(buflen, "little", signed=True)
        return value

    def setsockopt(self, level: int, optname: int, value: Any,
                   optlen: int | None = None) -> None:
        # Options tune a real kernel's socket (no delay, reuse, keep-alive); remembered
        # so getsockopt answers them, without effect on the simulated connection.
        self._options[(level, optname)] = value

    def __enter__(self) -> SimulatedSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "listening" if self.listening else \
            "connected" if self.remote is not None else "unconnected"
        where = f" {self.local}" if self.local is not None else ""
        peer = f" -> {self.remote}" if self.remote is not None else ""
        return f"<simulated socket {state}{where}{peer}>"

    # ------------------------------------------------------------ closing

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.listening or self.local is not None:
            self._network.unbind(self)
        # The peer reads what was sent, then EOF; what it sends from now on is refused.
        outbound, inbound = self._outbound, self._inbound
        if outbound is not None:
            _footprint.record(outbound, None, "w")
            outbound.finish()
        if inbound is not None:
            _footprint.record(inbound, None, "w")
            inbound.reader_gone = True
            inbound.buffer.clear()
            inbound.writable.unpark_all()
            inbound.readable.unpark_all()  # our own blocked receivers: notify_closing
        if outbound is not None:
            outbound.writable.unpark_all()
        self._accepting.unpark_all()
        for sock, _peer in self._backlog:  # connections never accepted are reset
            sock._reset()
        self._backlog.clear()

    def _reset(self) -> None:
        """This server end was never accepted and its listener closed: the client's
        connection is reset, as a kernel resets the connections left in a closed
        listener's backlog."""
        for pipe in (self._inbound, self._outbound):
            if pipe is not None:
                pipe.break_()

    def shutdown(self, flag: int) -> None:
        self._check_open()
        if self.remote is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        if flag in (stdlib_socket.SHUT_WR, stdlib_socket.SHUT_RDWR):
            self._shut_wr = True
            outbound = self._outbound
            assert outbound is not None
            _footprint.record(outbound, None, "w")
            outbound.finish()

    def _check_open(self) -> None:
        if self._closed:
            raise OSError(errno.EBADF, "Bad file descriptor")

    def _check_not_closed_while_waiting(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("another task closed this socket")

    # ------------------------------------------------------------ listening

    async def bind(self, address: Any) -> None:
        await checkpoint_if_cancelled()
        self._check_open()
        if self.local is not None:
            raise OSError(errno.EINVAL, "Invalid argument: the socket is bound "
                                        "already")
        self._network.bind(self, address)
        await cancel_shielded_checkpoint()

    def listen(self, backlog: int = 128) -> None:
        self._check_open()
        if self.local is None:  # a real listen() binds an unbound socket to a free port
            self._network.bind(self, ("127.0.0.1", 0))
        self.listening = True

    def is_readable(self) -> bool:
        if self.listening:
            _footprint.record(self, None, "r")
            return bool(self._backlog)
        inbound = self._inbound
        if inbound is not None:
            _footprint.record(inbound, None, "r")
        return inbound is not None and (bool(inbound.buffer) or inbound.eof)

    async def accept(self) -> tuple[trio.socket.SocketType, Any]:
        await checkpoint_if_cancelled()
        self._check_open()
        if not self.listening:
            raise OSError(errno.EINVAL, "Invalid argument: accept() on a socket "
                                        "that is not listening")
        _footprint.record(self, None, "w")
        while not self._backlog:
            await self._accepting.park()
            self._check_not_closed_while_waiting()
            _footprint.record(self, None, "w")  # in the step that resumed (see _take)
        sock, peer = self._backlog.popleft()
        await cancel_shielded_checkpoint()
        return sock, peer

    # ------------------------------------------------------------ connecting

    async def connect(self, address: Any) -> None:
        await checkpoint_if_cancelled()
        self._check_open()
        if self.remote is not None:
            raise OSError(errno.EISCONN, "Transport endpoint is already "
                                         "connected")
        listener, target = self._network.listener(self, address)
        _footprint.record(listener, None, "w")
        link = _Link(self._network.named(target))
        self._network.refuse_by_fault(link)
        if self.local is None:  # an unbound client end: a Unix one stays unnamed
            self.local = "" if target.port == UNIX else self._network.addresses.ephemeral()
        server = SimulatedSocket(self._network, listener.family, self._kind, self._proto)
        server.local, server.remote, self.remote = target, self.local, target
        up, down = _Pipe(), _Pipe()
        self._outbound = server._inbound = up
        self._inbound = server._outbound = down
        self._link = server._link = link
        server._serving = True
        listener._backlog.append((server, server.getpeername()))
        listener._accepting.unpark()
        await cancel_shielded_checkpoint()

    # ------------------------------------------------------------ receiving

    async def recv(self, buflen: int, flags: int = 0, /) -> bytes:
        await checkpoint_if_cancelled()
        data = await self._take(buflen, flags)
        await cancel_shielded_checkpoint()
        return data

    async def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0, /) -> int:
        await checkpoint_if_cancelled()
        view = memoryview(buffer).cast("B")
        data = await self._take(nbytes or len(view), flags)
        view[:len(data)] = data
        await cancel_shielded_checkpoint()
        return len(data)

    async def _take(self, buflen: int, flags: int) -> bytes:
        """Up to ``buflen`` buffered bytes, waiting while there are none; ``b""`` at EOF."""
        self._check_open()
        inbound = self._inbound
        if inbound is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        _footprint.record(inbound, None, "w")
        while not inbound.buffer and not inbound.eof and not inbound.reset:
            await inbound.readable.park()
            self._check_not_closed_while_waiting()
            # The bytes are taken in the step that resumed here: what it takes depends on
            # every send since the one that woke it, so it touches the pipe as well.
            _footprint.record(inbound, None, "w")
        if inbound.reset:
            raise ConnectionResetError(errno.ECONNRESET,
                                       "Connection reset by peer")
        data = bytes(inbound.buffer[:buflen])
        if not flags & stdlib_socket.MSG_PEEK:
            del inbound.buffer[:buflen]
            if data:
                inbound.writable.unpark_all()
        return data

    # ------------------------------------------------------------ sending

    def send(self, data: Any, flags: int = 0, /) -> Awaitable[int]:
        return self._send(bytes(data))

    async def _send(self, data: bytes) -> int:
        await checkpoint_if_cancelled()
        self._check_open()
        outbound = self._outbound
        if outbound is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        _footprint.record(outbound, None, "w")
        while True:
            if outbound.reset:
                raise ConnectionResetError(errno.ECONNRESET,
                                           "Connection reset by peer")
            if self._shut_wr:
                raise BrokenPipeError(errno.EPIPE, "Broken pipe: this socket "
                                                   "shut down its sending side")
            if outbound.reader_gone:
                raise BrokenPipeError(errno.EPIPE, "Broken pipe: the peer "
                                                   "closed the connection")
            room = BUFFER - len(outbound.buffer)
            if room > 0 or not data:
                break
            await outbound.writable.park()
            self._check_not_closed_while_waiting()
            _footprint.record(outbound, None, "w")  # in the step that resumed (see _take)
        sent = data[:room]
        if sent and not self._lost_by_fault(outbound):
            outbound.buffer += sent
            outbound.readable.unpark_all()
        await cancel_shielded_checkpoint()
        return len(sent)

    def _lost_by_fault(self, outbound: _Pipe) -> bool:
        """Whether bytes this end sends are lost: swallowed since an ``unanswered``
        fault, or, when faults are on and the connection has had none, by a fault
        injected now (:mod:`explorer._faults`): ``reset`` for a client's bytes (the
        server never sees them), ``dropped`` or ``unanswered`` for the server's (it
        processed the request; its response is lost and the connection reset, or held
        forever so the client waits for its own timeout)."""
        if outbound.swallowed:
            return True
        link = self._link
        scheduler = self._network.scheduler
        if link is None or link.faulted or not scheduler.faults:
            return False
        kind = fault_at(scheduler, "respond" if self._serving else "deliver", link.server)
        if kind is None:
            return False
        link.faulted = True
        if kind == "unanswered":
            outbound.swallowed = True
        else:
            inbound = self._inbound
            assert inbound is not None
            outbound.break_()
            inbound.break_()
        return True

    async def wait_writable(self) -> None:
        await checkpoint_if_cancelled()
        self._check_open()
        outbound = self._outbound
        if outbound is not None:
            _footprint.record(outbound, None, "r")
        while outbound is not None and len(outbound.buffer) >= BUFFER \
                and not outbound.reader_gone:
            await outbound.writable.park()
            self._check_not_closed_while_waiting()
            _footprint.record(outbound, None, "r")
        await cancel_shielded_checkpoint()
