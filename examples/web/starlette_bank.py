"""Starlette: a double spend on ``POST /withdraw``.

The handler checks the balance, awaits the ledger write, then debits. The mobile client's
request first passes an authentication middleware that awaits a token lookup, so in the
stock order the ATM's withdrawal has finished before the phone's check runs, and only one
of two 80-unit withdrawals from 100 succeeds. If the token lookup is faster, the phone
checks the balance while the ATM awaits its ledger write; both see 100, both debit, and
the balance goes negative. The fixed app holds a per-account lock from the check to the
debit.
"""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send


class Ledger:
    """The account store and its ledger service, faked in memory."""

    def __init__(self, balance: int) -> None:
        self.balance = balance
        self.entries: list[int] = []
        self.lock = asyncio.Lock()

    async def record(self, amount: int) -> None:
        await asyncio.sleep(0)
        self.entries.append(amount)


async def lookup_token(token: bytes) -> None:
    await asyncio.sleep(0)  # token cache
    await asyncio.sleep(0)  # token database


class TokenAuth:
    """Pure ASGI middleware: a request that carries a bearer token waits for its lookup."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            token = dict(scope["headers"]).get(b"authorization")
            if token is not None:
                await lookup_token(token)
        await self.app(scope, receive, send)


def make_app(*, fixed: bool) -> tuple[Starlette, Ledger]:
    ledger = Ledger(balance=100)

    async def debit(amount: int) -> bool:
        if ledger.balance < amount:
            return False
        await ledger.record(amount)
        ledger.balance -= amount
        return True

    async def withdraw(request: Request) -> JSONResponse:
        amount = int((await request.json())["amount"])
        if fixed:
            async with ledger.lock:
                ok = await debit(amount)
        else:
            ok = await debit(amount)
        if not ok:
            return JSONResponse({"error": "insufficient funds"}, status_code=409)
        return JSONResponse({"balance": ledger.balance})

    app = Starlette(routes=[Route("/withdraw", withdraw, methods=["POST"])])
    app.add_middleware(TokenAuth)
    return app, ledger


async def _two_withdrawals(*, fixed: bool) -> None:
    app, ledger = make_app(fixed=fixed)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        atm, phone = await asyncio.gather(
            client.post("/withdraw", json={"amount": 80}),
            client.post("/withdraw", json={"amount": 80},
                        headers={"Authorization": "Bearer phone"}),
        )
    succeeded = [r for r in (atm, phone) if r.status_code == 200]
    assert len(succeeded) == 1, f"{len(succeeded)} withdrawals of 80 from 100 succeeded"
    assert ledger.balance == 20, f"balance went to {ledger.balance}"


async def double_spend() -> None:
    """An ATM and a phone withdraw 80 each from 100 at once: exactly one may succeed."""
    await _two_withdrawals(fixed=False)


async def double_spend_fixed() -> None:
    await _two_withdrawals(fixed=True)
