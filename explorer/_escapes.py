"""Refusals of real operations that would act outside the controlled schedule, shared by
the asyncio and trio runtimes.

Contract: while :func:`installed` is active, each guarded call first asks the runtime's
*refuser* whether it runs inside a controlled run. If it does, the call is refused by
raising the :class:`~explorer.EscapeError` the refuser returns (the runtime has already
recorded it as the run's outcome) BEFORE the real operation does anything: no packet is
sent, no process forked, nothing waits in real time. Outside a controlled run (another
thread, between runs, the runtime's own machinery) the original is called unchanged.

What is refused, and why:

- Sockets (``socket.socket``): ``connect``, ``connect_ex``, ``sendto``, ``sendmsg`` and
  ``sendfile``/``send``/``sendall`` reach a real peer; ``bind`` and ``listen`` claim a real
  address other processes see; ``accept`` and the ``recv*`` family wait for a real peer.
  Creating, configuring (``setsockopt``, ``setblocking``), naming and closing a socket have
  no effect outside the process and stay allowed, so libraries that merely hold a socket
  still import and construct.
- Name resolution that may query DNS: ``socket.getaddrinfo``, ``gethostbyname``,
  ``gethostbyname_ex``, ``gethostbyaddr`` and ``getnameinfo``, except for IP literals and
  numeric-only flags, which never leave the process (so connecting to ``127.0.0.1`` is
  refused at ``connect``, where the message is clearest).
- Selectors: every ``selectors`` selector's ``select``, ``select.select``, and creating a
  ``select.poll``/``epoll``/``kqueue``/``devpoll`` object inside a run: they wait for real
  readiness in real time, and even a zero timeout reads the state of the world.
- ``os.read``/``readv``/``write``/``writev``/``sendfile``/``splice`` on a descriptor that
  can block: a pipe or FIFO, a socket, a terminal or another character device (checked with
  ``os.fstat``). Regular files stay allowed, and so do writes to file descriptors 1 and 2,
  which ``print`` reaches as well.
- Processes: ``os.fork``, ``os.forkpty``, ``os.posix_spawn``/``posix_spawnp``,
  ``os.system``, ``os.execv``/``execve``, ``subprocess.Popen``, the fork-exec primitive
  behind ``subprocess`` and ``multiprocessing``'s spawn, ``multiprocessing`` ``Process.start``
  and ``concurrent.futures.ProcessPoolExecutor`` (at creation and at ``submit``, before any
  worker exists). The last two are patched when their modules are imported (at once if
  they already are, see :mod:`explorer._patching`): importing them costs tens of
  milliseconds, which a session that never uses them should not pay.

Code that bound one of these names before the session (``from os import read``) keeps the
original, as for the other replaced functions.
"""

from __future__ import annotations

import gc
import ipaddress
import os
import select
import selectors
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from explorer._patching import Patch, Patches, when_imported

Refuse = Callable[[str, str], BaseException]
"""Builds (and records as the run's outcome) the escape for ``(call, fix)``."""

Refuser = Callable[[], "Refuse | None"]
"""Returns how to refuse when called inside a controlled run, else None."""

NETWORK_FIX = (
    "real sockets reach the network at a moment the schedule does not control; connect "
    "through the event loop instead (asyncio.open_connection, loop.create_connection, "
    "httpx, aiohttp, trio.open_tcp_stream), which the explorer simulates in memory against "
    "servers started inside the scenario, or talk to the code under test in memory "
    "(httpx.AsyncClient(transport=httpx.ASGITransport(app=app)))"
)
DNS_FIX = (
    "resolving a host name nothing in the scenario serves would query DNS, real network "
    "I/O outside the controlled schedule; start the server for that name inside the "
    "scenario (names served there resolve in memory), call explorer.alias(name, port, "
    "to=...), or pass an IP address"
)
SELECT_FIX = (
    "it waits for real file descriptors in real time, outside the controlled schedule; "
    "replace the real I/O with an in-memory fake and wait with the runtime's own primitives "
    "(asyncio.Event or Queue, trio memory channels)"
)
PROCESS_FIX = (
    "a child process runs outside the controlled schedule (and a forked copy of a half-run "
    "scenario can hang interpreter exit); call the function directly in the scenario, or "
    "fake the child process"
)

# The socket methods that reach the network, claim an address or wait for a peer (see the
# module docstring for why these and not the others).
SOCKET_METHODS = (
    "connect", "connect_ex", "bind", "listen", "accept",
    "send", "sendall", "sendto", "sendmsg", "sendfile",
    "recv", "recv_into", "recvfrom", "recvfrom_into", "recvmsg", "recvmsg_into",
)
_SELECTOR_CLASSES = ("SelectSelector", "PollSelector", "EpollSelector", "DevpollSelector",
                     "KqueueSelector")
_POLL_FACTORIES = ("poll", "epoll", "kqueue", "devpoll")
_STANDARD_OUTPUT = frozenset({1, 2})

