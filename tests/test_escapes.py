"""Escapes are refused before they act: raw sockets, selectors, blocking file descriptors,
callbacks from foreign threads, forks and process pools, under asyncio and trio.

Each test that could hang if the refusal regressed (a read on an empty pipe, a select with
no timeout) bounds the real operation instead (a long timeout, a writer that unblocks the
pipe), so a regression fails the test by its outcome rather than hanging the suite.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import multiprocessing
import os
import queue
import select
import selectors
import socket
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio

import explorer
from explorer.strategies import Strategy

Scenario = Callable[[], Coroutine[Any, Any, Any]]
RUNTIMES = ["asyncio", "trio"]


def _escape(scenario: Scenario, runtime: str = "asyncio") -> explorer.ScheduleFailure:
    result = explorer.explore(scenario, runtime=runtime, max_schedules=3,
                              raise_on_failure=False)
    failure = result.failure
    assert failure is not None, "the scenario was not refused"
    assert failure.kind == "escape", failure.outcome.message
    return failure


def _children() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


# ---------------------------------------------------------------- sockets


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A real listener on 127.0.0.1, made outside any scenario."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.setblocking(False)
        yield sock


def _assert_accepted_nothing(listener: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        listener.accept()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_raw_socket_connect_is_refused_before_it_connects(
        listener: socket.socket, runtime: str) -> None:
    address = listener.getsockname()

    async def scenario() -> None:
        with socket.socket() as sock:
            sock.connect(address)

    failure = _escape(scenario, runtime)
    assert f"socket.connect({address!r})" in failure.outcome.message
    assert "httpx.ASGITransport" in failure.outcome.message
    assert failure.location is not None
    assert failure.location.short.startswith("test_escapes.py:")
    _assert_accepted_nothing(listener)


def test_a_refused_socket_is_closed_so_runs_leak_no_descriptors(
        listener: socket.socket) -> None:
    made: list[socket.socket] = []

    async def scenario() -> None:
        sock = socket.socket()  # no "with": the library that made it closes it only on OSError
        made.append(sock)
        sock.connect(listener.getsockname())

    _escape(scenario)
    assert made and all(sock.fileno() == -1 for sock in made)
    _assert_accepted_nothing(listener)


@pytest.mark.parametrize("method", ["bind", "sendto", "connect_ex"])
def test_other_socket_calls_that_reach_the_network_are_refused(
        listener: socket.socket, method: str) -> None:
    address = listener.getsockname()

    async def scenario() -> None:
        with socket.socket(type=socket.SOCK_DGRAM if method == "sendto" else
                           socket.SOCK_STREAM) as sock:
            if method == "bind":
                sock.bind(("127.0.0.1", 0))
            elif method == "sendto":
                sock.sendto(b"x", address)
            else:
                sock.connect_ex(address)

    failure = _escape(scenario)
    assert f"socket.{method}(" in failure.outcome.message
    _assert_accepted_nothing(listener)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_synchronous_dns_lookup_is_refused_but_ip_literals_pass(runtime: str) -> None:
    async def resolves_a_name() -> None:
        socket.getaddrinfo("example.invalid", 80)

    async def resolves_literals() -> None:
        assert socket.getaddrinfo("127.0.0.1", 80)
        assert socket.gethostbyname("127.0.0.1") == "127.0.0.1"

    failure = _escape(resolves_a_name, runtime)
    assert "socket.getaddrinfo('example.invalid', 80)" in failure.outcome.message
    assert "pass an IP address" in failure.outcome.message
    assert explorer.run(resolves_literals, runtime=runtime).passed


def test_a_synchronous_http_client_in_a_handler_is_refused(listener: socket.socket) -> None:
    """A blocking client called from async code (a common mistake) never reaches the peer."""
    import urllib.request

    host, port = listener.getsockname()

    async def handler() -> None:
        urllib.request.urlopen(f"http://{host}:{port}/", timeout=30)

    # socket.create_connection closes its socket only on OSError, so each refused one is
    # left to the garbage collector, which may run during the exploration: its warning is
    # expected here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        message = _escape(handler).outcome.message
        gc.collect()
    assert "socket.connect(" in message
    _assert_accepted_nothing(listener)


def test_httpx_over_trio_is_refused_at_the_socket(listener: socket.socket) -> None:
    import httpx

    host, port = listener.getsockname()

    async def scenario() -> None:
        async with httpx.AsyncClient() as client:
            await client.get(f"http://{host}:{port}/")

    failure = _escape(scenario, "trio")
    # trio's sockets are simulated: the address nothing in the scenario serves is refused
    assert f"connect('{host}:{port}')" in failure.outcome.message
    assert "explorer.alias" in failure.outcome.message
    _assert_accepted_nothing(listener)


def test_sockets_work_outside_runs_and_are_restored(listener: socket.socket) -> None:
    async def scenario() -> None:
        await asyncio.sleep(0)

    explorer.run(scenario)
    assert socket.socket.connect is socket.SocketType.connect  # the C method again
    assert "connect" not in vars(socket.socket)
    with socket.socket() as sock:
        sock.connect(listener.getsockname())  # a real connection, outside any run
        connection, _ = listener.accept()
        connection.close()


# ---------------------------------------------------------------- selectors


def _selector_wait(kind: str, fd: int) -> None:
    # A finite timeout: if the refusal regressed, the test fails instead of hanging.
    if kind == "select.select":
        select.select([fd], [], [], 30)
    elif kind == "DefaultSelector":
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            selector.select(30)
    elif kind == "select.poll":
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(30_000)
    else:
        with select.epoll() as epoll:
            epoll.register(fd, select.EPOLLIN)
            epoll.poll(30)


SELECTORS = ["select.select", "DefaultSelector", "select.poll",
             pytest.param("select.epoll", marks=pytest.mark.skipif(
                 not hasattr(select, "epoll"), reason="epoll is Linux only"))]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("kind", SELECTORS)
def test_selectors_waiting_in_real_time_are_refused(kind: str, runtime: str) -> None:
    reader, writer = os.pipe()
    try:
        async def scenario() -> None:
            _selector_wait(kind, reader)

        failure = _escape(scenario, runtime)
        assert "select" in failure.outcome.message
        assert "in-memory fake" in failure.outcome.message
    finally:
        os.close(reader)
        os.close(writer)


# ---------------------------------------------------------------- file descriptors


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A pipe whose writer end is fed from a thread only if a refusal regressed: the
    read then returns instead of hanging, and the test fails on the outcome."""
    reader, writer = os.pipe()
    unblock = threading.Timer(30, os.write, (writer, b"!"))
    unblock.daemon = True
    unblock.start()
    yield reader, writer
    unblock.cancel()
    os.close(reader)
    os.close(writer)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_reading_an_empty_pipe_is_refused_not_hung(pipe: tuple[int, int],
                                                   runtime: str) -> None:
    reader, _ = pipe

    async def scenario() -> None:
        os.read(reader, 1)

    failure = _escape(scenario, runtime)
    assert f"os.read({reader}, ...) on a pipe or FIFO" in failure.outcome.message
    assert "regular files stay allowed" in failure.outcome.message


