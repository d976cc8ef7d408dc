"""Automatic footprints through framework code: sound against exhaustive search.

Small Starlette and FastAPI apps, buggy and fixed, driven through httpx's ASGI transport:
``DPOR(footprints="auto")`` finds every bug, and for every app reaches exactly the
outcomes (responses and final state) that exhaustive systematic search reaches. Then the
modelling that framework code needs, one mechanism at a time, on plain programs: each
reaches the outcomes exhaustive search reaches, and independent steps are found
independent.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import functools
import inspect
import json
import re
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx
from fastapi import Depends, FastAPI, HTTPException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import explorer
from explorer.strategies import DPOR

needs_monitoring = pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="automatic footprints use sys.monitoring (PEP 669), new in Python 3.12")

Program = Callable[[list[Any]], Awaitable[None]]


def _outcomes(program: Program, strategy: object) -> tuple[set[Any], explorer.ExploreResult]:
    """What every explored schedule ended with, and the exploration's result."""
    out: list[Any] = []

    async def scenario() -> None:
        await program(out)

    result = explorer.explore(scenario, strategy=strategy,  # type: ignore[arg-type]
                              max_schedules=5_000, raise_on_failure=False)
    return set(out), result


# ---------------------------------------------------------------------------- small apps


def _tickets_app(*, fixed: bool) -> tuple[Starlette, dict[str, int]]:
    """Starlette: ``POST /book`` sells a seat if one is left (a check, an await, a write)."""
    seats = {"left": 1}
    lock = asyncio.Lock()

    async def sell() -> bool:
        if seats["left"] <= 0:
            return False
        await asyncio.sleep(0)  # the payment provider
        seats["left"] -= 1
        return True

    async def book(request: Request) -> JSONResponse:
        who = (await request.json())["who"]
        if fixed:
            async with lock:
                sold = await sell()
        else:
            sold = await sell()
        return JSONResponse({"who": who, "sold": sold}, status_code=200 if sold else 409)

    return Starlette(routes=[Route("/book", book, methods=["POST"])]), seats


async def tickets(out: list[Any], *, fixed: bool, check: bool = False) -> None:
    app, seats = _tickets_app(fixed=fixed)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://box-office") as client:
        first, second = await asyncio.gather(client.post("/book", json={"who": "ana"}),
                                             client.post("/book", json={"who": "ben"}))
    out.append((first.status_code, second.status_code, seats["left"]))
    assert not check or seats["left"] >= 0, f"oversold: {seats['left']} seats left"


def _wallet_app(*, fixed: bool) -> tuple[FastAPI, dict[str, int]]:
    """FastAPI: ``POST /spend/{user}`` through a dependency that loads the balance."""
    balances = {"kim": 10, "lee": 10}

    async def balance(user: str) -> int:
        await asyncio.sleep(0)  # the accounts service
        if user not in balances:
            raise HTTPException(status_code=404)
        return balances[user]

    app = FastAPI()

    @app.post("/spend/{user}")
    async def spend(user: str, amount: int,
                    current: int = Depends(balance)) -> dict[str, int]:
        if fixed:
            current = balances[user]  # re-read: the check and the write in one step
        if current < amount:
            raise HTTPException(status_code=402)
        if not fixed:
            await asyncio.sleep(0)  # the audit log, between the check and the write
        balances[user] = current - amount
        return {"left": balances[user]}

    return app, balances


async def wallet(out: list[Any], *, fixed: bool, users: tuple[str, str],
                 check: bool = False) -> None:
    app, balances = _wallet_app(fixed=fixed)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://wallet") as client:
        responses = await asyncio.gather(
            *(client.post(f"/spend/{user}", params={"amount": 7}) for user in users))
    out.append((tuple(r.status_code for r in responses), tuple(sorted(balances.items()))))
    spent = 7 * sum(r.status_code == 200 for r in responses)
    assert not check or spent == 20 - sum(balances.values()), f"spent {spent}, {balances}"


