"""Search quality: how many schedules each strategy needs to find each gallery bug, and
what proving each fixed version within its bound costs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


# ------------------------------------------------------------------ portfolio rotations
# The portfolio's shares are chosen on the whole set, never on one program: every SCTBench
# port (both shapes), every gallery example and the library stacks, each rotation measured
# with the same seeds in the same tree. Schedule counts do not depend on machine load.


def whole_set() -> list[tuple[str, Callable[[], Any], dict[str, Any]]]:
    """``(name, buggy scenario, explore options)`` for every program rotations are
    compared on."""
    from benchmarks.sctbench import ALL_PROGRAMS
    from examples.gallery import all_examples

    programs: list[tuple[str, Callable[[], Any], dict[str, Any]]] = [
        (p.name, p.buggy, {}) for p in ALL_PROGRAMS]
    programs += [(e.name, e.buggy, {"max_steps": e.max_steps, **e.options()})
                 for e in all_examples()]
    programs += [(name, fn, {}) for name, fn in LIBRARY_STACKS.items()]
    return programs


def rotation_counts(rotation: Sequence[str], scenario: Callable[[], Any],
                    options: dict[str, Any], seeds: Sequence[int],
                    cap: int) -> tuple[int | None, ...]:
    """Schedules to the first failure of a portfolio with ``rotation``, per seed."""
    from explorer.strategies._portfolio import MEMBERS, Portfolio

    found = []
    for seed in seeds:
        portfolio = Portfolio(seed, members=MEMBERS, rotation=rotation)
        result = explorer.explore(scenario, strategy=portfolio, max_schedules=cap,
                                  raise_on_failure=False, shrink=False, **options)
        found.append(result.failure.found_after if result.failure is not None else None)
    return tuple(found)


def compare_rotations(rotations: Mapping[str, Sequence[str]], seeds: int = 20,
                      cap: int = 500) -> list[str]:
    """A table of median schedules to the first bug (a miss counts as ``cap + 1``) per
    program and rotation, with the geometric mean of each rotation's median ratio to the
    first rotation's."""
    names = list(rotations)
    medians: dict[str, list[float]] = {name: [] for name in names}
    lines = ["| program | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for program, scenario, options in whole_set():
        cells = []
        for name in names:
            counts = rotation_counts(rotations[name], scenario, options, range(seeds), cap)
            median = statistics.median(c if c is not None else cap + 1 for c in counts)
            medians[name].append(median)
            misses = sum(c is None for c in counts)
            cells.append(f"{median:g}" + (f" ({misses} missed)" if misses else ""))
        lines.append(f"| {program} | " + " | ".join(cells) + " |")
    first = medians[names[0]]
    geo = [math.exp(statistics.fmean(math.log(m / b) for m, b in zip(medians[n], first,
                                                                         strict=True)))
           for n in names]
    lines.append("| geometric mean of the median ratios | "
                 + " | ".join(f"{g:.2f}" for g in geo) + " |")
    return lines


if __name__ == "__main__":  # python -m benchmarks.search: the default rotation against
    from explorer.strategies._portfolio import ROTATION  # the one that gave rff's turn

    print("\n".join(compare_rotations({
        "rff's turn to surw": tuple("surw" if label == "rff" else label
                                    for label in ROTATION),
        "default": ROTATION})))
