"""The package's record classes behave as the slotted dataclasses they stand for: built,
shown, compared, hashed, frozen, copied, pickled and read by ``dataclasses`` the same way,
each checked against the real dataclass :func:`explorer._records.dataclass_view` makes
of it."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

import explorer
from explorer._engine import ExploreResult, RunResult
from explorer._locations import Attribution, LibraryCall, Location
from explorer._network import Address, Lookup
from explorer._outcome import Outcome
from explorer._records import FrozenRecord, Record, dataclass_view, defaults
from explorer._runtime import Candidate, RunMode, RunRecord, RunStats
from explorer._schedule import Schedule
from explorer._settings import NAMES, Settings
from explorer._trace import Trace
from explorer._watchdog import Hang

HERE = Location("shop.py", 12, "checkout")
THERE = Location("shop.py", 30, "refund")

# One pair of differing instances per record class, built by position (a, b).
EXAMPLES: dict[type[Record], tuple[Any, Any]] = {
    Location: (HERE, THERE),
    Candidate: (Candidate("main/cart#1", "wakeup", HERE, "acquire", "Lock#1"),
                Candidate("main/cart#2", "step")),
    Outcome: (Outcome("assertion", "stock went negative", HERE, "AssertionError",
                      {"seen": -1}),
              Outcome("pass")),
    Settings: (Settings("random", 50, 7), Settings()),
    RunMode: (RunMode(100, True, False, "declared"), RunMode(100)),
    RunStats: (RunStats(5, 2, 0.5, 3, 1, 99, 7), RunStats()),
    RunRecord: (RunRecord([0, 1], Outcome("pass")), RunRecord([], Outcome("pass"))),
    LibraryCall: (LibraryCall((1, 2, 3), HERE, THERE), LibraryCall((4, 5, 6))),
    Attribution: (Attribution(HERE, False, THERE, "Redis.get (redis)"), Attribution(None)),
    Hang: (Hang("cart#1", HERE, (HERE, THERE)), Hang(None, None)),
    Address: (Address("db.internal", 5432), Address("127.0.0.1", 80)),
    Lookup: (Lookup(Address("db.internal", 5432), None, True),
             Lookup(Address("db.internal", 5432), "listener", False)),
    ExploreResult: (ExploreResult(10, False, None, {"name": "random"}, "a sample", 3, 40,
                                  0.01),
                    ExploreResult(1, True, None, {}, "all", 1, 2, 0.5, 1, {"runs": 1})),
    RunResult: (RunResult(Outcome("pass"), Schedule.from_decisions([1]), Trace(), 4, [1]),
                RunResult(Outcome("pass"), Schedule.from_decisions([]), Trace(), 2)),
}


def _as_dataclass(record: Record) -> Any:
    """The same values in the real dataclass the record's class stands for."""
    view = dataclass_view(type(record))
    return view(*(getattr(record, name) for name in type(record).__match_args__))


def test_every_record_class_of_the_package_is_checked_here() -> None:
    def subclasses(cls: type) -> set[type]:
        found = set(cls.__subclasses__())
        return found.union(*(subclasses(sub) for sub in found))

    made_here = {cls for cls in subclasses(Record)
                 if cls.__module__.startswith("explorer.")} - {FrozenRecord}
    assert made_here - set(EXAMPLES) == set()
    # The bases are no dataclasses themselves.
    assert not dataclasses.is_dataclass(Record) and not dataclasses.is_dataclass(FrozenRecord)


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda cls: cls.__name__)
def test_a_record_reads_as_the_dataclass_it_stands_for(cls: type[Record]) -> None:
    for record in EXAMPLES[cls]:
        real = _as_dataclass(record)
        assert repr(record) == repr(real)
        assert [f.name for f in dataclasses.fields(record)] == [
            f.name for f in dataclasses.fields(real)]
        assert dataclasses.is_dataclass(record) and dataclasses.is_dataclass(cls)
        assert dataclasses.astuple(record) == dataclasses.astuple(real)
        assert dataclasses.replace(record) == record
        assert dataclasses.replace(record) is not record
        assert record.__match_args__ == type(real).__match_args__
    params = dataclasses.fields(cls)
    assert [(f.name, f.repr, f.compare) for f in params] == [
        (f.name, f.repr, f.compare) for f in dataclasses.fields(dataclass_view(cls))]
    assert cls.__dataclass_params__.frozen == issubclass(cls, FrozenRecord)  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda cls: cls.__name__)
