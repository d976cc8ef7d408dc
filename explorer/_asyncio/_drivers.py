"""Worker threads of known database drivers, served inline on the controlled loop.

Contract: a driver whose worker thread's only contact with the event loop is a request
queue of ``(future, function)`` pairs, answered with ``call_soon_threadsafe`` on the
future's loop, runs here with no thread at all. Its queue is replaced by
:class:`InlineRequests`, which serves the requests of one connection in order, each as one
callback on the loop (one scheduling step): the function runs on the loop's thread, and
its result or exception is set on the future. On the controlled loop that callback is a
candidate of its own at every scheduling point, as I/O readiness is, named after its
queue (``sqlite#2``). Requests of different connections therefore interleave with each
other and with the tasks that made them, wherever a real worker thread could have
answered them. Nothing is ever served in real time.

aiosqlite (the shapes of 0.20 to 0.22, :data:`AIOSQLITE_SUPPORTED`) is adopted this way
when a connection is awaited inside a run: its worker thread is never started. Its
queue is :class:`SqliteRequests`, which also makes SQLite's locking behave as it does for
real, on virtual time. The real connection's busy timeout is set to 0, so a statement
that meets another connection's lock fails at once with ``SQLITE_BUSY``; where SQLite
would call its busy handler, the request is retried instead after the delays of SQLite's
own default handler (1, 2, 5, ... 100 ms), as timers on the controlled loop, until the
connection's timeout (aiosqlite's ``timeout``, sqlite3's 5 s by default) has passed in
virtual time; then ``database is locked`` is delivered, as for real. Other tasks run
meanwhile and the loop never waits. Where SQLite does not call the busy handler (a
transaction that already read tries to write while another holds the write lock), the
error is delivered at once, as SQLite does to break that deadlock. ``SQLITE_LOCKED`` (a
table lock of a shared-cache database) is never waited for, as in SQLite. Each adopted
connection starts with ``PRAGMA synchronous = OFF``: commits skip their fsync, which only
durability against a power loss depends on (a scenario may set its own value).

A connection opened outside a run keeps its real thread; its answers then reach the
controlled loop from a foreign thread, which the loop refuses as an escape.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Generator
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from explorer._escapes import Refuse
from explorer._patching import Patch, when_imported

if TYPE_CHECKING:  # imported where used: only aiosqlite's connections need it, and
    import sqlite3  # aiosqlite has imported it by then

AIOSQLITE_SUPPORTED: Final = "aiosqlite 0.20 to 0.22"

Request = tuple[Any, Callable[[], Any]]
"""``(future or None, function)``: what a driver puts on its worker's queue."""

# SQLite's default busy handler (sqliteDefaultBusyCallback in main.c): the delay before
# each retry, in milliseconds, and the total waited before it.
_DELAYS_MS: Final = (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100)
_TOTALS_MS: Final = (0, 1, 3, 8, 18, 33, 53, 78, 103, 128, 178, 228)

_SQLITE_BUSY: Final = 5


def busy_delay(count: int, timeout_ms: int) -> float | None:
    """Seconds SQLite's default busy handler sleeps before retry ``count + 1`` of a
    statement, with a busy timeout of ``timeout_ms``; None when it gives up."""
    if count < len(_DELAYS_MS):
        delay, prior = _DELAYS_MS[count], _TOTALS_MS[count]
    else:
        delay = _DELAYS_MS[-1]
        prior = _TOTALS_MS[-1] + delay * (count - (len(_DELAYS_MS) - 1))
    if prior + delay > timeout_ms:
        delay = timeout_ms - prior
        if delay <= 0:
            return None
    return delay / 1000


