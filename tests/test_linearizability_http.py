"""Linearizability checks with no assertion in the code under test: async objects and a
Starlette app, each buggy one reported ``not_linearizable`` with a schedule that replays,
each fixed twin passing; and the HTTP layer's own contract (results, normalising, misuse)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

import explorer
from examples.gallery import linearizable_examples


async def io() -> None:
    await asyncio.sleep(0)


# A wallet whose withdrawal checks the balance, awaits the payment network, then debits.
class Wallet:
    def __init__(self, *, fixed: bool) -> None:
        self.cents = 100
        self.fixed = fixed
        self.lock = asyncio.Lock()

    async def _withdraw(self, cents: int) -> bool:
        if self.cents < cents:
            return False
        await io()  # authorise with the payment network
        self.cents -= cents
        return True

    async def withdraw(self, cents: int) -> bool:
        if self.fixed:
            async with self.lock:
                return await self._withdraw(cents)
        return await self._withdraw(cents)

    async def balance(self) -> int:
        return self.cents


def wallet_operations() -> list[Any]:
    async def withdraw(wallet: Wallet, cents: int) -> bool:
        return await wallet.withdraw(cents)

    async def balance(wallet: Wallet) -> int:
        return await wallet.balance()

    return [explorer.operation(withdraw, st.sampled_from([60, 70])), balance]


# A user registry whose "was it new?" answer is decided before an await and acted on after.
class Registry:
    def __init__(self, *, fixed: bool) -> None:
        self.users: set[str] = set()
        self.fixed = fixed
        self.lock = asyncio.Lock()

    async def _add(self, user: str) -> bool:
        new = user not in self.users
        await io()  # write the profile row
        if new:
            self.users.add(user)
        return new

    async def add(self, user: str) -> bool:
        if self.fixed:
            async with self.lock:
                return await self._add(user)
        return await self._add(user)


def registry_operations() -> list[Any]:
    async def add(registry: Registry, user: str) -> bool:
        return await registry.add(user)

    return [explorer.operation(add, st.sampled_from(["ada", "bob"]))]


# A Starlette endpoint that books a seat: a session check with three awaits, then the
# check-then-act on the seat map straddling one more await.
def make_theatre(*, fixed: bool) -> Starlette:
    taken: dict[str, int] = {}
    lock = asyncio.Lock()
    tickets = iter(range(1, 1000))

    async def session_ok(request: Request) -> None:
        for _ in range(3):
            await io()  # cookie, session store, permissions

    async def claim(seat: str) -> JSONResponse:
        if seat in taken:
            return JSONResponse({"seat": seat, "error": "taken"}, status_code=409)
        await io()  # reserve with the payment provider
        taken[seat] = next(tickets)
        return JSONResponse({"seat": seat, "ticket": taken[seat]}, status_code=201)

    async def book(request: Request) -> JSONResponse:
        await session_ok(request)
        seat = request.path_params["seat"]
        if fixed:
            async with lock:
                return await claim(seat)
        return await claim(seat)

    async def seats(request: Request) -> JSONResponse:
        return JSONResponse(sorted(taken))

    return Starlette(routes=[Route("/seats/{seat}/book", book, methods=["POST"]),
                             Route("/seats", seats)])


def theatre_operations() -> list[Any]:
    return [explorer.http_operation("POST", "/seats/{seat}/book", seat=st.just("A1"),
                                    normalize=explorer.ignore_fields("ticket")),
            explorer.http_operation("GET", "/seats")]


# An aiohttp service on the simulated network: a username claim whose "is it free?"
# lookup and its write straddle a profile-store await.
def make_names(*, fixed: bool) -> web.Application:
    claimed: dict[str, str] = {}
    lock = asyncio.Lock()

    async def _claim(name: str, owner: str) -> web.Response:
        if name in claimed:
            return web.json_response({"name": name, "owner": claimed[name]}, status=409)
        await io()  # the profile store
        claimed[name] = owner
        return web.json_response({"name": name, "owner": owner}, status=201)

    async def claim(request: web.Request) -> web.Response:
        owner = await request.json()  # a JSON string: the claimant
        if fixed:
            async with lock:
                return await _claim(request.match_info["name"], owner)
        return await _claim(request.match_info["name"], owner)

    app = web.Application()
    app.add_routes([web.put("/names/{name}", claim)])
    return app


def names_operations() -> list[Any]:
    return [explorer.http_operation("PUT", "/names/{name}",
                                    path_params={"name": st.just("neo")},
                                    json=st.sampled_from(["u1", "u2"]))]


CASES: dict[str, tuple[Callable[[bool], Callable[[], Any]], Callable[[], list[Any]]]] = {
    "wallet": (lambda fixed: lambda: Wallet(fixed=fixed), wallet_operations),
    "registry": (lambda fixed: lambda: Registry(fixed=fixed), registry_operations),
    "theatre": (lambda fixed: explorer.asgi_client(lambda: make_theatre(fixed=fixed)),
                theatre_operations),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_buggy_object_is_not_linearizable_and_the_schedule_replays(case: str) -> None:
    make, operations = CASES[case]
    result = explorer.check_linearizable(make(False), operations(), seed=1,
                                         raise_on_failure=False)
    assert not result.ok
    failure = result.failure
    assert failure is not None and failure.kind == "not_linearizable"
    assert str(failure.schedule).startswith("v1:")
    replayed = explorer.replay_linearizability(make(False), operations(), failure)
    assert replayed is not None and replayed.kind == "not_linearizable"
    assert replayed.outcome.details["history"] == failure.outcome.details["history"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_fixed_twin_is_linearizable(case: str) -> None:
    make, operations = CASES[case]
    result = explorer.check_linearizable(make(True), operations(), seed=1,
                                         raise_on_failure=False)
    assert result.ok and result.failure is None, result.failure
    assert result.scenarios > 0 and result.schedules >= result.scenarios


@pytest.mark.slow
def test_an_aiohttp_service_on_the_simulated_network() -> None:
    # Each request crosses aiohttp's client and server stacks over the simulated network
    # (tens of awaits per request): the first failing schedule has many switches, and
    # shrinking it takes its full time budget (--run-slow runs this test).
    budget = {"max_scenarios": 5, "schedules_per_scenario": 20}
    found = explorer.check_linearizable(
        explorer.aiohttp_client(lambda: make_names(fixed=False)), names_operations(),
        seed=1, raise_on_failure=False, **budget)  # type: ignore[arg-type]
    assert found.failure is not None and found.failure.kind == "not_linearizable"
    replayed = explorer.replay_linearizability(
        explorer.aiohttp_client(lambda: make_names(fixed=False)), names_operations(),
        found.failure)
    assert replayed is not None and replayed.kind == "not_linearizable"
    proof = explorer.check_linearizable(
        explorer.aiohttp_client(lambda: make_names(fixed=True)), names_operations(),
        seed=1, raise_on_failure=False, **budget)  # type: ignore[arg-type]
    assert proof.ok, proof.failure


# A FastAPI request costs several milliseconds of protocol stack per run: a smaller budget
# than the default keeps the gallery's checks quick and still finds every bug.
SCENARIOS, SCHEDULES = 10, 30


@pytest.mark.parametrize("example", linearizable_examples(), ids=lambda e: e.name)
def test_gallery_object_forms_find_the_bug_and_pass_the_fix(example: Any) -> None:
    (buggy, buggy_operations), (fixed, fixed_operations) = example.checks()
    found = explorer.check_linearizable(buggy, buggy_operations, seed=0,
                                        raise_on_failure=False,
                                        max_scenarios=SCENARIOS, schedules_per_scenario=SCHEDULES)
    assert found.failure is not None and found.failure.kind == "not_linearizable"
    proof = explorer.check_linearizable(fixed, fixed_operations, seed=0,
                                        raise_on_failure=False,
                                        max_scenarios=SCENARIOS, schedules_per_scenario=SCHEDULES)
    assert proof.ok, proof.failure


def test_gallery_object_forms_are_named_and_point_at_their_hand_written_forms() -> None:
    from examples.gallery import all_examples

    names = [example.name for example in linearizable_examples()]
    assert "fastapi-coupon-double-redeem" in names and len(names) == len(set(names))
    hand_written = {example.name for example in all_examples()}
    for example in linearizable_examples():
        assert example.name == example.name.lower() and "_" not in example.name
        assert example.counterpart is None or example.counterpart in hand_written


def test_the_coupon_example_compares_results_without_the_generated_id() -> None:
    from examples.web import fastapi_coupons as coupons

    found = explorer.check_linearizable(coupons.buggy_client, coupons.operations(), seed=0,
                                        raise_on_failure=False,
                                        max_scenarios=SCENARIOS, schedules_per_scenario=SCHEDULES)
    assert found.failure is not None
    history = str(found.failure.outcome.details["history"])
    assert "redemption_id" not in history and "/coupons/{code}/redeem" in history


async def _one(make_app: Callable[[], Any], operation: Any, *args: Any) -> Any:
    async with explorer.asgi_client(make_app)() as client:
        return await operation.fn(client, *args)


def test_a_request_returns_status_and_decoded_body() -> None:
    book = theatre_operations()[0]
    first = asyncio.run(_one(lambda: make_theatre(fixed=True), book, "B2"))
    assert first == explorer.HttpResult(201, {"seat": "B2"})
    assert repr(first) == "201 {'seat': 'B2'}"


def test_a_text_response_is_compared_by_its_text() -> None:
    def make_app() -> Starlette:
        async def hello(request: Request) -> PlainTextResponse:
            return PlainTextResponse("hi", status_code=202)
        return Starlette(routes=[Route("/hello", hello)])

    result = asyncio.run(_one(make_app, explorer.http_operation("GET", "/hello")))
    assert result == explorer.HttpResult(202, "hi")


def test_an_escaping_app_exception_is_a_500_unless_asked_to_raise() -> None:
    def make_app() -> Starlette:
        async def boom(request: Request) -> JSONResponse:
            raise KeyError("cart")
        return Starlette(routes=[Route("/boom", boom)])

    operation = explorer.http_operation("GET", "/boom")
    assert asyncio.run(_one(make_app, operation)).status == 500

    async def raising() -> None:
        async with explorer.asgi_client(make_app, raise_app_exceptions=True)() as client:
            await operation.fn(client)

    with pytest.raises(KeyError, match="cart"):
        asyncio.run(raising())


def test_the_body_is_drawn_from_a_strategy_and_sent_as_json() -> None:
    def make_app() -> Starlette:
        async def echo(request: Request) -> JSONResponse:
            return JSONResponse({"got": await request.json(), "q": request.query_params["q"]})
        return Starlette(routes=[Route("/echo/{kind}", echo, methods=["PUT"])])

    operation = explorer.http_operation("put", "/echo/{kind}", kind=st.just("x"),
                                        json=st.just({"n": 1}), params={"q": "1"})
    assert operation.name == "PUT /echo/{kind}"
    result = asyncio.run(_one(make_app, operation, "x", {"n": 1}))
    assert result == explorer.HttpResult(200, {"got": {"n": 1}, "q": "1"})


def test_ignore_fields_drops_keys_at_any_depth() -> None:
    strip = explorer.ignore_fields("id", "at")
    body = {"id": 7, "items": [{"id": 1, "sku": "a", "at": 3}], "total": 2}
    assert strip(body) == {"items": [{"sku": "a"}], "total": 2}
    assert strip("text") == "text"


@pytest.mark.parametrize(("call", "message"), [
    (lambda: explorer.http_operation("FETCH", "/x"), "unknown method 'FETCH'"),
    (lambda: explorer.http_operation("GET", "x"), "starting with '/'"),
    (lambda: explorer.http_operation("GET", "/c/{code}"), "Give a value or a strategy for"),
    (lambda: explorer.http_operation("GET", "/c", code=1), "Remove ['code']"),
    (lambda: explorer.http_operation("GET", "/c/{code!r}", code=1), "not a plain name"),
    (lambda: explorer.http_operation("GET", "/u/{name}",
                                     name=st.just("x")),  # type: ignore[arg-type]
     "path_params={'name'"),
    (lambda: explorer.http_operation("GET", "/u/{id}", id=1, path_params={"id": 2}),
     "give each placeholder once"),
    (lambda: explorer.asgi_client(Starlette()),  # type: ignore[arg-type]  # the misuse
     "asgi_client(make_app), not"),
    (lambda: explorer.ignore_fields(), "one or more key names"),
    (lambda: explorer.aiohttp_client(web.Application()), "aiohttp_client(make_app), not"),
])
def test_misuse_says_what_to_do(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(explorer.UsageError) as raised:
        call()
    assert message in str(raised.value)


def test_an_app_factory_that_returns_no_app_is_refused() -> None:
    async def enter(factory: Callable[[], Any]) -> None:
        async with factory():
            pass

    with pytest.raises(explorer.UsageError, match="is not an ASGI app"):
        asyncio.run(enter(explorer.asgi_client(lambda: None)))
    with pytest.raises(explorer.UsageError, match="use asgi_client"):
        asyncio.run(enter(explorer.aiohttp_client(lambda: make_theatre(fixed=True))))


def test_the_http_layer_is_not_imported_with_the_explorer() -> None:
    import subprocess
    import sys

    code = ("import sys, explorer; "
            "print(any(m.startswith(('httpx', 'hypothesis', 'explorer._linearize')) "
            "for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"

