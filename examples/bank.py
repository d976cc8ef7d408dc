"""Check-then-act double spend on a balance.

Two withdrawal handlers share an account. Each checks the balance, awaits the ledger
write, then debits. If the second handler checks while the first is awaiting its ledger
write, both see enough money and the balance goes negative. The fixed version holds a
lock from the check to the debit.
"""

from __future__ import annotations

import asyncio


class Account:
    def __init__(self, balance: int) -> None:
        self.balance = balance
        self.lock = asyncio.Lock()


async def authenticate(user: str) -> None:
    await asyncio.sleep(0)  # token lookup
    await asyncio.sleep(0)  # session refresh


async def ledger_write(amount: int) -> None:
    await asyncio.sleep(0)


async def withdraw(account: Account, amount: int) -> bool:
    if account.balance < amount:
        return False
    await ledger_write(amount)
    account.balance -= amount
    return True


async def withdraw_fixed(account: Account, amount: int) -> bool:
    async with account.lock:
        if account.balance < amount:
            return False
        await ledger_write(amount)
        account.balance -= amount
        return True


async def mobile_withdrawal(account: Account, amount: int) -> bool:
    await authenticate("mobile")
    return await withdraw(account, amount)


async def mobile_withdrawal_fixed(account: Account, amount: int) -> bool:
    await authenticate("mobile")
    return await withdraw_fixed(account, amount)


async def double_spend() -> None:
    """An ATM and a phone withdraw 80 each from 100: at most one may succeed."""
    account = Account(100)
    await asyncio.gather(withdraw(account, 80), mobile_withdrawal(account, 80))
    assert account.balance >= 0, f"balance went negative: {account.balance}"


async def double_spend_fixed() -> None:
    account = Account(100)
    await asyncio.gather(withdraw_fixed(account, 80), mobile_withdrawal_fixed(account, 80))
    assert account.balance >= 0, f"balance went negative: {account.balance}"