class InlineRequests:
    """A worker thread's request queue, served on the event loop instead of by the thread.

    Requests are served one at a time, in the order they were put, as the thread would:
    each in a callback of the loop of its future. A request without a future (a driver
    stopping a connection from a finaliser) is served at once when nothing is pending.
    Items that are not ``(future, function)`` pairs (a stop sentinel) are ignored: there
    is no thread to stop."""

    __slots__ = ("__weakref__", "_pending", "_serving")

    def __init__(self) -> None:
        self._pending: collections.deque[Request] = collections.deque()
        self._serving = False

    # The queue.SimpleQueue methods a driver uses to hand work over.
    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self.put_nowait(item)

    def put_nowait(self, item: Any) -> None:
        if not (isinstance(item, tuple) and len(item) == 2 and callable(item[1])):
            return
        self._pending.append(item)
        if not self._serving:
            self._next()

    def qsize(self) -> int:
        return len(self._pending)

    def empty(self) -> bool:
        return not self._pending

    def _next(self) -> None:
        """Serve the oldest pending request: in a callback, or now if it has no future
        (or :meth:`at_once` says so)."""
        self._serving = bool(self._pending)
        if not self._serving:
            return
        future, function = self._pending[0]
        if future is None or self.at_once(function):
            self._serve()
            return
        loop = future.get_loop()
        serve = _Serve(self._serve, self.describe(function, loop))
        call_io = getattr(loop, "_call_io", None)
        if call_io is not None and asyncio._get_running_loop() is loop:
            # On the controlled loop the answer is a candidate of its own, as I/O
            # readiness is: a worker thread's answer reaches a real loop at any moment,
            # not in first-in first-out order with the loop's other callbacks.
            call_io(serve, process=self.process(loop))
        else:
            loop.call_soon_threadsafe(serve)

    def _serve(self) -> None:
        future, function = self._pending[0]
        try:
            result = function()
        except (SystemExit, KeyboardInterrupt):
            raise  # the explorer's to handle, as for run_in_executor
        except BaseException as exc:  # noqa: BLE001 - delivered to the awaiter, as the thread does
            delay = self.retry_after(function, exc) if future is not None else None
            if delay is not None:
                loop = future.get_loop()
                name = self.describe(function, loop)
                loop.call_later(delay, _Serve(self._serve, f"{name} (retried: busy)"))
                return
            self.served(function, ok=False)
            if future is not None and not future.done():
                future.set_exception(exc)
        else:
            self.served(function, ok=True, result=result)
            if future is not None and not future.done():
                future.set_result(result)
        self._pending.popleft()
        self._next()

    # Hooks for a driver's own rules.
    def at_once(self, function: Callable[[], Any]) -> bool:
        """Serve ``function`` synchronously when it is next, rather than as a step."""
        return False

    kind = "requests"
    """What :meth:`process` calls the queue, numbered in order of first use in the run."""

    def describe(self, function: Callable[[], Any], loop: Any) -> str:
        """How stories and swimlanes name the step that serves ``function``: the queue
        (:meth:`process`), then the request."""
        func = function.func if isinstance(function, partial) else function
        return f"{self.process(loop)}: {getattr(func, '__qualname__', type(func).__name__)}"

    def process(self, loop: Any) -> str:
        """Whose steps the requests' steps are, for strategies and stories: ``sqlite#2``."""
        resource_name = getattr(loop, "resource_name", None)  # the controlled loop's
        number = resource_name(self).rpartition("#")[2] if resource_name else ""
        return f"{self.kind}#{number}" if number else self.kind

    def retry_after(self, function: Callable[[], Any], exc: BaseException) -> float | None:
        """Seconds after which the failed request is served again instead of failing."""
        return None

    def served(self, function: Callable[[], Any], *, ok: bool, result: Any = None) -> None:
        """Called after each request that is not retried."""


class ExecutorCall:
    """The step that runs one ``loop.run_in_executor`` (and so ``asyncio.to_thread``)
    call inline and settles its future, named after the function for stories and
    swimlanes. Exceptions reach the awaiter, as a thread pool's would; ``SystemExit`` and
    ``KeyboardInterrupt`` are the explorer's to handle."""

    def __init__(self, future: asyncio.Future[Any], func: Callable[..., Any],
                 args: tuple[Any, ...]) -> None:
        self._future = future
        self._func = func
        self._args = args
        self.__qualname__ = f"{_function_name(func, args)} (worker thread)"

    def __call__(self) -> None:
        future = self._future
        if future.cancelled():  # the awaiter gave up (a timeout): the pool skips it too
            return
        try:
            result = self._func(*self._args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - delivered to the awaiter
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)


