"""explorer.testing.RedisServer: the Redis protocol subset, through redis-py's asyncio
client over the simulated network, with expiry on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import explorer
from explorer.testing import ErrorReply, RedisServer
from explorer.testing._redis import _encode, _Map, _Session

redis = pytest.importorskip("redis.asyncio")

Body = Callable[[Any, RedisServer], Awaitable[None]]


def served(body: Body, **client: Any) -> Callable[[], Awaitable[None]]:
    """A scenario: a RedisServer on redis.internal:6379, one client, ``body``, teardown."""
    async def scenario() -> None:
        store = RedisServer()
        await store.start("redis.internal", 6379)
        connection = redis.Redis(host="redis.internal", port=6379, **client)
        try:
            await body(connection, store)
        finally:
            await connection.aclose()
            await store.aclose()

    return scenario


def passes(scenario: Callable[[], Awaitable[None]]) -> None:
    outcome = explorer.run(scenario).outcome
    assert outcome.kind == "pass", outcome


@pytest.mark.parametrize("protocol", [None, 2], ids=["resp3-default", "resp2"])
def test_strings_counters_and_lists(protocol: int | None) -> None:
    async def body(r: Any, store: RedisServer) -> None:
        assert await r.ping() is True
        assert await r.set("seat:1", "alice", nx=True) is True
        assert await r.set("seat:1", "bob", nx=True) is None
        assert await r.set("seat:2", "bob", xx=True) is None
        assert await r.get("seat:1") == b"alice"
        assert await r.set("seat:1", "carol", get=True) == b"alice"
        assert await r.incr("n") == 1 and await r.incrby("n", 5) == 6
        assert await r.decr("n") == 5 and await r.decrby("n", 2) == 3
        assert await r.exists("seat:1", "seat:2", "n") == 2
        assert await r.delete("seat:1", "seat:2") == 1
        assert await r.getdel("n") == b"3" and await r.get("n") is None
        assert await r.rpush("queue", "a", "b") == 2 and await r.lpush("queue", "z") == 3
        assert await r.lrange("queue", 0, -1) == [b"z", b"a", b"b"]
        assert await r.lrange("queue", -2, 5) == [b"a", b"b"]
        assert await r.llen("queue") == 3
        assert store.snapshot() == {b"queue": [b"z", b"a", b"b"]}
        with pytest.raises(redis.ResponseError, match="wrong kind of value"):
            await r.get("queue")

    passes(served(body, **({} if protocol is None else {"protocol": protocol})))


def test_databases_are_separate() -> None:
    async def scenario() -> None:
        store = RedisServer()
        await store.start("redis.internal", 6379)
        zero = redis.Redis(host="redis.internal", port=6379)
        one = redis.Redis(host="redis.internal", port=6379, db=1)
        await zero.set("k", "in zero")
        await one.set("k", "in one")
        assert await zero.get("k") == b"in zero" and await one.get("k") == b"in one"
        assert store.get("k", db=1) == b"in one"
        await zero.aclose()
        await one.aclose()
        await store.aclose()

    passes(scenario)


def test_expiry_follows_virtual_time() -> None:
    async def body(r: Any, store: RedisServer) -> None:
        await r.set("session", "alice", ex=30)
        await r.set("lock", "me", px=1500)
        await asyncio.sleep(29)
        assert await r.ttl("session") == 1 and await r.get("lock") is None
        assert await r.expire("session", 60) is True
        await asyncio.sleep(59.5)
        assert await r.pttl("session") == 500
        assert await r.persist("session") is True and await r.ttl("session") == -1
        await r.set("gone", "soon", ex=1)
        await asyncio.sleep(1)
        assert await r.exists("gone") == 0 and await r.ttl("gone") == -2

    passes(served(body))


def test_watch_multi_exec_refuses_a_changed_key() -> None:
    async def body(r: Any, store: RedisServer) -> None:
        await r.set("balance", 10)
        async with r.pipeline() as pipe:
            await pipe.watch("balance")
            balance = int(await pipe.get("balance"))
            pipe.multi()
            pipe.set("balance", balance - 3)
            assert await pipe.execute() == [True]
        async with r.pipeline() as pipe:
            await pipe.watch("balance")
            await r.set("balance", 0)  # another client writes in between
            pipe.multi()
            pipe.set("balance", 4)
            with pytest.raises(redis.WatchError):
                await pipe.execute()
        assert await r.get("balance") == b"0"

    passes(served(body))


def test_an_unsupported_command_is_an_error_not_a_wrong_answer() -> None:
    async def body(r: Any, store: RedisServer) -> None:
        with pytest.raises(redis.ResponseError, match="unknown command 'HSET'"):
            await r.hset("h", "field", "value")

    passes(served(body))


def test_aclose_waits_for_every_handler_in_every_schedule() -> None:
    async def body(r: Any, store: RedisServer) -> None:
        await asyncio.gather(r.incr("hits"), r.incr("hits"))
        assert store.get("hits") == b"2"

    result = explorer.explore(served(body), max_schedules=200, raise_on_failure=False)
    assert result.failure is None, result.failure
    assert result.schedules == 200


def test_replies_encode_as_resp2_and_resp3() -> None:
    hello = _Map([(b"proto", 3)])
    assert _encode(hello, 3) == b"%1\r\n$5\r\nproto\r\n:3\r\n"
    assert _encode(hello, 2) == b"*2\r\n$5\r\nproto\r\n:3\r\n"
    assert _encode(None, 3) == b"_\r\n" and _encode(None, 2) == b"$-1\r\n"
    assert _encode([b"a", 1, "OK"], 2) == b"*3\r\n$1\r\na\r\n:1\r\n+OK\r\n"


def test_hello_switches_the_protocol_and_multi_queues() -> None:
    store = RedisServer()
    session = _Session()

    async def exercise() -> None:
        assert isinstance(store.execute(session, [b"HELLO", b"3"]), _Map)
        assert session.protocol == 3
        assert store.execute(session, [b"MULTI"]) == "OK"
        assert store.execute(session, [b"SET", b"k", b"v"]) == "QUEUED"
        assert store.execute(session, [b"INCR", b"n"]) == "QUEUED"
        assert store.execute(session, [b"EXEC"]) == ["OK", 1]
        assert store.execute(session, [b"EXEC"]) == ErrorReply("ERR EXEC without MULTI")

    asyncio.run(exercise())