@pytest.mark.parametrize("call", ["write", "writev", "readv"])
def test_other_blocking_descriptor_calls_are_refused(pipe: tuple[int, int],
                                                     call: str) -> None:
    reader, writer = pipe

    async def scenario() -> None:
        if call == "write":
            os.write(writer, b"x")
        elif call == "writev":
            os.writev(writer, [b"x"])
        else:
            os.readv(reader, [bytearray(1)])

    failure = _escape(scenario)
    assert f"os.{call}(" in failure.outcome.message
    assert select.select([reader], [], [], 0)[0] == []  # nothing was written


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_io_of_a_finalizer_the_garbage_collector_runs_is_not_refused(runtime: str) -> None:
    # A finalizer belongs to whatever made the object, often before the run (a
    # multiprocessing semaphore's tells its resource tracker through a pipe).
    read_end, write_end = os.pipe()

    class Tracked:
        def __init__(self) -> None:
            self.cycle = self  # only the cyclic collector frees it

        def __del__(self) -> None:
            os.write(write_end, b"x")

    async def scenario() -> None:
        gc.collect()

    gc.disable()
    try:
        Tracked()
        result = explorer.run(scenario, runtime=runtime)
    finally:
        gc.enable()
        os.close(write_end)
    try:
        assert result.passed, result.outcome.message
        assert os.read(read_end, 1) == b"x"
    finally:
        os.close(read_end)


