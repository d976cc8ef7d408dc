"""FastAPI: a rate limiter dependency with a read-modify-write across an await.

``rate_limit`` reads the account's request count from the counter store, and if it is
under the limit, writes back count + 1. Both store calls await. A script (API key) and a
browser (bearer token, which first awaits token introspection) call ``GET /search`` for
the same account, whose limit is one request per window. In the stock order the
introspection delays the browser until the script's increment is written, so the browser
gets 429. If introspection is quicker, both requests read 0 before either writes, and
both are served. The fixed dependency uses the store's atomic increment (like Redis
``INCR``) and decides on the value it returns.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Header, HTTPException

LIMIT = 1


class CounterStore:
    """An in-memory stand-in for a shared counter service (one await per call)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    async def get(self, key: str) -> int:
        await asyncio.sleep(0)
        return self.counts.get(key, 0)

    async def set(self, key: str, value: int) -> None:
        await asyncio.sleep(0)
        self.counts[key] = value

    async def incr(self, key: str) -> int:
        await asyncio.sleep(0)
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]


async def introspect(token: str) -> str:
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return token.removeprefix("Bearer ").partition(":")[0]


async def account(x_api_key: Annotated[str | None, Header()] = None,
                  authorization: Annotated[str | None, Header()] = None) -> str:
    """The account a request is billed to: from its API key, or from its bearer token."""
    if x_api_key is not None:
        return x_api_key.partition(":")[0]
    if authorization is not None:
        return await introspect(authorization)
    raise HTTPException(status_code=401)


def make_app(*, fixed: bool) -> tuple[FastAPI, CounterStore]:
    store = CounterStore()

    async def rate_limit(key: Annotated[str, Depends(account)]) -> None:
        if fixed:
            if await store.incr(key) > LIMIT:
                raise HTTPException(status_code=429)
            return
        count = await store.get(key)
        if count >= LIMIT:
            raise HTTPException(status_code=429)
        await store.set(key, count + 1)

    app = FastAPI()

    @app.get("/search", dependencies=[Depends(rate_limit)])
    async def search(q: str) -> dict[str, list[str]]:
        return {"results": [q]}

    return app, store


async def _script_and_browser(*, fixed: bool) -> None:
    app, _store = make_app(fixed=fixed)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        responses = await asyncio.gather(
            client.get("/search", params={"q": "a"}, headers={"X-API-Key": "acme:script"}),
            client.get("/search", params={"q": "b"}, headers={"Authorization": "Bearer acme:web"}),
        )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 429], f"limit {LIMIT} per window, but the responses were {codes}"


async def limit_bypass() -> None:
    """Two requests of one account within one window: exactly one is served."""
    await _script_and_browser(fixed=False)


async def limit_bypass_fixed() -> None:
    await _script_and_browser(fixed=True)
