"""aiohttp: a payment whose response is lost after the charge, and a client that retries
(double charge). Explore it with ``faults=True``.

The payment service is an aiohttp application started inside the scenario on
``payments.internal:8443``; the shop calls it with an aiohttp ``ClientSession`` (5 s
timeout) and retries a failed call twice, with back-off. Without faults every call
succeeds the first time and the customer is charged once.

With faults, the explorer may drop the service's response after the service has charged
the card (the connection is then reset, or the response never arrives and the client's
timeout fires). The client cannot tell that from a request that never arrived, so it
retries, and the service charges the card a second time. The fixed client sends an
``Idempotency-Key`` derived from the order, and the fixed service records each key before
it charges: a retry of a charge in progress waits for it, and a retry of a finished charge
gets the first response back, so one order is charged at most once, whatever the network
does. A customer may still see an error (every attempt failed), but is never charged twice.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

BASE = "http://payments.internal:8443"
ATTEMPTS = 3


def make_service(charges: list[str], *, fixed: bool) -> web.Application:
    answers: dict[str, asyncio.Future[dict[str, str]]] = {}

    async def charge_card(order: str) -> dict[str, str]:
        await asyncio.sleep(0.1)  # the card network
        charges.append(order)
        return {"charge": f"ch-{len(charges)}", "order": order}

    async def charge(request: web.Request) -> web.Response:
        body = await request.json()
        key = request.headers.get("Idempotency-Key")
        if not fixed or key is None:
            return web.json_response(await charge_card(body["order"]))
        if key in answers:  # a retry: answer what the first attempt answered
            return web.json_response(await asyncio.shield(answers[key]))
        answers[key] = asyncio.get_running_loop().create_future()
        receipt = await charge_card(body["order"])
        answers[key].set_result(receipt)
        return web.json_response(receipt)

    app = web.Application()
    app.add_routes([web.post("/charges", charge)])
    return app


class PaymentFailed(Exception):
    pass


async def pay(session: aiohttp.ClientSession, order: str, *, fixed: bool) -> dict[str, str]:
    headers = {"Idempotency-Key": f"order-{order}"} if fixed else {}
    for attempt in range(ATTEMPTS):
        try:
            async with session.post(f"{BASE}/charges", json={"order": order, "cents": 4200},
                                    headers=headers) as response:
                response.raise_for_status()
                receipt: dict[str, str] = await response.json()
                return receipt
        except (aiohttp.ClientError, TimeoutError) as exc:
            if attempt == ATTEMPTS - 1:
                raise PaymentFailed(f"order {order}: {exc!r}") from exc
            await asyncio.sleep(0.5 * 2 ** attempt)
    raise AssertionError("unreachable")


async def _checkout(*, fixed: bool) -> None:
    charges: list[str] = []
    runner = web.AppRunner(make_service(charges, fixed=fixed))
    await runner.setup()
    await web.TCPSite(runner, "payments.internal", 8443).start()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        try:
            receipt: dict[str, str] | None = await pay(session, "o-7", fixed=fixed)
        except PaymentFailed:
            receipt = None
        finally:
            # Stop the service while the session is still open, so that every server-side
            # handler has finished when the scenario returns.
            await runner.cleanup()
    assert len(charges) <= 1, f"order o-7 was charged {len(charges)} times"
    assert receipt is None or charges == ["o-7"], (receipt, charges)


async def double_charge() -> None:
    """One checkout, retried on network errors: the card is charged at most once."""
    await _checkout(fixed=False)


async def double_charge_fixed() -> None:
    await _checkout(fixed=True)
