"""``rff`` repeats its schedules from its seed in any process, whatever the memory layout.

Footprints name objects by ``id()``. CPython hands a freed object's address to the next
object of its size, so an object a step uses and drops (a waiter future, a handle, a
per-request event) and another step's that lands at the same address would be one
location; which ones meet depends on the allocator's history, which differs from one
process to the next. A recording run therefore keeps every object whose id its footprints
hold alive until it ends (``explorer._footprint.kept``). These tests check that directly
(ids recorded in one run are never reused within it) and through the strategy that is
most sensitive to it: ``rff`` names reads-from pairs after the objects they touch, so a
merged pair of objects would steer its next runs differently."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

import explorer
from explorer._asyncio._runner import AsyncioRuntime
from explorer._runtime import RunMode


async def relay() -> None:
    """Two couriers hand parcels to a sorter through a fresh event and a fresh future per
    parcel (dropped once delivered), and count deliveries in a declared tally."""
    tally = explorer.shared({"delivered": 0, "last": ""}, "tally")
    loop = asyncio.get_running_loop()

    async def sort(parcel: str, arrived: asyncio.Event, receipt: asyncio.Future[str]) -> None:
        await arrived.wait()
        tally["last"] = parcel
        tally["delivered"] += 1
        receipt.set_result(parcel)

    async def courier(name: str, parcels: int) -> None:
        for n in range(parcels):
            arrived = asyncio.Event()
            receipt: asyncio.Future[str] = loop.create_future()

            sorter = asyncio.ensure_future(sort(f"{name}{n}", arrived, receipt))
            await asyncio.sleep(0)
            arrived.set()
            assert await receipt == f"{name}{n}"
            await sorter

    await asyncio.gather(courier("a", 4), courier("b", 4))
    assert tally["delivered"] == 8


# --------------------------------------------------------------------------- one run


def test_an_id_names_one_object_for_the_whole_recording_run() -> None:
    addresses: list[int] = []

    async def fresh_waiters() -> None:
        loop = asyncio.get_running_loop()

        async def waiter(rounds: int) -> None:
            for _ in range(rounds):
                done: asyncio.Future[None] = loop.create_future()  # dropped after the round
                addresses.append(id(done))
                loop.call_soon(done.set_result, None)
                await done  # the wake-up step reads the future

        await asyncio.gather(waiter(6), waiter(6))

    runtime = AsyncioRuntime()
    with runtime.session(footprints=True):
        record = runtime.run(fresh_waiters, lambda count, view: 0,
                             RunMode(max_steps=1000, footprints="declared"))
        assert record.footprints is not None
        recorded = {obj for step in record.footprints for obj, _, _ in step.footprint}
        # Each round's future was recorded (completed, read by the wake-up) and then
        # dropped; kept alive for the run, no later future took its address.
        assert set(addresses) <= recorded
        assert len(set(addresses)) == len(addresses) == 12
        # A run that records nothing keeps nothing: the addresses come back.
        addresses.clear()
        runtime.run(fresh_waiters, lambda count, view: 0, RunMode(max_steps=1000))
        assert len(set(addresses)) < len(addresses)


def test_under_trio_too() -> None:
    trio = pytest.importorskip("trio")
    from explorer._trio._runner import TrioRuntime

    addresses: list[int] = []

    async def fresh_events() -> None:
        async def waiter(rounds: int) -> None:
            for _ in range(rounds):
                ready = trio.Event()  # dropped after the round
                addresses.append(id(ready))
                ready.set()
                await ready.wait()
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter, 6)
            nursery.start_soon(waiter, 6)

    runtime = TrioRuntime()
    with runtime.session(footprints=True):
        record = runtime.run(fresh_events, lambda count, view: 0,
                             RunMode(max_steps=1000, footprints="declared"))
    assert record.footprints is not None
    recorded = {obj for step in record.footprints for obj, _, _ in step.footprint}
    assert set(addresses) <= recorded
    assert len(set(addresses)) == len(addresses) == 12


# --------------------------------------------------------------------------- processes


_CHILD = """
import os, sys
import pytest

import explorer
from tests.test_rff import _Recorded
from tests.test_rff_processes import relay
# Another memory layout: objects of the sizes the runs make, some of them freed, so the
# allocator hands the runs' objects other addresses than in the other process.
spread = int(os.environ["RFF_LAYOUT"])
junk = [[object() for _ in range(spread % 7 + 1)] for _ in range(spread)]
del junk[::3]
logs = []
for seed in (3, 4):
    strategy = _Recorded(seed)
    explorer.explore(relay, strategy=strategy, max_schedules=60, shrink=False)
    logs.append(strategy.schedules)
print(logs)
"""


def test_same_seed_same_schedules_in_other_processes_and_layouts() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outputs = []
    for hash_seed, layout in (("0", "0"), ("7", "997"), ("123", "4093")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "RFF_LAYOUT": layout,
               "PYTHONPATH": root}
        done = subprocess.run([sys.executable, "-c", _CHILD], env=env, cwd=root,
                              capture_output=True, text=True, timeout=120, check=True)
        outputs.append(done.stdout)
    assert outputs[0].startswith("[[(")
    assert outputs[1] == outputs[0]
    assert outputs[2] == outputs[0]
