"""FastAPI: a shared in-memory cache updated in two steps.

``PUT /price`` writes the new amount into the cache, awaits the database write, then
writes the new currency. ``GET /price`` serves the cache after awaiting the shopper's
region lookup. In the stock order the lookup outlasts the update, so the shopper sees the
old price or the new one. If the lookup is quicker, the shopper sees the new amount with
the old currency, a price that never existed (90 USD instead of 100 USD or 90 EUR). The
fixed handler writes the database first and then both cache fields, with no await in
between.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Header
from pydantic import BaseModel


class PriceIn(BaseModel):
    amount: int
    currency: str


class PriceCache:
    """The cached price of one product, and the database rows behind it."""

    def __init__(self) -> None:
        self.amount = 100
        self.currency = "USD"
        self.rows: list[PriceIn] = []

    async def save(self, price: PriceIn) -> None:
        await asyncio.sleep(0)
        self.rows.append(price)


async def region(accept_language: Annotated[str | None, Header()] = None) -> str:
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return (accept_language or "en-US").rpartition("-")[2]


def make_app(*, fixed: bool) -> tuple[FastAPI, PriceCache]:
    cache = PriceCache()
    app = FastAPI()

    @app.put("/price")
    async def set_price(price: PriceIn) -> dict[str, str]:
        if fixed:
            await cache.save(price)
            cache.amount, cache.currency = price.amount, price.currency
        else:
            cache.amount = price.amount
            await cache.save(price)
            cache.currency = price.currency
        return {"status": "updated"}

    @app.get("/price")
    async def get_price(shopper_region: Annotated[str, Depends(region)]) -> dict[str, int | str]:
        return {"amount": cache.amount, "currency": cache.currency, "region": shopper_region}

    return app, cache


async def _update_while_browsing(*, fixed: bool) -> None:
    app, _cache = make_app(fixed=fixed)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        update, shown = await asyncio.gather(
            client.put("/price", json={"amount": 90, "currency": "EUR"}),
            client.get("/price", headers={"Accept-Language": "de-DE"}),
        )
    assert update.status_code == 200 and shown.status_code == 200
    seen = (shown.json()["amount"], shown.json()["currency"])
    assert seen in {(100, "USD"), (90, "EUR")}, f"the shopper was shown a torn price {seen}"


async def torn_price() -> None:
    """A price change races a page view: the shopper sees the old or the new price."""
    await _update_while_browsing(fixed=False)


async def torn_price_fixed() -> None:
    await _update_while_browsing(fixed=True)