def blocking_kind(fd: object) -> str | None:
    """What ``fd`` is, if reading or writing it can wait for another process; else None.

    None also for anything ``os.fstat`` cannot inspect: the real call then raises its own
    error."""
    try:
        mode = os.fstat(fd).st_mode  # type: ignore[arg-type]  # the real call checks the type
    except (OSError, TypeError, ValueError, OverflowError):
        return None
    if stat.S_ISFIFO(mode):
        return "a pipe or FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a terminal" if os.isatty(fd) else "a character device"  # type: ignore[arg-type]
    return None


def fd_fix(kind: str) -> str:
    return (f"I/O on {kind} can wait in real time for another process, outside the "
            "controlled schedule; replace it with an in-memory fake (io.BytesIO, an "
            "asyncio.Queue, a trio memory channel); regular files stay allowed")


@contextmanager
def installed(refuser: Refuser, *, trusted: tuple[str, ...] = ()) -> Iterator[None]:
    """Guard every operation listed in the module docstring until the block exits.

    ``trusted``: directories of a runtime's own machinery whose direct socket calls pass
    (trio's core wakes its own run loop through a socket pair, even from a signal handler
    that interrupts a user task)."""
    patch = Patches()
    # A finalizer the garbage collector runs in the middle of a run (a multiprocessing
    # semaphore's, a socket's) belongs to whatever made the object, often before the run:
    # its I/O is not the scenario's, so nothing is refused while a collection is running.
    collecting = False

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal collecting
        collecting = phase == "start"

    def refuse_outside_collections() -> Refuse | None:
        return None if collecting else refuser()

    gc.callbacks.append(on_gc)
    try:
        _guard_sockets(refuse_outside_collections, patch, trusted)
        _guard_resolver(refuse_outside_collections, patch)
        _guard_selectors(refuse_outside_collections, patch)
        _guard_descriptors(refuse_outside_collections, patch)
        _guard_processes(refuse_outside_collections, patch)
        yield
    finally:
        gc.callbacks.remove(on_gc)
        patch.restore()


def _shown(args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> str:
    """The arguments of a refused call as the message shows them, cut to a readable size."""
    shown = [repr(a) for a in args]
    shown += [f"{key}={value!r}" for key, value in (kwargs or {}).items()]
    text = ", ".join(shown)
    return text if len(text) <= 60 else text[:57] + "..."


def _refusing(real: Callable[..., Any], what: str, fix: str, refuser: Refuser, *,
              method: bool = False) -> Callable[..., Any]:
    """``real`` behind a guard that refuses every call made inside a run.

    ``method``: ``real`` is a method; its ``self`` (possibly not initialised yet) is not
    shown in the message."""
    skip = 1 if method else 0

    def guarded(*args: Any, **kwargs: Any) -> Any:
        refuse = refuser()
        if refuse is not None:
            raise refuse(f"{what}({_shown(args[skip:], kwargs)})", fix)
        return real(*args, **kwargs)

    guarded.__name__ = getattr(real, "__name__", what)
    guarded.__qualname__ = getattr(real, "__qualname__", what)
    guarded.__doc__ = getattr(real, "__doc__", None)
    return guarded


def _guard_sockets(refuser: Refuser, patch: Patch, trusted: tuple[str, ...]) -> None:
    for name in SOCKET_METHODS:
        real = getattr(socket.socket, name, None)
        if real is None:  # not on this platform (sendmsg, recvmsg on Windows)
            continue

        def guarded(sock: socket.socket, *args: Any, _real: Any = real, _name: str = name,
                    **kwargs: Any) -> Any:
            refuse = refuser()
            if refuse is not None and not (
                trusted and sys._getframe(1).f_code.co_filename.startswith(trusted)
            ):
                err = refuse(f"socket.{_name}({_shown(args)})", NETWORK_FIX)
                # The socket can do nothing useful in this run: closing it keeps a scenario
                # explored thousands of times (or a library that closes its socket only on
                # OSError, as socket.create_connection does) from leaking a descriptor a run.
                sock.close()
                raise err
            return _real(sock, *args, **kwargs)

        guarded.__name__ = name
        guarded.__qualname__ = f"socket.{name}"
        guarded.__doc__ = real.__doc__
        patch(socket.socket, name, guarded)


def _is_ip_literal(host: object) -> bool:
    if host is None:
        return True  # the wildcard or loopback address: no lookup
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return True  # the real call rejects it
    try:
        ipaddress.ip_address(host.partition("%")[0])  # an IPv6 zone is not part of it
    except ValueError:
        return False
    return True


def _guard_resolver(refuser: Refuser, patch: Patch) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0,
                    proto: int = 0, flags: int = 0) -> Any:
        refuse = refuser()
        if refuse is not None and not (flags & socket.AI_NUMERICHOST or _is_ip_literal(host)):
            raise refuse(f"socket.getaddrinfo({_shown((host, port))})", DNS_FIX)
        return real_getaddrinfo(host, port, family, type, proto, flags)

    getaddrinfo.__doc__ = real_getaddrinfo.__doc__
    patch(socket, "getaddrinfo", getaddrinfo)
    for name in ("gethostbyname", "gethostbyname_ex"):
        real = getattr(socket, name)

        def by_name(host: Any, _real: Any = real, _name: str = name) -> Any:
            refuse = refuser()
            if refuse is not None and not _is_ip_literal(host):
                raise refuse(f"socket.{_name}({host!r})", DNS_FIX)
            return _real(host)

        by_name.__name__ = by_name.__qualname__ = name
        by_name.__doc__ = real.__doc__
        patch(socket, name, by_name)
    patch(socket, "gethostbyaddr",
          _refusing(socket.gethostbyaddr, "socket.gethostbyaddr", DNS_FIX, refuser))
    real_getnameinfo = socket.getnameinfo

    def getnameinfo(sockaddr: Any, flags: int) -> Any:
        refuse = refuser()
        if refuse is not None and not flags & socket.NI_NUMERICHOST:
            raise refuse(f"socket.getnameinfo({_shown((sockaddr, flags))})", DNS_FIX)
        return real_getnameinfo(sockaddr, flags)

    getnameinfo.__doc__ = real_getnameinfo.__doc__
    patch(socket, "getnameinfo", getnameinfo)


