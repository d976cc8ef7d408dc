"""Gallery races written as objects and apps under a linearizability check: no scenario,
no assertion, only the object and its operations.

Each :class:`LinearizableExample` names a factory of the buggy object, one of the fixed
object, and the operations :func:`explorer.check_linearizable` generates concurrent
scenarios from; ``counterpart`` names the hand-written gallery example of the same bug
(the benchmark compares the two searches). The web forms need the optional ``web`` extra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import explorer
from examples import bank, counter


@dataclass(frozen=True)
class LinearizableExample:
    name: str
    hazard: str
    buggy: Callable[[], Any]
    fixed: Callable[[], Any]
    operations: Callable[[], list[Any]]
    counterpart: str | None = None
    # The fix is in the operations rather than the object (a locked method): their list.
    fixed_operations: Callable[[], list[Any]] | None = None

    def checks(self) -> tuple[tuple[Callable[[], Any], list[Any]],
                              tuple[Callable[[], Any], list[Any]]]:
        """(buggy factory, its operations), (fixed factory, its operations)."""
        fixed = self.fixed_operations or self.operations
        return (self.buggy, self.operations()), (self.fixed, fixed())


def _account() -> bank.Account:
    return bank.Account(100)


def _account_operations(withdraw: Callable[[bank.Account, int], Any]) -> Callable[[], list[Any]]:
    def operations() -> list[Any]:
        from hypothesis import strategies as st

        async def withdraw_80(account: bank.Account, amount: int) -> bool:
            return bool(await withdraw(account, amount))

        withdraw_80.__name__ = "withdraw"
        return [explorer.operation(withdraw_80, st.sampled_from([80]))]

    return operations


def _users_operations(sign_in: Callable[[counter.ActiveUsers], Any]) -> Callable[[], list[Any]]:
    def operations() -> list[Any]:
        async def sign_in_and_count(users: counter.ActiveUsers) -> int:
            await sign_in(users)
            return users.count  # read with no await after the write: the count it made

        sign_in_and_count.__name__ = "sign_in"
        return [explorer.operation(sign_in_and_count)]

    return operations


def _web() -> list[LinearizableExample]:
    try:
        from examples.web import fastapi_coupons, fastapi_rate_limit
    except ImportError:
        return []

    def limiter(*, fixed: bool) -> Callable[[], Any]:
        return explorer.asgi_client(lambda: fastapi_rate_limit.make_app(fixed=fixed)[0])

    def search_operations() -> list[Any]:
        return [explorer.http_operation("GET", "/search", params={"q": "a"},
                                        headers={"X-API-Key": "acme:script"})]

    return [
        LinearizableExample(
            "fastapi-coupon-double-redeem",
            "a single-use coupon redeemed twice (FastAPI, no assertion)",
            fastapi_coupons.buggy_client, fastapi_coupons.fixed_client,
            fastapi_coupons.operations),
        LinearizableExample(
            "fastapi-rate-limit-as-object",
            "rate limiter read-modify-write (FastAPI app, no assertion)",
            limiter(fixed=False), limiter(fixed=True), search_operations,
            counterpart="fastapi-rate-limit-bypass"),
    ]


def examples() -> list[LinearizableExample]:
    """Every example: the plain objects, then the web apps when the extra is installed."""
    return [
        LinearizableExample(
            "account-as-object", "check-then-act double spend (object, no assertion)",
            _account, _account, _account_operations(bank.withdraw),
            counterpart="double-spend",
            fixed_operations=_account_operations(bank.withdraw_fixed)),
        LinearizableExample(
            "counter-as-object", "lost update on a shared counter (object, no assertion)",
            counter.ActiveUsers, counter.ActiveUsers, _users_operations(counter.sign_in),
            counterpart="lost-update",
            fixed_operations=_users_operations(counter.sign_in_fixed)),
        *_web(),
    ]
