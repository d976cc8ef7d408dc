"""FastAPI + Redis: an API key minted by a session that is being logged out (authentication
bypass).

Sessions live in Redis (``session:<sid>`` -> user), read with redis-py's asyncio client over
the network. ``POST /api-keys`` checks the session, then mints a long-lived API key and
files it under the session (``keys:<sid>``) so that a logout can revoke it. ``POST /logout``
checks the CSRF token, then, in one Redis transaction, deletes the session and reads the
keys filed under it, and revokes each of them.

The browser mints a key in one tab while the user logs out in another. In the stock order
the key is filed before the logout reads ``keys:<sid>``, so the logout revokes it. If the
logout's transaction reaches Redis first, the mint request, which checked the session
before the logout, files its key after the logout looked: the user was told they are
logged out everywhere, and a live API key of theirs remains. The fixed handler watches the
session key (``WATCH``) from its check to its write and files the key in a ``MULTI``/
``EXEC`` transaction: if the session changed in between, Redis refuses the transaction and
the request gets 401, so the check and the act are one atomic step as far as Redis goes.

Redis is :class:`explorer.testing.RedisServer`, started inside the scenario on
``redis.internal:6379``; the application code is what it would be against a real Redis.
"""

# No "from __future__ import annotations": FastAPI reads the endpoints' annotations at
# run time, and they name dependencies local to make_app.
import asyncio
from typing import Annotated

import httpx
import redis.asyncio as redis
from fastapi import Depends, FastAPI, Header, HTTPException

from explorer.testing import RedisServer

SID = "s-alice"


def make_app(client: redis.Redis, *, fixed: bool) -> FastAPI:
    app = FastAPI()

    async def session_id(x_session: Annotated[str, Header()]) -> str:
        return x_session

    @app.post("/api-keys", status_code=201)
    async def mint(sid: Annotated[str, Depends(session_id)]) -> dict[str, str]:
        key = f"ak-{sid}-1"
        if fixed:
            async with client.pipeline() as pipe:
                await pipe.watch(f"session:{sid}")
                user = await pipe.get(f"session:{sid}")
                if user is None:
                    raise HTTPException(status_code=401)
                pipe.multi()
                pipe.set(f"apikey:{key}", user)
                pipe.rpush(f"keys:{sid}", key)
                try:
                    await pipe.execute()
                except redis.WatchError:
                    raise HTTPException(status_code=401) from None
            return {"key": key}
        user = await client.get(f"session:{sid}")
        if user is None:
            raise HTTPException(status_code=401)
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(f"apikey:{key}", user)
            pipe.rpush(f"keys:{sid}", key)
            await pipe.execute()
        return {"key": key}

    @app.post("/logout", status_code=204)
    async def logout(sid: Annotated[str, Depends(session_id)],
                     x_csrf: Annotated[str, Header()]) -> None:
        if await client.get(f"csrf:{sid}") != x_csrf.encode():
            raise HTTPException(status_code=403)
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(f"session:{sid}")
            pipe.lrange(f"keys:{sid}", 0, -1)
            _, keys = await pipe.execute()
        if keys:
            await client.delete(*(b"apikey:" + key for key in keys))

    return app


async def _mint_during_logout(*, fixed: bool) -> None:
    store = RedisServer()
    await store.start("redis.internal", 6379)
    client = redis.Redis(host="redis.internal", port=6379)
    # Alice logs in: her session and its CSRF token are written at once, which also leaves
    # two connections in the client's pool, as earlier traffic would have.
    await asyncio.gather(client.set(f"session:{SID}", "alice"), client.set(f"csrf:{SID}", "c-1"))
    app = make_app(client, fixed=fixed)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as browser:
        minted, logged_out = await asyncio.gather(
            browser.post("/api-keys", headers={"X-Session": SID}),
            browser.post("/logout", headers={"X-Session": SID, "X-CSRF": "c-1"}))
    await client.aclose()
    await store.aclose()
    assert logged_out.status_code == 204, logged_out.text
    live = [key.decode() for key in store.snapshot() if key.startswith(b"apikey:")]
    assert not live, (f"the session was logged out, but API keys minted with it still "
                      f"work: {live} (mint answered {minted.status_code})")


async def mint_during_logout() -> None:
    """A key minted in one tab while the user logs out in another: none survives."""
    await _mint_during_logout(fixed=False)


async def mint_during_logout_fixed() -> None:
    await _mint_during_logout(fixed=True)
