"""Races in real web apps, driven through httpx's in-memory ASGI transport.

Each module builds a Starlette or FastAPI app from scratch per scenario (``make_app``),
fires concurrent requests with ``asyncio.gather`` through ``httpx.ASGITransport`` (no
sockets), and asserts an invariant on the responses or the app's state. Importing this
package needs the optional ``web`` extra (fastapi, starlette, httpx).
"""

from __future__ import annotations

from examples.gallery import Example
from examples.web import (
    fastapi_price_cache,
    fastapi_rate_limit,
    starlette_bank,
    starlette_sessions,
)

EXAMPLES: list[Example] = [
    Example("starlette-double-spend",
            "check-then-act double spend on POST /withdraw behind an auth middleware",
            starlette_bank.double_spend, starlette_bank.double_spend_fixed,
            "assertion", bound=3),
    Example("starlette-logout-bypass",
            "authentication bypass: private data served after the session's logout",
            starlette_sessions.logout_bypass, starlette_sessions.logout_bypass_fixed,
            "assertion", bound=3),
    Example("fastapi-rate-limit-bypass",
            "rate limiter dependency: read-modify-write of the request count across awaits",
            fastapi_rate_limit.limit_bypass, fastapi_rate_limit.limit_bypass_fixed,
            "assertion", bound=3),
    Example("fastapi-torn-price",
            "shared in-memory cache updated in two steps around a database write",
            fastapi_price_cache.torn_price, fastapi_price_cache.torn_price_fixed,
            "assertion", bound=3),
]

__all__ = ["EXAMPLES"]
