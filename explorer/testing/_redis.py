"""An in-process Redis server: the subset of the Redis protocol (RESP2 and RESP3) that
redis-py's asyncio client and ordinary application code need, served over asyncio streams.

Contract: :class:`RedisServer` keeps its keys in memory and answers one command at a time
per connection, in the order the connection sent them; commands of different connections
interleave only between commands, as on a real (single-threaded) Redis. No command awaits
in the middle, so each one is atomic, and a ``MULTI``/``EXEC`` block runs its queued
commands without anything in between. Expiry is measured on the running loop's clock
(``loop.time()``), so under the explorer it follows virtual time: a key set with ``EX 30``
disappears when 30 virtual seconds have passed, and never costs real time.

Supported commands: ``PING``, ``ECHO``, ``HELLO`` (protocol 2 or 3), ``AUTH`` (accepts any
credentials), ``SELECT``, ``CLIENT`` (``SETINFO``, ``SETNAME``, ``GETNAME``, ``ID`` and
``MAINT_NOTIFICATIONS`` are acknowledged), ``GET``, ``SET`` (``NX``, ``XX``, ``EX``,
``PX``, ``GET``), ``GETDEL``, ``DEL``, ``EXISTS``, ``INCR``, ``DECR``, ``INCRBY``,
``DECRBY``, ``EXPIRE``, ``PEXPIRE``, ``TTL``, ``PTTL``, ``PERSIST``, ``KEYS`` (``*`` only
or an exact key), ``FLUSHDB``, ``RPUSH``, ``LPUSH``, ``LRANGE``, ``LLEN``, ``WATCH``,
``UNWATCH``, ``MULTI``, ``EXEC``, ``DISCARD``, ``QUIT``. Any other command is answered with
Redis's own ``unknown command`` error, which redis-py raises as ``ResponseError``: a
scenario that needs more fails loudly instead of getting a wrong answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ErrorReply:
    """An error reply (``-ERR ...``)."""

    message: str


@dataclass
class _Database:
    strings: dict[bytes, bytes | list[bytes]] = field(default_factory=dict)
    deadlines: dict[bytes, float] = field(default_factory=dict)
    # Bumped on every write of a key, so that WATCH can tell whether a key changed.
    versions: dict[bytes, int] = field(default_factory=dict)


@dataclass
class _Session:
    """What the server keeps per connection."""

    db: int = 0
    protocol: int = 2
    name: bytes | None = None
    queued: list[list[bytes]] | None = None  # inside MULTI: the commands waiting for EXEC
    aborted: bool = False                   # a command inside MULTI was rejected
    watched: dict[tuple[int, bytes], int] = field(default_factory=dict)


class ProtocolError(Exception):
    """The client sent bytes that are not a Redis command."""


class RedisServer:
    """An in-memory Redis for scenarios; start it with :meth:`start` inside the scenario.

    ::

        store = RedisServer()
        await store.start("redis.internal", 6379)
        client = redis.asyncio.Redis(host="redis.internal", port=6379)
        ...
        await client.aclose()
        await store.aclose()

    :meth:`aclose` stops listening, closes the connections still open and waits for their
    handlers, so that a scenario ends with no task of the server pending (asyncio's own
    ``Server.wait_closed`` does not wait for the handlers before Python 3.12).

    ``snapshot(db)`` and ``get(key, db)`` read the current contents without a connection,
    for assertions at the end of a scenario.
    """

    def __init__(self, *, databases: int = 16) -> None:
        self._databases = [_Database() for _ in range(databases)]
        self._connections = 0
        self._servers: list[asyncio.Server] = []
        self._handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._commands: dict[bytes, Callable[[_Session, list[bytes]], object]] = {
            b"PING": self._ping, b"ECHO": self._echo, b"HELLO": self._hello,
            b"AUTH": self._auth, b"SELECT": self._select, b"CLIENT": self._client,
            b"GET": self._get, b"SET": self._set, b"GETDEL": self._getdel, b"DEL": self._del,
            b"EXISTS": self._exists, b"INCR": self._incr, b"DECR": self._decr,
            b"INCRBY": self._incrby, b"DECRBY": self._decrby, b"EXPIRE": self._expire,
            b"PEXPIRE": self._pexpire, b"TTL": self._ttl, b"PTTL": self._pttl,
            b"PERSIST": self._persist, b"KEYS": self._keys, b"FLUSHDB": self._flushdb,
            b"RPUSH": self._rpush, b"LPUSH": self._lpush, b"LRANGE": self._lrange,
            b"LLEN": self._llen, b"WATCH": self._watch, b"UNWATCH": self._unwatch,
        }

    # -- serving --------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 6379) -> asyncio.Server:
        """Listen on ``host:port`` (``port=0`` picks a free port) and serve every client;
        the server returned tells the port (``server.sockets[0].getsockname()``)."""
        server = await asyncio.start_server(self.handle, host, port)
        self._servers.append(server)
        return server

    async def aclose(self) -> None:
        """Stop listening, close every client connection and wait for its handler."""
        for server in self._servers:
            server.close()
        for writer in self._handlers.values():
            writer.close()  # the handler reads the end of the stream and returns
        await asyncio.gather(*self._handlers, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection until it closes (an ``asyncio.start_server`` handler)."""
        session = _Session()
        self._connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers[task] = writer
        try:
            while True:
                try:
                    command = await _read_command(reader)
                except ProtocolError as exc:
                    reply = ErrorReply(f"ERR Protocol error: {exc}")
                    writer.write(_encode(reply, session.protocol))
                    break
                if command is None:
                    break
                if not command:
                    continue
                if command[0].upper() == b"QUIT":
                    writer.write(_encode("OK", session.protocol))
                    break
                writer.write(_encode(self.execute(session, command), session.protocol))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-command; a real server drops it too
        finally:
            writer.close()
            if task is not None:
                self._handlers.pop(task, None)

    # -- reading state for assertions -----------------------------------------------------

    def snapshot(self, db: int = 0) -> dict[bytes, bytes | list[bytes]]:
        """A copy of the live keys of ``db`` and their values, in key order."""
        database = self._databases[db]
        live = sorted(key for key in list(database.strings) if self._live(database, key))
        return {key: _copy(database.strings[key]) for key in live}

    def get(self, key: bytes | str, db: int = 0) -> bytes | list[bytes] | None:
        """The value of ``key`` (bytes, or a list for a list key), or None."""
        database = self._databases[db]
        name = key.encode() if isinstance(key, str) else key
        return _copy(database.strings[name]) if self._live(database, name) else None

    # -- dispatch -------------------------------------------------------------------------

    def execute(self, session: _Session, command: list[bytes]) -> object:
        """Run one command for ``session`` and return its reply, before encoding: None is
        the null reply, a str a status (``+OK``), an int an integer, bytes a bulk string, a
        list an array, an :class:`ErrorReply` an error reply."""
        name, args = command[0].upper(), command[1:]
        if name == b"MULTI":
            if session.queued is not None:
                return ErrorReply("ERR MULTI calls can not be nested")
            session.queued, session.aborted = [], False
            return "OK"
        if name == b"DISCARD":
            if session.queued is None:
                return ErrorReply("ERR DISCARD without MULTI")
            session.queued, session.watched = None, {}
            return "OK"
        if name == b"EXEC":
            return self._exec(session)
        handler = self._commands.get(name)
        if session.queued is not None:
            if handler is None or name == b"WATCH":
                session.aborted = True
                return (ErrorReply("ERR WATCH inside MULTI is not allowed") if name == b"WATCH"
                        else _unknown(command))
            session.queued.append(command)
            return "QUEUED"
        if handler is None:
            return _unknown(command)
        try:
            return handler(session, args)
        except _WrongArguments:
            return ErrorReply(f"ERR wrong number of arguments for '{name.decode().lower()}' "
                         "command")
        except ValueError:
            return ErrorReply("ERR value is not an integer or out of range")
        except _WrongType:
            return ErrorReply("WRONGTYPE Operation against a key holding the wrong kind of value")

    def _exec(self, session: _Session) -> object:
        queued, watched = session.queued, session.watched
        session.queued, session.watched = None, {}
        if queued is None:
            return ErrorReply("ERR EXEC without MULTI")
        if session.aborted:
            return ErrorReply("EXECABORT Transaction discarded because of previous errors.")
        for (db, key), version in watched.items():
            if self._version(self._databases[db], key) != version:
                return None  # a watched key changed: the transaction does not run
        return [self.execute(session, command) for command in queued]

    # -- keyspace helpers -----------------------------------------------------------------

    def _db(self, session: _Session) -> _Database:
        return self._databases[session.db]

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _live(self, database: _Database, key: bytes) -> bool:
        deadline = database.deadlines.get(key)
        if deadline is not None and deadline <= self._now():
            # Expired: remove it now, as Redis's lazy expiry does on access. Expiry is a
            # write as far as WATCH is concerned.
            del database.strings[key], database.deadlines[key]
            self._touch(database, key)
        return key in database.strings

    @staticmethod
    def _touch(database: _Database, key: bytes) -> None:
        database.versions[key] = database.versions.get(key, 0) + 1

    def _version(self, database: _Database, key: bytes) -> int:
        self._live(database, key)
        return database.versions.get(key, 0)

    def _string(self, session: _Session, key: bytes) -> bytes | None:
        database = self._db(session)
        if not self._live(database, key):
            return None
        value = database.strings[key]
        if isinstance(value, list):
            raise _WrongType
        return value

    def _store(self, session: _Session, key: bytes, value: bytes | list[bytes],
               *, keep_ttl: bool = False) -> None:
        database = self._db(session)
        database.strings[key] = value
        if not keep_ttl:
            database.deadlines.pop(key, None)
        self._touch(database, key)

    def _remove(self, session: _Session, key: bytes) -> bool:
        database = self._db(session)
        if not self._live(database, key):
            return False
        del database.strings[key]
        database.deadlines.pop(key, None)
        self._touch(database, key)
        return True

    # -- commands -------------------------------------------------------------------------

    def _ping(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 0, 1)
        return args[0] if args else "PONG"

    def _echo(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, 1)
        return args[0]

    def _hello(self, session: _Session, args: list[bytes]) -> object:
        if args:
            try:
                version = int(args[0])
            except ValueError:
                return ErrorReply("ERR Protocol version is not an integer or out of range")
            if version not in (2, 3):
                return ErrorReply("NOPROTO unsupported protocol version")
            session.protocol = version
        rest = [arg.upper() for arg in args[1:]]
        if b"SETNAME" in rest:
            session.name = args[1 + rest.index(b"SETNAME") + 1]
        return _Map([(b"server", b"redis"), (b"version", b"7.2.0"),
                     (b"proto", session.protocol), (b"id", self._connections),
                     (b"mode", b"standalone"), (b"role", b"master"), (b"modules", [])])

    def _auth(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, 2)
        return "OK"  # an in-process server has no users to protect

    def _select(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, 1)
        index = int(args[0])
        if not 0 <= index < len(self._databases):
            return ErrorReply("ERR DB index is out of range")
        session.db = index
        return "OK"

    def _client(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, None)
        sub = args[0].upper()
        if sub == b"SETNAME":
            _arity(args, 2, 2)
            session.name = args[1]
            return "OK"
        if sub == b"GETNAME":
            return session.name
        if sub == b"ID":
            return self._connections
        if sub in (b"SETINFO", b"MAINT_NOTIFICATIONS"):
            # Client metadata and maintenance push notifications: acknowledged; this
            # server never goes into maintenance, so it never sends a notification.
            return "OK"
        return ErrorReply(f"ERR unknown subcommand '{args[0].decode(errors='replace')}'")

    def _get(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, 1)
        return self._string(session, args[0])

    def _set(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 2, None)
        key, value, options = args[0], args[1], [arg.upper() for arg in args[2:]]
        ttl: float | None = None
        only_new = only_existing = want_old = False
        position = 0
        while position < len(options):
            option = options[position]
            if option in (b"EX", b"PX") and position + 1 < len(options):
                amount = int(options[position + 1])
                if amount <= 0:
                    return ErrorReply("ERR invalid expire time in 'set' command")
                ttl = amount if option == b"EX" else amount / 1000
                position += 2
                continue
            if option == b"NX":
                only_new = True
            elif option == b"XX":
                only_existing = True
            elif option == b"GET":
                want_old = True
            elif option != b"KEEPTTL":
                return ErrorReply("ERR syntax error")
            position += 1
        if only_new and only_existing:
            return ErrorReply("ERR syntax error")
        exists = self._live(self._db(session), key)
        old = self._string(session, key) if want_old else None
        if (only_new and exists) or (only_existing and not exists):
            return old if want_old else None
        self._store(session, key, value, keep_ttl=b"KEEPTTL" in options)
        if ttl is not None:
            self._db(session).deadlines[key] = self._now() + ttl
        return old if want_old else "OK"

    def _getdel(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, 1)
        value = self._string(session, args[0])
        self._remove(session, args[0])
        return value

    def _del(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, None)
        return sum(self._remove(session, key) for key in args)

    def _exists(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, None)
        return sum(self._live(self._db(session), key) for key in args)

    def _add(self, session: _Session, key: bytes, amount: int) -> object:
        current = self._string(session, key)
        value = (int(current) if current is not None else 0) + amount
        self._store(session, key, str(value).encode(), keep_ttl=True)
        return value

    def _incr(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, 1)
        return self._add(session, args[0], 1)

    def _decr(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, 1)
        return self._add(session, args[0], -1)

    def _incrby(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 2, 2)
        return self._add(session, args[0], int(args[1]))

    def _decrby(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 2, 2)
        return self._add(session, args[0], -int(args[1]))

    def _set_deadline(self, session: _Session, key: bytes, seconds: float) -> int:
        database = self._db(session)
        if not self._live(database, key):
            return 0
        if seconds <= 0:
            self._remove(session, key)
            return 1
        database.deadlines[key] = self._now() + seconds
        self._touch(database, key)
        return 1

    def _expire(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 2, 2)
        return self._set_deadline(session, args[0], int(args[1]))

    def _pexpire(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 2, 2)
        return self._set_deadline(session, args[0], int(args[1]) / 1000)

    def _remaining(self, session: _Session, key: bytes, scale: int) -> int:
        database = self._db(session)
        if not self._live(database, key):
            return -2
        deadline = database.deadlines.get(key)
        if deadline is None:
            return -1
        return max(0, round((deadline - self._now()) * scale))

    def _ttl(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, 1)
        return self._remaining(session, args[0], 1)

    def _pttl(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, 1)
        return self._remaining(session, args[0], 1000)

    def _persist(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, 1)
        database = self._db(session)
        if not self._live(database, args[0]) or args[0] not in database.deadlines:
            return 0
        del database.deadlines[args[0]]
        self._touch(database, args[0])
        return 1

    def _keys(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, 1)
        live = list(self.snapshot(session.db))
        if args[0] == b"*":
            return live
        if any(char in args[0] for char in b"*?[\\"):
            return ErrorReply("ERR this server matches KEYS against '*' or an exact key only")
        return [key for key in live if key == args[0]]

    def _flushdb(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 0, 1)
        for key in self.snapshot(session.db):
            self._remove(session, key)
        return "OK"

    def _list(self, session: _Session, key: bytes) -> list[bytes]:
        database = self._db(session)
        if not self._live(database, key):
            return []
        value = database.strings[key]
        if not isinstance(value, list):
            raise _WrongType
        return value

    def _push(self, session: _Session, args: list[bytes], *, left: bool) -> object:
        _arity(args, 2, None)
        items = self._list(session, args[0])
        values = list(reversed(args[1:])) if left else args[1:]
        items = [*values, *items] if left else [*items, *values]
        self._store(session, args[0], items, keep_ttl=True)
        return len(items)

    def _rpush(self, session: _Session, args: list[bytes]) -> object:
        return self._push(session, args, left=False)

    def _lpush(self, session: _Session, args: list[bytes]) -> object:
        return self._push(session, args, left=True)

    def _lrange(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 3, 3)
        items = self._list(session, args[0])
        size, start, stop = len(items), int(args[1]), int(args[2])
        # Both ends are inclusive; negative indices count from the end, as in Redis.
        start = max(size + start, 0) if start < 0 else start
        stop = min(size + stop if stop < 0 else stop, size - 1)
        return items[start:stop + 1] if start <= stop else []

    def _llen(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, 1)
        return len(self._list(session, args[0]))

    def _watch(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 1, None)
        for key in args:
            session.watched.setdefault((session.db, key),
                                       self._version(self._db(session), key))
        return "OK"

    def _unwatch(self, session: _Session, args: list[bytes]) -> object:
        _arity(args, 0, 0)
        session.watched = {}
        return "OK"


