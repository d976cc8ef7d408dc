"""Held-out (user terms): a Starlette signup endpoint over ``httpx.ASGITransport``; the
second request carries a token, checked in three awaits before the uniqueness check.

The name is taken twice when the second request runs ahead through its token check and
its uniqueness check while the first is hashing the password, between its check and its
write. ``fixed`` reserves the name before the await."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

USERS: dict[str, Any] = {}


async def verify_token(token: str) -> bool:
    await asyncio.sleep(0)   # look the token up
    await asyncio.sleep(0)   # check it is not revoked
    await asyncio.sleep(0)   # load its scopes
    return True


async def signup(request: Request) -> JSONResponse:
    body = await request.json()
    if request.headers.get("authorization"):
        await verify_token(request.headers["authorization"])
    name = body["name"]
    if name in USERS:
        return JSONResponse({"error": "taken"}, status_code=409)
    await asyncio.sleep(0)   # hash the password
    USERS[name] = body
    return JSONResponse({"created": name}, status_code=201)


async def signup_fixed(request: Request) -> JSONResponse:
    body = await request.json()
    if request.headers.get("authorization"):
        await verify_token(request.headers["authorization"])
    name = body["name"]
    if name in USERS:
        return JSONResponse({"error": "taken"}, status_code=409)
    USERS[name] = None       # reserved before the await
    await asyncio.sleep(0)   # hash the password
    USERS[name] = body
    return JSONResponse({"created": name}, status_code=201)


async def _two_signups(endpoint: Any) -> None:
    USERS.clear()
    app = Starlette(routes=[Route("/signup", endpoint, methods=["POST"])])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        first, second = await asyncio.gather(
            client.post("/signup", json={"name": "ann"}),
            client.post("/signup", json={"name": "ann"}, headers={"authorization": "t"}))
    created = [r.status_code for r in (first, second)].count(201)
    assert created == 1, (first.status_code, second.status_code)


async def buggy() -> None:
    await _two_signups(signup)


async def fixed() -> None:
    await _two_signups(signup_fixed)
