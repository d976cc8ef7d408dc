"""Per-member footprint needs in a portfolio, and ``rff`` as a portfolio member.

A member that learns from step records (``rff``) gets them in its own runs only: the
engine asks the strategy before each run what to record (``Strategy.run_footprints``), the
portfolio answers for the member whose turn it is. These tests count where records were
made, check that an exploration with rff turns repeats itself from its seed, and replay a
failure an rff turn found from its saved schedule."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import pytest

import explorer
from explorer._footprint import StepRecord
from explorer._runtime import PointView
from explorer.strategies import RFF, Portfolio, RandomWalk
from explorer.strategies._portfolio import MEMBERS, ROTATION, Factory


def _ledger(locked: bool) -> Callable[[], Coroutine[Any, Any, None]]:
    """Three postings created one by one, each a read-modify-write of a declared balance
    (a point between the read and the write unless ``locked``); the total must add up."""

    async def ledger() -> None:
        book = explorer.shared({"balance": 0}, "book")
        lock = asyncio.Lock()

        async def post(amount: int) -> None:
            if locked:
                async with lock:
                    seen = book["balance"]
                    await asyncio.sleep(0)
                    book["balance"] = seen + amount
                return
            seen = book["balance"]
            await asyncio.sleep(0)  # the posting is checked before it is written back
            book["balance"] = seen + amount

        postings = []
        for amount in (10, 20, 30):
            postings.append(asyncio.create_task(post(amount)))
            await asyncio.sleep(0)  # main does something between creations
        for posting in postings:
            await posting
        assert book["balance"] == 60, f"a posting was lost: balance {book['balance']}"

    return ledger


ledger = _ledger(locked=False)
ledger_locked = _ledger(locked=True)


class _Logged(Portfolio):
    """A portfolio that logs every run: its member, its decisions, whether it recorded."""

    def __init__(self, seed: int, members: dict[str, Factory],
                 rotation: Sequence[str]) -> None:
        super().__init__(seed, members=members, rotation=rotation)
        self.log: list[tuple[str, tuple[int, ...]]] = []
        self.observed: list[str] = []

    def observe(self, steps: Sequence[StepRecord]) -> None:
        assert self._current is not None
        self.observed.append(self._current)
        super().observe(steps)

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        assert self._current is not None
        self.log.append((self._current, tuple(decisions)))
        super().end_run(decisions, failed)


class _Sees(RandomWalk):
    """A random walk that notes, at every point, whether the run records step records."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self.recorded_points = 0
        self.plain_points = 0

    def choose(self, count: int, view: PointView) -> int:
        if view.recorded_steps() is None:
            self.plain_points += 1
        else:
            self.recorded_points += 1
        return super().choose(count, view)


class _Needy(_Sees):
    """A member that declares a need for declared footprints, as rff does."""

    footprints = "declared"

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self.observations = 0

    def observe(self, steps: Sequence[StepRecord]) -> None:
        assert steps, "a recorded run has step records"
        self.observations += 1


_MIXED: dict[str, Factory] = {"plain": _Sees, "needy": _Needy, "rff": RFF}


def _mixed(seed: int) -> _Logged:
    return _Logged(seed, _MIXED, ("plain", "needy", "rff", "plain"))


def test_footprints_are_recorded_only_in_the_runs_of_members_that_need_them() -> None:
    portfolio = _mixed(3)
    result = explorer.explore(ledger_locked, strategy=portfolio, max_schedules=40)
    assert result.failure is None and result.schedules == 40
    runs = Counter(label for label, _ in portfolio.log)
    assert runs["plain"] and runs["needy"] and runs["rff"]
    # One record per run of a member that asked for it, none for the others' runs (nor
    # for the opening stock run, which no member asked to record).
    assert Counter(portfolio.observed) == Counter(needy=runs["needy"], rff=runs["rff"])
    plain, needy = portfolio.members["plain"], portfolio.members["needy"]
    assert isinstance(plain, _Sees) and isinstance(needy, _Needy)
    assert plain.plain_points > 0 and plain.recorded_points == 0
    assert needy.recorded_points > 0 and needy.plain_points == 0
    assert needy.observations == runs["needy"]
    rff = portfolio.members["rff"]
    assert isinstance(rff, RFF) and rff.runs == runs["rff"]
    assert portfolio.footprint_models == {"declared"}


def test_a_portfolio_whose_members_need_nothing_records_nothing() -> None:
    without_rff = tuple(label for label in ROTATION if label != "rff")
    portfolio = _Logged(0, MEMBERS, without_rff)
    assert portfolio.footprint_models == frozenset()
    result = explorer.explore(ledger_locked, strategy=portfolio, max_schedules=30)
    assert result.schedules == 30 and portfolio.observed == []
    assert portfolio.run_footprints() is None


