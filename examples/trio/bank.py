"""Check-then-act double spend on a balance, trio form.

Two withdrawal handlers share an account. Each checks the balance, awaits the ledger
write, then debits. If the second handler checks while the first is awaiting its ledger
write, both see enough money and the balance goes negative. The fixed version holds a
``trio.Lock`` from the check to the debit.
"""

from __future__ import annotations

import trio


class Account:
    def __init__(self, balance: int) -> None:
        self.balance = balance
        self.lock = trio.Lock()


async def authenticate(user: str) -> None:
    await trio.sleep(0)  # token lookup
    await trio.sleep(0)  # session refresh


async def ledger_write(amount: int) -> None:
    await trio.sleep(0)


async def withdraw(account: Account, amount: int) -> None:
    if account.balance < amount:
        return
    await ledger_write(amount)
    account.balance -= amount


async def withdraw_fixed(account: Account, amount: int) -> None:
    async with account.lock:
        if account.balance < amount:
            return
        await ledger_write(amount)
        account.balance -= amount


async def mobile_withdrawal(account: Account, amount: int, *, fixed: bool) -> None:
    await authenticate("mobile")
    await (withdraw_fixed if fixed else withdraw)(account, amount)


async def _two_withdrawals(fixed: bool) -> int:
    account = Account(100)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(withdraw_fixed if fixed else withdraw, account, 80)
        nursery.start_soon(lambda: mobile_withdrawal(account, 80, fixed=fixed))
    return account.balance


async def double_spend() -> None:
    """An ATM and a phone withdraw 80 each from 100: at most one may succeed."""
    balance = await _two_withdrawals(fixed=False)
    assert balance >= 0, f"balance went negative: {balance}"


async def double_spend_fixed() -> None:
    balance = await _two_withdrawals(fixed=True)
    assert balance >= 0, f"balance went negative: {balance}"
