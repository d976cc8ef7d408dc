"""Database drivers with worker threads run inline: aiosqlite, and SQLAlchemy's async engine
and ORM over it, with SQLite's own locking on virtual time.

Each scenario opens its database in a fresh file, so that every run starts from the same
state; connections are closed (engines disposed) even when an assertion fails, so no
connection is left for the garbage collector to warn about.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from queue import SimpleQueue
from typing import Any

import pytest

import explorer
from explorer._asyncio import _drivers
from explorer._patching import Patches

aiosqlite = pytest.importorskip("aiosqlite")
sqlalchemy = pytest.importorskip("sqlalchemy")
pytest.importorskip("greenlet")

# E402: imported after the importorskips, so that without the services extra the module
# is skipped rather than broken.
from sqlalchemy import Integer, event, select, text, update  # noqa: E402
from sqlalchemy.ext.asyncio import (  # noqa: E402
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column  # noqa: E402
from sqlalchemy.pool import AsyncAdaptedQueuePool  # noqa: E402


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stock: Mapped[int] = mapped_column(Integer)


@pytest.fixture
def fresh_db(tmp_path: Path) -> Callable[[], str]:
    """A new database file per call: each run of a scenario starts from nothing."""
    counter = itertools.count()
    return lambda: str(tmp_path / f"run{next(counter)}.db")


async def _stocked(path: str, stock: int = 1) -> None:
    async with aiosqlite.connect(path) as db:
        await db.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, stock INTEGER)")
        await db.execute("INSERT INTO products VALUES (1, ?)", (stock,))
        await db.commit()


async def _stock(path: str) -> int:
    async with aiosqlite.connect(path) as db, \
            db.execute("SELECT stock FROM products WHERE id = 1") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def _explores_clean(scenario: Callable[[], Awaitable[None]]) -> None:
    """The default strategy passes 300 schedules; systematic search within 2 deviations
    covers its whole space without a failure."""
    result = explorer.explore(scenario, max_schedules=300, seed=3)
    assert result.schedules == 300 or result.exhausted
    systematic = explorer.explore(scenario, strategy="systematic", deviation_bound=2,
                                  max_schedules=20_000)
    assert systematic.exhausted, "systematic search should cover every schedule"
    assert systematic.schedules > 10


# ---------------------------------------------------------------- aiosqlite itself


def test_aiosqlite_starts_no_thread_and_leaves_none_behind(
        fresh_db: Callable[[], str]) -> None:
    threads_seen: list[int] = []

    async def scenario() -> None:
        path = fresh_db()
        await _stocked(path, stock=5)

        async def sell() -> None:
            async with aiosqlite.connect(path) as db:
                threads_seen.append(threading.active_count())
                await db.execute("UPDATE products SET stock = stock - 1")
                await db.commit()

        await asyncio.gather(sell(), sell())
        assert await _stock(path) == 3

    def threads() -> set[threading.Thread]:  # the explorer's own (its watchdog) aside
        return {t for t in threading.enumerate() if not t.name.startswith("explorer")}

    before = threads()
    result = explorer.explore(scenario, max_schedules=20, seed=1)
    assert result.schedules == 20 or result.exhausted
    assert threads() == before
    assert len(threads_seen) >= 2 * result.schedules
    assert max(threads_seen) <= threading.active_count()


def test_inline_connections_skip_fsync_and_a_scenario_may_restore_it(
        fresh_db: Callable[[], str]) -> None:
    # synchronous = OFF only drops the fsync of each commit (durability against a power
    # loss); what a second connection reads afterwards is unchanged.
    seen: list[tuple[int, int, int]] = []

    async def scenario() -> None:
        path = fresh_db()
        await _stocked(path, stock=5)
        async with aiosqlite.connect(path) as db:
            async with db.execute("PRAGMA synchronous") as cursor:
                row = await cursor.fetchone()
            await db.execute("PRAGMA synchronous = FULL")
            async with db.execute("PRAGMA synchronous") as cursor:
                restored = await cursor.fetchone()
        assert row is not None and restored is not None
        seen.append((row[0], restored[0], await _stock(path)))

    explorer.run(scenario)
    assert seen == [(0, 2, 5)]


def test_a_lost_update_through_aiosqlite_is_found(fresh_db: Callable[[], str]) -> None:
    async def scenario() -> None:
        path = fresh_db()
        await _stocked(path, stock=2)

        async def buy() -> None:
            async with aiosqlite.connect(path) as db:
                async with db.execute("SELECT stock FROM products WHERE id = 1") as cursor:
                    row = await cursor.fetchone()
                assert row is not None
                await db.execute("UPDATE products SET stock = ? WHERE id = 1", (row[0] - 1,))
                await db.commit()

        await asyncio.gather(buy(), buy())
        assert await _stock(path) == 0

    result = explorer.explore(scenario, max_schedules=2000, seed=1, raise_on_failure=False)
    assert result.failure is not None
    assert result.failure.outcome.kind == "assertion"
    # The story names each statement's step by its connection and its SQL.
    assert "sqlite#2: SELECT stock FROM products" in str(result.failure)


def test_statements_of_one_connection_keep_their_order(fresh_db: Callable[[], str]) -> None:
    async def scenario() -> None:
        path = fresh_db()
        loop = asyncio.get_running_loop()
        async with aiosqlite.connect(path) as db:
            await db.execute("CREATE TABLE log (n INTEGER)")
            # Queued in one step (as SQLAlchemy queues its own requests), served one
            # after the other in that order, as by the one worker thread.
            futures = []
            for n in range(4):
                futures.append(loop.create_future())
                db._tx.put_nowait((futures[-1], partial(db._conn.execute,
                                                        "INSERT INTO log VALUES (?)", (n,))))
            await asyncio.gather(*futures, asyncio.sleep(0), asyncio.sleep(0))
            await db.commit()
            rows = await db.execute_fetchall("SELECT n FROM log ORDER BY rowid")
        assert [r[0] for r in rows] == [0, 1, 2, 3]

    result = explorer.explore(scenario, max_schedules=100, seed=2)
    assert result.schedules == 100 or result.exhausted


def test_aiosqlite_imported_inside_the_first_run_is_served_inline(tmp_path: Path) -> None:
    # A fresh interpreter: this one imported aiosqlite long ago. A plain scenario does not
    # import it; one that imports it in the middle of its first run is patched at once.
    code = textwrap.dedent(f"""
        import asyncio, sys
        import explorer

        async def plain():
            await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))

        explorer.explore(plain, max_schedules=3)
        print("aiosqlite" in sys.modules)

        async def scenario():
            import aiosqlite
            async with aiosqlite.connect({str(tmp_path / "fresh.db")!r}) as db:
                await asyncio.gather(db.execute("SELECT 1"), db.execute("SELECT 2"))

        print(explorer.explore(scenario, max_schedules=5).failure is None)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]


