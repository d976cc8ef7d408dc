"""Search quality: how many schedules each strategy needs to find each gallery bug, and
what proving each fixed version within its bound costs."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import explorer
from examples.gallery import Example


@dataclass(frozen=True)
class Finding:
    example: str
    strategy: str
    counts: tuple[int, ...]  # schedules to the first failure, one per seed (or one)
    misses: int  # seeds that did not find it within the cap
    cap: int

    def cell(self) -> str:
        if not self.counts:
            return f"not found in {self.cap}"
        if len(self.counts) + self.misses == 1:
            return str(self.counts[0])
        text = (f"{statistics.median(self.counts):g} "
                f"({min(self.counts)}-{max(self.counts)})")
        return text + (f", {self.misses} missed" if self.misses else "")


def schedules_to_failure(example: Example, strategy: str, seed: int | None,
                         cap: int) -> int | None:
    result = explorer.explore(example.buggy, strategy=strategy, seed=seed,
                              deviation_bound=example.bound if strategy == "systematic"
                              else None,
                              max_schedules=cap, max_steps=example.max_steps,
                              raise_on_failure=False, **example.options())
    return result.failure.found_after if result.failure is not None else None


def find(example: Example, strategy: str, seeds: int, cap: int) -> Finding:
    runs = [None] if strategy == "systematic" else list(range(seeds))
    found = [schedules_to_failure(example, strategy, seed, cap) for seed in runs]
    counts = tuple(n for n in found if n is not None)
    return Finding(example.name, strategy, counts, len(found) - len(counts), cap)


@dataclass(frozen=True)
class Proof:
    example: str
    bound: int
    schedules: int
    exhausted: bool
    passed: bool
    seconds: float


def prove(example: Example, cap: int, strategy: str = "systematic") -> Proof:
    """Explore the fixed version of ``example`` within its deviation bound."""
    result = explorer.explore(example.fixed, strategy=strategy,
                              deviation_bound=example.bound, max_schedules=cap,
                              max_steps=example.max_steps, raise_on_failure=False,
                              **example.options())
    return Proof(example.name, example.bound, result.schedules, result.exhausted,
                 result.failure is None, result.elapsed)


# ------------------------------------------------------------------ through library stacks
# Races between the user's awaits where each await goes through a library: the shapes the
# ``coarse`` granularity is for (docs/strategies.md, "Granularity"). The libraries are
# imported when a scenario runs: fakeredis is a dev dependency, FastAPI the web extra.


async def redis_check_then_act() -> None:
    """Two buyers over redis-py's asyncio client (a fakeredis server): each reads the stock
    with ``GET`` and writes it back decremented with ``SET``; one item, two sales."""
    import asyncio

    import fakeredis

    r = fakeredis.FakeAsyncRedis()
    await r.set("stock", 1)

    async def buy() -> bool:
        left = int(await r.get("stock") or 0)
        if left <= 0:
            return False
        await r.set("stock", left - 1)
        return True

    sold = await asyncio.gather(buy(), buy())
    assert sold.count(True) <= 1, f"one item sold twice: {sold}"


async def asgi_run_ahead() -> None:
    """Two coupon redemptions through FastAPI over ``httpx.ASGITransport``; the second
    request's dependency awaits three times before the handler's check-then-act, so the
    bug needs that request to run ahead through all of them."""
    import asyncio

    import httpx
    from fastapi import Depends, FastAPI, Header, HTTPException

    redeemed: set[str] = set()
    app = FastAPI()

    # Annotations are strings here (``from __future__ import annotations``): FastAPI must
    # resolve them from builtins alone, so the header comes in as a plain ``str``.
    async def vet(x_vet: str | None = Header(default=None)) -> None:
        if x_vet:
            for _ in range(3):
                await asyncio.sleep(0)

    @app.post("/coupons/{code}", dependencies=[Depends(vet)])
    async def redeem(code: str) -> dict[str, str]:
        if code in redeemed:
            raise HTTPException(status_code=409)
        await asyncio.sleep(0)
        redeemed.add(code)
        return {"code": code}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        first, second = await asyncio.gather(
            client.post("/coupons/C1"), client.post("/coupons/C1", headers={"x-vet": "1"}))
    codes = sorted([first.status_code, second.status_code])
    assert codes == [200, 409], f"one coupon redeemed twice: {codes}"


LIBRARY_STACKS = {"redis-py check-then-act": redis_check_then_act,
                  "ASGI run-ahead": asgi_run_ahead}
"""The library-stack programs, by name."""


def find_in_stack(name: str, strategy: str, seeds: int, cap: int) -> Finding:
    """Schedules to the first failure of :data:`LIBRARY_STACKS` ``[name]``, per seed."""
    found = []
    for seed in range(seeds):
        result = explorer.explore(LIBRARY_STACKS[name], strategy=strategy, seed=seed,
                                  max_schedules=cap, raise_on_failure=False, shrink=False)
        found.append(result.failure.found_after if result.failure is not None else None)
    counts = tuple(n for n in found if n is not None)
    return Finding(name, strategy, counts, len(found) - len(counts), cap)
