"""The simulated network of a run: addresses, who listens where, and what is refused.

Runtime-neutral (no runtime is imported here): the asyncio runtime
(:mod:`explorer._asyncio._network`) and the trio runtime build their in-memory connections
on one :class:`Network` per run, so both name, resolve and refuse addresses the same way.

Contract:

- **One machine plus named hosts.** Every loopback spelling (``localhost``, ``127.0.0.0/8``,
  ``::1``) and every wildcard (``0.0.0.0``, ``::``, ``""``, None) is the local host,
  canonically ``127.0.0.1``. Any other name (``db.internal``) is a host of its own, which
  resolves to a fixed address in ``10.0.0.0/8`` derived from the name alone (the same in
  every run and every process) once something listens on it or an alias names it.
  Another IP literal is a host of its own too (a server bound to ``10.1.2.3`` is reached
  at that address).
- **Ports.** Port 0 is given the next free port from :data:`FIRST_PORT` on that host, in
  the order servers start: the same schedule gives the same ports. Client ends get
  ephemeral ports from :data:`FIRST_EPHEMERAL`, the same way.
- **Refusals.** :meth:`Network.lookup` tells the three cases apart: served (a listener),
  served once in this run and closed since (the caller raises ``ConnectionRefusedError``,
  as a real peer would), and never served, which the caller reports as an escape with
  :func:`unserved_fix` before any byte or DNS query leaves the process.
- **Aliases.** :func:`alias` (public as ``explorer.alias``) makes ``name:port`` reach an
  address something in the scenario listens on, for clients configured by host name.

The registry is reset for every run (:meth:`Network.reset`), so nothing leaks between runs.
"""

from __future__ import annotations

import ipaddress
from typing import Final, Generic, Protocol, TypeVar, runtime_checkable

from explorer._errors import UsageError
from explorer._records import FrozenRecord, Record
from explorer._runtime import active_run

LOCALHOST: Final = "127.0.0.1"
"""The canonical local host: every loopback and wildcard address means it."""

FIRST_PORT: Final = 40000
"""The first port handed out for port 0 on a host."""

FIRST_EPHEMERAL: Final = 50000
"""The first client-side (ephemeral) port of a run."""

UNIX: Final = -1
"""The port of a Unix socket address, whose host is the socket's path."""

_WILDCARDS: Final = frozenset({"", "0.0.0.0", "::", "localhost", "localhost.",
                               "ip6-localhost"})
_NAMED_NET: Final = ipaddress.IPv4Network("10.0.0.0/8")


class Address(FrozenRecord):
    """A host (canonical: see :func:`canonical_host`) and a port."""

    __slots__ = ("host", "port")

    host: str
    port: int

    def __init__(self, host: str, port: int) -> None:
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)

    def __str__(self) -> str:
        if self.port == UNIX:
            return self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def sockaddr(self) -> tuple[str, int]:
        """The address as ``getsockname()``/``getpeername()`` return it for IPv4."""
        return (self.host, self.port)


