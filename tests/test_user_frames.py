"""Stories at user frames: failures told in the user's terms through library stacks.

Each story item is one run-ahead of a user-level task, named by what the task is, placed
at lines of the scenario's own code, with the library call it was inside as a detail;
tasks a library spawned are folded into the task they serve; the failure's JSON, its
record read back and the HTML report tell the same story.
"""

from __future__ import annotations

import asyncio
import html
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import fakeredis
import httpx
import pytest
import trio
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import explorer
from explorer._explain import explain, lanes, owners, readable, swimlanes
from explorer._failure_record import FailureRecord, FailureReport
from explorer._html import render_failure
from explorer._locations import attribute
from explorer._trace import Step, Trace
from tests.conftest import FAKEREDIS_INTERLEAVES, needs_interleaving_fakeredis

HERE = Path(__file__)


def line_of(marker: str) -> int:
    """The line of this file that carries ``marker`` (a comment), so the tests name the
    scenario's own lines without counting them by hand."""
    lines = HERE.read_text().splitlines()
    found = [n for n, text in enumerate(lines, 1) if text.rstrip().endswith(f"# {marker}")]
    assert len(found) == 1, (marker, found)
    return found[0]


def items_lines(items: list[str]) -> list[set[int]]:
    """The lines of this file each story item names."""
    return [{int(n) for n in re.findall(rf"{re.escape(HERE.name)}:(\d+)", item)}
            for item in items]


# --------------------------------------------------------------------------- redis-py


async def book_room(r: Any, guest: str) -> None:
    rooms = int(await r.hget("inn", "rooms"))  # room-read
    if rooms > 0:
        await r.hset("inn", "rooms", rooms - 1)  # room-write
        await r.rpush("inn:guests", guest)


async def inn_overbooked() -> None:
    r = fakeredis.FakeAsyncRedis()
    await r.hset("inn", "rooms", 1)
    await asyncio.gather(book_room(r, "ann"), book_room(r, "bob"))
    assert await r.llen("inn:guests") <= 1, "the inn's last room was booked twice"


@pytest.fixture(scope="module")
def redis_failure() -> explorer.ScheduleFailure:
    if not FAKEREDIS_INTERLEAVES:
        pytest.skip("from Python 3.12 a redis-py command over fakeredis never yields to "
                    "the loop: there is no interleaving to explore")
    result = explorer.explore(inn_overbooked, seed=1, max_schedules=500,
                              raise_on_failure=False)
    assert result.failure is not None
    return result.failure


def test_a_redis_check_then_act_is_told_at_the_scenarios_lines(
        redis_failure: explorer.ScheduleFailure) -> None:
    story = redis_failure.to_json()["explanation"]
    assert isinstance(story, list) and 1 <= len(story) <= 2, story
    read = line_of("room-read")
    for lines in items_lines(story):
        assert lines and lines <= set(range(read - 1, line_of("room-write") + 2)), story
    assert any(str(read) in item for item in story)
    # The library call is a detail; redis-py's internals are not where things happened.
    assert all("inside Redis.execute_command (redis)" in item for item in story), story
    assert not any("connection.py" in item for item in story), story
    assert all(re.match(r"steps? \d+(-\d+)?: book_room [12] ran ", item) for item in story)


def test_library_spawned_tasks_are_folded_into_the_task_they_serve(
        redis_failure: explorer.ScheduleFailure) -> None:
    trace = redis_failure.trace
    spawned = {s.task for s in trace if "_send_packed_command" in s.task}
    assert spawned and all(s.foreign for s in trace if s.task in spawned)
    owner = owners(trace)
    for task in spawned:
        parent = task.rsplit("/", 1)[0] if "/" in task else "main"
        assert owner[task] == parent, (task, owner[task])
    drawn = lanes(trace)
    assert drawn.tasks[0] == "main"
    assert set(drawn.tasks) == {"main", "book_room#1", "book_room#2"}
    assert "AbstractConnection._send_packed_command x" in drawn.folded[0]
    text = swimlanes(trace)
    header = next(line for line in text.splitlines() if line.startswith("step "))
    assert "_send_packed_command" not in header
    assert "↳_send_packed_command" in text
    # The full trace keeps every step and deviation: nothing is folded there.
    assert sum(s.deviated for s in trace) == redis_failure.deviations
    assert "_send_packed_command" in trace.render()


# --------------------------------------------------------------------------- httpx + ASGI

VOUCHERS: set[str] = set()


async def verify_member(request: Request) -> None:
    for _ in range(3):
        await asyncio.sleep(0)  # member-check


async def use_voucher(request: Request) -> JSONResponse:
    if request.query_params.get("member"):
        await verify_member(request)
    code = request.path_params["code"]
    if code in VOUCHERS:  # voucher-check
        return JSONResponse({"ok": False}, status_code=409)
    await asyncio.sleep(0)  # voucher-gap
    VOUCHERS.add(code)
    return JSONResponse({"ok": True})


