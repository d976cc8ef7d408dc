"""Per-run costs paid only by the runs that need them.

The wrappers that put primitive operations into step footprints are installed only for
the runs that record (a portfolio's rff turns), not for the whole exploration; a
portfolio member outside the first turns is built (and its module imported) at its first
turn, while the footprint models it may ask for are known before the first run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import explorer
from explorer._runtime import PointView
from explorer.strategies import Portfolio, RandomWalk, Strategy
from explorer.strategies._portfolio import MEMBERS, ROTATION, _OnFirstUse

_ORIGINAL_ACQUIRE = asyncio.Lock.__dict__["acquire"]


class _EveryOtherRecords(Strategy):
    """A random walk whose odd-numbered runs record declared footprints; it notes, per
    run, whether the run recorded and what the scenario saw as ``asyncio.Lock.acquire``."""

    name = "every-other"

    def __init__(self, runs: int) -> None:
        self._walk = RandomWalk(5)
        self._left = runs
        self.run = 0
        self.asked: list[str | None] = []
        self.observed = 0

    @property
    def footprint_models(self) -> frozenset[str]:
        return frozenset({"declared"})

    def start_run(self) -> bool:
        if self._left == 0:
            return False
        self._left -= 1
        self.run += 1
        return self._walk.start_run()

    def run_footprints(self) -> str | None:
        need = "declared" if self.run % 2 else None
        self.asked.append(need)
        return need

    def observe(self, steps: Sequence[Any]) -> None:
        self.observed += 1

    def choose(self, count: int, view: PointView) -> int:
        return self._walk.choose(count, view)

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        self._walk.end_run(decisions, failed)


def test_primitive_wrappers_are_installed_only_in_recording_runs() -> None:
    wrapped_in_run: list[bool] = []

    async def tills() -> None:
        wrapped_in_run.append(asyncio.Lock.__dict__["acquire"] is not _ORIGINAL_ACQUIRE)
        drawer = asyncio.Lock()
        total = explorer.shared({"cash": 0}, "till")

        async def ring(amount: int) -> None:
            async with drawer:
                seen = total["cash"]
                await asyncio.sleep(0)
                total["cash"] = seen + amount

        await asyncio.gather(ring(3), ring(4))
        assert total["cash"] == 7

    strategy = _EveryOtherRecords(runs=6)
    result = explorer.explore(tills, strategy=strategy, max_schedules=6)
    assert result.schedules == 6
    # Runs 1, 3 and 5 recorded (and were observed): the wrappers were in place then only.
    assert strategy.asked == ["declared", None] * 3
    assert strategy.observed == 3
    # The determinism check replays the first run (recording, as it did): one more run.
    assert wrapped_in_run[0] is True and wrapped_in_run[-6:] == [True, False] * 3
    assert asyncio.Lock.__dict__["acquire"] is _ORIGINAL_ACQUIRE  # the session restored it


def test_a_recording_run_still_records_lock_operations() -> None:
    # The wrappers installed for the run put the lock's operations in its footprints: the
    # steps that acquire the lock name it.
    lock_ids: set[int] = set()
    named: list[bool] = []

    class _Keeps(_EveryOtherRecords):
        def observe(self, steps: Sequence[Any]) -> None:
            super().observe(steps)
            named.append(any(obj in lock_ids for step in steps
                             for obj, _, _ in step.footprint))

    async def counter() -> None:
        lock = asyncio.Lock()
        lock_ids.add(id(lock))

        async def bump() -> None:
            async with lock:
                await asyncio.sleep(0)

        await asyncio.gather(bump(), bump())

    strategy = _Keeps(runs=2)
    explorer.explore(counter, strategy=strategy, max_schedules=2)
    assert named == [True]


def test_lazily_built_members_declare_the_footprint_models_they_have() -> None:
    lazy = {label: factory for label, factory in MEMBERS.items()
            if isinstance(factory, _OnFirstUse)}
    assert "rff" in lazy
    for label, factory in lazy.items():
        assert factory.footprint_models == factory(7).footprint_models, label


def test_the_default_portfolio_builds_rff_at_its_first_turn() -> None:
    portfolio = Portfolio(3)
    assert portfolio.members.built("rff") is None
    assert portfolio.footprint_models == {"declared"}  # known without building it
    assert portfolio.members.built("rff") is None
    first_turn = 1 + ROTATION.index("rff") + 1  # the opening stock run, then the rotation
    for run in range(1, first_turn + 1):
        assert portfolio.start_run()
        assert (portfolio.members.built("rff") is not None) == (run == first_turn)
        portfolio.end_run([], False)
    assert portfolio.run_footprints() == "declared"
    assert portfolio.statistics()["schedules"]["rff"] == 1
