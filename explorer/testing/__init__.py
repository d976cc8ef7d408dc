"""Test doubles for scenarios that talk to services.

:class:`RedisServer` is an in-process Redis server (the protocol subset its module names)
that a scenario starts on any address of the simulated network, so that redis-py's asyncio
client, or any other Redis client built on asyncio streams, runs unchanged under the
explorer. It is plain asyncio and works on a stock event loop as well.
"""

from __future__ import annotations

from explorer.testing._redis import ErrorReply, ProtocolError, RedisServer

__all__ = ["ErrorReply", "ProtocolError", "RedisServer"]