def test_requests_of_two_connections_are_explored_in_either_order(
        fresh_db: Callable[[], str]) -> None:
    orders: set[tuple[str, ...]] = set()

    async def scenario() -> None:
        path = fresh_db()
        async with aiosqlite.connect(path) as db:
            await db.execute("CREATE TABLE log (who TEXT)")
            await db.commit()
        a = await aiosqlite.connect(path, isolation_level=None)
        b = await aiosqlite.connect(path, isolation_level=None)
        try:
            # Both queued in one step, a first (as SQLAlchemy queues its own requests): a
            # real thread of either connection may still answer first.
            loop = asyncio.get_running_loop()
            futures = []
            for db, who in ((a, "a"), (b, "b")):
                futures.append(loop.create_future())
                db._tx.put_nowait((futures[-1], partial(db._conn.execute,
                                                        "INSERT INTO log VALUES (?)", (who,))))
            await asyncio.gather(*futures)
            rows = await a.execute_fetchall("SELECT who FROM log ORDER BY rowid")
        finally:
            await a.close()
            await b.close()
        orders.add(tuple(row[0] for row in rows))

    explorer.explore(scenario, strategy="systematic", deviation_bound=1)
    assert orders == {("a", "b"), ("b", "a")}


# ---------------------------------------------------------------- SQLite's locking