def _shelf_app() -> tuple[FastAPI, dict[str, int]]:
    """FastAPI: two endpoints behind one dependency; the restock awaits between reading
    the stock and writing it, so the count may see either value."""
    stock = {"tea": 3}

    async def item(name: str) -> str:
        await asyncio.sleep(0)  # the catalogue
        if name not in stock:
            raise HTTPException(status_code=404)
        return name

    app = FastAPI()

    @app.get("/stock/{name}")
    async def count(key: str = Depends(item)) -> dict[str, int]:
        return {"left": stock[key]}

    @app.post("/restock/{name}")
    async def restock(key: str = Depends(item)) -> dict[str, int]:
        current = stock[key]
        await asyncio.sleep(0)  # the supplier
        stock[key] = current + 2
        return {"left": stock[key]}

    return app, stock


async def shelf(out: list[Any], *, check: bool = False) -> None:
    # Each endpoint's first request fills FastAPI's endpoint cache and classifies its
    # dependency through a cached function (the pure-cache rules); the stock is the race.
    app, stock = _shelf_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://shelf") as client:
        responses = await asyncio.gather(client.get("/stock/tea"),
                                         client.post("/restock/tea"))
    out.append((tuple(r.json()["left"] for r in responses), stock["tea"]))
    assert not check or stock["tea"] == 5, stock


APPS: list[tuple[str, Program, bool]] = [
    ("starlette-tickets", functools.partial(tickets, fixed=False), True),
    ("starlette-tickets-fixed", functools.partial(tickets, fixed=True), False),
    ("fastapi-wallet", functools.partial(wallet, fixed=False, users=("kim", "kim")), True),
    ("fastapi-wallet-fixed", functools.partial(wallet, fixed=True, users=("kim", "kim")),
     False),
    ("fastapi-wallet-two-users",
     functools.partial(wallet, fixed=False, users=("kim", "lee")), False),
    ("fastapi-two-endpoints", shelf, False),
]


@needs_monitoring
@pytest.mark.parametrize(("program", "buggy"), [pytest.param(p, b, id=n) for n, p, b in APPS])
def test_apps_reach_the_outcomes_of_exhaustive_search(program: Program, buggy: bool) -> None:
    everything, full = _outcomes(program, "systematic")
    reduced, auto = _outcomes(program, DPOR(footprints="auto"))
    assert full.exhausted and auto.exhausted, (full.coverage, auto.coverage)
    assert full.failure is None and auto.failure is None
    assert reduced == everything
    assert auto.schedules <= full.schedules
    checked = functools.partial(program, check=True)
    _found, search = _outcomes(checked, DPOR(footprints="auto"))
    assert (search.failure is not None) == buggy, search.failure
    if search.failure is not None:
        assert search.failure.kind == "assertion"


@needs_monitoring
def test_independent_requests_through_the_framework_are_reduced() -> None:
    """Two requests for different users touch different keys: framework code (client,
    routing, validation, serialisation) must not make them dependent everywhere."""
    program = functools.partial(wallet, fixed=False, users=("kim", "lee"))
    _states, full = _outcomes(program, "systematic")
    _reduced, auto = _outcomes(program, DPOR(footprints="auto"))
    assert auto.schedules < full.schedules


# ----------------------------------------------------------- mechanisms framework code uses


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


async def json_round_trip(out: list[Any]) -> None:
    shared = {"n": 0}

    async def writer() -> None:
        await asyncio.sleep(0)
        shared["n"] = json.loads(json.dumps({"n": shared["n"] + 1}))["n"]

    async def reader() -> None:
        await asyncio.sleep(0)
        out.append(json.dumps(shared, separators=(",", ":")))

    await asyncio.gather(writer(), reader())


async def enum_and_patterns(out: list[Any]) -> None:
    state = {"level": 1}
    pattern = re.compile(r"(\w+)=(\d+)")

    async def parse(text: str) -> None:
        await asyncio.sleep(0)
        match = pattern.fullmatch(text)
        if match is not None:
            state["level"] = Level(int(match.group(2))).value

    async def report() -> None:
        await asyncio.sleep(0)
        out.append(Level(state["level"]).name + "".join(["!" if state["level"] > 1 else ""]))

    await asyncio.gather(parse("level=2"), report())


