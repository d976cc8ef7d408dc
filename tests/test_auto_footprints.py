"""Automatic footprints (Python 3.12+): ``DPOR(footprints="auto")`` records what the
scenario's own code reads and writes with ``sys.monitoring``.

Sound: on small programs, every final state exhaustive search reaches, the reduced search
reaches too; every gallery bug is still found and every fix passes. Useful: races on state
nobody declared are found, where ``declared=True`` misses them, and tasks that touch
disjoint state need far fewer schedules than in the conservative mode.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import heapq
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import explorer
from examples.gallery import Example, unfaulted_examples
from explorer.strategies import DPOR

needs_monitoring = pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="automatic footprints use sys.monitoring (PEP 669), new in Python 3.12")

Program = Callable[[list[Any]], Awaitable[None]]


# ---------------------------------------------------------------------------- the mode


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="checks the refusal before 3.12")
def test_auto_mode_before_312_says_what_to_use_instead() -> None:
    with pytest.raises(explorer.UsageError) as info:
        DPOR(footprints="auto")
    message = str(info.value)
    assert "Python 3.12" in message
    assert "explorer.shared" in message and "declared=True" in message
    assert "conservative" in message


def test_footprint_modes_are_checked() -> None:
    assert DPOR().footprints == "conservative"
    assert DPOR(declared=True).footprints == "declared"
    assert DPOR(footprints="declared").footprints == "declared"
    with pytest.raises(ValueError, match="footprints must be one of"):
        DPOR(footprints="automatic")
    with pytest.raises(ValueError, match="footprints must be one of"):
        DPOR(declared=True, footprints="conservative")


# ---------------------------------------------------------------------------- soundness


class Box:
    def __init__(self) -> None:
        self.n = 0

    @property
    def double(self) -> int:
        return self.n * 2

    async def bump(self) -> int:
        value = self.n
        await asyncio.sleep(0)
        self.n = value + 1
        return value


@dataclasses.dataclass
class Point:
    x: int = 0
    y: int = 0


COUNTER = 0

# Each program runs two or three tasks that touch shared state between awaits and appends
# its final state to ``out``. Every task awaits once more after its last access, so that
# the access is not in the task's last step (last steps conflict anyway, through gather's
# callbacks): the reduction must see the conflict itself.


async def attribute_read_modify_write(out: list[Any]) -> None:
    box = Box()

    async def task() -> None:
        value = box.n
        await asyncio.sleep(0)
        box.n = value + 1
        await asyncio.sleep(0)

    await asyncio.gather(task(), task())
    out.append(box.n)


async def dict_insertion_order(out: list[Any]) -> None:
    data: dict[str, int] = {}

    async def task(key: str) -> None:
        await asyncio.sleep(0)
        data[key] = 1
        await asyncio.sleep(0)

    await asyncio.gather(task("a"), task("b"), task("c"))
    out.append(tuple(data))


async def list_append_order(out: list[Any]) -> None:
    items: list[int] = []

    async def task(value: int) -> None:
        await asyncio.sleep(0)
        items.append(value)
        await asyncio.sleep(0)

    await asyncio.gather(task(1), task(2))
    out.append(tuple(items))


async def module_global(out: list[Any]) -> None:
    global COUNTER
    COUNTER = 0

    async def task() -> None:
        global COUNTER
        value = COUNTER
        await asyncio.sleep(0)
        COUNTER = value + 1
        await asyncio.sleep(0)

    await asyncio.gather(task(), task())
    out.append(COUNTER)


async def closure_variable(out: list[Any]) -> None:
    count = 0

    async def task() -> None:
        nonlocal count
        value = count
        await asyncio.sleep(0)
        count = value + 1
        await asyncio.sleep(0)

    await asyncio.gather(task(), task())
    out.append(count)


async def shared_generator(out: list[Any]) -> None:
    def numbers() -> Any:
        i = 0
        while True:
            yield i
            i += 1

    source = numbers()
    got: dict[str, int] = {}

    async def task(name: str) -> None:
        await asyncio.sleep(0)
        got[name] = next(source)
        await asyncio.sleep(0)

    await asyncio.gather(task("a"), task("b"))
    out.append((got["a"], got["b"]))


async def shared_iterator(out: list[Any]) -> None:
    source = iter([10, 20, 30])
    got: dict[str, int] = {}

    async def task(name: str) -> None:
        await asyncio.sleep(0)
        got[name] = next(source)
        await asyncio.sleep(0)

    await asyncio.gather(task("a"), task("b"))
    out.append((got["a"], got["b"]))


async def check_then_act(out: list[Any]) -> None:
    data: dict[str, int] = {}

    async def task(value: int) -> None:
        if "k" not in data:
            await asyncio.sleep(0)
            data["k"] = value
        await asyncio.sleep(0)

    await asyncio.gather(task(1), task(2))
    out.append(data["k"])


async def awaited_return_value(out: list[Any]) -> None:
    box = Box()
    firsts: list[str] = []

    async def task() -> None:
        if await box.bump() == 0:
            firsts.append("first")
        await asyncio.sleep(0)

    await asyncio.gather(task(), task())
    out.append((box.n, len(firsts)))


async def future_done(out: list[Any]) -> None:
    future = asyncio.get_running_loop().create_future()
    seen: list[bool] = []

    async def setter() -> None:
        await asyncio.sleep(0)
        future.set_result(1)
        await asyncio.sleep(0)

    async def checker() -> None:
        await asyncio.sleep(0)
        seen.append(future.done())
        await asyncio.sleep(0)

    await asyncio.gather(setter(), checker())
    out.append(tuple(seen))


async def defaultdict_of_lists(out: list[Any]) -> None:
    data: collections.defaultdict[str, list[int]] = collections.defaultdict(list)

    async def task(value: int) -> None:
        await asyncio.sleep(0)
        data["k"].append(value)
        await asyncio.sleep(0)

    await asyncio.gather(task(1), task(2))
    out.append(tuple(data["k"]))


async def heap_order(out: list[Any]) -> None:
    heap: list[int] = []
    got: list[int | None] = []

    async def push(value: int) -> None:
        await asyncio.sleep(0)
        heapq.heappush(heap, value)
        await asyncio.sleep(0)

    async def pop() -> None:
        await asyncio.sleep(0)
        got.append(heapq.heappop(heap) if heap else None)
        await asyncio.sleep(0)

    await asyncio.gather(push(3), pop())
    out.append(tuple(got))


async def property_read(out: list[Any]) -> None:
    box = Box()
    got: list[int] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        box.n = 5
        await asyncio.sleep(0)

    async def reader() -> None:
        await asyncio.sleep(0)
        got.append(box.double)
        await asyncio.sleep(0)

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


async def negative_index(out: list[Any]) -> None:
    items = [0, 0]
    got: list[int] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        items[1] = 7
        await asyncio.sleep(0)

    async def reader() -> None:
        await asyncio.sleep(0)
        got.append(items[-1])
        await asyncio.sleep(0)

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


async def computed_key(out: list[Any]) -> None:
    data = {1: 0, 2: 0}
    got: list[int] = []

    async def writer(key: int) -> None:
        await asyncio.sleep(0)
        data[key + 1] = 9
        await asyncio.sleep(0)

    async def reader() -> None:
        await asyncio.sleep(0)
        got.append(data[2])
        await asyncio.sleep(0)

    await asyncio.gather(writer(1), reader())
    out.append(tuple(got))


async def formatted_list(out: list[Any]) -> None:
    items: list[int] = []
    got: list[str] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        items.append(1)
        await asyncio.sleep(0)

    async def reader() -> None:
        await asyncio.sleep(0)
        got.append(f"{items}")
        await asyncio.sleep(0)

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


async def nested_containers(out: list[Any]) -> None:
    data: dict[str, list[int]] = {"k": []}
    got: list[object] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        data["k"].append(1)
        await asyncio.sleep(0)

    async def reader() -> None:
        await asyncio.sleep(0)
        got.append(len(data["k"]))
        got.append(data == {"k": []})
        await asyncio.sleep(0)

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


async def iteration_across_awaits(out: list[Any]) -> None:
    items = [1, 2]
    got: list[int] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        items.append(3)
        await asyncio.sleep(0)

    async def reader() -> None:
        for item in items:
            got.append(item)
            await asyncio.sleep(0)

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


async def dataclass_equality(out: list[Any]) -> None:
    point = Point()
    got: list[object] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        point.x = 1
        await asyncio.sleep(0)

    async def reader() -> None:
        await asyncio.sleep(0)
        got.append(point == Point(1, 0))
        await asyncio.sleep(0)

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


async def star_arguments(out: list[Any]) -> None:
    items = [1]
    got: list[int] = []

    def count(*args: int) -> int:
        return len(args)

    async def writer() -> None:
        await asyncio.sleep(0)
        items.append(2)
        await asyncio.sleep(0)

    async def reader() -> None:
        await asyncio.sleep(0)
        got.append(count(*items))
        await asyncio.sleep(0)

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


async def instance_dict(out: list[Any]) -> None:
    box = Box()
    got: list[int] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        box.__dict__["n"] = 1
        await asyncio.sleep(0)

    async def reader() -> None:
        await asyncio.sleep(0)
        got.append(box.n)
        await asyncio.sleep(0)

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


async def equal_keys(out: list[Any]) -> None:
    data: dict[object, str] = {1: "x"}
    got: list[str] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        data[True] = "y"
        await asyncio.sleep(0)

    async def reader() -> None:
        await asyncio.sleep(0)
        got.append(data[1.0])
        await asyncio.sleep(0)

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


async def sort_by_shared_priorities(out: list[Any]) -> None:
    priority = {"a": 1, "b": 2}
    got: list[tuple[str, ...]] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        priority["a"] = 3
        await asyncio.sleep(0)

    async def reader() -> None:
        await asyncio.sleep(0)
        names = ["a", "b"]
        names.sort(key=lambda name: priority[name])
        got.append(tuple(names))
        await asyncio.sleep(0)

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


async def cancellation(out: list[Any]) -> None:
    got: list[str] = []

    async def victim() -> None:
        try:
            await asyncio.sleep(0)
            got.append("ran")
        except asyncio.CancelledError:
            got.append("cancelled")
            raise

    task = asyncio.create_task(victim())

    async def canceller() -> None:
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0)

    await asyncio.gather(canceller(), return_exceptions=True)
    await asyncio.gather(task, return_exceptions=True)
    out.append(tuple(got))


async def nested_unpacking(out: list[Any]) -> None:
    # Lists of pairs of atoms are unpacked as PURE; a pair replaced by a mutable one
    # mid-run (then changed) must still be read where it is unpacked.
    rows: list[Any] = [("a", 1), ("b", 2)]
    got: list[tuple[Any, ...]] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        cell = ["b", 5]
        rows[1] = cell
        await asyncio.sleep(0)
        cell[1] = 6

    async def reader() -> None:
        for _ in range(2):
            await asyncio.sleep(0)
            got.append(tuple(value for _i, (_name, value) in enumerate(rows)))

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


async def membership_in_built_list(out: list[Any]) -> None:
    rows: list[tuple[str, int]] = [("a", 1)]
    got: list[bool] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        rows.append(("b", 2))

    async def reader() -> None:
        await asyncio.sleep(0)
        got.append("b" in [name for name, _ in rows])

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


_VARIABLE = "EXPLORER_TEST_MEMBERSHIP"


async def environment_membership(out: list[Any]) -> None:
    got: list[bool] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        os.environ[_VARIABLE] = "1"

    async def reader() -> None:
        await asyncio.sleep(0)
        got.append(_VARIABLE in os.environ)

    try:
        await asyncio.gather(writer(), reader())
    finally:
        os.environ.pop(_VARIABLE, None)
    out.append(tuple(got))


_OPEN = "open"
_CLOSED = "closed"


class _Client:
    def __init__(self) -> None:
        self.state = _OPEN


async def silent_store(out: list[Any]) -> None:
    # The opener stores the value already held (a read) unless the closer ran first.
    client = _Client()
    got: list[str] = []

    async def opener() -> None:
        await asyncio.sleep(0)
        client.state = _OPEN
        await asyncio.sleep(0)
        got.append(client.state)

    async def closer() -> None:
        await asyncio.sleep(0)
        client.state = _CLOSED

    await asyncio.gather(opener(), closer())
    out.append((tuple(got), client.state))


class _Stamp:
    def __init__(self) -> None:
        self.now = int("1000")  # above the small-int cache: every int("1000") is new


async def equal_value_store(out: list[Any]) -> None:
    # The refresher stores an equal int, another object: a read unless the resetter ran
    # first, when it is the write that changes the stamp back.
    stamp = _Stamp()
    got: list[int] = []

    async def refresher() -> None:
        now = int("1000")
        await asyncio.sleep(0)
        stamp.now = now
        await asyncio.sleep(0)
        got.append(stamp.now)

    async def resetter() -> None:
        later = int("2000")
        await asyncio.sleep(0)
        stamp.now = later

    await asyncio.gather(refresher(), resetter())
    out.append((tuple(got), stamp.now))


class _Slotted:
    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = "open"


async def computed_value_stores(out: list[Any]) -> None:
    # Values the analysis does not know (a method's result): the stores are reads when
    # the attribute, the slot or the item is found holding an equal value afterwards,
    # writes when the closer changed it first.
    client, slotted, table = _Client(), _Slotted(), {"state": "open"}
    got: list[tuple[str, str, str]] = []

    async def opener() -> None:
        await asyncio.sleep(0)
        client.state = "OPEN".lower()
        slotted.state = "OPEN".lower()
        table["state"] = "OPEN".lower()
        await asyncio.sleep(0)
        got.append((client.state, slotted.state, table["state"]))

    async def closer() -> None:
        await asyncio.sleep(0)
        client.state = "CLOSED".lower()
        await asyncio.sleep(0)
        slotted.state = "CLOSED".lower()
        table["state"] = "CLOSED".lower()

    await asyncio.gather(opener(), closer())
    out.append((tuple(got), client.state, slotted.state, table["state"]))


async def cells_per_call(out: list[Any]) -> None:
    # Each call of handle() has its own `started` cell (as a transport's per-request
    # closures do); `served` is one cell both calls share, written through the inner
    # closure and read by handle()'s own frame: the lost update must still be found.
    served = 0
    got: list[tuple[str, bool, int]] = []

    async def handle(name: str) -> None:
        started = False

        async def send() -> None:
            nonlocal started, served
            started = True
            value = served
            await asyncio.sleep(0)
            served = value + 1

        await asyncio.sleep(0)
        await send()
        got.append((name, started, served))

    await asyncio.gather(handle("a"), handle("b"))
    out.append((tuple(sorted(got)), served))


class _Route:
    def __init__(self, path: str, handler: str) -> None:
        self.path = path
        self.handler = handler

    def __iter__(self) -> Any:
        return iter((self.path, self.handler))


async def unpacking_iterable_records(out: list[Any]) -> None:
    # Unpacking records whose __iter__ is Python code: their fields are read there.
    routes = [_Route("/a", "old"), _Route("/b", "old")]
    got: list[tuple[str, ...]] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        routes[1].handler = "new"

    async def reader() -> None:
        await asyncio.sleep(0)
        got.append(tuple(handler for _path, handler in reversed(routes)))

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


_KNOWN_KINDS = frozenset({(__name__, "_Route")})


async def class_names(out: list[Any]) -> None:
    # A class's module and name are read through type's own getters (strings).
    holder = _Client()
    holder.state = _Client  # type: ignore[assignment]
    got: list[bool] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        holder.state = _Route  # type: ignore[assignment]

    async def reader() -> None:
        await asyncio.sleep(0)
        cls = holder.state
        got.append((cls.__module__, cls.__name__) in _KNOWN_KINDS)  # type: ignore[attr-defined]

    await asyncio.gather(writer(), reader())
    out.append(tuple(got))


async def file_status(out: list[Any]) -> None:
    # Checking a path reads its status; writing the file is not modelled (UNKNOWN).
    path = os.path.join(tempfile.gettempdir(), f"explorer-file-status-{os.getpid()}")
    got: list[tuple[bool, int]] = []

    async def writer() -> None:
        await asyncio.sleep(0)
        with open(path, "w") as handle:
            handle.write("x")

    async def reader() -> None:
        await asyncio.sleep(0)
        exists = os.path.exists(path)
        got.append((exists, os.stat(path).st_size if exists else -1))

    try:
        await asyncio.gather(writer(), reader())
    finally:
        os.remove(path)
    out.append(tuple(got))


PROGRAMS: list[Program] = [
    nested_unpacking, membership_in_built_list, environment_membership, silent_store,
    unpacking_iterable_records, class_names, file_status, equal_value_store, cells_per_call,
    computed_value_stores,
    attribute_read_modify_write, dict_insertion_order, list_append_order, module_global,
    closure_variable, shared_generator, shared_iterator, check_then_act,
    awaited_return_value, future_done, defaultdict_of_lists, heap_order, property_read,
    negative_index, computed_key, formatted_list, nested_containers,
    iteration_across_awaits, dataclass_equality, star_arguments, instance_dict, equal_keys,
    sort_by_shared_priorities, cancellation,
]


def _outcomes(program: Program, strategy: object) -> tuple[set[Any], explorer.ExploreResult]:
    out: list[Any] = []

    async def scenario() -> None:
        await program(out)

    result = explorer.explore(scenario, strategy=strategy,  # type: ignore[arg-type]
                              max_schedules=50_000, raise_on_failure=False)
    return set(out), result


@needs_monitoring
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_every_outcome_of_exhaustive_search_is_reached(program: Program) -> None:
    everything, full = _outcomes(program, "systematic")
    reduced, auto = _outcomes(program, DPOR(footprints="auto"))
    assert full.exhausted and auto.exhausted
    assert reduced == everything
    assert len(everything) > 1  # the program does race
    assert auto.schedules <= full.schedules


# ---------------------------------------------------------------------------- the gallery


@needs_monitoring
@pytest.mark.parametrize("example", unfaulted_examples(), ids=lambda e: e.name)
def test_every_gallery_bug_is_still_found(example: Example) -> None:
    # Finding is what the reduction decides; shrinking the failure is the shrinker's test.
    result = explorer.explore(example.buggy, strategy=DPOR(example.bound, footprints="auto"),
                              max_steps=example.max_steps, max_schedules=20_000,
                              raise_on_failure=False, shrink=False)
    assert result.failure is not None
    assert result.failure.kind == example.kind


@needs_monitoring
@pytest.mark.parametrize("example", unfaulted_examples(), ids=lambda e: e.name)
def test_fixed_gallery_versions_pass_every_schedule(example: Example) -> None:
    result = explorer.explore(example.fixed, strategy=DPOR(example.bound, footprints="auto"),
                              max_steps=example.max_steps, max_schedules=20_000)
    assert result.failure is None and result.exhausted


# ---------------------------------------------------------------------------- undeclared state


class Account:
    def __init__(self, balance: int) -> None:
        self.balance = balance


async def _undeclared_double_spend() -> None:
    account = Account(100)

    async def withdraw(amount: int) -> None:
        if account.balance >= amount:
            await asyncio.sleep(0)  # write to the ledger
            account.balance -= amount

    async def mobile(amount: int) -> None:
        await asyncio.sleep(0)  # check the session token
        await withdraw(amount)

    await asyncio.gather(withdraw(80), mobile(80))
    assert account.balance >= 0, f"balance went negative: {account.balance}"


async def _undeclared_dict_lost_update() -> None:
    stats = {"hits": 0}

    async def hit(delay: int) -> None:
        for _ in range(delay):
            await asyncio.sleep(0)
        value = stats["hits"]
        await asyncio.sleep(0)
        stats["hits"] = value + 1

    await asyncio.gather(hit(0), hit(2))
    assert stats["hits"] == 2


HITS = 0


async def _undeclared_global_lost_update() -> None:
    global HITS
    HITS = 0

    async def hit(delay: int) -> None:
        global HITS
        for _ in range(delay):
            await asyncio.sleep(0)
        value = HITS
        await asyncio.sleep(0)
        HITS = value + 1

    await asyncio.gather(hit(0), hit(2))
    assert HITS == 2


@needs_monitoring
@pytest.mark.parametrize("scenario", [_undeclared_double_spend, _undeclared_dict_lost_update,
                                      _undeclared_global_lost_update],
                         ids=["attribute", "dict", "global"])
def test_races_on_undeclared_state_are_found(scenario: Callable[[], Awaitable[None]]) -> None:
    # The stock schedule passes; declared mode sees no shared state and stops there.
    declared = explorer.explore(scenario, strategy=DPOR(declared=True))
    assert declared.failure is None
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(scenario, strategy=DPOR(footprints="auto"))
    assert info.value.kind == "assertion"


@needs_monitoring
def test_race_explanations_name_undeclared_attributes() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_undeclared_double_spend, strategy=DPOR(footprints="auto"))
    text = str(info.value)
    assert "Conflicting accesses" in text or "Decided by" in text
    assert "Account#1.balance" in text


# ---------------------------------------------------------------------------- reduction


class Counter:
    def __init__(self) -> None:
        self.value = 0


def _disjoint_attributes(tasks: int, *, declared: bool = False) -> Callable[[], Any]:
    async def scenario() -> None:
        counters = [Counter() for _ in range(tasks)]
        if declared:
            counters = [explorer.shared(c) for c in counters]

        async def worker(counter: Counter) -> None:
            await asyncio.sleep(0)
            counter.value = counter.value + 1
            await asyncio.sleep(0)
            counter.value += 1

        await asyncio.gather(*(worker(c) for c in counters))
        assert all(c.value == 2 for c in counters)

    return scenario


def _disjoint_keys(tasks: int) -> Callable[[], Any]:
    async def scenario() -> None:
        data = dict.fromkeys(range(tasks), 0)

        async def worker(key: int) -> None:
            await asyncio.sleep(0)
            data[key] = data[key] + 1
            await asyncio.sleep(0)
            data[key] += 1

        await asyncio.gather(*(worker(k) for k in range(tasks)))
        assert sorted(data.values()) == [2] * tasks

    return scenario


@needs_monitoring
@pytest.mark.parametrize("scenario", [_disjoint_attributes(3), _disjoint_keys(3)],
                         ids=["attributes of separate objects", "keys of a plain dict"])
def test_disjoint_state_needs_far_fewer_schedules_than_conservative(
        scenario: Callable[[], Any]) -> None:
    auto = explorer.explore(scenario, strategy=DPOR(footprints="auto"))
    conservative = explorer.explore(scenario, strategy=DPOR(), max_schedules=50_000)
    assert auto.exhausted and conservative.exhausted
    assert conservative.schedules >= 100 * auto.schedules


@needs_monitoring
def test_as_few_schedules_as_with_declared_state() -> None:
    auto = explorer.explore(_disjoint_attributes(3), strategy=DPOR(footprints="auto"))
    declared = explorer.explore(_disjoint_attributes(3, declared=True),
                                strategy=DPOR(declared=True))
    assert auto.exhausted and declared.exhausted
    assert auto.schedules <= declared.schedules


# ---------------------------------------------------------------------------- the machinery


def _temporaries(tasks: int) -> Callable[[], Any]:
    async def scenario() -> None:
        async def worker(name: str) -> None:
            for round_ in range(3):
                await asyncio.sleep(0)
                # Made and freed within the step: the next task's temporaries may get
                # the same addresses, and must not count as the same objects.
                scratch = _Client()
                scratch.state = f"{name} {round_}"
                del scratch

        await asyncio.gather(*(worker(f"w{i}") for i in range(tasks)))

    return scenario


async def _same_value_stores() -> None:
    client = _Client()

    async def request() -> None:
        for _ in range(2):
            await asyncio.sleep(0)
            client.state = _OPEN  # what httpx's client does on every request

    await asyncio.gather(request(), request(), request())
    assert client.state is _OPEN


@needs_monitoring
def test_stores_of_the_value_already_held_commute() -> None:
    result = explorer.explore(_same_value_stores, strategy=DPOR(footprints="auto"))
    assert result.exhausted and result.failure is None
    assert result.schedules == 1


async def _equal_value_stores() -> None:
    stamp = _Stamp()

    async def request() -> None:
        for _ in range(2):
            now = int("1000")
            await asyncio.sleep(0)
            stamp.now = now  # equal, not identical: what a cookie jar's clock does

    await asyncio.gather(request(), request(), request())
    assert stamp.now == 1000


@needs_monitoring
def test_stores_of_an_equal_value_commute() -> None:
    result = explorer.explore(_equal_value_stores, strategy=DPOR(footprints="auto"))
    assert result.exhausted and result.failure is None
    assert result.schedules == 1


async def _computed_equal_stores() -> None:
    client, slotted, table = _Client(), _Slotted(), {"state": "open"}

    async def request() -> None:
        for _ in range(2):
            await asyncio.sleep(0)
            # Values from a method call, unknown to the analysis until the store is over.
            client.state = "OPEN".lower()
            slotted.state = "OPEN".lower()
            table["state"] = "OPEN".lower()

    await asyncio.gather(request(), request(), request())
    assert (client.state, slotted.state, table["state"]) == ("open",) * 3


@needs_monitoring
def test_stores_found_afterwards_to_change_nothing_commute() -> None:
    result = explorer.explore(_computed_equal_stores, strategy=DPOR(footprints="auto"))
    assert result.exhausted and result.failure is None
    assert result.schedules == 1


async def _closures_of_their_own() -> None:
    async def request(code: int) -> None:
        started = False
        status = 0

        async def send() -> None:
            nonlocal started, status
            started = True
            await asyncio.sleep(0)
            status = code

        await send()
        await asyncio.sleep(0)
        assert started and status == code

    await asyncio.gather(request(200), request(404), request(500))


@needs_monitoring
def test_closure_variables_of_different_calls_are_different_locations() -> None:
    from explorer._monitoring._cells import by_cell

    result = explorer.explore(_closures_of_their_own, strategy=DPOR(footprints="auto"))
    assert result.exhausted and result.failure is None
    assert by_cell()  # CPython 3.12 and 3.13 locate closure variables by cell
    assert result.schedules == 1


async def _tasks_and_generators_made_in_steps() -> None:
    # Every new task and async generator is added to asyncio's registries (WeakSets):
    # the runtime's bookkeeping, not state the tasks share.
    async def numbers() -> Any:
        yield 1

    async def helper() -> None:
        async for _ in numbers():
            pass

    async def worker() -> None:
        for _ in range(2):
            await asyncio.sleep(0)
            await asyncio.create_task(helper())

    await asyncio.gather(worker(), worker())


@needs_monitoring
def test_asyncio_registries_are_not_shared_state() -> None:
    result = explorer.explore(_tasks_and_generators_made_in_steps,
                              strategy=DPOR(footprints="auto"))
    assert result.exhausted and result.failure is None
    assert result.schedules <= 2


@needs_monitoring
def test_temporaries_of_different_steps_never_meet() -> None:
    result = explorer.explore(_temporaries(3), strategy=DPOR(footprints="auto"))
    assert result.exhausted and result.failure is None
    assert result.schedules == 1


@needs_monitoring
def test_step_footprints_hold_the_accesses_of_user_code() -> None:
    from explorer._asyncio._runner import AsyncioRuntime
    from explorer._footprint import UNKNOWN
    from explorer._runtime import RunMode
    from explorer.strategies import Fixed

    counter = Counter()
    data = {"k": 0}

    async def scenario() -> None:
        async def worker() -> None:
            await asyncio.sleep(0)
            counter.value = data["k"] + 1

        await asyncio.gather(worker())

    runtime = AsyncioRuntime()
    with runtime.session(footprints=True):
        fixed = Fixed([])
        fixed.start_run()
        record = runtime.run(scenario, fixed.choose, RunMode(max_steps=1000, footprints="auto"))
    assert record.footprints is not None
    steps = [set(step.footprint) for step in record.footprints if step.process != "loop"]
    access = next(step for step in steps if (id(counter), "value", "w") in step)
    assert (id(data), "k", "r") in access
    assert UNKNOWN not in access


@needs_monitoring
def test_monitoring_is_removed_when_the_exploration_ends() -> None:
    explorer.explore(_disjoint_keys(2), strategy=DPOR(footprints="auto"))
    tools = [sys.monitoring.get_tool(tool) for tool in range(6)]
    assert "explorer automatic footprints" not in tools


@needs_monitoring
def test_without_a_free_tool_id_task_code_counts_as_touching_everything() -> None:
    taken = [tool for tool in (2, 3, 4, 5) if sys.monitoring.get_tool(tool) is None]
    for tool in taken:
        sys.monitoring.use_tool_id(tool, "test: busy")
    try:
        with pytest.warns(explorer.HealthWarning, match="no free sys.monitoring tool id"):
            auto = explorer.explore(_disjoint_keys(2), strategy=DPOR(footprints="auto"))
    finally:
        for tool in taken:
            sys.monitoring.free_tool_id(tool)
    conservative = explorer.explore(_disjoint_keys(2), strategy=DPOR())
    assert auto.schedules == conservative.schedules