def test_a_write_lock_makes_the_other_writer_wait_in_virtual_time(
        fresh_db: Callable[[], str]) -> None:
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        path = fresh_db()
        await _stocked(path, stock=1)
        loop = asyncio.get_running_loop()
        ticks: list[float] = []
        holding = asyncio.Event()

        async def holder() -> None:
            async with aiosqlite.connect(path, isolation_level=None) as db:
                await db.execute("BEGIN IMMEDIATE")
                holding.set()
                await asyncio.sleep(0.5)
                await db.execute("UPDATE products SET stock = 0")
                await db.execute("COMMIT")

        async def waiter() -> None:
            await holding.wait()
            async with aiosqlite.connect(path, isolation_level=None) as db:
                await db.execute("BEGIN IMMEDIATE")  # waits for the holder's commit
                seen["waited until"] = loop.time()
                rows = await db.execute_fetchall("SELECT stock FROM products")
                seen["stock"] = rows[0][0]
                await db.execute("COMMIT")

        async def ticker() -> None:
            for _ in range(4):
                await asyncio.sleep(0.1)
                ticks.append(loop.time())

        await asyncio.gather(holder(), waiter(), ticker())
        seen["ticks"] = ticks

    explorer.run(scenario)
    assert seen["waited until"] >= 0.5
    assert seen["stock"] == 0
    assert len(seen["ticks"]) == 4  # other tasks ran while the waiter waited


def test_the_busy_timeout_ends_in_database_is_locked_as_for_real(
        fresh_db: Callable[[], str]) -> None:
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        path = fresh_db()
        await _stocked(path)
        loop = asyncio.get_running_loop()
        holding = asyncio.Event()

        async def holder() -> None:
            async with aiosqlite.connect(path, isolation_level=None) as db:
                await db.execute("BEGIN IMMEDIATE")
                holding.set()
                await asyncio.sleep(10)
                await db.execute("COMMIT")

        async def waiter() -> None:
            await holding.wait()
            async with aiosqlite.connect(path, timeout=1.0) as db:
                try:
                    await db.execute("UPDATE products SET stock = 7")
                except sqlite3.OperationalError as exc:
                    seen["error"] = (str(exc), loop.time())

        await asyncio.gather(holder(), waiter())

    explorer.run(scenario)
    message, when = seen["error"]
    assert message == "database is locked"
    assert when == pytest.approx(1.0)  # sqlite3's timeout, spent in virtual time


def test_a_statement_abandoned_by_a_timeout_still_runs_once_the_lock_is_free(
        fresh_db: Callable[[], str]) -> None:
    # As aiosqlite's thread does: the caller stops waiting, the queued statement does not.
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        path = fresh_db()
        await _stocked(path, stock=0)
        loop = asyncio.get_running_loop()
        holder = await aiosqlite.connect(path, isolation_level=None)
        other = await aiosqlite.connect(path)
        try:
            await holder.execute("BEGIN IMMEDIATE")
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await other.execute("UPDATE products SET stock = 5")
            seen["timed out"] = loop.time()
            await holder.execute("COMMIT")
            await other.commit()  # served after the abandoned UPDATE
        finally:
            await holder.close()
            await other.close()
        seen["stock"] = await _stock(path)

    explorer.run(scenario)
    assert seen == {"timed out": pytest.approx(0.2), "stock": 5}


def test_a_nested_checkout_from_a_pool_of_one_times_out_in_virtual_time(
        fresh_db: Callable[[], str]) -> None:
    async def scenario() -> None:
        # The pool named: SQLAlchemy 2.0 gives a file database no pool by default.
        engine = create_async_engine(f"sqlite+aiosqlite:///{fresh_db()}",
                                     poolclass=AsyncAdaptedQueuePool, pool_size=1,
                                     max_overflow=0, pool_timeout=30)
        try:
            async with engine.connect() as outer:
                await outer.execute(text("SELECT 1"))
                async with engine.connect() as inner:  # waits for outer: never
                    await inner.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    result = explorer.explore(scenario, max_schedules=20, raise_on_failure=False)
    assert result.failure is not None
    assert "QueuePool limit of size 1 overflow 0 reached" in result.failure.outcome.message


def test_a_reader_upgrading_to_writer_fails_at_once_as_sqlite_avoids_deadlock(
        fresh_db: Callable[[], str]) -> None:
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        path = fresh_db()
        await _stocked(path, stock=5)
        a = await aiosqlite.connect(path, isolation_level=None)
        b = await aiosqlite.connect(path, isolation_level=None)
        try:
            for db in (a, b):
                await db.execute("BEGIN")
                await db.execute_fetchall("SELECT stock FROM products")
            await a.execute("UPDATE products SET stock = 4")
            try:
                await b.execute("UPDATE products SET stock = 3")
            except sqlite3.OperationalError as exc:
                seen["error"] = (str(exc), asyncio.get_running_loop().time())
            await b.execute("ROLLBACK")
            await a.execute("COMMIT")
        finally:
            await a.close()
            await b.close()
        seen["stock"] = await _stock(path)

    explorer.run(scenario)
    assert seen["error"] == ("database is locked", 0.0)  # no busy wait: SQLite's rule
    assert seen["stock"] == 4