voucher_app = Starlette(routes=[Route("/vouchers/{code}", use_voucher, methods=["POST"])])


async def voucher_used_twice() -> None:
    VOUCHERS.clear()
    transport = httpx.ASGITransport(app=voucher_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        answers = await asyncio.gather(client.post("/vouchers/SPRING"),
                                       client.post("/vouchers/SPRING?member=1"))
    assert sorted(a.status_code for a in answers) == [200, 409]


def test_an_asgi_race_names_the_request_and_the_endpoint_lines() -> None:
    result = explorer.explore(voucher_used_twice, seed=0, max_schedules=300,
                              raise_on_failure=False)
    failure = result.failure
    assert failure is not None
    story = failure.to_json()["explanation"]
    assert isinstance(story, list) and 1 <= len(story) <= 2, story
    mine = {line_of("member-check"), line_of("voucher-check"), line_of("voucher-gap")}
    assert all(lines and lines <= mine | {line_of("voucher-gap") - 4}
               for lines in items_lines(story)), story
    assert any(f"{HERE.name}:{line_of('voucher-gap')}" in item for item in story), story
    assert all("POST /vouchers/SPRING" in item for item in story), story
    assert not any("_client.py" in item for item in story), story
    header = next(line for line in swimlanes(failure.trace).splitlines()
                  if line.startswith("step "))
    assert "POST /vouchers/SPRING" in header


# --------------------------------------------------------------------------- FastAPI

REPOSITORY = '''
import asyncio


class Stock:
    def __init__(self) -> None:
        self.items = {"lamp": 1}

    async def count(self, sku):
        await asyncio.sleep(0)  # the query
        return self.items[sku]

    async def take(self, sku, left):
        await asyncio.sleep(0)  # the update
        self.items[sku] = left
'''


def load_repository(tmp_path: Path) -> ModuleType:
    path = tmp_path / "stock_repository.py"
    path.write_text(REPOSITORY)
    spec = importlib.util.spec_from_file_location("stock_repository", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["stock_repository"] = module
    spec.loader.exec_module(module)
    return module


def test_a_handler_calling_a_repository_helper_is_told_at_the_handler_line(
        tmp_path: Path) -> None:
    repository = load_repository(tmp_path)
    stock = repository.Stock()
    sold: list[str] = []
    api = FastAPI()

    @api.post("/buy/{sku}")
    async def buy(sku: str) -> dict[str, bool]:
        left = await stock.count(sku)  # handler-count
        if left < 1:
            return {"ok": False}
        await stock.take(sku, left - 1)  # handler-take
        sold.append(sku)
        return {"ok": True}

    async def oversold() -> None:
        stock.items["lamp"] = 1
        sold.clear()
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as c:
            await asyncio.gather(c.post("/buy/lamp"), c.post("/buy/lamp"))
        assert len(sold) <= 1, "the last lamp was sold twice"

    result = explorer.explore(oversold, seed=0, max_schedules=300, raise_on_failure=False)
    failure = result.failure
    assert failure is not None
    story = failure.to_json()["explanation"]
    assert isinstance(story, list) and story
    handler = {line_of("handler-count"), line_of("handler-take")}
    for item, lines in zip(story, items_lines(story), strict=True):
        assert lines and lines <= handler, story  # the handler's lines, not the helper's
        assert "(via stock_repository.py:" in item, item  # the helper as a detail
        assert "→ buy" in item, item  # the request, by its endpoint
    # Each step that stopped inside the helper keeps the handler's line as its site.
    inside = [s for s in failure.trace if s.end and s.end.filename.endswith(
        "stock_repository.py")]
    assert inside and all(s.site is not None and s.site.lineno in handler for s in inside)


# --------------------------------------------------------------------------- trio


class Tickets:
    def __init__(self) -> None:
        self.left = 1
        self.sold = 0


async def sell_ticket(tickets: Tickets) -> None:
    if tickets.left > 0:  # ticket-check
        await trio.sleep(0)  # ticket-gap
        tickets.left -= 1
        tickets.sold += 1


async def tickets_oversold() -> None:
    tickets = Tickets()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sell_ticket, tickets)
        nursery.start_soon(sell_ticket, tickets)
    assert tickets.sold <= 1, "the last ticket was sold twice"


def test_a_trio_story_is_told_the_same_way() -> None:
    result = explorer.explore(tickets_oversold, runtime="trio", strategy="systematic",
                              max_schedules=200, raise_on_failure=False)
    failure = result.failure
    assert failure is not None
    story = failure.to_json()["explanation"]
    assert isinstance(story, list) and len(story) == 1, story
    [item] = story
    assert re.match(r"steps? \d+(-\d+)?: sell_ticket [12] ran ", item), item
    assert f"{HERE.name}:{line_of('ticket-gap')}" in item
    assert "was paused at" in item or "before sell_ticket" in item
    assert not any(s.foreign for s in failure.trace)
    # The run-ahead starts with a switch away from the seller that ran last.
    assert any(s.switch for s in failure.trace if s.task.startswith("sell_ticket"))


# --------------------------------------------------------------------------- switches


async def two_workers() -> None:
    async def work() -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    await asyncio.gather(work(), work())


def test_the_trace_marks_switches_where_the_last_task_could_have_continued() -> None:
    stock = explorer.run(two_workers).trace
    moved = [s for s in stock if s.switch]
    assert moved, stock.render()
    for step in moved:  # the task that ran last was ready, and another one was chosen
        before = [s for s in stock.steps[: step.index] if s.task not in ("loop", "clock")]
        assert step.decision is not None and before and before[-1].task != step.task
        assert before[-1].end is not None  # it could have continued
    first = moved[0]
    # Choosing the task that ran last instead continues it: that is no switch.
    point = sum(1 for s in stock.steps[: first.index] if s.decision is not None)
    kept = explorer.run(two_workers, schedule=f"v1:{point}=1").trace
    assert not kept.steps[first.index].switch
    assert kept.steps[first.index].task == stock.steps[first.index - 1].task


# --------------------------------------------------------------------------- round trips


def test_the_story_survives_json_the_failure_record_and_the_html_report(
        redis_failure: explorer.ScheduleFailure) -> None:
    data = json.loads(json.dumps(redis_failure.to_json()))
    assert all({"switch", "foreign", "site", "call"} <= set(step) for step in data["trace"])
    record = FailureRecord.from_json(data)
    assert record == redis_failure.record()
    again = explorer.ScheduleFailure.from_record(FailureReport(record))
    assert again.to_json()["explanation"] == redis_failure.to_json()["explanation"]
    story = redis_failure.to_json()["explanation"]
    assert isinstance(story, list)
    text = str(again)
    assert all(item in text for item in story)
    # Swimlanes drawn from the saved steps are the ones drawn from the live trace.
    assert swimlanes(again.trace) == swimlanes(redis_failure.trace)
    page = render_failure(again.report())
    assert all(html.escape(item, quote=True) in page for item in story)
    assert "↳_send_packed_command" in page and "book_room#1" in page


def test_the_story_of_one_schedule_is_deterministic(
        redis_failure: explorer.ScheduleFailure) -> None:
    schedule = str(redis_failure.schedule)
    runs = [explorer.run(inn_overbooked, schedule=schedule) for _ in range(2)]
    traces = [r.trace for r in runs]
    assert traces[0].hash() == traces[1].hash() == redis_failure.trace.hash()
    assert explain(traces[0]) == explain(traces[1]) == \
        redis_failure.to_json()["explanation"]
    assert swimlanes(traces[0]) == swimlanes(traces[1])


# --------------------------------------------------------------------------- units


@needs_interleaving_fakeredis
def test_attribution_names_the_library_call_and_leaves_runtime_waits_alone(
        redis_failure: explorer.ScheduleFailure) -> None:
    booking = [s for s in redis_failure.trace if s.task.startswith("book_room")
               and s.end is not None]
    read = line_of("room-read")
    inside = [s for s in booking if s.end is not None and s.end.lineno == read]
    assert inside and all(s.call == "Redis.execute_command (redis)" for s in inside)
    assert all(s.site is None for s in booking)  # one file: no helper module in between
    frames: list[Any] = []

    async def probe() -> None:
        frames.append(sys._getframe())
        await asyncio.sleep(0)

    asyncio.run(probe())
    plain = attribute(frames)
    assert plain.location is not None and plain.location.function.endswith("probe")
    assert not plain.foreign and plain.site is None and plain.call is None
    assert attribute([]).location is None


def test_readable_names_keep_labels_and_ids_where_they_are_not_plain() -> None:
    trace = Trace([Step(0, "buyer#2", "step", None, None)],
                  {"AsyncClient.post#1": "POST /x #1 → x"})
    assert readable(trace, "buyer#2") == "buyer 2"
    assert readable(trace, "AsyncClient.post#1") == "POST /x #1 → x"
    assert readable(trace, "worker#1/job#2") == "worker#1/job#2"
    assert readable(trace, "main") == "main"


@pytest.mark.slow
def test_a_task_carrying_on_against_the_stock_rotation_is_not_told_as_running_ahead() -> None:
    # The ORM lost update of the services gallery shrinks to a schedule with no switch:
    # each request carries on through its SQLAlchemy calls where the stock order would
    # rotate, a deviation per await. Those deviations only keep a task going, so the
    # story tells the one run-ahead that matters, at the handler's lines.
    from examples.services import orm_lost_update

    result = explorer.explore(orm_lost_update.lost_stock_update, seed=0,
                              raise_on_failure=False)
    failure = result.failure
    assert failure is not None and failure.switches == 0 and failure.deviations > 5
    items = failure.to_json()["explanation"]
    assert isinstance(items, list) and len(items) == 1
    assert "orm_lost_update.py:" in items[0] and "POST /orders/lamp" in items[0]
