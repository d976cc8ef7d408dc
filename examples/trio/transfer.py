"""Lock-order deadlock between two transfers, trio form.

A transfer locks the source account, then the destination. A transfer from A to B and one
from B to A, interleaved after each took its first lock, wait for each other forever. The
fixed version always locks the account with the smaller id first.
"""

from __future__ import annotations

import trio


class Account:
    def __init__(self, ident: int, balance: int) -> None:
        self.ident = ident
        self.balance = balance
        self.lock = trio.Lock()


async def validate(amount: int) -> None:
    await trio.sleep(0)  # fraud check
    await trio.sleep(0)  # limits check


async def transfer(src: Account, dst: Account, amount: int, *, fixed: bool) -> None:
    first, second = (src, dst)
    if fixed:
        first, second = sorted((src, dst), key=lambda account: account.ident)
    async with first.lock:
        await trio.sleep(0)  # read the first balance from the store
        async with second.lock:
            src.balance -= amount
            dst.balance += amount


async def checked_transfer(src: Account, dst: Account, amount: int, *, fixed: bool) -> None:
    await validate(amount)
    await transfer(src, dst, amount, fixed=fixed)


async def _abba(fixed: bool) -> None:
    a, b = Account(1, 100), Account(2, 100)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: transfer(a, b, 10, fixed=fixed))
        nursery.start_soon(lambda: checked_transfer(b, a, 20, fixed=fixed))
    assert a.balance + b.balance == 200


async def abba() -> None:
    """A pays B while B pays A; money must be conserved and both must finish."""
    await _abba(fixed=False)


async def abba_fixed() -> None:
    await _abba(fixed=True)
