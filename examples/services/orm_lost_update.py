"""FastAPI + SQLAlchemy's async ORM over aiosqlite: a lost update of a stock count.

``POST /orders/{sku}`` loads the product with ``session.get``, checks that one is left,
decrements ``product.stock`` in Python and commits: a read-modify-write spread over three
statements (the ``SELECT``, then the ``UPDATE`` and the ``COMMIT``), each an await. The
mobile app's orders first pass a device check, one more query, so in the stock order the
web shop's order has committed before the app's order reads the product, and two orders
leave 3 of 5 items. If the app's order reads the product before the web order's
``UPDATE`` is committed, both read 5 and both write 4: two items sold, one taken from
stock (SQLite serialises the two ``UPDATE`` statements, but each writes the value its
request computed from a stale read). The fixed handler decrements in the database, with
one atomic statement, ``UPDATE products SET stock = stock - 1 WHERE sku = ? AND stock >
0``, and tells a sold-out product by the number of rows it changed.

The database is a file in a temporary directory, created per run; aiosqlite's worker
thread runs inline under the explorer, one scheduling step per statement.
"""

# No "from __future__ import annotations": FastAPI reads the endpoints' annotations at
# run time, and they name dependencies local to make_app.
import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Header, HTTPException
from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(primary_key=True)
    stock: Mapped[int]


class Device(Base):
    __tablename__ = "devices"

    ident: Mapped[str] = mapped_column(primary_key=True)
    trusted: Mapped[bool]


def make_app(sessions: async_sessionmaker[AsyncSession], *, fixed: bool) -> FastAPI:
    app = FastAPI()

    async def session() -> AsyncIterator[AsyncSession]:
        async with sessions() as db:
            yield db

    Db = Annotated[AsyncSession, Depends(session)]

    async def device_check(db: Db, x_device: Annotated[str | None, Header()] = None) -> None:
        if x_device is not None:
            device = await db.get(Device, x_device)
            if device is None or not device.trusted:
                raise HTTPException(status_code=403)

    @app.post("/orders/{sku}", status_code=201, dependencies=[Depends(device_check)])
    async def order(sku: str, db: Db) -> dict[str, str]:
        if fixed:
            result = await db.execute(update(Product)
                                      .where(Product.sku == sku, Product.stock > 0)
                                      .values(stock=Product.stock - 1))
            await db.commit()
            assert isinstance(result, CursorResult)
            if result.rowcount == 0:
                raise HTTPException(status_code=409, detail="sold out")
            return {"sku": sku}
        product = await db.get(Product, sku)
        if product is None or product.stock == 0:
            raise HTTPException(status_code=409, detail="sold out")
        product.stock -= 1
        await db.commit()
        return {"sku": sku}

    return app


async def _two_orders(*, fixed: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        engine = create_async_engine(f"sqlite+aiosqlite:///{Path(directory) / 'shop.db'}")
        try:
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.create_all)
            sessions = async_sessionmaker(engine, expire_on_commit=False)
            async with sessions.begin() as db:
                db.add_all([Product(sku="lamp", stock=5), Device(ident="d-1", trusted=True)])
            app = make_app(sessions, fixed=fixed)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
                web, mobile = await asyncio.gather(
                    http.post("/orders/lamp"),
                    http.post("/orders/lamp", headers={"X-Device": "d-1"}))
            async with sessions() as db:
                stock = await db.scalar(select(Product.stock).where(Product.sku == "lamp"))
        finally:
            await engine.dispose()
    codes = [web.status_code, mobile.status_code]
    assert set(codes) <= {201, 409}, f"the orders were answered {codes}: {web.text}"
    sold = codes.count(201)
    assert stock == 5 - sold, f"{sold} lamps sold, but the stock went from 5 to {stock}"


async def lost_stock_update() -> None:
    """Two orders of one product at once: the stock goes down by the number sold."""
    await _two_orders(fixed=False)


async def lost_stock_update_fixed() -> None:
    await _two_orders(fixed=True)