def test_a_record_compares_and_hashes_as_its_dataclass(cls: type[Record]) -> None:
    first, second = EXAMPLES[cls]
    again = copy.copy(first)
    assert again == first and again is not first
    assert (first == second) == (_as_dataclass(first) == _as_dataclass(second))
    assert first != second
    assert first.__eq__(_as_dataclass(first)) is NotImplemented  # another class
    if issubclass(cls, FrozenRecord):
        try:
            expected = hash(_as_dataclass(first))
        except TypeError:  # a compared field is unhashable (Outcome's details)
            with pytest.raises(TypeError):
                hash(first)
        else:
            assert hash(first) == expected == hash(again)
    else:
        with pytest.raises(TypeError, match="unhashable"):
            hash(first)


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda cls: cls.__name__)
def test_a_record_copies_and_pickles_by_its_fields(cls: type[Record]) -> None:
    record = EXAMPLES[cls][0]
    assert copy.deepcopy(record) == record
    if cls not in (ExploreResult, RunResult, RunRecord):  # they hold traces and failures
        assert pickle.loads(pickle.dumps(record)) == record


def test_a_frozen_record_refuses_assignment_as_a_frozen_dataclass_does() -> None:
    mode = RunMode(10)
    with pytest.raises(dataclasses.FrozenInstanceError, match="'max_steps'"):
        mode.max_steps = 11  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError, match="'max_steps'"):
        del mode.max_steps  # type: ignore[misc]
    with pytest.raises(AttributeError):
        HERE.column = 3  # type: ignore[attr-defined]  # no such slot either
    stats = RunStats()
    stats.steps += 2  # a mutable record takes assignment
    assert stats.steps == 2


def test_fields_made_by_a_factory_are_fresh_for_each_record() -> None:
    assert Outcome("pass").details is not Outcome("pass").details
    (details,) = [f for f in dataclasses.fields(Outcome) if f.name == "details"]
    assert details.default_factory is dict
    assert RunResult(Outcome("pass"), Schedule.from_decisions([]), Trace(), 0).divergences == []


def test_fields_not_compared_are_not_shown_or_compared() -> None:
    failure = Outcome("exception", "boom", HERE, "ValueError", exception=ValueError("a"))
    assert failure == Outcome("exception", "boom", HERE, "ValueError",
                              exception=KeyError("b"))
    assert "exception=" not in repr(failure)
    call = LibraryCall((1, 2, 3), HERE, THERE, anchor=object())
    assert call == LibraryCall((1, 2, 3)) and hash(call) == hash(LibraryCall((1, 2, 3)))
    assert "anchor" not in repr(call)


def test_settings_names_and_defaults_come_from_the_record() -> None:
    assert tuple(f.name for f in dataclasses.fields(Settings)) == NAMES
    assert defaults(Settings) == {f.name: f.default for f in dataclasses.fields(Settings)}
    assert Settings().replace(seed=4) == Settings(seed=4)
    with pytest.raises(TypeError, match="colour"):
        Settings().replace(colour="red")
    assert explorer.Settings is Settings


def test_a_record_whose_slots_miss_a_parameter_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match=r"Basket: __init__ takes \('items', 'owner'\)"
                                        r".*declare __slots__ with a slot for each"):
        class Basket(Record):
            __slots__ = ("items",)

            def __init__(self, items: list[str], owner: str) -> None:
                self.items = items
                self.owner = owner  # type: ignore[attr-defined]