async def thread_locks(out: list[Any]) -> None:
    lock = threading.RLock()
    log: list[str] = []

    async def note(name: str) -> None:
        await asyncio.sleep(0)
        with lock:
            log.append(name)

    await asyncio.gather(note("a"), note("b"))
    out.append(tuple(log))


VARIABLE: contextvars.ContextVar[str] = contextvars.ContextVar("VARIABLE", default="-")


async def context_variables(out: list[Any]) -> None:
    seen = {"a": "", "b": ""}  # (adding keys would order the two tasks)

    async def handle(name: str) -> None:
        VARIABLE.set(name)
        await asyncio.sleep(0)
        seen[name] = VARIABLE.get()

    await asyncio.gather(handle("a"), handle("b"))
    out.append(tuple(sorted(seen.items())))


async def function_level_imports(out: list[Any]) -> None:
    totals = {"n": 0}

    async def count(value: object) -> None:
        await asyncio.sleep(0)
        import json as codec  # (already imported: reads sys.modules, runs nothing)
        from json import dumps

        totals["n"] = totals["n"] + len(codec.dumps(value)) + len(dumps(value))

    await asyncio.gather(count(1), count([2, 3]))
    out.append(totals["n"])


def _two_lines() -> int:
    return 2


async def source_blocks(out: list[Any]) -> None:
    # inspect.getblock (what inspect.getsource runs on a function's lines) reads its list
    # of lines as a whole; inspect.getsource itself checks the file and tokenizes it.
    lines = ["def f():\n", "    return 1\n"]
    got: list[int] = []

    async def editor() -> None:
        await asyncio.sleep(0)
        lines.insert(1, "    x = 0\n")

    async def reader() -> None:
        await asyncio.sleep(0)
        got.append(len(inspect.getblock(lines)) + len(inspect.getsource(_two_lines)))

    await asyncio.gather(editor(), reader())
    out.append(tuple(got))


async def first_match(out: list[Any]) -> None:
    # next(<generator>, default): the value the generator yields, or the default.
    pairs: list[tuple[str, int]] = [("a", 1)]
    got: list[int] = []

    async def adder() -> None:
        await asyncio.sleep(0)
        pairs.append(("b", 2))

    async def finder() -> None:
        await asyncio.sleep(0)
        _, value = next((pair for pair in pairs if pair[0] == "b"), ("-", 0))
        got.append(value)

    await asyncio.gather(adder(), finder())
    out.append(tuple(got))


@contextlib.contextmanager
def _counting_failures(box: dict[str, int]) -> Any:
    try:
        yield
    except KeyError:
        box["failed"] += 1
        raise


class _Failure:
    def __init__(self, box: dict[str, int]) -> None:
        self.box = box

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        self.box["exits"] += 1
        return self.box["exits"] > 1  # swallows the exception after the first


async def exceptions_leaving_with_blocks(out: list[Any]) -> None:
    # An exception leaving a with block runs the manager's __exit__ (no call event).
    box = {"failed": 0, "exits": 0, "callbacks": 0}
    lock = threading.Lock()
    got: list[object] = []

    def called() -> None:
        box["callbacks"] += 1

    async def failing() -> None:
        await asyncio.sleep(0)
        try:
            with lock, _counting_failures(box):
                raise KeyError("x")
        except KeyError:
            pass
        await asyncio.sleep(0)
        try:
            async with contextlib.AsyncExitStack() as stack:
                stack.callback(called)
                raise ValueError("y")
        except ValueError:
            pass

    async def checking() -> None:
        await asyncio.sleep(0)
        try:
            with _Failure(box):
                raise KeyError("z")
            got.append("swallowed")
        except KeyError:
            got.append("raised")
        got.append((box["failed"], box["callbacks"], lock.locked()))

    await asyncio.gather(failing(), checking())
    out.append(tuple(got))


