"""Authentication bypass: a request keeps using a session that was logged out.

A request handler checks the session, awaits the mailbox store, then reads the mailbox
with the identity the session gave it. A logout that revokes the session while the
request is awaiting the store does not stop it: the mailbox is read after the user was
told they are logged out. The fixed version stamps each session with a revocation
version and re-validates it after the await, right before the read, with no await in
between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class Session:
    user: str
    version: int = 0


class SessionStore:
    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.reads: list[tuple[str, bool]] = []

    def login(self, token: str, user: str) -> None:
        self.sessions[token] = Session(user)

    def validate(self, token: str) -> Session | None:
        return self.sessions.get(token)

    def revoke(self, token: str) -> None:
        self.sessions.pop(token).version += 1

    def read_mailbox(self, token: str, user: str) -> str:
        self.reads.append((token, token in self.sessions))
        return f"mail of {user}"


async def fetch_mailbox_index(user: str) -> None:
    await asyncio.sleep(0)


async def verify_csrf(token: str) -> None:
    await asyncio.sleep(0)  # form token lookup
    await asyncio.sleep(0)  # origin check


async def read_mail(store: SessionStore, token: str) -> str | None:
    session = store.validate(token)
    if session is None:
        return None
    await fetch_mailbox_index(session.user)
    return store.read_mailbox(token, session.user)


async def read_mail_fixed(store: SessionStore, token: str) -> str | None:
    session = store.validate(token)
    if session is None:
        return None
    version = session.version
    await fetch_mailbox_index(session.user)
    if session.version != version:
        return None
    return store.read_mailbox(token, session.user)


async def logout(store: SessionStore, token: str) -> None:
    await verify_csrf(token)
    store.revoke(token)


Handler = Callable[[SessionStore, str], Awaitable[str | None]]


async def _scenario(handler: Handler) -> None:
    store = SessionStore()
    store.login("t-alice", "alice")
    await asyncio.gather(handler(store, "t-alice"), logout(store, "t-alice"))
    stale = [token for token, live in store.reads if not live]
    assert not stale, f"mailbox read with a revoked session: {stale}"


async def logout_race() -> None:
    """Alice reads her mail while logging out elsewhere: no read after the revocation."""
    await _scenario(read_mail)


async def logout_race_fixed() -> None:
    await _scenario(read_mail_fixed)