def test_regular_files_stay_allowed(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")

    async def scenario() -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            assert os.read(fd, 3) == b"abc"
            os.write(fd, b"def")
        finally:
            os.close(fd)

    assert explorer.run(scenario).passed
    assert path.read_bytes() == b"abcdef"


# ---------------------------------------------------------------- foreign threads

_REQUESTS: queue.Queue[tuple[asyncio.AbstractEventLoop, asyncio.Future[int]] | None] = \
    queue.Queue()


def _answering_thread() -> None:
    """Like a library's worker thread: answers requests through call_soon_threadsafe."""
    while (request := _REQUESTS.get()) is not None:
        loop, future = request
        with contextlib.suppress(explorer.EscapeError):  # refused here; the run reports it
            loop.call_soon_threadsafe(future.set_result, 1)


@pytest.fixture
def answering_thread() -> Iterator[None]:
    """A thread started before the run, outside the scenario."""
    thread = threading.Thread(target=_answering_thread, name="db-worker")
    thread.start()
    yield
    _REQUESTS.put(None)
    thread.join()


async def _awaits_the_thread() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    _REQUESTS.put((loop, future))
    assert await future == 1


async def _awaits_the_thread_with_a_timeout() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    _REQUESTS.put((loop, future))
    assert await asyncio.wait_for(future, 5) == 1


@pytest.mark.usefixtures("answering_thread")
@pytest.mark.parametrize("scenario", [_awaits_the_thread, _awaits_the_thread_with_a_timeout])
def test_a_foreign_thread_calling_back_is_the_runs_escape(scenario: Scenario) -> None:
    """Not a lost wake-up (the loop ran out of work first) nor a bare TimeoutError
    (virtual time reached the timeout first): the thread's call is the outcome."""
    failure = _escape(scenario)
    message = failure.outcome.message
    assert "loop.call_soon_threadsafe(Future.set_result) from thread 'db-worker'" in message
    assert "run inline here" in message


def test_a_foreign_thread_reentering_a_trio_run_is_its_escape() -> None:
    tokens: queue.Queue[trio.lowlevel.TrioToken | None] = queue.Queue()

    def reenters() -> None:
        while (token := tokens.get()) is not None:
            try:
                token.run_sync_soon(print)
            except explorer.EscapeError:
                pass  # refused here; the run reports it
            finally:
                tokens.task_done()

    async def scenario() -> None:
        tokens.put(trio.lowlevel.current_trio_token())
        tokens.join()  # blocks until the thread has tried, within this run
        await trio.sleep(0)

    thread = threading.Thread(target=reenters, name="portal")
    thread.start()
    try:
        failure = _escape(scenario, "trio")
    finally:
        tokens.put(None)
        thread.join()
    assert "TrioToken.run_sync_soon(print) from thread 'portal'" in failure.outcome.message


async def _lock_order_deadlock() -> None:
    first, second = asyncio.Lock(), asyncio.Lock()

    async def take(a: asyncio.Lock, b: asyncio.Lock) -> None:
        async with a:
            await asyncio.sleep(0)
            async with b:
                pass

    await asyncio.gather(take(first, second), take(second, first))


def test_an_idle_thread_does_not_turn_a_real_deadlock_into_an_escape() -> None:
    stop = threading.Event()
    idle = threading.Thread(target=stop.wait, name="idle-exporter")
    idle.start()
    try:
        result = explorer.explore(_lock_order_deadlock, strategy="random", seed=1,
                                  max_schedules=50, raise_on_failure=False)
    finally:
        stop.set()
        idle.join()
    assert result.failure is not None and result.failure.kind == "deadlock"


class _ReportsFromAThreadBetweenRuns(Strategy):
    """Does what a worker's progress report does between runs, on the loop's thread:
    starts a thread and writes to a pipe. The explorer's own work is never refused."""

    name = "reports-between-runs"

    def __init__(self, runs: int) -> None:
        self.left = runs
        self.reports: list[bytes] = []

    def start_run(self) -> bool:
        reader, writer = os.pipe()
        try:
            thread = threading.Thread(target=os.write, args=(writer, b"progress"))
            thread.start()
            thread.join()
            self.reports.append(os.read(reader, 8))
        finally:
            os.close(reader)
            os.close(writer)
        self.left -= 1
        return self.left >= 0

    def choose(self, count: int, view: Any) -> int:
        return self.left % count  # vary the schedules, as a real strategy does


def test_the_explorers_own_work_between_runs_is_not_refused() -> None:
    async def scenario() -> None:
        await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))

    strategy = _ReportsFromAThreadBetweenRuns(runs=3)
    result = explorer.explore(scenario, strategy=strategy)
    assert result.failure is None
    assert strategy.reports == [b"progress"] * 4