def _guard_selectors(refuser: Refuser, patch: Patch) -> None:
    for cls_name in _SELECTOR_CLASSES:
        cls = getattr(selectors, cls_name, None)
        if cls is not None:
            patch(cls, "select", _refusing(cls.select, f"selectors.{cls_name}.select",
                                           SELECT_FIX, refuser, method=True))
    patch(select, "select", _refusing(select.select, "select.select", SELECT_FIX, refuser))
    for name in _POLL_FACTORIES:
        real = getattr(select, name, None)
        if real is not None:
            # Refused at creation: the object exists only to wait. Outside a run the real
            # object is returned, so a runtime's own I/O manager (trio creates its epoll
            # before the run starts) is untouched.
            factory = _refusing(real, f"select.{name}", SELECT_FIX, refuser)
            if hasattr(real, "fromfd"):
                factory.fromfd = real.fromfd  # type: ignore[attr-defined]
            patch(select, name, factory)


def _guard_descriptors(refuser: Refuser, patch: Patch) -> None:
    def guard(name: str, fd_positions: tuple[int, ...], writes: bool) -> None:
        real = getattr(os, name, None)
        if real is None:  # splice exists on Linux only
            return

        def guarded(*args: Any, **kwargs: Any) -> Any:
            refuse = refuser()
            if refuse is not None:
                for position in fd_positions:
                    if position >= len(args):
                        continue
                    fd = args[position]
                    if writes and position == 0 and fd in _STANDARD_OUTPUT:
                        continue
                    kind = blocking_kind(fd)
                    if kind is not None:
                        raise refuse(f"os.{name}({_shown(args[:1])}, ...) on {kind}",
                                     fd_fix(kind))
            return real(*args, **kwargs)

        guarded.__name__ = guarded.__qualname__ = name
        guarded.__doc__ = real.__doc__
        patch(os, name, guarded)

    guard("read", (0,), writes=False)
    guard("readv", (0,), writes=False)
    guard("write", (0,), writes=True)
    guard("writev", (0,), writes=True)
    guard("sendfile", (0, 1), writes=True)
    guard("splice", (0, 1), writes=True)


def _guard_processes(refuser: Refuser, patch: Patch) -> None:
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "execv",
                 "execve"):
        real = getattr(os, name, None)
        if real is not None:
            patch(os, name, _refusing(real, f"os.{name}", PROCESS_FIX, refuser))
    real_popen_init = subprocess.Popen.__init__
    patch(subprocess.Popen, "__init__",
          _refusing(real_popen_init, "subprocess.Popen", PROCESS_FIX, refuser,
                    method=True))
    posixsubprocess = sys.modules.get("_posixsubprocess")
    if posixsubprocess is not None:  # the fork-exec behind subprocess and mp's spawn
        patch(posixsubprocess, "fork_exec",
              _refusing(posixsubprocess.fork_exec, "_posixsubprocess.fork_exec",
                        PROCESS_FIX, refuser))
    when_imported("multiprocessing.process",
                  lambda module: _guard_process_start(module, refuser, patch), patch)
    when_imported("concurrent.futures.process",
                  lambda module: _guard_process_pools(module, refuser, patch), patch)


def _guard_process_start(module: ModuleType, refuser: Refuser, patch: Patch) -> None:
    base = module.BaseProcess
    patch(base, "start", _refusing(base.start, "multiprocessing.Process.start",
                                   PROCESS_FIX, refuser, method=True))


def _guard_process_pools(module: ModuleType, refuser: Refuser, patch: Patch) -> None:
    executor = module.ProcessPoolExecutor
    patch(executor, "__init__", _refusing(executor.__init__, "ProcessPoolExecutor",
                                          PROCESS_FIX, refuser, method=True))
    patch(executor, "submit", _refusing(executor.submit, "ProcessPoolExecutor.submit",
                                        PROCESS_FIX, refuser, method=True))
