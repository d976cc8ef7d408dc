"""The event-loop methods the controlled loop refuses, and why.

Contract: :func:`refuse_unsimulated` replaces, on the loop class it is given, every
method that would reach outside the controlled world (datagrams, raw socket I/O, file
descriptors, signals, subprocesses) by one that raises the loop's ``EscapeError`` naming
the call and the fix. The stream networking methods are simulated instead
(:mod:`explorer._asyncio._network`), so they are not listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol


class _Escaping(Protocol):
    def _escape(self, what: str, fix: str) -> BaseException: ...


NETWORK_FIX: Final = (
    "real sockets are outside the controlled schedule; servers and stream connections "
    "made inside the scenario (asyncio.start_server, open_connection, "
    "loop.create_server/create_connection) are simulated in memory: use those, or a fake "
    "for datagrams and raw socket I/O")
FD_FIX: Final = ("file descriptors are outside the controlled schedule; replace the I/O "
                 "with an in-memory fake in the scenario")
PROC_FIX: Final = "subprocesses are outside the controlled schedule; fake the child process"

REFUSED: Final[dict[str, str]] = {
    **dict.fromkeys(("create_datagram_endpoint", "connect_accepted_socket", "sock_recv",
                     "sock_recv_into", "sock_recvfrom", "sock_recvfrom_into",
                     "sock_sendall", "sock_sendto", "sock_accept", "sock_sendfile",
                     "sendfile"), NETWORK_FIX),
    **dict.fromkeys(("add_reader", "add_writer", "remove_reader", "remove_writer",
                     "connect_read_pipe", "connect_write_pipe", "add_signal_handler",
                     "remove_signal_handler"), FD_FIX),
    **dict.fromkeys(("subprocess_exec", "subprocess_shell"), PROC_FIX),
}
"""Method name -> the fix its refusal names."""


def _refuse(name: str, fix: str) -> Callable[..., Any]:
    def refused(self: _Escaping, *args: Any, **kwargs: Any) -> Any:
        raise self._escape(f"loop.{name}()", fix)

    refused.__name__ = refused.__qualname__ = name
    return refused


def refuse_unsimulated(loop_class: type) -> None:
    """Replace each method of :data:`REFUSED` on ``loop_class`` by its refusal."""
    for name, fix in REFUSED.items():
        setattr(loop_class, name, _refuse(name, fix))