# ---------------------------------------------------------------- processes


async def _forks() -> None:
    pid = os.fork()
    if pid == 0:  # only if the refusal regressed: never run the rest in the child
        os._exit(0)
    os.waitpid(pid, 0)


async def _creates_a_process_pool() -> None:
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        pool.submit(abs, -1).result()


async def _starts_a_process() -> None:
    process = multiprocessing.Process(target=abs, args=(-1,))
    process.start()
    process.join()


async def _runs_a_subprocess() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)


@pytest.mark.parametrize(("scenario", "names"), [
    (_forks, "os.fork()"),
    (_creates_a_process_pool, "ProcessPoolExecutor(max_workers=1)"),
    (_starts_a_process, "multiprocessing.Process.start()"),
    (_runs_a_subprocess, "subprocess.Popen(["),
])
def test_processes_are_refused_before_any_child_exists(scenario: Scenario,
                                                       names: str) -> None:
    before = _children()
    failure = _escape(scenario)
    assert names in failure.outcome.message
    assert "fake the child process" in failure.outcome.message
    assert _children() == before


def test_a_pool_made_before_the_run_is_refused_at_submit_and_in_run_in_executor() -> None:
    before = _children()
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        async def submits() -> None:
            pool.submit(abs, -1)

        async def runs_in_executor() -> None:
            await asyncio.get_running_loop().run_in_executor(pool, abs, -1)

        assert "ProcessPoolExecutor.submit(<built-in function abs>, -1)" in \
            _escape(submits).outcome.message
        assert "loop.run_in_executor() with a ProcessPoolExecutor" in \
            _escape(runs_in_executor).outcome.message
        assert _children() == before


def test_trio_refuses_a_fork() -> None:
    before = _children()
    failure = _escape(_forks, "trio")
    assert "os.fork()" in failure.outcome.message
    assert _children() == before


def test_a_process_pool_imported_during_the_run_leaves_no_child_and_exits(
        tmp_path: Path) -> None:
    """In a fresh interpreter (the pool's module not imported before the session): the
    refusal comes before any worker, so interpreter exit is not held up by one."""
    script = tmp_path / "pool_scenario.py"
    script.write_text(textwrap.dedent("""
        import sys
        import explorer
        import psutil

        async def scenario():
            from concurrent.futures import ProcessPoolExecutor
            with ProcessPoolExecutor(max_workers=1) as pool:
                pool.submit(abs, -1).result()

        assert "concurrent.futures.process" not in sys.modules
        result = explorer.explore(scenario, max_schedules=2, raise_on_failure=False)
        print(result.failure.kind, psutil.Process().children(recursive=True))
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "escape []"


# ---------------------------------------------------------------- trio's own machinery


def test_trio_keeps_its_own_wakeup_socket_and_io_manager() -> None:
    """trio's run loop polls its epoll/kqueue and wakes itself through a socket pair from
    inside a run: those are not the scenario's escapes."""
    async def scenario() -> None:
        trio.lowlevel.current_trio_token().run_sync_soon(lambda: None)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 1)
        await trio.sleep(0)

    assert explorer.run(scenario, runtime="trio").passed
