"""The per-point paths of the sampling strategies: cheap, and deciding as before.

The strategies read each point through :class:`~explorer._runtime.PointView`; the
runtimes keep one :class:`Candidate` object per ready step until it runs, and the
strategies memoize what they work out from it (a site, an "interesting" verdict). These
tests pin that the memos change no decision (the walks agree with a plain reference
implementation) and that SURW's walk reads a point's descriptions once, without asking
for the processes separately when every candidate is a task's step, in the mode where no
decision reads a resource name (describing names resources in order of first mention).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import explorer
from explorer._locations import Location
from explorer._runtime import Candidate, LibraryCall
from explorer.strategies import SURW, SymmetricWalk
from explorer.strategies._features import SiteIds, site, spawn_order, task_keys, task_kind
from explorer.strategies._symmetric import walk_step

_HERE = Location("shop.py", 10, "checkout")
_THERE = Location("shop.py", 20, "restock")


def _candidate(task: str | None, where: Location, op: str | None = "sleep",
               kind: str = "step") -> Candidate:
    return Candidate(task, kind, where, op)


def _reference_walk(candidates: Sequence[Candidate], mode: str, rng: random.Random) -> int:
    """The walks as their docstring states them, written plainly."""
    if mode == "sites":
        groups: dict[object, list[int]] = {}
        for i, c in enumerate(candidates):
            groups.setdefault(site(c), []).append(i)
        drawn = list(groups.values())[int(rng.random() * len(groups))]
        return drawn[int(rng.random() * len(drawn))]
    keys = task_keys(candidates)
    eldest: dict[str, int] = {}
    for i, key in enumerate(keys):
        kind = task_kind(key)
        if kind not in eldest or spawn_order(key) < spawn_order(keys[eldest[kind]]):
            eldest[kind] = i
    firsts = list(eldest.values())
    return firsts[int(rng.random() * len(firsts))]


def _point(rng: random.Random) -> list[Candidate]:
    """A point of a service: clerks and couriers at two awaits, a plain callback."""
    pool = [_candidate(f"main/clerk#{i}", _HERE) for i in (3, 1, 2)]
    pool += [_candidate(f"main/courier#{i}", _THERE, "Queue.get", "wakeup") for i in (2, 1)]
    pool += [_candidate(f"main/clerk#{i}", _THERE) for i in (4, 5)]
    pool.append(_candidate(None, _HERE, "callback _done", "callback"))
    rng.shuffle(pool)
    return pool[:rng.randint(2, len(pool))]


def test_both_walks_choose_as_the_plain_reference_with_one_memo_across_points() -> None:
    shapes = random.Random(7)
    for mode in ("sites", "kinds"):
        sites = SiteIds()  # one memo for the whole search, as a strategy keeps it
        for seed in range(300):
            candidates = _point(shapes)
            expected = _reference_walk(candidates, mode, random.Random(seed))
            assert walk_step(candidates, mode, random.Random(seed), sites) == expected
            assert walk_step(candidates, mode, random.Random(seed)) == expected


def test_site_ids_are_equal_exactly_for_equal_sites_and_survive_eviction() -> None:
    class Small(SiteIds):
        LIMIT = 3  # evict the memo often

    sites = Small()
    a1, a2 = _candidate("main/clerk#1", _HERE), _candidate("main/clerk#2", _HERE)
    other_line = _candidate("main/clerk#1", _THERE)
    other_kind = _candidate("main/courier#1", _HERE)
    other_op = _candidate("main/clerk#1", _HERE, "Lock.acquire")
    first = sites.of([a1, a2, other_line, other_kind, other_op])
    assert first[0] == first[1]
    assert len(set(first[1:])) == 4
    for _ in range(5):  # the memo is evicted again and again; the numbering stays
        assert sites.of([other_op, a2, other_kind, a1, other_line]) == \
            [first[4], first[1], first[3], first[0], first[2]]


class _CountingView:
    """A point whose candidates are all task steps, counting how it is read."""

    def __init__(self, tasks: list[str], kind: str = "step") -> None:
        self._cands = [Candidate(t, kind, Location("shop.py", 5, "pay"), "sleep")
                       for t in tasks]
        self.calls: dict[str, int] = {"candidate": 0, "candidates": 0, "processes": 0}

    def candidate(self, index: int) -> Candidate:
        self.calls["candidate"] += 1
        return self._cands[index]

    def candidates(self, count: int) -> list[Candidate]:
        self.calls["candidates"] += 1
        return self._cands[:count]

    def process(self, index: int) -> str:
        return self.processes(index + 1)[index]

    def processes(self, count: int) -> list[str]:
        self.calls["processes"] += 1
        return [c.task if c.kind != "callback" else "loop"  # type: ignore[misc]
                for c in self._cands[:count]]

    def recorded_steps(self) -> None:
        return None

    def current(self) -> str | None:
        return None

    def current_call(self) -> LibraryCall | None:
        return None


def test_surw_reads_a_point_of_task_steps_once_and_asks_processes_otherwise() -> None:
    strategy = SURW(seed=3)
    strategy.start_run()
    strategy.choose(2, _CountingView(["main", "main/pay#1"]))  # the profiling run
    strategy.end_run([0], False)
    strategy.start_run()
    view = _CountingView([f"main/pay#{i}" for i in range(1, 9)])
    for _ in range(5):
        assert 0 <= strategy.choose(8, view) < 8
    # One description list per point, nothing else: who is who comes from it.
    assert view.calls == {"candidate": 0, "candidates": 5, "processes": 0}
    mixed = _CountingView(["main/pay#1", "main/pay#2"], kind="callback")
    strategy.choose(2, mixed)
    assert mixed.calls["processes"] == 1  # a plain callback's process is the runtime's


def test_surw_describes_only_its_proposals_when_decisions_read_resource_names() -> None:
    # No bare yield in the profiling run: every step is interesting and the shared
    # resources, named in order of first mention, can be drawn. Describing every
    # candidate would name them in another order, so only the proposals are described.
    strategy = SURW(seed=3)
    strategy.start_run()
    strategy.choose(2, _CountingView(["main", "main/pay#1"], kind="wakeup"))
    strategy.end_run([0], False)
    strategy.start_run()
    view = _CountingView([f"main/pay#{i}" for i in range(1, 9)], kind="wakeup")
    for _ in range(5):
        assert 0 <= strategy.choose(8, view) < 8
    assert view.calls["candidates"] == 0
    assert view.calls["processes"] == 5
    assert 5 <= view.calls["candidate"] <= 5 * 8


def test_symmetric_walk_is_reproducible_through_a_real_library_stack() -> None:
    # starlette over httpx's ASGI transport: many descriptions, many sites per run.
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def scenario() -> None:
        stock = {"left": 1}

        async def buy(request: Request) -> JSONResponse:
            await request.body()
            left = stock["left"]
            await asyncio.sleep(0)  # the payment provider's round trip
            if left <= 0:
                return JSONResponse({"ok": False})
            stock["left"] = left - 1
            return JSONResponse({"ok": True})

        app = Starlette(routes=[Route("/buy", buy, methods=["POST"])])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            answers = await asyncio.gather(*(client.post("/buy") for _ in range(3)))
        assert sum(r.json()["ok"] for r in answers) <= 1, "sold more than the stock"

    def search(seed: int) -> tuple[int | None, str | None]:
        result = explorer.explore(scenario, strategy=SymmetricWalk(seed=seed),
                                  max_schedules=40, raise_on_failure=False, shrink=False)
        failure = result.failure
        return (None, None) if failure is None else (failure.found_after,
                                                     str(failure.schedule))

    first = search(5)
    assert first[0] is not None, "the oversell was not found in 40 symmetric schedules"
    assert search(5) == first
