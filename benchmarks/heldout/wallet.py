"""A wallet service on aiohttp: withdrawals paid out through a (fake) payout gateway.

The application (``web.Application`` served by ``web.AppRunner`` and
``web.TCPSite(runner, "127.0.0.1", 0)``) keeps the balances in the app's state
(``app[BALANCES]``). ``POST /accounts/{name}/withdraw`` with ``{"amount": n}`` checks the
balance, awaits the payout gateway, then stores the new balance. Two clients of one
``aiohttp.ClientSession`` withdraw 80 from an account holding 100, at the same time.

The race (``buggy``): both handlers check the balance (100 >= 80) before either stores
its new balance, each awaits its payout, each stores 100 - 80: both withdrawals succeed,
160 was paid out of 100, and the account still shows 20.

The fix (``fixed``): take the money before awaiting the payout (check and deduct in one
step, with no await between), and give it back if the payout fails.

The invariant: the money paid out plus the balance left equals the initial balance, and
the balance is never negative.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

INITIAL_BALANCE = 100
AMOUNT = 80


class PayoutGateway:
    """A stand-in for the bank's payout API, as a test would write it."""

    def __init__(self) -> None:
        self.paid: list[tuple[str, int]] = []

    async def pay(self, account: str, amount: int) -> None:
        await asyncio.sleep(0.05)  # the bank's round trip
        self.paid.append((account, amount))


BALANCES = web.AppKey("balances", dict[str, int])
GATEWAY = web.AppKey("gateway", PayoutGateway)


async def withdraw_buggy(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    amount = int((await request.json())["amount"])
    balances = request.app[BALANCES]
    balance = balances[name]
    if balance < amount:
        return web.json_response({"error": "insufficient funds", "balance": balance},
                                 status=409)
    await request.app[GATEWAY].pay(name, amount)
    balances[name] = balance - amount
    return web.json_response({"balance": balances[name]})


async def withdraw_fixed(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    amount = int((await request.json())["amount"])
    balances = request.app[BALANCES]
    if balances[name] < amount:
        return web.json_response({"error": "insufficient funds", "balance": balances[name]},
                                 status=409)
    balances[name] -= amount  # reserve the money before the await
    try:
        await request.app[GATEWAY].pay(name, amount)
    except BaseException:
        balances[name] += amount
        raise
    return web.json_response({"balance": balances[name]})


def make_app(withdraw: Callable[[web.Request], Awaitable[web.Response]]) -> web.Application:
    app = web.Application()
    app[BALANCES] = {"alice": INITIAL_BALANCE}
    app[GATEWAY] = PayoutGateway()
    app.router.add_post("/accounts/{name}/withdraw", withdraw)
    return app


async def _bank(withdraw: Callable[[web.Request], Awaitable[web.Response]], *,
                strict: bool = False,
                extra: Callable[[aiohttp.ClientSession], Awaitable[None]] | None = None) -> None:
    """Serve the app, withdraw twice at once, check the books.

    The plain way (``strict=False``) closes the client session, then cleans up the runner,
    as most code does; ``strict`` cleans up the runner while the session is still open
    (the order docs/services.md advises).
    """
    app = make_app(withdraw)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    session = aiohttp.ClientSession(f"http://{host}:{port}")

    async def withdraw_80() -> int:
        async with session.post("/accounts/alice/withdraw", json={"amount": AMOUNT}) as response:
            await response.read()
            return response.status

    try:
        try:
            statuses = await asyncio.gather(withdraw_80(), withdraw_80())
            if extra is not None:
                await extra(session)
        finally:
            if strict:
                await runner.cleanup()
            await session.close()
    finally:
        if not strict:
            await runner.cleanup()

    balance = app[BALANCES]["alice"]
    paid = sum(amount for _, amount in app[GATEWAY].paid)
    assert balance >= 0, f"balance went negative: {balance}"
    assert paid + balance == INITIAL_BALANCE, (
        f"statuses {statuses}: paid out {paid} from {INITIAL_BALANCE}, balance left {balance}")


async def buggy() -> None:
    """Two withdrawals of 80 from 100: check, await the payout, store the stale balance."""
    await _bank(withdraw_buggy)


async def fixed() -> None:
    """The same, with the money reserved before the payout is awaited."""
    await _bank(withdraw_fixed)


async def buggy_strict() -> None:
    """``buggy``, cleaning up the runner before closing the client session."""
    await _bank(withdraw_buggy, strict=True)


async def fixed_strict() -> None:
    """``fixed``, cleaning up the runner before closing the client session."""
    await _bank(withdraw_fixed, strict=True)


async def _fetch_exchange_rate(session: aiohttp.ClientSession) -> None:
    # An external service nothing in the scenario serves.
    async with session.get("http://example.invalid/rates/EUR") as response:
        await response.read()


async def unserved() -> None:
    """The fixed wallet, then a GET to http://example.invalid/, which nothing serves."""
    await _bank(withdraw_fixed, extra=_fetch_exchange_rate)


async def _fetch_local_port(session: aiohttp.ClientSession) -> None:
    # A local port nothing in the scenario listens on.
    async with session.get("http://127.0.0.1:9/health") as response:
        await response.read()


async def unserved_port() -> None:
    """The fixed wallet, then a GET to http://127.0.0.1:9/, which nothing serves."""
    await _bank(withdraw_fixed, extra=_fetch_local_port)
