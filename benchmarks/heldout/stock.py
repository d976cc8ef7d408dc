"""A shop's stock kept in SQLite through SQLAlchemy's async ORM (aiosqlite driver).

Two customers buy the same product at the same time. Each purchase opens an
``AsyncSession``, reads the product row with a ``SELECT``, checks there is stock left,
writes ``stock - 1`` back and commits.

The race (``buggy``): both purchases run their ``SELECT`` before either commits its
``UPDATE``, so both read the same stock, both write the same ``stock - 1``: two purchases
succeed, the stock went down by one (a lost update). SQLite's write lock does not help:
the ``SELECT`` runs outside a transaction, the second ``UPDATE`` just waits for the first
commit and then writes its stale value.

The fix (``fixed``): decrement in the database, ``UPDATE products SET stock = stock - 1
WHERE id = :id AND stock > 0``, and count the purchase only when a row was updated.

The invariant: the stock left equals the initial stock minus the successful purchases,
and is never negative.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable

from sqlalchemy import ForeignKey, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

INITIAL_STOCK = 5
CUSTOMERS = ("ada", "grace")


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    stock: Mapped[int]


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    customer: Mapped[str]


async def purchase_buggy(sessions: async_sessionmaker[AsyncSession], customer: str) -> bool:
    async with sessions() as session:
        product = (await session.execute(select(Product).where(Product.id == 1))).scalar_one()
        if product.stock <= 0:
            return False
        product.stock = product.stock - 1
        session.add(Order(product_id=product.id, customer=customer))
        await session.commit()
        return True


async def purchase_fixed(sessions: async_sessionmaker[AsyncSession], customer: str) -> bool:
    async with sessions() as session:
        result = await session.execute(
            update(Product)
            .where(Product.id == 1, Product.stock > 0)
            .values(stock=Product.stock - 1))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            await session.rollback()
            return False
        session.add(Order(product_id=1, customer=customer))
        await session.commit()
        return True


Purchase = Callable[[async_sessionmaker[AsyncSession], str], Awaitable[bool]]


async def browse_then(purchase: Purchase, sessions: async_sessionmaker[AsyncSession],
                      customer: str) -> bool:
    """A customer who looks at the catalogue and at their past orders before buying."""
    async with sessions() as session:
        (await session.execute(select(Product).where(Product.stock > 0))).scalars().all()
        (await session.execute(select(Order).where(Order.customer == customer))).all()
    return await purchase(sessions, customer)


async def _shop(purchase: Purchase, *, browse: bool = False,
                extra: Callable[[], Awaitable[None]] | None = None) -> None:
    with tempfile.TemporaryDirectory() as directory:
        engine = create_async_engine(f"sqlite+aiosqlite:///{os.path.join(directory, 'shop.db')}")
        try:
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.create_all)
            sessions = async_sessionmaker(engine, expire_on_commit=False)
            async with sessions() as session:
                session.add(Product(id=1, name="lamp", stock=INITIAL_STOCK))
                await session.commit()

            first, second = CUSTOMERS
            bought = await asyncio.gather(
                purchase(sessions, first),
                browse_then(purchase, sessions, second) if browse
                else purchase(sessions, second))
            if extra is not None:
                await extra()

            async with sessions() as session:
                stock = (await session.execute(
                    select(Product.stock).where(Product.id == 1))).scalar_one()
                orders = len((await session.execute(select(Order))).scalars().all())
            assert stock >= 0, f"stock went negative: {stock}"
            assert stock == INITIAL_STOCK - sum(bought), (
                f"{sum(bought)} purchases succeeded ({orders} orders) "
                f"but the stock went from {INITIAL_STOCK} to {stock}")
        finally:
            await engine.dispose()


async def buggy() -> None:
    """Two concurrent purchases with a read-modify-write of the stock row."""
    await _shop(purchase_buggy)


async def fixed() -> None:
    """Two concurrent purchases with an atomic conditional UPDATE."""
    await _shop(purchase_fixed)


async def buggy_browse() -> None:
    """``buggy``, the second customer browsing (two queries) before buying."""
    await _shop(purchase_buggy, browse=True)


async def fixed_browse() -> None:
    """``fixed``, the second customer browsing (two queries) before buying."""
    await _shop(purchase_fixed, browse=True)


async def _notify_warehouse() -> None:
    # A warehouse service this shop was never given a server for in the scenario.
    _reader, writer = await asyncio.open_connection("127.0.0.1", 9)
    writer.close()
    await writer.wait_closed()


async def unserved() -> None:
    """The fixed shop, then a connection to an address nothing in the scenario serves."""
    await _shop(purchase_fixed, extra=_notify_warehouse)