def _as_text(host: object) -> str:
    if host is None:
        return ""
    if isinstance(host, bytes):
        return host.decode("ascii", "replace")
    if not isinstance(host, str):
        raise UsageError(f"a host must be a string, got {type(host).__name__} {host!r}; "
                         "pass a host name or an IP address, such as '127.0.0.1'")
    return host


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address if it is a literal one (an IPv6 zone ignored), else None."""
    try:
        return ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None


def canonical_host(host: object) -> str:
    """The simulated host that ``host`` names: ``127.0.0.1`` for every loopback and wildcard
    spelling, an IP literal in its compressed form, a name in lower case (no trailing dot).
    """
    text = _as_text(host).strip()
    if text.lower() in _WILDCARDS:
        return LOCALHOST
    ip = ip_literal(text)
    if ip is not None:
        if ip.is_loopback or ip.is_unspecified:
            return LOCALHOST
        mapped = getattr(ip, "ipv4_mapped", None)
        return str(mapped if mapped is not None else ip)
    return text.lower().rstrip(".")


def name_address(name: str) -> str:
    """The fixed IPv4 address a served host name resolves to: derived from the name alone
    (CRC-32 into ``10.0.0.0/8``, avoiding network and broadcast addresses), so it is the
    same in every run and every process."""
    import zlib  # here: only a served host name needs it, not every exploration's import

    offset = zlib.crc32(name.encode("utf-8")) % (_NAMED_NET.num_addresses - 2) + 1
    return str(_NAMED_NET.network_address + offset)


def port_number(port: object) -> int:
    """``port`` as an int (numeric strings allowed, None meaning 0), checked."""
    if port is None:
        return 0
    if isinstance(port, bytes):
        port = port.decode("ascii", "replace")
    if isinstance(port, str):
        if not port.isdigit():
            raise UsageError(f"a port must be a number, got {port!r}; a service name such as "
                             "'http' is not resolved here: pass the number (80)")
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise UsageError(f"a port must be an int in 0..65535, got {port!r}; pass 0 for a "
                         "port assigned by the explorer")
    return port


def unserved_fix(address: Address | str) -> str:
    """How to serve ``address`` (an :class:`Address`, or a bare host name) in the scenario:
    the fix part of the escape for a connection or lookup nothing in the scenario serves."""
    if isinstance(address, Address) and address.port == UNIX:
        return (f"nothing in the scenario listens on the Unix socket {address.host}, and "
                "connections never leave the process; start the server inside the scenario "
                f'(await asyncio.start_unix_server(handle, "{address.host}"))')
    if isinstance(address, Address):
        host, port = address.host, str(address.port)
    else:
        host, port = address, "PORT"
    return (
        f"nothing in the scenario listens on {host}:{port}, and connections never leave the "
        "process; start the server inside the scenario, on that host and port (for "
        f'example await asyncio.start_server(handle, "{host}", {port}), an aiohttp '
        "TCPSite or uvicorn.Server(config).serve()), or, if a server of the scenario "
        f'listens elsewhere, call explorer.alias("{host}", {port}, to=(its host, its '
        "port)) before connecting"
    )


_L = TypeVar("_L")


class Lookup(Record, Generic[_L]):
    """What :meth:`Network.lookup` found: the ``listener``, or why there is none."""

    __slots__ = ("address", "closed", "listener")

    address: Address
    listener: _L | None
    closed: bool  # something listened on the address in this run, and stopped

    def __init__(self, address: Address, listener: _L | None, closed: bool) -> None:
        self.address = address
        self.listener = listener
        self.closed = closed


class Network(Generic[_L]):
    """The addresses of one run: who listens where (a runtime's listener objects, ``_L``),
    aliases, and the ports handed out. Reset for every run by the runtime that owns it."""

    def __init__(self) -> None:
        self._listeners: dict[Address, _L] = {}
        self._closed: set[Address] = set()
        self._aliases: dict[Address, Address] = {}
        self._names: dict[str, str] = {}  # resolved address -> host name, for named hosts
        self._next_port: dict[str, int] = {}
        self._next_ephemeral = FIRST_EPHEMERAL

    def reset(self) -> None:
        """Forget every listener, alias and port (a new run begins)."""
        if self.pristine:
            return  # nothing to forget: most runs use no network
        self._listeners.clear()
        self._closed.clear()
        self._aliases.clear()
        self._names.clear()
        self._next_port.clear()
        self._next_ephemeral = FIRST_EPHEMERAL

    @property
    def pristine(self) -> bool:
        """Whether the registry is as :meth:`reset` leaves it: read from the state itself
        (no flag that every mutation would have to keep), so it cannot be stale."""
        return not (self._listeners or self._closed or self._aliases or self._names
                    or self._next_port) and self._next_ephemeral == FIRST_EPHEMERAL

    # -------------------------------------------------------------- listening

    def listen(self, host: object, port: object, listener: _L) -> Address:
        """Register ``listener`` on ``host:port`` (port 0: the next free one on that host)
        and return the address. ``OSError`` (errno 98, as a real bind) if it is taken."""
        address = self._bindable(canonical_host(host), port_number(port))
        self._listeners[address] = listener
        self._closed.discard(address)
        self._remember_name(address.host)
        return address

    def _bindable(self, host: str, port: int) -> Address:
        if port == 0:
            port = self._next_port.get(host, FIRST_PORT)
            while Address(host, port) in self._listeners:
                port += 1
            self._next_port[host] = port + 1
            return Address(host, port)
        address = Address(host, port)
        if address in self._listeners:
            raise OSError(98, f"[Errno 98] address already in use: {address} (a server of "
                              "this scenario listens there already; pass port 0 for a free "
                              "port, or close the first server)")
        return address

    def listen_unix(self, path: str, listener: _L) -> Address:
        """Register ``listener`` on the Unix socket ``path``; ``OSError`` if it is taken."""
        address = Address(path, UNIX)
        if address in self._listeners:
            raise OSError(98, f"[Errno 98] address already in use: {path} (a server of this "
                              "scenario listens there already)")
        self._listeners[address] = listener
        self._closed.discard(address)
        return address

    def lookup_unix(self, path: str) -> Lookup[_L]:
        """Who answers a connection to the Unix socket ``path``."""
        address = Address(path, UNIX)
        listener = self._listeners.get(address)
        return Lookup(address, listener, listener is None and address in self._closed)

    def unlisten(self, address: Address) -> None:
        """The listener on ``address`` stopped: connecting there is now refused."""
        if self._listeners.pop(address, None) is not None:
            self._closed.add(address)

    def alias(self, host: object, port: object, target: Address) -> Address:
        """Make ``host:port`` reach whatever listens on ``target`` (looked up at connect
        time, so the target may start later)."""
        address = Address(canonical_host(host), port_number(port))
        if address.port == 0:
            raise UsageError(f"explorer.alias() needs the port clients use for "
                             f"{address.host}, got 0; pass it, as in "
                             f"explorer.alias({address.host!r}, 5432, to=...)")
        self._aliases[address] = target
        self._remember_name(address.host)
        return address

    def _remember_name(self, host: str) -> None:
        if ip_literal(host) is None:
            self._names.setdefault(name_address(host), host)

    # -------------------------------------------------------------- connecting

    def lookup(self, host: object, port: object) -> Lookup[_L]:
        """Who answers a connection to ``host:port``: a name, or the address a served name
        resolved to, both reach the name's listeners; aliases are followed once."""
        canonical = canonical_host(host)
        canonical = self._names.get(canonical, canonical)
        address = Address(canonical, port_number(port))
        target = self._aliases.get(address, address)
        listener = self._listeners.get(target)
        return Lookup(target, listener, listener is None and target in self._closed)

    def resolve(self, host: object) -> str | None:
        """The address ``host`` resolves to in this run: ``127.0.0.1`` for the local host,
        an IP literal itself, a served name its fixed address; None for a name that
        nothing in the scenario serves (the caller refuses the lookup as an escape)."""
        canonical = canonical_host(host)
        if canonical == LOCALHOST or ip_literal(canonical) is not None:
            return canonical
        address = name_address(canonical)
        return address if self._names.get(address) == canonical else None

    def host_name(self, address: str) -> str:
        """The host name behind a resolved address (for messages); the address if none."""
        return self._names.get(address, address)

    def ephemeral(self, host: str = LOCALHOST) -> Address:
        """A fresh client-side address (the ``sockname`` of a client connection)."""
        port = self._next_ephemeral
        self._next_ephemeral += 1
        return Address(host, port)

    def serves(self, address: Address) -> bool:
        """Whether something listens on ``address`` now."""
        return address in self._listeners


@runtime_checkable
class NetworkRun(Protocol):
    """A run in progress that has a simulated network (what :func:`alias` reaches)."""

    @property
    def network(self) -> Network[object]: ...


def alias(host: str, port: int, *, to: tuple[str, int] | tuple[str, int, int, int]) -> None:
    """Make ``host:port`` reach the server listening on ``to`` in the current run.

    For a client configured by host name (``db.internal:5432``,
    ``http://payments.example``) while the scenario's server listens elsewhere (typically
    ``127.0.0.1`` on a port it was given)::

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        explorer.alias("db.internal", 5432, to=server.sockets[0].getsockname())

    A server started on the name itself (``asyncio.start_server(handle, "db.internal",
    5432)``) needs no alias. Call it inside the scenario; it lasts for the run."""
    run: object = active_run()
    if not isinstance(run, NetworkRun):
        raise UsageError(
            "explorer.alias() was called outside a controlled run (or in a runtime without "
            "a simulated network); call it inside the scenario passed to "
            "explorer.explore(), explorer.replay() or explorer.run()"
        )
    given: object = to  # checked at run time: untyped callers pass anything
    if not (isinstance(given, tuple) and len(given) >= 2):
        raise UsageError(f"explorer.alias(..., to=) takes a (host, port) pair, got {to!r}; "
                         "pass server.sockets[0].getsockname() or ('127.0.0.1', port)")
    network = run.network
    target = Address(canonical_host(to[0]), port_number(to[1]))
    network.alias(host, port, target)