def _function_name(func: Callable[..., Any], args: tuple[Any, ...]) -> str:
    """The user's function behind ``asyncio.to_thread``'s wrapping
    (``partial(context.run, func, ...)``), or ``func``'s own name."""
    if isinstance(func, partial):
        args = func.args + args
        func = func.func
    if getattr(func, "__name__", "") == "run" and args and callable(args[0]) and \
            type(getattr(func, "__self__", None)).__name__ == "Context":
        func = args[0]
    return getattr(func, "__qualname__", None) or type(func).__qualname__


class _Serve:
    """The callback that serves a request, named after it (the loop's descriptions of a
    plain callback read its ``__qualname__``)."""

    def __init__(self, serve: Callable[[], None], name: str) -> None:
        self._serve = serve
        self.__qualname__ = name

    def __call__(self) -> None:
        self._serve()


def _sql(function: Callable[[], Any]) -> str:
    """The SQL text a request executes, or "" if it executes none."""
    if not isinstance(function, partial) or not function.args:
        return ""
    name = getattr(function.func, "__name__", "")
    text = function.args[0]
    if "execute" in name and isinstance(text, str):
        return text.strip()
    return ""


def _is_commit(function: Callable[[], Any]) -> bool:
    import sqlite3  # a lookup: aiosqlite imported it
    func = function.func if isinstance(function, partial) else function
    if getattr(func, "__name__", "") == "commit" and \
            isinstance(getattr(func, "__self__", None), sqlite3.Connection):
        return True
    return _sql(function).upper().startswith(("COMMIT", "END"))


def _is_busy(exc: BaseException) -> bool:
    import sqlite3  # a lookup: aiosqlite imported it
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.OperationalError) and isinstance(code, int) and \
        code & 0xFF == _SQLITE_BUSY


class SqliteRequests(InlineRequests):
    """The queue of one aiosqlite connection, with SQLite's busy waiting on virtual time.

    ``_locked``: the connection's current transaction has run a statement, so SQLite holds
    at least a read lock for it. Then a write that meets another connection's write lock
    is not waited for (SQLite returns ``SQLITE_BUSY`` at once rather than deadlock); a
    ``COMMIT`` always waits. An unfinished read cursor outside a transaction also holds a
    read lock, which this does not see (aiosqlite's callers fetch whole results)."""

    __slots__ = ("_attempts", "_connection", "_locked", "_opened", "_timeout_ms")

    def __init__(self) -> None:
        super().__init__()
        self._connection: sqlite3.Connection | None = None
        self._opened = False
        self._timeout_ms = 5000
        self._locked = False
        self._attempts = 0

    kind = "sqlite"

    def describe(self, function: Callable[[], Any], loop: Any) -> str:
        name = self.process(loop)
        sql = " ".join(_sql(function).split())
        if sql:
            return f"{name}: {sql[:40]}{'...' if len(sql) > 40 else ''}"
        if self._connection is None and not self._opened:
            return f"{name}: connect"
        func = function.func if isinstance(function, partial) else function
        return f"{name}: {getattr(func, '__name__', 'request').strip('_')}"

    def at_once(self, function: Callable[[], Any]) -> bool:
        # aiosqlite 0.22 stops a connection with this request, also from its finaliser
        # when a connection was never closed: served at once, a collection in the middle
        # of a later run adds no step to it (which would make runs differ).
        return getattr(function, "__name__", "") == "close_and_stop"

    def retry_after(self, function: Callable[[], Any], exc: BaseException) -> float | None:
        connection = self._connection
        if connection is None or not _is_busy(exc):
            return None
        if self._locked and not _is_commit(function):
            return None
        if getattr(getattr(function, "func", None), "__name__", "") == "executescript":
            # A script is not retried: statements before the busy one have already run.
            return None
        self._adopt_timeout(connection)
        delay = busy_delay(self._attempts, self._timeout_ms)
        if delay is None:
            self._attempts = 0
            return None
        self._attempts += 1
        return delay

    def served(self, function: Callable[[], Any], *, ok: bool, result: Any = None) -> None:
        import sqlite3  # a lookup: aiosqlite imported it
        self._attempts = 0
        if self._connection is None:
            if ok and isinstance(result, sqlite3.Connection) and not self._opened:
                self._connection = result
                self._opened = True
                self._adopt_timeout(result)
                # Durability against a power loss is outside any run, and each commit's
                # fsync costs milliseconds of real time (most of a FastAPI + SQLAlchemy
                # run): locking, visibility and snapshots do not depend on it.
                result.execute("PRAGMA synchronous = OFF")
            return
        try:
            in_transaction = self._connection.in_transaction
        except sqlite3.ProgrammingError:  # closed
            self._connection = None
            return
        if not in_transaction:
            self._locked = False
        elif ok and not _sql(function).upper().startswith("BEGIN"):
            self._locked = True

    def _adopt_timeout(self, connection: sqlite3.Connection) -> None:
        """Take over the connection's busy timeout (set at connect or by a later
        ``PRAGMA busy_timeout``) and leave SQLite's own at 0: waits happen here."""
        (timeout_ms,) = connection.execute("PRAGMA busy_timeout").fetchone()
        if timeout_ms:
            self._timeout_ms = int(timeout_ms)
            connection.execute("PRAGMA busy_timeout = 0")


