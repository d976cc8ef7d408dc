"""Information disclosure through a half-updated cache entry.

The "recently opened" entry of a document cache holds an owner and a document. Refreshing
it in place writes the new document, awaits the store's version stamp, then writes the
new owner. A reader that looks at the entry between the two writes sees the old owner
with the new document, passes the ownership check as the old owner, and is served another
user's document. The fixed version builds the new entry first and publishes it with a
single assignment, so readers see either the old entry or the new one, never a mix.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass
class Entry:
    owner: str
    document: str


class Cache:
    def __init__(self, owner: str, document: str) -> None:
        self.recent = Entry(owner, document)


async def version_stamp(document: str) -> int:
    await asyncio.sleep(0)
    return len(document)


async def authenticate(user: str) -> None:
    await asyncio.sleep(0)  # session lookup
    await asyncio.sleep(0)  # tenant lookup


async def refresh(cache: Cache, owner: str, document: str) -> None:
    cache.recent.document = document
    await version_stamp(document)
    cache.recent.owner = owner


async def refresh_fixed(cache: Cache, owner: str, document: str) -> None:
    await version_stamp(document)
    cache.recent = Entry(owner, document)


async def open_recent(cache: Cache, user: str) -> str | None:
    await authenticate(user)
    entry = cache.recent
    if entry.owner != user:
        return None
    return entry.document


def _assert_own(user: str, document: str | None) -> None:
    assert document is None or document.startswith(f"{user}:"), (
        f"{user} was served {document!r}")


async def torn_entry() -> None:
    """Bob's report replaces Alice's notes while Alice reopens them: she must not see it."""
    cache = Cache("alice", "alice: notes")
    _, seen = await asyncio.gather(refresh(cache, "bob", "bob: salary report"),
                                   open_recent(cache, "alice"))
    _assert_own("alice", seen)


async def torn_entry_fixed() -> None:
    cache = Cache("alice", "alice: notes")
    _, seen = await asyncio.gather(refresh_fixed(cache, "bob", "bob: salary report"),
                                   open_recent(cache, "alice"))
    _assert_own("alice", seen)
