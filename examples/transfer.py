"""Lock-order deadlock between two transfers.

A transfer locks the source account, then the destination. A transfer from A to B and
one from B to A, interleaved after each took its first lock, wait for each other forever.
The fixed version always locks the account with the smaller id first.
"""

from __future__ import annotations

import asyncio


class Account:
    def __init__(self, ident: int, balance: int) -> None:
        self.ident = ident
        self.balance = balance
        self.lock = asyncio.Lock()


async def validate(amount: int) -> None:
    await asyncio.sleep(0)  # fraud check
    await asyncio.sleep(0)  # limits check


async def transfer(src: Account, dst: Account, amount: int) -> None:
    async with src.lock:
        await asyncio.sleep(0)  # read the source balance from the store
        async with dst.lock:
            src.balance -= amount
            dst.balance += amount


async def transfer_fixed(src: Account, dst: Account, amount: int) -> None:
    first, second = sorted((src, dst), key=lambda account: account.ident)
    async with first.lock:
        await asyncio.sleep(0)
        async with second.lock:
            src.balance -= amount
            dst.balance += amount


async def checked_transfer(src: Account, dst: Account, amount: int, *, fixed: bool) -> None:
    await validate(amount)
    await (transfer_fixed if fixed else transfer)(src, dst, amount)


async def abba() -> None:
    """A pays B while B pays A; money must be conserved and both must finish."""
    a, b = Account(1, 100), Account(2, 100)
    await asyncio.gather(transfer(a, b, 10), checked_transfer(b, a, 20, fixed=False))
    assert a.balance + b.balance == 200


async def abba_fixed() -> None:
    a, b = Account(1, 100), Account(2, 100)
    await asyncio.gather(transfer_fixed(a, b, 10), checked_transfer(b, a, 20, fixed=True))
    assert a.balance + b.balance == 200