def patch_aiosqlite(in_run: Callable[[], bool], refuse: Refuse, patch: Patch) -> None:
    """Serve aiosqlite connections awaited inside a run inline, for the session, if and
    when the scenario imports aiosqlite (never imports it, see :mod:`explorer._patching`).

    ``in_run`` tells whether the caller runs inside a controlled run; ``refuse`` builds the
    escape for an aiosqlite whose internals are not the known ones."""
    when_imported("aiosqlite.core", lambda core: _patch_core(core, in_run, refuse, patch),
                  patch)


def _unknown_shape(core: ModuleType) -> str | None:
    """What of aiosqlite's internals this module relies on is missing, if anything."""
    connection = getattr(core, "Connection", None)
    if connection is None:
        return "aiosqlite.core.Connection"
    for name in ("__await__", "_connect", "_execute"):
        if name not in vars(connection):
            return f"aiosqlite.core.Connection.{name}"
    return None


def _patch_core(core: ModuleType, in_run: Callable[[], bool], refuse: Refuse,
                patch: Patch) -> None:
    missing = _unknown_shape(core)
    if missing is not None:
        # Its threads stay refused when started in a run; imported inside one, it is
        # refused at once, with the versions that work.
        if in_run():
            raise refuse("import aiosqlite", _unsupported(missing))
        return
    connection_cls = core.Connection
    real_await = vars(connection_cls)["__await__"]

    def inline_await(connection: Any) -> Generator[Any, None, Any]:
        if not in_run():
            return real_await(connection)  # type: ignore[no-any-return]
        requests: Any = getattr(connection, "_tx", None)
        if isinstance(requests, InlineRequests):
            # As Thread.start() does when aiosqlite's worker is started twice.
            raise RuntimeError("threads can only be started once")
        if not all(hasattr(requests, name) for name in ("put_nowait", "get_nowait", "empty")):
            raise refuse("aiosqlite.Connection.__await__()",
                         _unsupported("aiosqlite.core.Connection._tx"))
        # The worker thread is never started: its queue is served on the loop instead,
        # starting with anything queued before (aiosqlite queues nothing that early).
        inline = SqliteRequests()
        while not requests.empty():
            inline.put_nowait(requests.get_nowait())
        connection._tx = inline
        return connection._connect().__await__()  # type: ignore[no-any-return]

    inline_await.__doc__ = real_await.__doc__
    patch(connection_cls, "__await__", inline_await)


def _unsupported(missing: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = f"aiosqlite {version('aiosqlite')}"
    except PackageNotFoundError:
        found = "this aiosqlite"
    return (f"its worker thread cannot be served inline: {found} has no {missing}, which "
            f"the explorer relies on; install a supported version, {AIOSQLITE_SUPPORTED} "
            "(pip install 'aiosqlite>=0.20,<0.23')")

