"""FastAPI + SQLAlchemy over aiosqlite: a pool exhausted by nested checkouts (deadlock).

The engine's pool holds two connections (``pool_size=2, max_overflow=0``), one per request
the service expects at a time. ``POST /orders/{sku}`` loads the product in the request's
session, which now holds a connection until it commits, and then writes an audit record
through ``record_audit``, which opens a session of its own: a second connection, checked
out while the first is held. One request at a time needs both connections and gets them.

Orders from the mobile app first look their device up, in a short session that takes a
connection and gives it back at once. In the stock order the web order loads its product
meanwhile, and its audit session gets the connection the device lookup gave back; the
mobile order's session waits until the web order has finished. If the mobile order's own
session takes that connection first, each request holds one connection and waits for a
second: neither ever gets it. The pool gives up after
its 30 s timeout (virtual time here), and both requests fail with SQLAlchemy's
``TimeoutError: QueuePool limit of size 2 overflow 0 reached``. The fixed handler writes
the audit record in the request's own session, so a request never holds more than one
connection.
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
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"

    ident: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str]
    channel: Mapped[str]


class Product(Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(primary_key=True)
    price: Mapped[int]


class Device(Base):
    __tablename__ = "devices"

    ident: Mapped[str] = mapped_column(primary_key=True)
    trusted: Mapped[bool]


class Audit(Base):
    __tablename__ = "audit"

    ident: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str]


def make_app(sessions: async_sessionmaker[AsyncSession], *, fixed: bool) -> FastAPI:
    app = FastAPI()

    async def session() -> AsyncIterator[AsyncSession]:
        async with sessions() as db:
            yield db

    async def record_audit(event: str) -> None:
        async with sessions.begin() as audit:
            audit.add(Audit(event=event))

    async def trusted_device(x_device: Annotated[str | None, Header()] = None) -> str:
        if x_device is None:
            return "web"
        async with sessions() as lookup:  # checked out and given back at once
            device = await lookup.get(Device, x_device)
        if device is None or not device.trusted:
            raise HTTPException(status_code=403)
        return "mobile"

    @app.post("/orders/{sku}", status_code=201)
    async def order(sku: str, db: Annotated[AsyncSession, Depends(session)],
                    channel: Annotated[str, Depends(trusted_device)]) -> dict[str, int]:
        product = await db.get(Product, sku)
        if product is None:
            raise HTTPException(status_code=404)
        event = f"{channel} order of {sku} at {product.price}"
        if fixed:
            db.add(Audit(event=event))
        else:
            await record_audit(event)
        db.add(Order(sku=sku, channel=channel))
        await db.commit()
        return {"price": product.price}

    return app


async def _two_orders(*, fixed: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        engine = create_async_engine(f"sqlite+aiosqlite:///{Path(directory) / 'shop.db'}",
                                     pool_size=2, max_overflow=0)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.create_all)
            sessions = async_sessionmaker(engine, expire_on_commit=False)
            async with sessions.begin() as db:
                db.add_all([Product(sku="lamp", price=4200), Device(ident="d-1", trusted=True)])
            app = make_app(sessions, fixed=fixed)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
                responses = await asyncio.gather(
                    http.post("/orders/lamp"),
                    http.post("/orders/lamp", headers={"X-Device": "d-1"}))
            async with sessions() as db:
                audited = await db.scalar(select(func.count()).select_from(Audit))
        finally:
            await engine.dispose()
    codes = [response.status_code for response in responses]
    assert codes == [201, 201], f"the orders were answered {codes}: {responses[0].text}"
    assert audited == 2, f"two orders placed, {audited} audit records"


async def nested_checkout() -> None:
    """Two orders at once on a pool of two connections: both are placed and audited."""
    await _two_orders(fixed=False)


async def nested_checkout_fixed() -> None:
    await _two_orders(fixed=True)