class _Options:
    pass


async def attributes_by_name(out: list[Any]) -> None:
    # getattr(obj, name, default): the default where the attribute is plainly absent;
    # type(obj).__mro__: the class's own tuple of bases.
    options = _Options()
    handlers: dict[type, str] = {}
    got: list[object] = []

    async def configure() -> None:
        await asyncio.sleep(0)
        options.embed = True  # type: ignore[attr-defined]
        handlers[Exception] = "generic"

    async def handle() -> None:
        await asyncio.sleep(0)
        error = KeyError("k")
        found = next((handlers[cls] for cls in type(error).__mro__ if cls in handlers), "-")
        got.append((getattr(options, "embed", None), found))

    await asyncio.gather(configure(), handle())
    out.append(tuple(got))


MECHANISMS: list[Program] = [json_round_trip, enum_and_patterns, thread_locks,
                             context_variables, function_level_imports, source_blocks,
                             first_match, exceptions_leaving_with_blocks, attributes_by_name]


async def _private_framework_mechanisms() -> None:
    async def request(name: str) -> None:
        lines = ["def f():\n", "    return 1\n"]
        options = _Options()
        box = {"failed": 0, "exits": 0, "callbacks": 0}
        for _ in range(2):
            await asyncio.sleep(0)
            inspect.getblock(lines)
            _, value = next((pair for pair in [(name, 1)] if pair[1] > 0), ("-", 0))
            try:
                with _counting_failures(box):
                    raise KeyError(name)
            except KeyError:
                pass
            assert getattr(options, "embed", None) is None and type(options).__mro__[0] \
                is _Options and value == 1

    await asyncio.gather(request("a"), request("b"))


@needs_monitoring
def test_private_sources_generators_with_exits_and_getattr_need_one_schedule() -> None:
    """Requests doing these on objects of their own (FastAPI's first request to an
    endpoint; a dependency raising an HTTP error) are independent."""
    result = explorer.explore(_private_framework_mechanisms, strategy=DPOR(footprints="auto"))
    assert result.exhausted and result.failure is None
    assert result.schedules == 1


@needs_monitoring
@pytest.mark.parametrize("program", MECHANISMS, ids=lambda p: p.__name__)
def test_mechanisms_reach_the_outcomes_of_exhaustive_search(program: Program) -> None:
    everything, full = _outcomes(program, "systematic")
    reduced, auto = _outcomes(program, DPOR(footprints="auto"))
    assert full.exhausted and auto.exhausted
    assert reduced == everything
    assert auto.schedules <= full.schedules


@needs_monitoring
def test_context_variables_are_per_task() -> None:
    """Each task sets and reads the variable in its own context: no dependence."""
    outcomes, auto = _outcomes(context_variables, DPOR(footprints="auto"))
    assert outcomes == {(("a", "a"), ("b", "b"))}
    assert auto.schedules == 1


@needs_monitoring
def test_a_shared_thread_lock_orders_the_steps_that_take_it() -> None:
    outcomes, auto = _outcomes(thread_locks, DPOR(footprints="auto"))
    assert outcomes == {("a", "b"), ("b", "a")}
    assert auto.schedules == 2


# ------------------------------------------------- the web stack in front of a foreign driver


