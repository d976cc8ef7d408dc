"""FastAPI: a single-use coupon redeemed twice, found with no assertion anywhere.

``POST /coupons/{code}/redeem`` checks that the coupon has uses left, awaits the order
service, then records the redemption. Two concurrent redemptions of a single-use coupon can
both pass the check while the first awaits, and both answer 200: no one-at-a-time order of
the two requests returns that (the second would get 409). Nothing here states that rule:
:func:`explorer.check_linearizable` runs the same requests one at a time on fresh apps and
finds that the concurrent answers match none of those orders. The fixed app holds a lock
per coupon from the check to the write.

Each response carries a ``redemption_id`` drawn from a counter, which differs between
orders for reasons that are not bugs: the operations drop it with
:func:`explorer.ignore_fields` before results are compared.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict

from fastapi import FastAPI, HTTPException
from hypothesis import strategies as st

import explorer

USES = {"WELCOME10": 1, "SPRING": 2}
"""The coupons every fresh app starts with, and how many times each may be redeemed."""


async def notify_order_service(code: str) -> None:
    await asyncio.sleep(0)  # the order service applies the discount


def make_app(*, fixed: bool = False) -> FastAPI:
    """A fresh app with its own coupon store (the object under test)."""
    app = FastAPI()
    remaining = dict(USES)
    locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    ids = itertools.count(1)

    async def use(code: str) -> dict[str, object]:
        if code not in remaining:
            raise HTTPException(status_code=404, detail=f"no coupon {code}")
        if remaining[code] == 0:
            raise HTTPException(status_code=409, detail=f"coupon {code} used up")
        await notify_order_service(code)
        remaining[code] -= 1
        return {"code": code, "remaining": remaining[code], "redemption_id": next(ids)}

    @app.post("/coupons/{code}/redeem")
    async def redeem(code: str) -> dict[str, object]:
        if fixed:
            async with locks[code]:
                return await use(code)
        return await use(code)

    @app.get("/coupons/{code}")
    async def show(code: str) -> dict[str, object]:
        if code not in remaining:
            raise HTTPException(status_code=404, detail=f"no coupon {code}")
        return {"code": code, "remaining": remaining[code]}

    return app


def buggy_client() -> object:
    """Object factory: the buggy app behind an in-memory httpx client."""
    return explorer.asgi_client(make_app)()


def fixed_client() -> object:
    """Object factory: the fixed app behind an in-memory httpx client."""
    return explorer.asgi_client(lambda: make_app(fixed=True))()


def operations() -> list[explorer.Operation]:
    """Redeem or look at one of the coupons: the only thing the check is told."""
    codes = st.sampled_from(sorted(USES))
    return [
        explorer.http_operation("POST", "/coupons/{code}/redeem", code=codes,
                                normalize=explorer.ignore_fields("redemption_id")),
        explorer.http_operation("GET", "/coupons/{code}", code=codes),
    ]


def main() -> None:
    for factory in (buggy_client, fixed_client):
        result = explorer.check_linearizable(factory, operations(), seed=1,
                                             raise_on_failure=False)
        print(f"{factory.__name__}: {'linearizable' if result.ok else 'NOT linearizable'}; "
              f"{result.coverage}")
        if result.failure is not None:
            print(result.failure)


if __name__ == "__main__":
    main()
