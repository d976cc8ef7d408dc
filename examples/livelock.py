"""Livelock: two polite handlers keep stepping aside for each other.

A handler needs leases on two records from a lease store (each lease call is a round trip).
It takes its first lease, tries the second, and if that one is taken it politely releases
the first, backs off for a moment and starts over. A sync job that leases ``inventory``
then ``orders`` and a checkout that leases ``orders`` then ``inventory``, once they run in
step, each take one lease, each find the other's taken, each release and retry, forever:
both are busy and neither makes progress. The fixed version has both handlers lease the
records in one global order, so whoever gets the first lease always gets the second.
"""

from __future__ import annotations

import asyncio


class LeaseStore:
    def __init__(self) -> None:
        self.holders: dict[str, str] = {}

    async def try_lease(self, key: str, owner: str) -> bool:
        await asyncio.sleep(0)
        if key in self.holders:
            return False
        self.holders[key] = owner
        return True

    async def release(self, key: str, owner: str) -> None:
        await asyncio.sleep(0)
        assert self.holders.pop(key) == owner


async def with_both(store: LeaseStore, owner: str, first: str, second: str,
                    done: list[str]) -> None:
    while True:
        if await store.try_lease(first, owner):
            if await store.try_lease(second, owner):
                done.append(owner)
                await store.release(second, owner)
                await store.release(first, owner)
                return
            await store.release(first, owner)
        await asyncio.sleep(0)  # back off before trying again


async def authenticate(owner: str) -> None:
    await asyncio.sleep(0)  # token lookup
    await asyncio.sleep(0)  # permission lookup


async def sync_job(store: LeaseStore, first: str, second: str, done: list[str]) -> None:
    await with_both(store, "sync", first, second, done)


async def checkout(store: LeaseStore, first: str, second: str, done: list[str]) -> None:
    await authenticate("checkout")
    await with_both(store, "checkout", first, second, done)


async def polite_pair() -> None:
    """A sync job and a checkout both need the same two records; both must finish."""
    store = LeaseStore()
    done: list[str] = []
    await asyncio.gather(sync_job(store, "inventory", "orders", done),
                         checkout(store, "orders", "inventory", done))
    assert sorted(done) == ["checkout", "sync"]


async def polite_pair_fixed() -> None:
    store = LeaseStore()
    done: list[str] = []
    await asyncio.gather(sync_job(store, "inventory", "orders", done),
                         checkout(store, "inventory", "orders", done))
    assert sorted(done) == ["checkout", "sync"]