async def vouchers(out: list[Any]) -> None:
    """Starlette in front of Redis (redis-py's client over fakeredis, foreign code): each
    request's steps go on into the driver, so they end UNKNOWN whatever the framework did."""
    fakeredis = pytest.importorskip("fakeredis")
    store = fakeredis.FakeAsyncRedis()
    await store.set("vouchers", 1)

    async def claim(request: Request) -> JSONResponse:
        left = int(await store.get("vouchers"))
        if left > 0:
            await store.set("vouchers", left - 1)
        return JSONResponse({"claimed": left > 0})

    app = Starlette(routes=[Route("/claim", claim, methods=["POST"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://vouchers") as client:
        first, second = await asyncio.gather(client.post("/claim"), client.post("/claim"))
    out.append((first.json()["claimed"], second.json()["claimed"],
                int(await store.get("vouchers"))))


def _watching(program: Program, monkeypatch: pytest.MonkeyPatch) -> tuple[bool, set[Any]]:
    """Whether a reduced exploration of ``program`` stopped watching the web stack, and
    the outcomes it reached."""
    from explorer._monitoring import _hooks

    stopped: list[bool] = []
    original = _hooks.stop_watching_packages

    def stop() -> list[Any]:
        stopped.append(True)
        return original()

    monkeypatch.setattr(_hooks, "stop_watching_packages", stop)
    reduced, auto = _outcomes(program, DPOR(footprints="auto"))
    assert auto.exhausted and auto.failure is None
    return bool(stopped), reduced


@needs_monitoring
def test_the_web_stack_stops_being_watched_where_it_cannot_pay(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request step ends in foreign code: watching the framework buys nothing, so
    after the first run its code counts as foreign, and the outcomes stay exactly those
    of exhaustive search."""
    everything, full = _outcomes(vouchers, "systematic")
    assert full.exhausted
    assert len(everything) > 1  # which request gets the voucher depends on the order
    stopped, reduced = _watching(vouchers, monkeypatch)
    assert stopped
    assert reduced == everything


@needs_monitoring
def test_the_web_stack_stays_watched_where_requests_are_recorded_precisely(
        monkeypatch: pytest.MonkeyPatch) -> None:
    program = functools.partial(tickets, fixed=False)
    everything, _full = _outcomes(program, "systematic")
    stopped, reduced = _watching(program, monkeypatch)
    assert not stopped
    assert reduced == everything


# ------------------------------------------------------------- thread locks taken in pairs


async def lock_pairs(out: list[Any]) -> None:
    """Two tasks take one thread lock and give it back within a step, around disjoint
    writes: the pairs read the lock, so the steps commute."""
    guard = threading.Lock()
    tallies = {"north": 0, "south": 0}

    async def tally(side: str) -> None:
        await asyncio.sleep(0)
        with guard:
            tallies[side] += 1
        guard.acquire()
        guard.release()

    await asyncio.gather(tally("north"), tally("south"))
    out.append(tuple(sorted(tallies.items())))


async def lock_kept_across_an_await(out: list[Any]) -> None:
    """One task keeps the lock across an await; the other tries it without blocking (a
    pair when it gets it): whether it gets it depends on the order, and both are found."""
    guard = threading.Lock()
    tries: list[bool] = []

    async def keeper() -> None:
        guard.acquire()
        await asyncio.sleep(0)
        guard.release()

    async def prober() -> None:
        await asyncio.sleep(0)
        got = guard.acquire(blocking=False)
        if got:
            guard.release()
        tries.append(got)

    await asyncio.gather(keeper(), prober())
    out.append(tuple(tries))


@needs_monitoring
@pytest.mark.parametrize("program", [lock_pairs, lock_kept_across_an_await],
                         ids=lambda p: p.__name__)
def test_lock_pairs_reach_the_outcomes_of_exhaustive_search(program: Program) -> None:
    everything, full = _outcomes(program, "systematic")
    reduced, auto = _outcomes(program, DPOR(footprints="auto"))
    assert full.exhausted and auto.exhausted
    assert reduced == everything


@needs_monitoring
def test_a_lock_taken_and_given_back_in_one_step_is_a_read() -> None:
    outcomes, auto = _outcomes(lock_pairs, DPOR(footprints="auto"))
    assert outcomes == {(("north", 1), ("south", 1))}
    assert auto.schedules == 1


@needs_monitoring
def test_a_lock_kept_across_an_await_orders_the_steps_that_try_it() -> None:
    outcomes, _auto = _outcomes(lock_kept_across_an_await, DPOR(footprints="auto"))
    assert outcomes == {(True,), (False,)}
