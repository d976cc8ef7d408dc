"""Tasks that carry HTTP requests are named as requests: method, path, ordinal, handler.

The scenarios go through real stacks (httpx over ASGI into Starlette and FastAPI, aiohttp's
server and client over the simulated network, a plain stream server, trio), and the labels
must reach the failure as data (``to_json``/``from_json``) and stay the same for a schedule.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

import explorer
from explorer._failure_record import FailureRecord, FailureReport, RecordError
from explorer._requests import Found, request_label

# ------------------------------------------------------------------ a Starlette voucher shop


def _voucher_app(claimed: set[str]) -> Starlette:
    async def audit(request: Request) -> None:
        await asyncio.sleep(0)  # an audit log write

    async def claim_voucher(request: Request) -> JSONResponse:
        await audit(request)
        code = request.path_params["code"]
        if code in claimed:
            return JSONResponse({"ok": False}, status_code=409)
        await asyncio.sleep(0)  # the loyalty service confirms
        claimed.add(code)
        return JSONResponse({"ok": True})

    async def balance(request: Request) -> PlainTextResponse:
        await asyncio.sleep(0)
        return PlainTextResponse(str(len(claimed)))

    return Starlette(routes=[Route("/vouchers/{code}", claim_voucher, methods=["PUT"]),
                             Route("/balance", balance)])


async def _two_claims_and_a_read() -> None:
    claimed: set[str] = set()
    transport = httpx.ASGITransport(app=_voucher_app(claimed))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        first, second, _ = await asyncio.gather(client.put("/vouchers/SPRING"),
                                                client.put("/vouchers/SPRING"),
                                                client.get("/balance"))
    assert sorted((first.status_code, second.status_code)) == [200, 409], "claimed twice"


def test_httpx_asgi_starlette_requests_get_method_path_ordinal_and_endpoint() -> None:
    result = explorer.run(_two_claims_and_a_read)
    assert result.trace.labels == {
        "AsyncClient.put#1": "PUT /vouchers/SPRING #1 → claim_voucher",
        "AsyncClient.put#2": "PUT /vouchers/SPRING #2 → claim_voucher",
        "AsyncClient.get#1": "GET /balance → balance",
    }
    assert result.trace.label("main") == "main"


def test_ordinals_follow_first_appearance_in_the_run() -> None:
    # Run the second PUT's first step before the first's: it is the first request seen.
    stock = explorer.run(_two_claims_and_a_read)
    first_choice = next(s for s in stock.trace if s.decision is not None)
    assert first_choice.task == "AsyncClient.put#1"
    swapped = explorer.run(_two_claims_and_a_read, schedule=explorer.Schedule.from_decisions([1]),
                           strict=False)
    assert swapped.trace.labels["AsyncClient.put#2"] == "PUT /vouchers/SPRING #1 → claim_voucher"
    assert swapped.trace.labels["AsyncClient.put#1"] == "PUT /vouchers/SPRING #2 → claim_voucher"


def test_labels_are_deterministic_and_not_part_of_the_trace_hash() -> None:
    failure = explorer.explore(_two_claims_and_a_read, max_schedules=500, seed=3,
                               raise_on_failure=False).failure
    assert failure is not None
    again = explorer.run(_two_claims_and_a_read, schedule=failure.schedule)
    assert again.trace.labels == failure.trace.labels
    assert again.trace.hash() == failure.trace.hash()
    unlabelled = explorer.Trace(list(again.trace.steps))
    assert unlabelled.hash() == again.trace.hash()


def test_labels_survive_the_failure_record_and_its_json() -> None:
    failure = explorer.explore(_two_claims_and_a_read, max_schedules=500, seed=3,
                               raise_on_failure=False).failure
    assert failure is not None
    data = failure.to_json()
    assert data["labels"] == {task: label for task, label in failure.trace.labels.items()}
    labels = data["labels"]
    assert isinstance(labels, dict)
    assert "PUT /vouchers/SPRING #1 → claim_voucher" in labels.values()
    record = FailureRecord.from_json(json.loads(json.dumps(data)))
    assert record.labels == failure.record().labels == failure.trace.labels
    back = explorer.ScheduleFailure.from_record(FailureReport(record))
    assert back.trace.labels == failure.trace.labels
    assert back.trace.label("AsyncClient.put#2").startswith("PUT /vouchers/SPRING #")


def test_a_record_without_labels_reads_as_none_and_a_bad_label_is_named() -> None:
    failure = explorer.explore(_two_claims_and_a_read, max_schedules=500, seed=3,
                               raise_on_failure=False).failure
    assert failure is not None
    data = failure.to_json()
    del data["labels"]  # written before labels existed
    assert FailureRecord.from_json(data).labels == {}
    data["labels"] = {"AsyncClient.put#1": 7}
    with pytest.raises(RecordError, match=r'"labels\.AsyncClient\.put#1" is int'):
        FailureRecord.from_json(data)


# ------------------------------------------------------------------ FastAPI, with a helper


def _fastapi_app(seats: dict[str, int]) -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    async def load(row: str) -> int:
        await asyncio.sleep(0)  # the repository reads the row
        return seats[row]

    @app.post("/rows/{row}/book")
    async def book_seat(row: str) -> dict[str, int]:
        free = await load(row)
        await asyncio.sleep(0)
        seats[row] = free - 1
        return {"free": seats[row]}

    return app


def test_fastapi_request_is_named_by_its_endpoint_function() -> None:
    async def scenario() -> None:
        seats = {"A": 2}
        transport = httpx.ASGITransport(app=_fastapi_app(seats))
        async with httpx.AsyncClient(transport=transport, base_url="http://hall") as client:
            await asyncio.gather(client.post("/rows/A/book"), client.post("/rows/A/book"))
        assert seats["A"] == 0, f"two bookings left {seats['A']} free"

    result = explorer.run(scenario)
    assert result.outcome.kind == "assertion"  # both read 2 free seats: a lost update
    assert result.trace.labels == {
        "AsyncClient.post#1": "POST /rows/A/book #1 → book_seat",
        "AsyncClient.post#2": "POST /rows/A/book #2 → book_seat",
    }


def test_sequential_requests_of_one_task_keep_the_first_and_count_the_rest() -> None:
    async def scenario() -> None:
        claimed: set[str] = set()
        transport = httpx.ASGITransport(app=_voucher_app(claimed))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            async def visit() -> None:
                await client.get("/balance")
                await client.put("/vouchers/AUTUMN")

            await asyncio.gather(visit(), client.get("/balance"))

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    assert result.trace.labels == {
        "visit#1": "GET /balance #1 → balance (then 1 more request)",
        "AsyncClient.get#1": "GET /balance #2 → balance",
    }


# ------------------------------------------------------------------ aiohttp over the network


def test_aiohttp_server_and_client_tasks_are_named() -> None:
    from aiohttp import ClientSession, web

    async def scenario() -> None:
        tickets = {"left": 1}

        async def reserve(request: web.Request) -> web.Response:
            left = tickets["left"]
            await asyncio.sleep(0)
            tickets["left"] = left - 1
            return web.json_response({"left": tickets["left"]})

        app = web.Application()
        app.router.add_post("/tickets/reserve", reserve)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with ClientSession() as session:
                async def attendee() -> int:
                    async with session.post(f"http://localhost:{port}/tickets/reserve") as r:
                        return r.status

                await asyncio.gather(attendee(), attendee())
        finally:
            await runner.cleanup()

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    labels = result.trace.labels
    # The request task runs the handler and owns the request; the connection task that
    # awaits it (its parent) says whose it is. (Task ids of aiohttp's tasks differ between
    # Python versions: it starts them eagerly from 3.12.)
    servers = {task: label for task, label in labels.items() if "→" in label}
    owners = sorted(label for label in servers.values() if "(" not in label)
    assert owners == ["POST /tickets/reserve #1 → reserve",
                      "POST /tickets/reserve #2 → reserve"], labels
    for task, label in servers.items():
        if "(" in label:
            child = next(t for t in servers if t.startswith(task + "/"))
            assert label == f"{servers[child]} ({task.rsplit('/', 1)[-1]})", labels
    # The client side has no handler, and its own ordinals.
    assert {labels["attendee#1"], labels["attendee#2"]} == {
        "POST /tickets/reserve #1", "POST /tickets/reserve #2"}


# ------------------------------------------------------------------ a plain stream server


def test_stream_server_handler_tasks_are_named_by_handler_and_peer() -> None:
    async def scenario() -> None:
        async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            name = await reader.readline()
            writer.write(b"hello " + name)
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(greet, "127.0.0.1", 9000)
        async with server:
            async def visitor(name: bytes) -> bytes:
                reader, writer = await asyncio.open_connection("127.0.0.1", 9000)
                writer.write(name + b"\n")
                await writer.drain()
                reply = await reader.readline()
                writer.close()
                await writer.wait_closed()
                return reply

            replies = await asyncio.gather(visitor(b"ada"), visitor(b"bob"))
        assert list(replies) == [b"hello ada\n", b"hello bob\n"]

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    # Each connection's handler task, by handler and the client's (simulated) address; a
    # client that speaks no HTTP keeps its own name.
    assert result.trace.labels == {"loop/greet#1": "greet ← 127.0.0.1:50000",
                                   "loop/greet#2": "greet ← 127.0.0.1:50001"}


# ------------------------------------------------------------------ trio


def test_trio_httpx_asgi_requests_are_named() -> None:
    import trio

    async def scenario() -> None:
        claimed: set[str] = set()
        transport = httpx.ASGITransport(app=_voucher_app_trio(claimed))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client, \
                trio.open_nursery() as nursery:
            nursery.start_soon(client.put, "/vouchers/SPRING")
            nursery.start_soon(client.put, "/vouchers/SPRING")
        assert len(claimed) == 1

    result = explorer.run(scenario, runtime="trio")
    assert result.passed, result.outcome
    assert result.trace.labels == {
        "AsyncClient.put#1": "PUT /vouchers/SPRING #1 → claim",
        "AsyncClient.put#2": "PUT /vouchers/SPRING #2 → claim",
    }


def _voucher_app_trio(claimed: set[str]) -> Starlette:
    import trio

    async def claim(request: Request) -> JSONResponse:
        code = request.path_params["code"]
        await trio.sleep(0)
        claimed.add(code)
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/vouchers/{code}", claim, methods=["PUT"])])


# ------------------------------------------------------------------ the label itself


def test_request_label_shows_the_ordinal_only_when_requests_share_method_and_path() -> None:
    found = Found(object(), True, "POST", "/redeem/WELCOME10", "redeem", 0, True)
    assert request_label(found, 2, 2) == "POST /redeem/WELCOME10 #2 → redeem"
    assert request_label(found, 1, 1) == "POST /redeem/WELCOME10 → redeem"
    client = Found(object(), False, "GET", "/", None, 0)
    assert request_label(client, 1, 1) == "GET /"


def test_a_request_named_by_routing_it_reached_after_a_middleware_wait() -> None:
    # The middleware waits before routing; once routed, the request never waits again,
    # so the endpoint is read from the request itself when its task finishes.
    async def slow_auth(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0)  # the session store
        await router(scope, receive, send)

    async def profile(request: Request) -> PlainTextResponse:
        return PlainTextResponse("me")

    router = Starlette(routes=[Route("/me", profile)])

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=slow_auth)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            assert (await client.get("/me")).text == "me"  # the scenario's own request
            mine = await asyncio.gather(client.get("/me"))
        assert mine[0].text == "me"

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    # The scenario's own task keeps its name; the request task is named by the route.
    assert result.trace.labels == {"AsyncClient.get#1": "GET /me → profile"}


def test_untraced_runs_never_look_for_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    from explorer import _engine
    from explorer._requests import RequestNames
    from explorer._runtime import RunMode
    from explorer._scenario import bind

    def refuse(self: RequestNames, labels: dict[str, str]) -> None:
        raise AssertionError("an untraced run built request labels")

    monkeypatch.setattr(RequestNames, "__init__", refuse)
    runtime = _engine._runtime("asyncio")
    with runtime.session():
        record = runtime.run(bind(_two_claims_and_a_read, ()), lambda count, view: 0,
                             RunMode(max_steps=10_000))
    assert record.outcome.kind == "assertion"
    assert record.trace is None


def test_trio_stream_server_handler_tasks_are_named_by_handler_and_peer() -> None:
    import trio

    async def scenario() -> None:
        async def shout(stream: trio.SocketStream) -> None:
            word = await stream.receive_some()
            await stream.send_all(word.upper())

        async with trio.open_nursery() as servers:
            await servers.start(trio.serve_tcp, shout, 9200)

            async def caller(word: bytes) -> None:
                stream = await trio.open_tcp_stream("127.0.0.1", 9200)
                await stream.send_all(word)
                assert await stream.receive_some() == word.upper()
                await stream.aclose()

            async with trio.open_nursery() as callers:
                callers.start_soon(caller, b"hey")
                callers.start_soon(caller, b"ho")
            servers.cancel_scope.cancel()

    result = explorer.run(scenario, runtime="trio")
    assert result.passed, result.outcome
    assert result.trace.labels == {
        "serve_tcp#1/_serve_one_listener#1/_run_handler#1": "shout ← 127.0.0.1:50000",
        "serve_tcp#1/_serve_one_listener#1/_run_handler#2": "shout ← 127.0.0.1:50001",
    }


# ------------------------------------------------------------------ deadlocks and leaks


def _locking_app() -> Starlette:
    locks = {"red": asyncio.Lock(), "blue": asyncio.Lock()}

    async def paint(request: Request) -> PlainTextResponse:
        first, second = request.path_params["order"].split("-")
        async with locks[first]:
            await asyncio.sleep(0)  # mixing
            async with locks[second]:
                return PlainTextResponse("painted")

    return Starlette(routes=[Route("/paint/{order}", paint, methods=["POST"])])


def test_a_deadlock_message_says_which_requests_wait_on_each_other() -> None:
    async def scenario() -> None:
        transport = httpx.ASGITransport(app=_locking_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://studio") as client:
            await asyncio.gather(client.post("/paint/red-blue"),
                                 client.post("/paint/blue-red"))

    failure = explorer.explore(scenario, max_schedules=200, seed=1,
                               raise_on_failure=False).failure
    assert failure is not None and failure.kind == "deadlock", failure
    message = failure.outcome.message
    assert "AsyncClient.post#1 (POST /paint/red-blue → paint)" in message, message
    assert "AsyncClient.post#2 (POST /paint/blue-red → paint)" in message, message


def test_a_leaked_request_is_named_in_the_message() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()

        async def wait_for_gate(request: Request) -> PlainTextResponse:
            await gate.wait()
            return PlainTextResponse("through")

        app = Starlette(routes=[Route("/gate", wait_for_gate)])
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://park")
        asyncio.get_running_loop().create_task(client.get("/gate"))
        await asyncio.sleep(0)

    result = explorer.run(scenario)
    assert result.outcome.kind == "leaked_task", result.outcome
    assert "AsyncClient.get#1 (GET /gate → wait_for_gate)" in result.outcome.message


# ------------------------------------------------------------------ uvicorn, over the network


def test_uvicorn_request_tasks_are_named_even_when_they_never_wait() -> None:
    import uvicorn

    async def scenario() -> None:
        async def ping(request: Request) -> PlainTextResponse:
            return PlainTextResponse("pong")  # no await: the request runs in one step

        config = uvicorn.Config(Starlette(routes=[Route("/ping", ping)]),
                                host="pinger.internal", port=8090, lifespan="off",
                                log_level="warning")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            async with httpx.AsyncClient(base_url="http://pinger.internal:8090") as http:
                replies = await asyncio.gather(http.get("/ping"), http.get("/ping"))
        finally:
            server.should_exit = True
            await serving
        assert [r.text for r in replies] == ["pong", "pong"]

    result = explorer.run(scenario)
    assert result.passed, result.outcome
    labels = result.trace.labels
    assert labels["loop/RequestResponseCycle.run_asgi#1"] == "GET /ping #1 → ping"
    assert labels["loop/RequestResponseCycle.run_asgi#2"] == "GET /ping #2 → ping"
    assert {labels["AsyncClient.get#1"], labels["AsyncClient.get#2"]} == {
        "GET /ping #1", "GET /ping #2"}
