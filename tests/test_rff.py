"""The ``rff`` strategy: reads-from pairs, coverage feedback, steering, determinism."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import pytest

import explorer
from explorer._errors import UsageError
from explorer._footprint import AUTO_SUPPORTED, StepRecord
from explorer._parallel import run_partition
from explorer._runtime import Candidate
from explorer._settings import Settings
from explorer._targets import parse_target
from explorer.strategies import RFF, make_strategy, names, splitting
from explorer.strategies._rff import INIT, reads_from

# --------------------------------------------------------------------------- the pairs


def test_reads_from_pairs_of_recorded_steps() -> None:
    box, lock = 11, 12  # object ids within one run
    steps = [
        StepRecord("main", set(), None, None),
        StepRecord("main/reader#1", {(box, "v", "r")}, 0, 0),  # nothing wrote v yet
        StepRecord("main/writer#1", {(box, "v", "w"), (lock, None, "w")}, 0, 1),
        StepRecord("main/writer#1", {(box, "v", "r")}, 2, 2),  # its own write: no pair
        StepRecord("main/reader#1", {(box, "v", "r"), (lock, None, "w")}, 1, 3),
    ]
    pairs, writes, reads, crossed = reads_from(steps)
    reader0, reader1 = ("main/reader", 0), ("main/reader", 1)
    writer0 = ("main/writer", 0)
    # Objects are named by the first event touching them, in a fixed order.
    v, lock_location = (reader0, "v"), (reader1, None)
    assert pairs == {
        (INIT, reader0, v),
        (writer0, reader1, v),
        # An operation on a primitive observes the one before it: the writer's found the
        # lock as created, the reader's saw the writer's.
        (INIT, writer0, lock_location),
        (writer0, reader1, lock_location),
    }
    assert writes == {writer0: {v, lock_location}, reader1: {lock_location}}
    assert (("main/writer", 1), v) in reads
    assert not crossed  # no two tasks of one kind shared an object


def test_a_task_s_own_state_makes_no_pair() -> None:
    own, shared_box = 21, 22
    steps = [
        StepRecord("main/worker#1", {(own, None, "w"), (shared_box, "k", "w")}, None, None),
        StepRecord("main/worker#1", {(own, None, "r")}, 0, 0),
        StepRecord("main/worker#2", {(shared_box, "k", "r")}, None, 1),
    ]
    found = reads_from(steps)
    writer, reader = ("main/worker", 0), ("main/worker", 0)
    assert found.pairs == {(writer, reader, (writer, "k"))}
    assert found.crossed == {writer}  # two workers shared the box


async def publish_and_peek() -> None:
    box = explorer.shared({"v": 0}, "box")

    async def publish() -> None:
        await asyncio.sleep(0)
        box["v"] = 1

    async def peek() -> None:
        await asyncio.sleep(0)
        assert box["v"] in (0, 1)

    await asyncio.gather(peek(), publish())


def test_pairs_of_a_declared_scenario_name_both_sources() -> None:
    strategy = RFF(seed=3)
    explorer.explore(publish_and_peek, strategy=strategy, max_schedules=30)
    read, write = ("main/peek", 1), ("main/publish", 1)
    location = (read, "v")
    assert (INIT, read, location) in strategy.pairs  # the peek ran first
    assert (write, read, location) in strategy.pairs  # the publish ran first


# --------------------------------------------------------------------------- feedback


async def ledger() -> None:
    accounts = explorer.shared({"a": 10, "b": 10}, "accounts")
    lock = asyncio.Lock()

    async def move(src: str, dst: str) -> None:
        await asyncio.sleep(0)
        amount = accounts[src]
        await asyncio.sleep(0)
        async with lock:
            accounts[src] -= amount
            await asyncio.sleep(0)
            accounts[dst] += amount

    async def audit() -> None:
        for _ in range(3):
            await asyncio.sleep(0)
            assert accounts["a"] + accounts["b"] >= 0

    await asyncio.gather(move("a", "b"), move("b", "a"), audit())


def test_coverage_grows() -> None:
    strategy = RFF(seed=5)
    explorer.explore(ledger, strategy=strategy, max_schedules=1)
    first = len(strategy.pairs)
    explorer.explore(ledger, strategy=strategy, max_schedules=150)
    assert len(strategy.pairs) > first
    assert strategy.statistics()["kept"]
    assert f"{len(strategy.pairs)} reads-from pairs" in strategy.coverage()


@pytest.mark.parametrize("seed", [0, 1])
def test_targeted_runs_show_the_pairs_they_aim_at(seed: int) -> None:
    strategy = RFF(seed=seed)
    explorer.explore(rollout_watched, strategy=strategy, max_schedules=150)
    stats = strategy.statistics()
    assert isinstance(stats["targeted"], int) and isinstance(stats["satisfied"], int)
    assert 0 < stats["satisfied"] <= stats["targeted"]
    # The probe read the flag from the initial value and from several rollout stages.
    sources = {write for write, read, _ in strategy.pairs if read == ("main/probe", 1)}
    assert INIT in sources and len(sources) > 5


class _Recorded(RFF):
    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.schedules: list[tuple[int, ...]] = []

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        self.schedules.append(tuple(decisions))
        super().end_run(decisions, failed)


def test_same_seed_same_schedules() -> None:
    runs = []
    for _ in range(2):
        strategy = _Recorded(seed=11)
        explorer.explore(ledger, strategy=strategy, max_schedules=60)
        runs.append(strategy.schedules)
    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 10


_HASHED = """
import explorer
from tests.test_rff import _Recorded, ledger
strategy = _Recorded(seed=2)
explorer.explore(ledger, strategy=strategy, max_schedules=40)
print(strategy.schedules)
"""


@pytest.mark.slow
def test_same_seed_same_schedules_whatever_the_string_hashes() -> None:
    # Events and locations hold strings, whose hashes change between processes.
    outputs = []
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": root}
        done = subprocess.run([sys.executable, "-c", _HASHED], env=env, cwd=root,
                              capture_output=True, text=True, timeout=120, check=True)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] and outputs[0].startswith("[(")


# --------------------------------------------------------------------------- bugs


def _rollout(check: bool) -> Callable[[], Coroutine[Any, Any, None]]:
    async def rollout() -> None:
        flags = explorer.shared({"stage": "off"}, "flags")
        counters = explorer.shared({"requests": 0}, "counters")

        async def roll() -> None:
            for stage in ("1%", "5%", "10%", "25%", "50%", "75%", "90%", "half", "99%",
                          "100%", "done", "cleanup"):
                await asyncio.sleep(0)
                flags["stage"] = stage

        async def traffic() -> None:
            for _ in range(4):
                await asyncio.sleep(0)
                counters["requests"] += 1

        async def probe() -> None:
            await asyncio.sleep(0)
            stage = flags["stage"]
            assert not check or stage != "half", "the probe saw a half-rolled-out flag"

        await asyncio.gather(probe(), *(traffic() for _ in range(4)), roll())

    return rollout


rollout = _rollout(check=True)
"""Fails only when the probe reads the one write that leaves the flag half set."""
rollout_watched = _rollout(check=False)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finds_a_read_that_must_observe_one_write(seed: int) -> None:
    result = explorer.explore(rollout, strategy="rff", seed=seed, max_schedules=400,
                              raise_on_failure=False, shrink=False)
    assert result.failure is not None
    assert "half-rolled-out" in str(result.failure)
    assert result.failure.strategy["name"] == "rff"


def test_finds_a_check_then_act_through_starlette() -> None:
    httpx = pytest.importorskip("httpx")
    starlette_apps = pytest.importorskip("starlette.applications")
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    stock: dict[str, int] = {}

    async def buy(request: Request) -> JSONResponse:
        item = request.path_params["item"]
        await asyncio.sleep(0)  # look the price up
        if stock[item] <= 0:
            return JSONResponse({"ok": False}, status_code=409)
        await asyncio.sleep(0)  # charge the card
        stock[item] -= 1
        return JSONResponse({"ok": True})

    app = starlette_apps.Starlette(routes=[Route("/buy/{item}", buy, methods=["POST"])])

    async def last_one() -> None:
        nonlocal stock
        stock = explorer.shared({"lamp": 1}, "stock")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            await asyncio.gather(client.post("/buy/lamp"), client.post("/buy/lamp"))
        assert stock["lamp"] >= 0, f"sold more lamps than in stock: {stock['lamp']}"

    result = explorer.explore(last_one, strategy="rff", seed=0, max_schedules=200,
                              raise_on_failure=False, shrink=False)
    assert result.failure is not None and "sold more lamps" in str(result.failure)


def test_runs_under_trio() -> None:
    trio = pytest.importorskip("trio")

    async def handoff() -> None:
        slot = explorer.shared({"owner": None}, "slot")
        lock = trio.Lock()

        async def claim(name: str) -> None:
            await trio.lowlevel.checkpoint()
            if slot["owner"] is None:
                await trio.lowlevel.checkpoint()
                slot["owner"] = name
                async with lock:
                    await trio.lowlevel.checkpoint()
                assert slot["owner"] == name, f"{name} lost its claim to {slot['owner']}"

        async with trio.open_nursery() as nursery:
            for name in ("left", "right"):
                nursery.start_soon(claim, name)

    strategy = RFF(seed=4)
    result = explorer.explore(handoff, runtime="trio", strategy=strategy, max_schedules=200,
                              raise_on_failure=False, shrink=False)
    assert result.failure is not None and "lost its claim" in str(result.failure)
    assert any(pair[2][1] == "owner" for pair in strategy.pairs)


class _Unrecorded:
    """A scheduling point of a run that records no footprints (a member of a portfolio
    that does not ask for them): task ids only."""

    def __init__(self, ready: list[str]) -> None:
        self.ready = ready

    def candidate(self, index: int) -> Candidate:
        return Candidate(self.ready[index], "step", None, "sleep", None)

    def candidates(self, count: int) -> list[Candidate]:
        return [self.candidate(i) for i in range(count)]

    def process(self, index: int) -> str:
        return self.ready[index]

    def processes(self, count: int) -> list[str]:
        return self.ready[:count]

    def recorded_steps(self) -> None:
        return None

    def current(self) -> str | None:
        return None

    def current_call(self) -> None:
        return None


def test_without_footprints_priorities_still_move() -> None:
    # Nothing tells the strategy which task stepped, but the chosen one did: it draws a
    # new priority, so one task does not run to the end ahead of all others.
    strategy = RFF(seed=8)
    strategy.start_run()
    view = _Unrecorded([f"main/w#{i}" for i in range(1, 5)])
    picks = [strategy.choose(4, view) for _ in range(40)]
    assert len(set(picks)) == 4
    strategy.observe([])  # a run that recorded nothing teaches nothing
    strategy.end_run([], failed=False)
    assert not strategy.pairs and not strategy.kept


# --------------------------------------------------------------------------- setup


def test_registered_and_split_by_seed() -> None:
    assert {"rff", "rff-auto"} <= set(names())
    assert splitting("rff") == splitting("rff-auto") == "seeded"
    built = make_strategy("rff", seed=9)
    assert isinstance(built, RFF) and built.describe() == {
        "name": "rff", "seed": 9, "footprints": "declared"}
    assert built.footprints == "declared"


def test_workers_share_the_runs_by_seed() -> None:
    settings = Settings(strategy="rff", max_schedules=40, seed=10).to_json()
    fixed = parse_target("examples.counter:lost_update_fixed").to_json()
    parts = [run_partition(fixed, settings, k, 2) for k in range(2)]
    assert [p.seeds for p in parts] == [(10,), (11,)]
    assert [p.schedules for p in parts] == [20, 20]
    buggy = parse_target("examples.counter:lost_update").to_json()
    found = [run_partition(buggy, settings, k, 2).failure for k in range(2)]
    assert all(f is not None and f.kind == "assertion" for f in found)


def test_refuses_footprints_that_name_no_location() -> None:
    with pytest.raises(ValueError, match="footprints='declared' or footprints='auto'"):
        RFF(footprints="conservative")
    with pytest.raises(ValueError, match="max_constraints must be at least 1"):
        RFF(max_constraints=0)
    with pytest.raises(ValueError, match=r"between 0 and 1; got 1\.5"):
        RFF(fresh=1.5)


@pytest.mark.skipif(AUTO_SUPPORTED, reason="automatic footprints run here")
def test_auto_footprints_need_python_312() -> None:
    with pytest.raises(UsageError, match=r"Python 3\.12"):
        RFF(footprints="auto")
    with pytest.raises(UsageError, match=r"Python 3\.12"):
        make_strategy("rff-auto", seed=1)


@pytest.mark.skipif(not AUTO_SUPPORTED, reason="automatic footprints need Python 3.12")
def test_auto_footprints_see_undeclared_state() -> None:
    class Tally:
        count = 0

    async def undeclared() -> None:
        tally = Tally()

        async def bump() -> None:
            await asyncio.sleep(0)
            seen = tally.count
            await asyncio.sleep(0)
            tally.count = seen + 1

        await asyncio.gather(bump(), bump())
        assert tally.count == 2, f"lost an update: {tally.count}"

    strategy = make_strategy("rff-auto", seed=1)
    assert isinstance(strategy, RFF) and strategy.footprints == "auto"
    result = explorer.explore(undeclared, strategy=strategy, max_schedules=100,
                              raise_on_failure=False, shrink=False)
    assert result.failure is not None and "lost an update" in str(result.failure)
    assert any(pair[2][1] == "count" for pair in strategy.pairs)