class _WrongArguments(Exception):
    pass


class _WrongType(Exception):
    pass


class _Map(list[tuple[bytes, object]]):
    """A map reply: a RESP3 map, or a flat array of keys and values under RESP2."""


def _copy(value: bytes | list[bytes]) -> bytes | list[bytes]:
    return list(value) if isinstance(value, list) else value


def _arity(args: list[bytes], least: int, most: int | None) -> None:
    if len(args) < least or (most is not None and len(args) > most):
        raise _WrongArguments


def _unknown(command: list[bytes]) -> ErrorReply:
    shown = command[0].decode(errors="replace")
    return ErrorReply(f"ERR unknown command '{shown}', with args beginning with: "
                 + " ".join(f"'{arg.decode(errors='replace')}'" for arg in command[1:3]))


async def _read_line(reader: asyncio.StreamReader) -> bytes | None:
    line = await reader.readline()
    if not line:
        return None
    if not line.endswith(b"\r\n"):
        raise ProtocolError("connection closed in the middle of a command")
    return line[:-2]


async def _read_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    """One command: a RESP array of bulk strings, or an inline command; None at EOF."""
    line = await _read_line(reader)
    if line is None:
        return None
    if not line.startswith(b"*"):
        return line.split()  # an inline command, as typed into telnet
    try:
        count = int(line[1:])
    except ValueError:
        raise ProtocolError(f"invalid multibulk length {line[1:]!r}") from None
    parts: list[bytes] = []
    for _ in range(count):
        header = await _read_line(reader)
        if header is None or not header.startswith(b"$"):
            raise ProtocolError(f"expected '$', got {header!r}")
        try:
            size = int(header[1:])
        except ValueError:
            raise ProtocolError(f"invalid bulk length {header[1:]!r}") from None
        data = await reader.readexactly(size + 2)
        parts.append(data[:-2])
    return parts


def _encode(reply: object, protocol: int) -> bytes:
    if reply is None:
        return b"_\r\n" if protocol == 3 else b"$-1\r\n"
    if isinstance(reply, ErrorReply):
        return b"-" + reply.message.encode() + b"\r\n"
    if isinstance(reply, bool):
        return b":" + (b"1" if reply else b"0") + b"\r\n"
    if isinstance(reply, int):
        return b":" + str(reply).encode() + b"\r\n"
    if isinstance(reply, str):
        return b"+" + reply.encode() + b"\r\n"
    if isinstance(reply, bytes):
        return b"$" + str(len(reply)).encode() + b"\r\n" + reply + b"\r\n"
    if isinstance(reply, _Map):
        if protocol == 3:
            return (b"%" + str(len(reply)).encode() + b"\r\n"
                    + b"".join(_encode(k, 3) + _encode(v, 3) for k, v in reply))
        return _encode([item for pair in reply for item in pair], protocol)
    if isinstance(reply, list):
        return (b"*" + str(len(reply)).encode() + b"\r\n"
                + b"".join(_encode(item, protocol) for item in reply))
    raise TypeError(f"cannot encode a reply of type {type(reply).__name__}: {reply!r}")