def test_a_shared_cache_memory_database_reports_its_table_lock_at_once() -> None:
    seen: list[str] = []
    names = itertools.count()

    async def scenario() -> None:
        uri = f"file:drivers{next(names)}?mode=memory&cache=shared"
        a = await aiosqlite.connect(uri, uri=True)
        b = await aiosqlite.connect(uri, uri=True)
        try:
            await a.execute("CREATE TABLE t (n INTEGER)")
            await a.execute("INSERT INTO t VALUES (0)")
            await a.commit()
            await a.execute("UPDATE t SET n = 1")
            try:
                await b.execute("UPDATE t SET n = 2")
            except sqlite3.OperationalError as exc:
                seen.append(str(exc))
            await a.commit()
        finally:
            await a.close()
            await b.close()

    explorer.run(scenario)
    assert seen == ["database table is locked"]


def test_a_wal_reader_keeps_its_snapshot_while_a_writer_commits(
        fresh_db: Callable[[], str]) -> None:
    # explorer.run records a trace: naming the futures a task awaits must not keep their
    # results alive (the cursor of the PRAGMA holds a read lock until it is collected).
    seen: list[int] = []

    async def scenario() -> None:
        path = fresh_db()
        await _stocked(path, stock=5)
        async with aiosqlite.connect(path) as db, db.execute("PRAGMA journal_mode=WAL"):
            pass
        reader = await aiosqlite.connect(path, isolation_level=None)
        writer = await aiosqlite.connect(path)
        try:
            await reader.execute("BEGIN")
            seen.append((await reader.execute_fetchall("SELECT stock FROM products"))[0][0])
            await writer.execute("UPDATE products SET stock = 1")
            await writer.commit()  # WAL: no wait for the reader
            seen.append((await reader.execute_fetchall("SELECT stock FROM products"))[0][0])
            await reader.execute("COMMIT")
            seen.append((await reader.execute_fetchall("SELECT stock FROM products"))[0][0])
        finally:
            await reader.close()
            await writer.close()

    explorer.run(scenario)
    assert seen == [5, 5, 1]


def test_busy_delays_follow_sqlites_default_handler() -> None:
    delays = list(itertools.takewhile(lambda d: d is not None,
                                      (_drivers.busy_delay(n, 1000) for n in range(100))))
    assert delays[:4] == [0.001, 0.002, 0.005, 0.01]
    assert sum(d for d in delays if d is not None) == pytest.approx(1.0)
    assert _drivers.busy_delay(0, 0) is None


# ---------------------------------------------------------------- SQLAlchemy