def test_same_seed_same_schedules_and_same_failure_with_rff_turns() -> None:
    rotation = ("surw", "rff", "symmetric", "rff")

    def passing() -> list[tuple[str, tuple[int, ...]]]:
        portfolio = _Logged(11, MEMBERS, rotation)
        explorer.explore(ledger_locked, strategy=portfolio, max_schedules=60)
        assert "rff" in portfolio.observed
        return portfolio.log

    first = passing()
    assert len({decisions for _, decisions in first}) > 10  # the runs differ
    assert passing() == first

    def failing() -> tuple[str, object, list[tuple[str, tuple[int, ...]]]]:
        portfolio = _Logged(5, MEMBERS, rotation)
        result = explorer.explore(ledger, strategy=portfolio, max_schedules=300,
                                  raise_on_failure=False, shrink=False)
        assert result.failure is not None
        return str(result.failure.schedule), result.failure.strategy["member"], portfolio.log

    assert failing() == failing()


@pytest.mark.parametrize("seed", [0, 1])
def test_a_failure_found_in_an_rff_turn_replays_from_its_saved_schedule(
        seed: int, tmp_path: Path) -> None:
    portfolio = Portfolio(seed, members={"rff": RFF}, rotation=("rff",))
    result = explorer.explore(ledger, strategy=portfolio, max_schedules=300,
                              raise_on_failure=False, corpus=tmp_path)
    failure = result.failure
    assert failure is not None and "a posting was lost" in str(failure)
    assert failure.strategy["via"] == "portfolio" and failure.strategy["member"] == "rff"
    # Replayed from the corpus file with no footprints recorded: the schedule alone
    # reproduces it.
    entries = list(explorer.Corpus(tmp_path).entries())
    assert len(entries) == 1 and isinstance(entries[0], explorer.CorpusEntry)
    with pytest.raises(explorer.ScheduleFailure, match="a posting was lost"):
        explorer.replay(ledger, entries[0].schedule)
    assert explorer.replay_entry(entries[0], ledger).status == "fails"


def test_faults_turn_the_member_s_recording_off_instead_of_refusing() -> None:
    portfolio = _mixed(0)
    result = explorer.explore(ledger_locked, strategy=portfolio, max_schedules=20,
                              faults=True)
    assert result.failure is None
    assert portfolio.observed == []  # fault decisions have no footprint: nothing recorded
    needy = portfolio.members["needy"]
    assert isinstance(needy, _Needy) and needy.recorded_points == 0
    # A strategy that needs footprints in every run still refuses faults, as before.
    with pytest.raises(explorer.UsageError, match="faults"):
        explorer.explore(ledger_locked, strategy="rff", max_schedules=5, faults=True)


def test_trio_runs_that_race_timers_record_nothing() -> None:
    trio = pytest.importorskip("trio")

    async def handoff() -> None:
        box = explorer.shared({"v": 0}, "box")

        async def bump() -> None:
            seen = box["v"]
            await trio.sleep(0)
            box["v"] = seen + 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(bump)
            nursery.start_soon(bump)

    portfolio = _mixed(2)
    result = explorer.explore(handoff, strategy=portfolio, runtime="trio", timer_races=True,
                              max_schedules=20, raise_on_failure=False, shrink=False)
    assert result.schedules >= 1
    assert portfolio.observed == []
    portfolio = _mixed(2)
    explorer.explore(handoff, strategy=portfolio, runtime="trio", max_schedules=20,
                     raise_on_failure=False, shrink=False)
    assert "needy" in portfolio.observed and "rff" in portfolio.observed


def test_the_default_rotation_gives_rff_a_turn_and_only_it_records() -> None:
    assert ROTATION.count("rff") == 1
    portfolio = Portfolio(0)
    assert portfolio.footprint_models == {"declared"}
    needs = {label: member.run_footprints() for label, member in portfolio.members.items()}
    assert {label for label, need in needs.items() if need is not None} == {"rff"}
    assert portfolio.statistics()["schedules"] == {}
    assert portfolio.start_run() and portfolio.run_footprints() is None  # the stock run


def test_the_default_portfolio_records_in_rff_turns_only() -> None:
    portfolio = _Logged(4, MEMBERS, ROTATION)
    explorer.explore(ledger_locked, strategy=portfolio, max_schedules=40)
    runs = Counter(label for label, _ in portfolio.log)
    assert runs["rff"] >= 3
    assert Counter(portfolio.observed) == Counter(rff=runs["rff"])


def test_a_determinism_check_of_a_recorded_run_replays_it_recording(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from explorer import _engine

    replays: list[tuple[bool, str | None]] = []
    original = _engine._replay_record

    def watched(*args: Any, **kwargs: Any) -> Any:
        replays.append((kwargs["traced"], kwargs.get("footprints")))
        return original(*args, **kwargs)

    monkeypatch.setattr(_engine, "_replay_record", watched)
    # The 1st schedule (stock, recording nothing) is checked, and later ones, all rff's.
    portfolio = Portfolio(0, members={"rff": RFF}, rotation=("rff",))
    explorer.explore(ledger_locked, strategy=portfolio, max_schedules=64)
    untraced = [footprints for traced, footprints in replays if not traced]
    assert None in untraced and "declared" in untraced
    assert all(footprints is None for traced, footprints in replays if traced)
