"""Races in services that keep their state in a database, a cache or another service.

Each module starts what it needs inside the scenario: a SQLite database (a file in a
temporary directory) reached through SQLAlchemy's async engine over aiosqlite, whose
worker thread runs inline under the explorer; an in-process Redis
(:class:`explorer.testing.RedisServer`) reached with redis-py's asyncio client; an
aiohttp application and a Starlette application on uvicorn, reached with aiohttp's and
httpx's own clients over the simulated network. The
application code is what it would be in production (docs/services.md). Importing this
package needs the optional ``web`` and ``services`` extras.
"""

from __future__ import annotations

from examples.gallery import Example
from examples.services import (
    oauth_refresh,
    orm_lost_update,
    payment_retry,
    pool_deadlock,
    redis_sessions,
)

# Two network clients through redis-py or httpx make dozens of steps per request: their
# systematic proofs within 2 deviations run tens of thousands of schedules (the fixed
# versions pass all 34,796 for Redis and all 21,997 for OAuth), beyond the gallery's budget
# of 20,000, so those two are searched and proved within 1 deviation, which finds the bugs.
# The nested checkout's bug takes 1 deviation too; its fixed version passes all 2,342
# schedules within 2 (over a minute of SQLAlchemy work), 69 within 1: it is searched and
# proved within 1 too (orm-lost-update keeps a proof within 2 for SQLAlchemy).
EXAMPLES: list[Example] = [
    Example("orm-lost-update",
            "SQLAlchemy ORM read-modify-write of a stock count across two requests",
            orm_lost_update.lost_stock_update, orm_lost_update.lost_stock_update_fixed,
            "assertion"),
    Example("pool-nested-checkout",
            "connection pool exhausted: each request holds one connection, waits for another",
            pool_deadlock.nested_checkout, pool_deadlock.nested_checkout_fixed, "exception",
            bound=1),
    Example("redis-session-revoked",
            "authentication bypass: an API key minted by a session being logged out (Redis)",
            redis_sessions.mint_during_logout, redis_sessions.mint_during_logout_fixed,
            "assertion", bound=1, network=True),
    Example("oauth-double-refresh",
            "two refreshes of one OAuth token: the first token is revoked under a request",
            oauth_refresh.token_refresh, oauth_refresh.token_refresh_fixed, "assertion",
            bound=1, network=True),
    Example("payment-double-charge",
            "a charge whose response is lost, retried without an idempotency key",
            payment_retry.double_charge, payment_retry.double_charge_fixed, "assertion",
            faults=True, network=True),
]

__all__ = ["EXAMPLES"]