def _engine(path: str, *, immediate: bool = False) -> AsyncEngine:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    if immediate:
        # SQLAlchemy's documented recipe: pysqlite's own BEGIN off, ours on, so a
        # transaction holds the write lock from its start.
        @event.listens_for(engine.sync_engine, "connect")
        def no_driver_begin(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def begin_immediate(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


async def _orm_shop(path: str) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    engine = _engine(path)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session:
        session.add(Product(id=1, stock=2))
        await session.commit()
    return engine, sessions


def _orm_scenario(fresh_db: Callable[[], str], *, atomic: bool
                  ) -> Callable[[], Awaitable[None]]:
    async def scenario() -> None:
        engine, sessions = await _orm_shop(fresh_db())
        try:
            async def buy() -> None:
                async with sessions() as session:
                    if atomic:
                        await session.execute(
                            update(Product)
                            .where(Product.id == 1, Product.stock > 0)
                            .values(stock=Product.stock - 1))
                    else:
                        product = await session.get(Product, 1)
                        assert product is not None
                        if product.stock > 0:
                            product.stock -= 1  # read-modify-write across an await
                    await session.commit()

            await asyncio.gather(buy(), buy())
            async with sessions() as session:
                product = await session.get(Product, 1)
                assert product is not None
                assert product.stock == 0, f"two sales, stock {product.stock} left of 2"
        finally:
            await engine.dispose()

    return scenario


def test_an_orm_lost_update_is_found_by_the_default_strategy(
        fresh_db: Callable[[], str]) -> None:
    result = explorer.explore(_orm_scenario(fresh_db, atomic=False), max_schedules=2000,
                              seed=1, raise_on_failure=False)
    assert result.failure is not None
    assert result.failure.outcome.kind == "assertion"
    assert "stock 1 left of 2" in result.failure.outcome.message


def test_replaying_a_sqlalchemy_schedule_gives_the_same_trace(
        fresh_db: Callable[[], str]) -> None:
    scenario = _orm_scenario(fresh_db, atomic=False)
    found = explorer.explore(scenario, strategy="random", max_schedules=200, seed=4,
                             raise_on_failure=False).failure
    assert found is not None
    first = explorer.run(scenario, schedule=found.schedule)
    second = explorer.run(scenario, schedule=found.schedule)
    assert first.trace.hash() == second.trace.hash()
    assert first.outcome.kind == second.outcome.kind == "assertion"


@pytest.mark.slow
def test_an_atomic_orm_update_passes(fresh_db: Callable[[], str]) -> None:
    _explores_clean(_orm_scenario(fresh_db, atomic=True))


@pytest.mark.slow
def test_core_transactions_begun_immediate_serialise_the_read_modify_write(
        fresh_db: Callable[[], str]) -> None:
    async def scenario() -> None:
        path = fresh_db()
        await _stocked(path, stock=2)
        engine = _engine(path, immediate=True)
        try:
            async def buy() -> None:
                async with engine.begin() as connection:  # holds the write lock
                    stock = (await connection.execute(
                        text("SELECT stock FROM products WHERE id = 1"))).scalar_one()
                    await connection.execute(
                        text("UPDATE products SET stock = :s WHERE id = 1"),
                        {"s": stock - 1})

            await asyncio.gather(buy(), buy())
            async with engine.connect() as connection:
                stock = (await connection.execute(
                    select(Product.stock).where(Product.id == 1))).scalar_one()
            assert stock == 0
        finally:
            await engine.dispose()

    _explores_clean(scenario)


def test_the_greenlet_bridge_keeps_footprints_and_task_names_straight(
        fresh_db: Callable[[], str]) -> None:
    # DPOR records every step's footprint; SQLAlchemy's await_only switches greenlets
    # inside task steps. The race is still found, and the story names the two tasks.
    result = explorer.explore(_orm_scenario(fresh_db, atomic=False), strategy="dpor",
                              max_schedules=500, raise_on_failure=False)
    assert result.failure is not None
    text_ = str(result.failure)
    assert "buy#1" in text_ and "buy#2" in text_


# ---------------------------------------------------------------- FastAPI


def test_a_fastapi_endpoint_with_an_async_session_dependency(
        fresh_db: Callable[[], str]) -> None:
    fastapi = pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")

    async def scenario() -> None:
        engine, sessions = await _orm_shop(fresh_db())
        app = fastapi.FastAPI()

        async def get_session() -> Any:
            async with sessions() as session:
                yield session

        # A default, not Annotated: this module's annotations are strings, which FastAPI
        # resolves in the module's globals, where the local name fastapi is not.
        session_dependency = fastapi.Depends(get_session)

        @app.post("/buy")
        async def buy(session: AsyncSession = session_dependency) -> dict[str, int]:
            product = await session.get(Product, 1)
            assert product is not None
            if product.stock <= 0:
                raise fastapi.HTTPException(409, "sold out")
            product.stock -= 1
            await session.commit()
            return {"left": product.stock}

        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
                responses = await asyncio.gather(client.post("/buy"), client.post("/buy"))
            assert [r.status_code for r in responses] == [200, 200]
            async with sessions() as session:
                product = await session.get(Product, 1)
                assert product is not None
                assert product.stock == 0, f"two sales, stock {product.stock} left of 2"
        finally:
            await engine.dispose()

    result = explorer.explore(scenario, max_schedules=2000, seed=1, raise_on_failure=False)
    assert result.failure is not None
    assert "stock 1 left of 2" in result.failure.outcome.message


# ---------------------------------------------------------------- what stays refused


def _thread_work() -> None:
    pass


def test_another_thread_is_still_an_escape_naming_its_target_and_the_fix() -> None:
    async def scenario() -> None:
        threading.Thread(target=_thread_work).start()

    result = explorer.explore(scenario, max_schedules=5, raise_on_failure=False)
    assert result.failure is not None
    assert result.failure.outcome.kind == "escape"
    message = result.failure.outcome.message
    assert f"target {__name__}._thread_work" in message
    assert "aiosqlite" in message and "docs/services.md" in message


def test_sync_code_in_sqlalchemys_greenlet_is_still_refused_its_escapes(
        fresh_db: Callable[[], str]) -> None:
    # run_sync runs its function in a greenlet, whose stack does not reach the run's.
    async def scenario() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{fresh_db()}")
        try:
            async with engine.connect() as connection:
                await connection.run_sync(lambda sync_connection: time.sleep(0.5))
        finally:
            await engine.dispose()

    result = explorer.explore(scenario, max_schedules=3, raise_on_failure=False)
    assert result.failure is not None
    assert result.failure.outcome.kind == "escape"
    assert "time.sleep(0.5)" in result.failure.outcome.message


def test_to_thread_and_run_in_executor_still_run_inline() -> None:
    async def scenario() -> None:
        me = threading.get_ident()
        loop = asyncio.get_running_loop()
        assert await asyncio.to_thread(threading.get_ident) == me
        assert await loop.run_in_executor(None, threading.get_ident) == me

    assert explorer.run(scenario).outcome.kind == "pass"


def test_the_patch_is_undone_when_the_session_ends(fresh_db: Callable[[], str]) -> None:
    original = vars(aiosqlite.core.Connection)["__await__"]

    async def scenario() -> None:
        async with aiosqlite.connect(fresh_db()) as db:
            await db.execute("SELECT 1")
        assert vars(aiosqlite.core.Connection)["__await__"] is not original

    explorer.run(scenario)
    assert vars(aiosqlite.core.Connection)["__await__"] is original


def test_an_aiosqlite_of_unknown_shape_is_refused_naming_the_supported_versions() -> None:
    core = types.ModuleType("aiosqlite.core")

    class Connection:  # no _execute: not a shape the explorer knows
        def __await__(self) -> Iterator[None]:
            yield None

        async def _connect(self) -> None:
            return None

    core.Connection = Connection  # type: ignore[attr-defined]

    def refuse(call: str, fix: str) -> BaseException:
        return explorer.EscapeError(f"{call}: {fix}")

    with pytest.raises(explorer.EscapeError, match=r"no aiosqlite.core.Connection._execute.*"
                                                   r"aiosqlite 0\.20 to 0\.22"):
        _drivers._patch_core(core, lambda: True, refuse, Patches())


# ------------------------------------------------ aiosqlite 0.20/0.21: Connection is a Thread

_STOP = object()


class _ThreadConnection(threading.Thread):
    """aiosqlite 0.20/0.21's shape, reduced to what the adapter meets: the connection is
    itself the worker thread, its queue takes ``(future, function)`` pairs and a bare stop
    sentinel."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._tx: SimpleQueue[Any] = SimpleQueue()
        self._connection: sqlite3.Connection | None = None
        self._path = path

    def run(self) -> None:  # never runs under the explorer
        raise AssertionError("the worker thread should not start")

    async def _execute(self, fn: Callable[..., Any], *args: Any) -> Any:
        future = asyncio.get_event_loop().create_future()
        self._tx.put_nowait((future, lambda: fn(*args)))
        return await future

    async def _connect(self) -> _ThreadConnection:
        self._connection = await self._execute(sqlite3.connect, self._path)
        return self

    def __await__(self) -> Any:
        self.start()
        return self._connect().__await__()

    async def close(self) -> None:
        assert self._connection is not None
        await self._execute(self._connection.close)
        self._tx.put_nowait(_STOP)


def test_the_older_thread_subclass_shape_is_served_inline_too(
        fresh_db: Callable[[], str]) -> None:
    core = types.ModuleType("aiosqlite.core")
    core.Connection = _ThreadConnection  # type: ignore[attr-defined]
    seen: list[int] = []

    async def scenario() -> None:
        patch = Patches()
        try:
            _drivers._patch_core(core, lambda: True,
                                 lambda call, fix: explorer.EscapeError(call), patch)
            db = await _ThreadConnection(fresh_db())
            assert db._connection is not None
            cursor = await db._execute(db._connection.execute, "SELECT 41 + 1")
            seen.append(cursor.fetchone()[0])
            await db.close()
            assert not db.is_alive()
        finally:
            patch.restore()

    explorer.run(scenario)
    assert seen == [42]
